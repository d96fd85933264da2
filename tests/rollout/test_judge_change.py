"""Every row of the SPEC section 2 transition table, allowed and blocked, plus the traps.

Each row is a base and a head version of tenant ``t1``'s alias ``primary``; the change
is judged as a transition from base, at ``NOW`` with the base commit at ``BASE_TIME``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelpin.rollout.change import changed_tenants, judge_change, judge_tenant
from modelpin.rollout.transitions import FleetContext
from tests.fleetkit import FleetSpec, evidence, promoted, tenant
from tests.rollout.builders import (
    BASE_TIME,
    JUDGE,
    NOW,
    A,
    V,
    ago,
    build_fleet,
    canary,
    paused,
    rolled_back,
    scenario,
    shadow,
)

Tweak = Callable[[FleetSpec], None]

FRESH = ago(1)  # a since set by this change (after the base commit)


def _none(_: FleetSpec) -> None:
    pass


def _record(promoted_from: str = A, at: str = FRESH) -> Tweak:
    """The head's t1 records its promotion (SPEC 2.1 rule 7)."""
    def tweak(spec: FleetSpec) -> None:
        promoted(spec.tenants["t1"], promoted_from, at)

    return tweak


@dataclass
class Row:
    id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    kind: str | None
    codes: list[str]
    message: str = ""
    pin_before: str = A
    pin_after: str = A
    group: str = "standard"
    tweak: Tweak = _none
    """Applied to base and head: the world both sides share."""
    head_tweak: Tweak = _none
    tenant_extra: dict[str, Any] = field(default_factory=dict)
    previous_pins: tuple[str, ...] = ()


def _all(*tweaks: Tweak) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        for each in tweaks:
            each(spec)
    return tweak


def _add(doc: dict[str, Any]) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.add(copy.deepcopy(doc))
    return tweak


def _suite(version: int) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.tenants["t1"]["bets_suite"] = {"id": "t1-suite", "version": version}
    return tweak


def _frozen(spec: FleetSpec) -> None:
    spec.tenants["t1"]["freeze"] = True


def _thaw(spec: FleetSpec) -> None:
    spec.tenants["t1"]["freeze"] = False


def _override(spec: FleetSpec) -> None:
    spec.tenants["t1"]["override_allowed"] = True


def _workload(name: str) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.tenants["t1"]["workload"] = name
    return tweak


def _evidence(**kw: Any) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.evidence[:] = [evidence("t1", **{"run_at": ago(24), **kw})]
    return tweak


def _no_evidence(spec: FleetSpec) -> None:
    spec.evidence.clear()


def _early_at(rollout: dict[str, Any]) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.tenants["e1"] = tenant("e1", group="early", rollout=rollout)
    return tweak


def _cap(n: int, *others: str) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.groups["standard"]["max_in_flight"] = n
        for other in others:
            spec.add(tenant(other, rollout=canary(5, ago(30))))
    return tweak


def _model(**fields: Any) -> Tweak:
    def tweak(spec: FleetSpec) -> None:
        spec.models[V].update(fields)
    return tweak


APPROVAL_1 = {"percent": 1, "by": "jane@acme.example", "at": ago(1)}
APPROVAL_1B = {"percent": 1, "by": "ops@platform.example", "at": ago(1)}
# Without approver keys configured, unsigned approvals count: two, by different people.

ROWS = [
    # pinned -> shadow(V)
    Row("start-shadow", None, shadow(FRESH), "start-shadow", []),
    Row("start-shadow/breaking", None, shadow(FRESH), "start-shadow", ["MP111"],
        "compatibility gpt-5-2026-01-10 -> gpt-5-2026-03-14 for workload json-extraction "
        "is breaking", tweak=_workload("json-extraction")),
    Row("start-shadow/prompt-changes-unacked", None, shadow(FRESH), "start-shadow", ["MP111"],
        "is needs-prompt-changes", tweak=_workload("classification")),
    Row("start-shadow/prompt-changes-acked", None, shadow(FRESH, prompt_changes_ack=True),
        "start-shadow", [], tweak=_workload("classification")),
    Row("start-shadow/unknown-verdict", None, shadow(FRESH), "start-shadow", ["MP111"],
        "is unknown", tweak=_workload("retrieval")),
    Row("start-shadow/frozen", None, shadow(FRESH), "start-shadow", ["MP104"],
        "tenant t1 is frozen", tweak=_frozen),
    Row("start-shadow/retired", None, shadow(FRESH), "start-shadow", ["MP113"],
        "retired on 2026-03-20", tweak=_model(retires_on="2026-03-20")),
    Row("start-shadow/blocked", None, shadow(FRESH), "start-shadow", ["MP113"],
        "is blocked: leaks", tweak=_model(blocked=True, blocked_reason="leaks")),
    Row("start-shadow/backdated", None, shadow(ago(48)), "start-shadow", ["MP103"],
        "earlier than the base commit"),
    Row("trap/pinned-to-canary", None, canary(5, FRESH), None, ["MP117"],
        "a rollout starts in shadow"),
    # shadow -> canary(first step)
    Row("first-canary", shadow(ago(30)), canary(5, FRESH), "first-canary", []),
    Row("first-canary/shadow-too-short", shadow(ago(12)), canary(5, FRESH), "first-canary",
        ["MP106"], "shadow 12h of 24h"),
    Row("first-canary/no-evidence", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP120"], "no BETS evidence for gpt-5-2026-03-14", tweak=_no_evidence),
    Row("first-canary/pass-rate", shadow(ago(30)), canary(5, FRESH), "first-canary", ["MP107"],
        "evidence pass rate 0.940 < 0.95", tweak=_evidence(cases=500, passed=470)),
    Row("first-canary/too-few-cases", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP120"], "evidence has 120 cases < min_cases 200",
        tweak=_evidence(cases=120, passed=120)),
    Row("trap/stale-evidence", shadow(ago(30)), canary(5, FRESH), "first-canary", ["MP114"],
        "evidence is 31d old > evidence_max_age 30d", tweak=_evidence(run_at=ago(31 * 24))),
    Row("trap/suite-version-mismatch", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP115"], "evidence suite t1-suite v6 is not the tenant's bets_suite t1-suite v7",
        tweak=_all(_suite(7), _evidence(suite={"id": "t1-suite", "version": 6}))),
    Row("trap/judge-is-candidate", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP116"], "judge gpt-5-2026-03-14 is the candidate", tweak=_evidence(judge=V)),
    Row("trap/judge-is-pin", shadow(ago(30)), canary(5, FRESH), "first-canary", ["MP116"],
        "judge gpt-5-2026-01-10 is the pin", tweak=_evidence(judge=A)),
    Row("first-canary/baseline-not-pin", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP107"], "evidence baseline is gpt-5-2026-02-01, expected gpt-5-2026-01-10",
        tweak=_evidence(baseline="gpt-5-2026-02-01")),
    Row("first-canary/upstream-unfinished", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP108"], "upstream group early has not cleared gpt-5-2026-03-14: tenant e1 is at "
        "canary 10", tweak=_early_at(canary(10, ago(40)))),
    Row("first-canary/upstream-in-shadow", shadow(ago(30)), canary(5, FRESH), "first-canary",
        ["MP108"], "tenant e1 is at shadow", tweak=_early_at(shadow(ago(40)))),
    Row("first-canary/upstream-at-100", shadow(ago(30)), canary(5, FRESH), "first-canary", [],
        tweak=_early_at(canary(100, ago(40)))),
    Row("first-canary/upstream-never-ran-it", shadow(ago(30)), canary(5, FRESH),
        "first-canary", ["MP108"], "no tenant runs it at canary 100 or has promoted it",
        tweak=_add(tenant("e1", group="early"))),
    Row("first-canary/manual-no-approval", shadow(ago(80)), canary(1, FRESH), "first-canary",
        ["MP109"], "group conservative needs two approvals by different people for 1%",
        group="conservative",
        tweak=_add(promoted(tenant("s1", pin=V)))),
    Row("first-canary/manual-approved", shadow(ago(80)),
        canary(1, FRESH, approvals=[APPROVAL_1, APPROVAL_1B]), "first-canary", [],
        group="conservative",
        tweak=_add(promoted(tenant("s1", pin=V)))),
    Row("trap/max-in-flight", shadow(ago(30)), canary(5, FRESH), "first-canary", ["MP110"],
        "group standard allows 1 tenant(s) in canary of gpt-5-2026-03-14 at once "
        "(max_in_flight); 1 other(s) are: t2", tweak=_cap(1, "t2")),
    Row("max-in-flight/room-left", shadow(ago(30)), canary(5, FRESH), "first-canary", [],
        tweak=_cap(2, "t2")),
    Row("trap/skip-first-step", shadow(ago(30)), canary(25, FRESH), None, ["MP101"],
        "skipping 5"),
    Row("first-canary/since-not-updated", shadow(ago(30)), canary(5, ago(30)), "first-canary",
        ["MP103"], "since not updated on entering canary 5"),
    # canary(p_i) -> canary(p_i+1)
    Row("advance", canary(5, ago(30)), canary(25, FRESH), "advance", []),
    Row("advance/soak", canary(5, ago(12)), canary(25, FRESH), "advance", ["MP106"],
        "soak 12h of 24h"),
    Row("advance/evidence-failing", canary(5, ago(30)), canary(25, FRESH), "advance",
        ["MP107"], "pass rate 0.900", tweak=_evidence(cases=600, passed=540)),
    Row("trap/advance-frozen", canary(5, ago(30)), canary(25, FRESH), "advance", ["MP104"],
        tweak=_frozen),
    Row("trap/unfreeze-and-advance", canary(5, ago(30)), canary(25, FRESH), "advance",
        ["MP104"], tweak=_none, tenant_extra={"freeze": True},
        head_tweak=_thaw),
    Row("trap/upstream-rollback", canary(5, ago(30)), canary(25, FRESH), "advance", ["MP108"],
        "tenant e1 rolled back from it", tweak=_early_at(rolled_back(ago(5)))),
    Row("advance/upstream-unfinished-ok", canary(5, ago(30)), canary(25, FRESH), "advance",
        [], tweak=_early_at(canary(10, ago(40)))),
    Row("trap/skip-step", canary(5, ago(30)), canary(50, FRESH), None, ["MP101"],
        "canary 5 of gpt-5-2026-03-14 skips to 50, skipping 25: the next step is 25"),
    Row("trap/jump-to-100", canary(5, ago(30)), canary(100, FRESH), None, ["MP101"],
        "jumps to 100, skipping 25, 50"),
    Row("advance/off-ladder", canary(5, ago(30)), canary(30, FRESH), None, ["MP101"],
        "percent 30 is not a step of the ladder (5, 25, 50, 100)"),
    Row("advance/lower", canary(25, ago(30)), canary(5, FRESH), None, ["MP100"],
        "lowers traffic"),
    Row("advance/manual-needs-approval", canary(1, ago(80), approvals=[APPROVAL_1]),
        canary(5, FRESH, approvals=[APPROVAL_1]), "advance", ["MP109"],
        "needs two approvals by different people for 5%", group="conservative",
        tweak=_add(tenant("s1", pin=V))),
    # Backdating is reported, and gains nothing: soak runs from the base state's since.
    Row("trap/backdated-since", canary(5, ago(12)), canary(25, ago(30)), "advance",
        ["MP103", "MP106"],
        "since 2026-03-24T06:00:00Z is earlier than the base commit (2026-03-25T10:00:00Z)"),
    Row("trap/backdated-since-same-stage", canary(5, ago(1.5)), canary(5, ago(30)), None,
        ["MP103"], "clocks cannot be backdated"),
    Row("same-stage/since-later", canary(5, ago(30)), canary(5, FRESH), None, []),
    Row("trap/candidate-edited", canary(5, ago(30)),
        {**canary(5, ago(30)), "candidate": "claude-4-20260201"}, None, ["MP102"],
        "candidate changed gpt-5-2026-03-14 -> claude-4-20260201 in flight"),
    Row("in-flight/approval-removed", canary(1, ago(80), approvals=[APPROVAL_1]),
        canary(1, ago(80)), None, ["MP102"], "approvals are append-only", group="conservative",
        tweak=_add(tenant("s1", pin=V))),
    Row("pause/approvals-edited", canary(1, ago(80), approvals=[APPROVAL_1]),
        {**paused(1, FRESH), "approvals": [{**APPROVAL_1, "at": ago(2)}]}, "pause", [],
        group="conservative", tweak=_add(tenant("s1", pin=V))),
    # canary(100) -> pinned(V)
    Row("promote", canary(100, ago(30)), None, "promote", [], pin_after=V,
        head_tweak=_record()),
    Row("promote/soak", canary(100, ago(3)), None, "promote", ["MP106"], "soak 3h of 24h",
        pin_after=V, head_tweak=_record()),
    Row("promote/frozen", canary(100, ago(30)), None, "promote", ["MP104"], pin_after=V,
        tweak=_frozen, head_tweak=_record()),
    Row("promote/no-record", canary(100, ago(30)), None, "promote", ["MP121", "MP121"],
        "a promotion records promoted_from", pin_after=V),
    Row("promote/record-from-wrong-pin", canary(100, ago(30)), None, "promote", ["MP121"],
        "found claude-4-20260201", pin_after=V, head_tweak=_record(JUDGE)),
    Row("promote/pinned-at-in-future", canary(100, ago(30)), None, "promote", ["MP103"],
        "is in the future", pin_after=V, head_tweak=_record(at="2026-03-25T13:00:00Z")),
    Row("promote/pinned-at-before-base", canary(100, ago(30)), None, "promote", ["MP121"],
        "earlier than the base commit", pin_after=V, head_tweak=_record(at=ago(5))),
    Row("trap/promote-before-100", canary(50, ago(30)), None, None, ["MP101"],
        "promotes before canary 100", pin_after=V),
    # -> paused(p)
    Row("pause", canary(25, ago(3)), paused(25, FRESH), "pause", []),
    Row("pause/frozen", canary(25, ago(3)), paused(25, ago(50)), "pause", [], tweak=_frozen),
    Row("pause/from-shadow", shadow(ago(3)), paused(5, FRESH), None, ["MP100"],
        "a shadow serves no traffic"),
    Row("pause/other-percent", canary(25, ago(3)), paused(5, FRESH), None, ["MP100"],
        "a pause holds traffic at 25%"),
    # paused(p) -> canary(p)
    Row("resume", paused(25, ago(3)), canary(25, FRESH), "resume", []),
    Row("resume/frozen", paused(25, ago(3)), canary(25, FRESH), "resume", ["MP104"],
        tweak=_frozen),
    Row("resume/other-percent", paused(25, ago(3)), canary(50, FRESH), None, ["MP100"]),
    # -> rolled-back, never blocked
    Row("rollback/shadow", shadow(ago(3)), rolled_back(FRESH), "rollback", []),
    Row("rollback/canary-frozen", canary(25, ago(3)), rolled_back(FRESH), "rollback", [],
        tweak=_frozen),
    Row("rollback/paused-backdated", paused(25, ago(3)), rolled_back(ago(100)), "rollback", []),
    Row("rollback/upstream-rolled-back", canary(5, ago(3)), rolled_back(FRESH), "rollback", [],
        tweak=_early_at(rolled_back(ago(1)))),
    # rolled-back -> pinned
    Row("acknowledge", rolled_back(ago(3)), None, "acknowledge-rollback", []),
    Row("acknowledge/frozen", rolled_back(ago(3)), None, "acknowledge-rollback", [],
        tweak=_frozen),
    Row("rolled-back/restart", rolled_back(ago(3)), shadow(FRESH), None, ["MP100"],
        "acknowledge the rollback first"),
    Row("shadow/abandon", shadow(ago(3)), None, None, ["MP100"],
        "set stage rolled-back with a reason first"),
    # pinned(A) -> pinned(B)
    Row("repin/override", None, None, "repin", [], pin_after=JUDGE, tweak=_override),
    Row("repin/revert", None, None, "repin", [], pin_after=JUDGE, previous_pins=(JUDGE,)),
    Row("repin/revert-frozen", None, None, "repin", [], pin_after=JUDGE,
        previous_pins=(JUDGE,), tweak=_frozen),
    Row("repin/no-override", None, None, "repin", ["MP105"],
        "pin changed gpt-5-2026-01-10 -> claude-4-20260201 directly: tenant t1 has no "
        "override_allowed", pin_after=JUDGE),
    Row("repin/override-granted-in-same-change", None, None, "repin", ["MP105"],
        "override_allowed must already be set in the base", pin_after=JUDGE,
        head_tweak=_override),
    Row("repin/override-frozen", None, None, "repin", ["MP104"], pin_after=JUDGE,
        tweak=_all(_override, _frozen)),
    Row("trap/pin-edited-in-flight", canary(5, ago(30)),
        canary(5, ago(30)), None, ["MP102"], "pin changed", pin_after=JUDGE),
]


def _specs(row: Row) -> tuple[FleetSpec, FleetSpec]:
    base = scenario(row.before, pin=row.pin_before, group=row.group, **row.tenant_extra)
    head = scenario(row.after, pin=row.pin_after, group=row.group, **row.tenant_extra)
    for spec in (base, head):
        row.tweak(spec)
    row.head_tweak(head)
    return base, head


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_transition_table(row: Row) -> None:
    base_spec, head_spec = _specs(row)
    base = FleetContext.build(build_fleet(base_spec))
    head = FleetContext.build(build_fleet(head_spec))

    change = judge_change(base, head, "t1", "primary", base_time=BASE_TIME, now=NOW,
                          previous_pins=row.previous_pins)

    assert change.kind == row.kind
    assert [r.code for r in change.reasons] == row.codes, change.reasons
    assert change.allowed == (not row.codes)
    if row.message:
        assert any(row.message in r.message for r in change.reasons) or not row.codes, (
            row.message, change.reasons)
        if row.codes:
            assert row.message in " | ".join(r.message for r in change.reasons)


def test_reason_names_the_changed_field() -> None:
    rows = {r.id: r for r in ROWS}
    expected = {
        "trap/skip-step": ("aliases", "primary", "rollout", "percent"),
        "trap/backdated-since": ("aliases", "primary", "rollout", "since"),
        "trap/candidate-edited": ("aliases", "primary", "rollout", "candidate"),
        "repin/no-override": ("aliases", "primary", "pin"),
        "first-canary/shadow-too-short": ("aliases", "primary", "rollout", "stage"),
        "advance/soak": ("aliases", "primary", "rollout", "percent"),
    }
    for row_id, path in expected.items():
        base_spec, head_spec = _specs(rows[row_id])
        change = judge_change(
            FleetContext.build(build_fleet(base_spec)), FleetContext.build(build_fleet(head_spec)),
            "t1", "primary", base_time=BASE_TIME, now=NOW, previous_pins=())
        assert change.reasons[0].path == path, row_id


def test_batch_over_the_cap_blocks_every_new_canary() -> None:
    """Two tenants entering canary in one change with max_in_flight 1: both blocked."""
    base_spec = scenario(shadow(ago(30)))
    base_spec.groups["standard"]["max_in_flight"] = 1
    base_spec.add(tenant("t2", rollout=shadow(ago(30))))
    base_spec.evidence.append(evidence("t2", run_at=ago(24)))
    head_spec = scenario(canary(5, FRESH))
    head_spec.groups["standard"]["max_in_flight"] = 1
    head_spec.add(tenant("t2", rollout=canary(5, FRESH)))
    head_spec.evidence.append(evidence("t2", run_at=ago(24)))
    base = FleetContext.build(build_fleet(base_spec))
    head = FleetContext.build(build_fleet(head_spec))

    assert changed_tenants(base.fleet, head.fleet) == ["t1", "t2"]
    for tid in ("t1", "t2"):
        [change] = judge_tenant(base, head, tid, base_time=BASE_TIME, now=NOW)
        assert [r.code for r in change.reasons] == ["MP110"]


def test_upstream_advance_and_downstream_start_in_one_change_is_blocked() -> None:
    """Clearance must hold in the base: e1 reaching 100 in the same change does not count."""
    base_spec = scenario(shadow(ago(30)))
    base_spec.tenants["e1"] = tenant("e1", group="early", rollout=canary(10, ago(40)))
    head_spec = scenario(canary(5, FRESH))
    head_spec.tenants["e1"] = tenant("e1", group="early", rollout=canary(100, FRESH))
    for spec in (base_spec, head_spec):
        spec.evidence.append(evidence("e1", run_at=ago(24)))
    base = FleetContext.build(build_fleet(base_spec))
    head = FleetContext.build(build_fleet(head_spec))

    changes = {c.tenant: c for tid in changed_tenants(base.fleet, head.fleet)
               for c in judge_tenant(base, head, tid, base_time=BASE_TIME, now=NOW)}

    assert changes["e1"].allowed and changes["e1"].kind == "advance"
    assert [r.code for r in changes["t1"].reasons] == ["MP108"]


def test_tenant_level_changes() -> None:
    base_spec = scenario(canary(5, ago(30)))
    head_spec = scenario(canary(5, ago(30)), group="early")
    head_spec.add(tenant("new", pin=A))
    del head_spec.tenants["p1"]
    base = FleetContext.build(build_fleet(base_spec))
    head = FleetContext.build(build_fleet(head_spec))

    assert changed_tenants(base.fleet, head.fleet) == ["new", "p1", "t1"]
    [group_change] = judge_tenant(base, head, "t1", base_time=BASE_TIME, now=NOW)
    assert group_change.alias is None
    assert [r.code for r in group_change.reasons] == ["MP100"]
    assert group_change.reasons[0].path == ("group",)
    [added] = judge_tenant(base, head, "new", base_time=BASE_TIME, now=NOW)
    assert added.allowed and added.kind is None
    [removed] = judge_tenant(base, head, "p1", base_time=BASE_TIME, now=NOW)
    assert removed.allowed and removed.after is None


def test_removing_an_alias_in_flight_is_blocked() -> None:
    base_spec = scenario(canary(5, ago(30)))
    head_spec = scenario(canary(5, ago(30)))
    head_spec.tenants["t1"]["aliases"]["other"] = {"kind": "chat", "pin": A}
    del head_spec.tenants["t1"]["aliases"]["primary"]
    base = FleetContext.build(build_fleet(base_spec))
    head = FleetContext.build(build_fleet(head_spec))

    changes = {c.alias: c for c in judge_tenant(base, head, "t1", base_time=BASE_TIME, now=NOW)}

    assert [r.code for r in changes["primary"].reasons] == ["MP112"]
    assert changes["other"].allowed
