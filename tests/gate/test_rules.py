"""Rules from the base, the runner's clock, published history and judged promotions
(SPEC 2.1 rules 1, 5, 6, 7): pull requests on real git repositories, each trying one way
round ``modelpin check``, and the safe variants that must still pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fleetkit import FleetSpec, evidence, promoted, tenant
from tests.gate.harness import (
    EVIDENCE_AT,
    FRESH,
    NOW,
    OLD,
    YOUNG,
    A,
    Gate,
    PullRequest,
    Row,
    V,
    base_fleet,
    canary,
    rolled_back,
    row_id,
    run_cli,
    shadow,
)

FUTURE = "2031-01-01T00:00:00Z"
TOMORROW = "2026-03-26T12:00:00Z"
R = "gpt-5-2026-02-01"  # retired on 2026-03-01
B = "gpt-5-2026-02-15"  # blocked
W = "gpt-5-2026-03-20"  # a new candidate nobody upstream has cleared

Edit = Callable[[PullRequest], None]


def rules_base() -> FleetSpec:
    """``base_fleet`` plus: a retired model R, a blocked model B, a new candidate W (all
    compatible from A), and tenants std-json (json-extraction: A -> V is breaking),
    cons-s (conservative shadow, 36h of 72h), std-100 (canary 100, soak served), std-w
    (shadow of W, served) and ear-s (early shadow of V, served)."""
    spec = base_fleet()
    spec.models[R] = {"provider": "openai", "kind": "chat", "released": "2026-02-01",
                      "retires_on": "2026-03-01"}
    spec.models[B] = {"provider": "openai", "kind": "chat", "released": "2026-02-15",
                      "blocked": True, "blocked_reason": "leaks system prompts"}
    spec.models[W] = {"provider": "openai", "kind": "chat", "released": "2026-03-20"}
    for to in (R, B, W):
        spec.compatibility["upgrades"].append(
            {"from": A, "to": to, "verdicts": {w: "compatible" for w in
                                               ("chat", "classification", "tool-agent")}})
    spec.add(tenant("std-json", workload="json-extraction"))
    spec.add(tenant("cons-s", group="conservative", rollout=shadow()))
    spec.add(tenant("std-100", rollout=canary(100)))
    spec.add(tenant("std-w", rollout=shadow(candidate=W)))
    spec.add(tenant("ear-s", group="early", rollout=shadow()))
    for tid in ("std-json", "cons-s", "std-100", "ear-s"):
        spec.evidence.append(evidence(tid, run_at=EVIDENCE_AT))
    spec.evidence.append(evidence("std-w", candidate=W, run_at=EVIDENCE_AT))
    return spec


# --- edits ----------------------------------------------------------------------------
def steps(*edits: Callable[[PullRequest], Any]) -> Edit:
    def edit(pr: PullRequest) -> None:
        for one in edits:
            one(pr)
        pr.write()

    return edit


def go(tid: str, rollout: dict[str, Any] | None) -> Callable[[PullRequest], None]:
    return lambda pr: pr.set_rollout(tid, rollout)


def step(tid: str, percent: float, since: str = FRESH) -> Callable[[PullRequest], None]:
    return lambda pr: pr.set_rollout(tid, {**pr.rollout(tid), "percent": percent,
                                           "since": since})


def first_canary(tid: str, percent: float = 5, since: str = FRESH) -> Callable[[PullRequest], None]:
    return lambda pr: pr.set_rollout(tid, {**pr.rollout(tid), "stage": "canary",
                                           "percent": percent, "since": since})


def group_field(group: str, key: str, value: Any) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        if key == "min_pass_rate" or key == "min_cases":
            pr.spec.groups[group]["bets"][key] = value
        else:
            pr.spec.groups[group][key] = value

    return edit


def model_field(model: str, key: str, value: Any) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.spec.models.setdefault(model, {})
        if value is None:
            pr.spec.models[model].pop(key, None)
        else:
            pr.spec.models[model][key] = value

    return edit


def tenant_field(tid: str, key: str, value: Any) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.tenant(tid)[key] = value

    return edit


def verdict(to: str, workload: str, value: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        for entry in pr.spec.compatibility["upgrades"]:
            if entry["from"] == A and entry["to"] == to:
                entry["verdicts"][workload] = value
                return
        pr.spec.compatibility["upgrades"].append({"from": A, "to": to,
                                                  "verdicts": {workload: value}})

    return edit


def add_tenant(doc: dict[str, Any]) -> Callable[[PullRequest], None]:
    return lambda pr: pr.spec.add(doc)


def alias_field(tid: str, key: str, value: Any) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.tenant(tid)["aliases"]["primary"][key] = value

    return edit


def promote(tid: str, promoted_from: str | None = A, at: str | None = FRESH,
            pin: str = V) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        alias: dict[str, Any] = {"kind": "chat", "pin": pin}
        if at is not None:
            alias["pinned_at"] = at
        if promoted_from is not None:
            alias["promoted_from"] = promoted_from
        pr.tenant(tid)["aliases"]["primary"] = alias

    return edit


def launder_on_main(pr: PullRequest) -> None:
    """A side branch pins std-p to the judge model and back, and is merged into main: the
    pin never was published, but it is in main's full history."""
    pr.git("checkout", "-q", "main")
    pr.git("checkout", "-q", "-b", "side")
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = "claude-4-20260201"
    pr.write()
    pr.commit("side: pin claude", date="2026-03-25T08:00:00Z")
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = A
    pr.write()
    pr.commit("side: back to gpt", date="2026-03-25T08:30:00Z")
    pr.git("checkout", "-q", "main")
    pr.git("merge", "-q", "--no-ff", "-m", "merge side", "side", date="2026-03-25T09:00:00Z")
    pr.base_commit = pr.git("rev-parse", "HEAD")
    pr.git("checkout", "-q", "-B", pr.branch)
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = "claude-4-20260201"
    pr.write()


def launder_on_branch(pr: PullRequest) -> None:
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = "claude-4-20260201"
    pr.write()
    pr.commit("pin claude")
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = A
    pr.write()
    pr.commit("back")
    pr.tenant("std-p")["aliases"]["primary"]["pin"] = "claude-4-20260201"
    pr.write()


def rolled_back_then_acknowledged(tid: str = "std-a") -> Callable[[PullRequest], None]:
    """Published history: ``tid`` rolls back from V, then the rollback is acknowledged."""
    def edit(pr: PullRequest) -> None:
        def roll(p: PullRequest) -> None:
            p.set_rollout(tid, rolled_back("2026-03-25T08:00:00Z"))
            p.write()

        def ack(p: PullRequest) -> None:
            p.set_rollout(tid, None)
            p.write()

        pr.publish(roll, f"{tid}: roll back", date="2026-03-25T08:00:00Z")
        pr.publish(ack, f"{tid}: acknowledge", date="2026-03-25T09:00:00Z")

    return edit


def not_descending(pr: PullRequest) -> None:
    pr.git("checkout", "-q", "--orphan", "elsewhere")
    pr.set_rollout("std-a", canary(25, FRESH))
    pr.write()
    pr.commit("unrelated history")
    pr.git("branch", "-f", pr.branch, "elsewhere")
    pr.git("checkout", "-q", pr.branch)


def main_moved_on(pr: PullRequest) -> None:
    pr.set_rollout("std-a", canary(25, FRESH))
    pr.write()
    pr.commit("std-a: 25")
    pr.git("checkout", "-q", "main")
    pr.write_text("tenants/README.md", "x\n")
    pr.delete("tenants/README.md")
    pr.tenant("std-p")["notes"] = "moved on"
    pr.write()
    pr.commit("main moved on", date="2026-03-25T10:10:00Z")
    pr.git("checkout", "-q", pr.branch)


def dated(edit: Edit, date: str) -> Edit:
    def wrapped(pr: PullRequest) -> None:
        edit(pr)
        pr.commit("dated", date=date)

    return wrapped


def t(tid: str) -> str:
    return f"tenants/{tid}.yaml"


BLOCKED = [
    # rule 1: policies from the base
    Row("policy/lowered-min-pass-rate", steps(group_field("standard", "min_pass_rate", 0.8),
                                              step("std-weak", 25)),
        code="MP107", file=t("std-weak"), needle="percent:", base=rules_base),
    Row("policy/lowered-min-pass-rate-first-canary",
        steps(group_field("early", "min_pass_rate", 0.5), first_canary("ear-s", 10)),
        code="MP107", file=t("ear-s"), needle="stage:",
        base=lambda: _weak_evidence(rules_base(), "ear-s")),
    Row("policy/lowered-min-cases", steps(group_field("standard", "min_cases", 10),
                                          step("std-young-few", 25)),
        code="MP120", file=t("std-young-few"), needle="percent:",
        base=lambda: _few_cases(rules_base())),
    Row("policy/shortened-soak", steps(group_field("standard", "soak", "1h"),
                                       step("std-young", 25)),
        code="MP106", file=t("std-young"), needle="percent:", message="soak 4h of 24h"),
    Row("policy/soak-zero", steps(group_field("standard", "soak", "0h"),
                                  step("std-young", 25)),
        code="MP106", file=t("std-young"), needle="percent:"),
    Row("policy/shortened-shadow", steps(group_field("standard", "shadow", "1h"),
                                         first_canary("std-new")),
        code="MP106", file=t("std-new"), needle="stage:", message="shadow 4h of 24h"),
    Row("policy/shortened-conservative-shadow",
        steps(group_field("conservative", "shadow", "1h"), group_field(
            "conservative", "approval", "none"), first_canary("cons-s", 1)),
        code="MP106", file=t("cons-s"), needle="stage:", base=rules_base),
    Row("policy/approval-dropped", steps(group_field("conservative", "approval", "none"),
                                         group_field("conservative", "shadow", "1h"),
                                         first_canary("cons-s", 1)),
        code="MP109", file=t("cons-s"), base=rules_base),
    Row("policy/ladder-100-used-at-once", steps(group_field("early", "ladder", [100]),
                                                first_canary("ear-s", 100)),
        code="MP101", file=t("ear-s"), needle="percent:", base=rules_base),
    Row("policy/ladder-shortened", steps(group_field("early", "ladder", [50, 100]),
                                         first_canary("ear-s", 50)),
        code="MP101", file=t("ear-s"), needle="percent:", base=rules_base),
    Row("policy/upstream-edge-removed", steps(group_field("standard", "after", []),
                                              first_canary("std-w")),
        code="MP108", file=t("std-w"), needle="stage:", base=rules_base),
    Row("model/un-retire-then-shadow", steps(model_field(R, "retires_on", None),
                                             go("std-p", shadow(FRESH, candidate=R))),
        code="MP113", file=t("std-p"), needle="candidate:", base=rules_base,
        message="retired"),
    Row("model/postpone-retirement-then-shadow",
        steps(model_field(R, "retires_on", "2027-01-01"),
              go("std-p", shadow(FRESH, candidate=R))),
        code="MP113", file=t("std-p"), needle="candidate:", base=rules_base),
    Row("model/un-block-then-shadow", steps(model_field(B, "blocked", False),
                                            model_field(B, "blocked_reason", None),
                                            go("std-p", shadow(FRESH, candidate=B))),
        code="MP113", file=t("std-p"), needle="candidate:", base=rules_base, message="blocked"),
    Row("model/added-and-shadowed-in-one-change",
        steps(model_field("gpt-5-2026-03-22", "provider", "openai"),
              model_field("gpt-5-2026-03-22", "kind", "chat"),
              model_field("gpt-5-2026-03-22", "released", "2026-03-22"),
              verdict("gpt-5-2026-03-22", "chat", "compatible"),
              go("std-p", shadow(FRESH, candidate="gpt-5-2026-03-22"))),
        code="MP113", file=t("std-p"), needle="candidate:", base=rules_base,
        message="not defined"),
    Row("compat/flipped-verdict", steps(verdict(V, "json-extraction", "compatible"),
                                        go("std-json", shadow(FRESH))),
        code="MP111", file=t("std-json"), needle="candidate:", base=rules_base,
        message="is breaking"),
    Row("compat/needs-prompt-changes-flipped", steps(verdict(V, "classification", "compatible"),
                                                     go("cons", shadow(FRESH))),
        code="MP111", file=t("cons"), needle="candidate:", base=rules_base),
    Row("compat/new-pair-invented", steps(verdict("claude-4-20260201", "chat", "compatible"),
                                          go("std-p", shadow(FRESH,
                                                             candidate="claude-4-20260201"))),
        code="MP111", file=t("std-p"), needle="candidate:", base=rules_base, message="unknown"),
    # rule 1: the tenant's own settings from the base
    Row("tenant/workload-changed-for-a-better-verdict",
        steps(tenant_field("std-json", "workload", "chat"), go("std-json", shadow(FRESH))),
        code="MP111", file=t("std-json"), needle="candidate:", base=rules_base),
    Row("tenant/workload-changed-to-tool-agent",
        steps(tenant_field("std-json", "workload", "tool-agent"),
              go("std-json", shadow(FRESH))),
        code="MP111", file=t("std-json"), needle="candidate:", base=rules_base),
    Row("tenant/group-changed-to-escape-conservative",
        steps(tenant_field("cons-s", "group", "early"), first_canary("cons-s", 10)),
        code="MP100", file=t("cons-s"), needle="group:", base=rules_base),
    Row("tenant/group-changed-ladder-of-base-applies",
        steps(tenant_field("cons-s", "group", "pioneers"), first_canary("cons-s", 100)),
        code="MP101", file=t("cons-s"), needle="percent:", base=rules_base),
    Row("tenant/freeze-removed-and-advance", steps(tenant_field("frozen", "freeze", False),
                                                   step("frozen", 25)),
        code="MP104", file=t("frozen"), needle="percent:"),
    Row("tenant/freeze-removed-and-promote",
        steps(tenant_field("frozen", "freeze", False), promote("frozen")),
        code="MP104", file=t("frozen"), needle="pin:",
        base=lambda: _frozen_at_100(base_fleet())),
    Row("tenant/override-granted-and-repin",
        steps(tenant_field("std-p", "override_allowed", True),
              alias_field("std-p", "pin", "claude-4-20260201")),
        code="MP105", file=t("std-p"), needle="pin:"),
    Row("tenant/suite-swapped-to-match-evidence",
        steps(tenant_field("std-young", "bets_suite", {"id": "other-suite", "version": 1}),
              step("std-young", 25)),
        code="MP106", file=t("std-young"), needle="percent:"),
    # rule 5: the runner's clock, ancestry, no future times
    Row("clock/head-commit-dated-2031", dated(steps(step("std-young", 25)), FUTURE),
        code="MP106", file=t("std-young"), needle="percent:"),
    Row("clock/now-omitted-future-commit-date", dated(steps(step("std-young", 25)), FUTURE),
        now=None, clock="2026-03-25T12:00:00Z", code="MP106", file=t("std-young"),
        needle="percent:"),
    Row("clock/now-omitted-shadow-dated-2031", dated(steps(first_canary("std-new")), FUTURE),
        now=None, clock="2026-03-25T12:00:00Z", code="MP106", file=t("std-new"),
        needle="stage:"),
    Row("clock/since-in-the-future", steps(step("std-a", 25, since=TOMORROW)),
        code="MP103", file=t("std-a"), needle="since:", message="in the future"),
    Row("clock/shadow-since-in-the-future", steps(go("std-p", shadow(FUTURE))),
        code="MP103", file=t("std-p"), needle="since:"),
    Row("clock/since-future-with-future-commit",
        dated(steps(step("std-young", 25, since=FUTURE)), FUTURE),
        code="MP103", file=t("std-young"), needle="since:"),
    Row("clock/head-not-descending-from-base", not_descending, exit_code=2,
        message="does not descend from base main"),
    Row("clock/base-moved-on-without-the-branch", main_moved_on, exit_code=2,
        message="does not descend"),
    # rule 6: the published (first-parent) history
    Row("history/pin-laundered-through-a-merged-side-branch", launder_on_main,
        code="MP105", file=t("std-p"), needle="pin:"),
    Row("history/pin-laundered-on-the-pr-branch", launder_on_branch,
        code="MP105", file=t("std-p"), needle="pin:"),
    # rule 7: judged promotions, onboarding, rollbacks on record
    Row("promotion/no-record", steps(promote("std-100", None, None)), code="MP121",
        file=t("std-100"), needle="pin:", base=rules_base),
    Row("promotion/promoted-from-wrong", steps(promote("std-100", "claude-4-20260201")),
        code="MP121", file=t("std-100"), needle="promoted_from:", base=rules_base),
    Row("promotion/pinned-at-in-the-future", steps(promote("std-100", at=TOMORROW)),
        code="MP103", file=t("std-100"), needle="pinned_at:", base=rules_base),
    Row("promotion/record-forged-on-a-pinned-alias",
        steps(alias_field("std-p", "pinned_at", FRESH), alias_field("std-p", "promoted_from",
                                                                   "claude-4-20260201")),
        code="MP121", file=t("std-p"), base=rules_base),
    Row("promotion/record-rewritten", steps(alias_field("e1", "pinned_at", FRESH)),
        code="MP121", file=t("e1"), needle="pinned_at:"),
    Row("onboarding/new-pioneer-clears-the-dag",
        steps(add_tenant(tenant("p-new", group="pioneers", pin=W)),
              add_tenant(tenant("e-new", group="early", pin=W)), first_canary("std-w")),
        code="MP108", file=t("std-w"), needle="stage:", base=rules_base),
    Row("onboarding/new-pioneer-with-forged-promotion",
        steps(add_tenant(promoted(tenant("p-new", group="pioneers", pin=W))),
              first_canary("std-w")),
        code="MP121", file=t("p-new"), needle="promoted_from:", base=rules_base),
    Row("onboarding/new-tenant-pinned-to-uncleared-version",
        steps(add_tenant(tenant("std-x", pin=W))),
        code="MP122", file=t("std-x"), needle="pin:", base=rules_base),
    Row("onboarding/new-conservative-tenant-on-a-standard-candidate",
        steps(add_tenant(tenant("cons-x", group="conservative", pin=V))),
        code="MP122", file=t("cons-x"), needle="pin:", base=rules_base),
    Row("onboarding/new-tenant-on-un-retired-model",
        steps(model_field(R, "retires_on", None), add_tenant(tenant("p-x", group="pioneers",
                                                                    pin=R))),
        code="MP122", file=t("p-x"), needle="pin:", base=rules_base),
    Row("onboarding/new-alias-pinned-to-uncleared-version",
        steps(lambda pr: pr.tenant("std-p")["aliases"].__setitem__(
            "second", {"kind": "chat", "pin": W})),
        code="MP122", file=t("std-p"), needle="pin: gpt-5-2026-03-20", base=rules_base),
    Row("record/acknowledged-rollback-re-proposed",
        lambda pr: (rolled_back_then_acknowledged("std-a")(pr),
                    steps(go("std-a", shadow(FRESH)))(pr)),
        code="MP124", file=t("std-a"), needle="candidate:"),
    Row("record/cleared-in-the-same-change",
        lambda pr: (rolled_back_then_acknowledged("std-a")(pr),
                    steps(alias_field("std-a", "cleared_rollbacks", [V]),
                          go("std-a", shadow(FRESH)))(pr)),
        code="MP124", file=t("std-a"), needle="candidate:"),
    Row("record/upstream-rollback-acknowledged-still-blocks",
        lambda pr: (rolled_back_then_acknowledged("ear-s")(pr),
                    steps(first_canary("std-s"))(pr)),
        code="MP108", file=t("std-s"), needle="stage:", base=rules_base,
        message="rolled back"),
]


def retired_base() -> FleetSpec:
    """``rules_base`` after time passed: old-r is pinned to R (retired since 2026-03-01),
    ovr (override_allowed) is pinned to A, and std-r runs a canary 5 of R."""
    spec = rules_base()
    spec.add(tenant("old-r", pin=R))
    spec.add(tenant("ovr", override_allowed=True))
    spec.add(tenant("std-r", rollout=canary(5, candidate=R)))
    spec.evidence.append(evidence("std-r", candidate=R, run_at=EVIDENCE_AT))
    return spec


SHOWN_BLOCKED = [
    # rule 2: a rule change that breaks an invariant is a violation wherever it appears
    Row("invariant/un-retire-alone", steps(model_field(R, "retires_on", None)),
        code="MP125", file=f"model_versions/{R}.yaml", base=rules_base,
        message="pinnable again"),
    Row("invariant/postpone-a-passed-retirement",
        steps(model_field(R, "retires_on", "2027-01-01")),
        code="MP125", file=f"model_versions/{R}.yaml", needle="retires_on:", base=rules_base),
    Row("invariant/un-block-alone", steps(model_field(B, "blocked", False),
                                          model_field(B, "blocked_reason", None)),
        code="MP125", file=f"model_versions/{B}.yaml", needle="blocked:", base=rules_base),
    Row("invariant/coercion-limit-above-2pct",
        steps(lambda pr: pr.spec.signals["signals"]["coercion_rate"].__setitem__(
            "limit", 0.05)),
        code="MP012", file="policies/signals.yaml", needle="limit:"),
    Row("invariant/signal-tolerance-can-never-fail",
        steps(lambda pr: pr.spec.signals["signals"]["tool_call_failure_rate"].__setitem__(
            "tolerance", 1.5)),
        code="MP012", file="policies/signals.yaml", needle="tolerance: 1.5"),
    Row("invariant/signal-min-samples-impossible",
        steps(lambda pr: pr.spec.signals["signals"]["task_completion_rate"].__setitem__(
            "min_samples", 10**12)),
        code="MP012", file="policies/signals.yaml", needle="min_samples: 1000000000000"),
    Row("invariant/signal-limit-can-never-trip",
        steps(lambda pr: pr.spec.signals["signals"]["downstream_error_rate"].__setitem__(
            "limit", 1.0)),
        code="MP012", file="policies/signals.yaml", needle="limit: 1.0"),
]

RULE9_BLOCKED = [
    Row("rule9/override-repin-to-a-retired-version", steps(alias_field("ovr", "pin", R)),
        code="MP030", file=t("ovr"), needle="pin:", base=retired_base),
    Row("rule9/advance-to-a-retired-candidate", steps(step("std-r", 25)),
        code="MP113", file=t("std-r"), needle="percent:", base=retired_base),
    Row("rule9/new-tenant-on-a-retired-version",
        steps(add_tenant(tenant("std-x", pin=R))),
        code="MP030", file=t("std-x"), needle="pin:", base=retired_base),
    Row("diagnostics/deleted-alias-in-flight-on-the-base-line",
        steps(lambda pr: pr.tenant("std-a")["aliases"].__setitem__(
            "second", {"kind": "chat", "pin": A}),
            lambda pr: pr.tenant("std-a")["aliases"].pop("primary"),
            lambda pr: setattr(pr.spec, "evidence", [
                e for e in pr.spec.evidence if e["tenant"] != "std-a"])),
        code="MP112", file=t("std-a"), needle="primary:", side="base"),
]

RULE9_SAFE = [
    Row("rule9/rollback-while-another-pin-retired", steps(go("std-young", rolled_back())),
        base=retired_base),
    Row("rule9/rollback-of-a-retired-candidate",
        steps(go("std-r", rolled_back(candidate=R))),
        base=retired_base),
    Row("rule9/pause-and-acknowledge-while-a-pin-retired",
        steps(go("std-a", {**canary(5), "stage": "paused", "reason": "latency"}),
              lambda pr: pr.spec.tenants["std-a"]["aliases"]["primary"]["rollout"].__setitem__(
                  "since", FRESH)),
        base=retired_base),
    Row("rule9/policy-change-while-a-pin-retired",
        steps(group_field("standard", "soak", "48h")), base=retired_base),
]


def _weak_evidence(spec: FleetSpec, tid: str) -> FleetSpec:
    spec.evidence = [e for e in spec.evidence if e["tenant"] != tid]
    spec.evidence.append(evidence(tid, passed=300, run_at=EVIDENCE_AT))
    return spec


def _few_cases(spec: FleetSpec) -> FleetSpec:
    spec.add(tenant("std-young-few", rollout=canary(5, OLD)))
    spec.evidence.append(evidence("std-young-few", cases=20, passed=20, run_at=EVIDENCE_AT))
    return spec


def _frozen_at_100(spec: FleetSpec) -> FleetSpec:
    spec.tenants["frozen"]["aliases"]["primary"]["rollout"] = canary(100)
    return spec


def _cleared_on_main(pr: PullRequest) -> None:
    rolled_back_then_acknowledged("std-a")(pr)

    def clear(p: PullRequest) -> None:
        p.tenant("std-a")["aliases"]["primary"]["cleared_rollbacks"] = [V]
        p.write()

    pr.publish(clear, "std-a: a human clears the rollback of V", date="2026-03-25T09:30:00Z")
    steps(go("std-a", shadow(FRESH)))(pr)


SAFE = [
    Row("advance-after-soak", steps(step("std-a", 25))),
    Row("start-shadow", steps(go("std-p", shadow(FRESH)))),
    Row("first-canary-after-shadow", steps(first_canary("std-s"))),
    Row("rollback", steps(go("std-young", rolled_back()))),
    Row("policy-only-tightening", steps(group_field("standard", "soak", "48h"))),
    Row("policy-only-loosening", steps(group_field("standard", "min_pass_rate", 0.8),
                                       group_field("standard", "soak", "1h"))),
    Row("advance-with-an-old-commit-date", steps(step("std-a", 25)), head_date=YOUNG),
    Row("advance-now-omitted-runner-clock", dated(steps(step("std-a", 25)), "2026-03-25T11:00:00Z"),
        now=None, clock="2026-03-25T12:00:00Z"),
    Row("promotion-with-record", steps(promote("std-100")), base=rules_base),
    Row("new-tenant-on-its-groups-pin", steps(add_tenant(tenant("std-x", pin=A)))),
    Row("new-tenant-on-a-cleared-version", steps(add_tenant(tenant("std-x", pin=V)))),
    Row("new-pioneer-on-a-new-candidate", steps(add_tenant(tenant("p-x", group="pioneers",
                                                                 pin=W))), base=rules_base),
    Row("revert-from-first-parent-history",
        lambda pr: (pr.publish(lambda p: (alias_field("std-p", "pin", "claude-4-20260201")(p),
                                          p.write()), "claude", date="2026-03-25T08:00:00Z"),
                    pr.publish(lambda p: (alias_field("std-p", "pin", A)(p), p.write()),
                               "gpt", date="2026-03-25T09:00:00Z"),
                    steps(alias_field("std-p", "pin", "claude-4-20260201"))(pr))),
    Row("rollback-cleared-by-a-human-on-main-then-restart", _cleared_on_main),
    Row("acknowledge-a-rollback", lambda pr: (
        pr.publish(lambda p: (go("std-a", rolled_back("2026-03-25T09:00:00Z"))(p), p.write()),
                   "roll back", date="2026-03-25T09:00:00Z"),
        steps(go("std-a", None))(pr))),
]


BLOCKED += SHOWN_BLOCKED + RULE9_BLOCKED
SAFE += RULE9_SAFE


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


@pytest.mark.parametrize("row", SAFE, ids=row_id)
def test_safe_variant_passes(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_the_harness_fails_on_a_wrong_expectation(gate: Gate) -> None:
    """The harness's assertions can fail: a wrong line, code or exit code is caught."""
    with pytest.raises(AssertionError, match="expected on line"):
        gate.blocked(Row("wrong-line", steps(step("std-a", 50)), code="MP101",
                         file="tenants/std-a.yaml", needle="since:"))
    with pytest.raises(AssertionError, match="no MP106"):
        gate.blocked(Row("wrong-code", steps(step("std-a", 50)), code="MP106",
                         file="tenants/std-a.yaml"))
    with pytest.raises(AssertionError, match="exit 0"):
        gate.blocked(Row("safe", steps(step("std-a", 25)), code="MP101"))
    with pytest.raises(AssertionError, match="exit 1"):
        gate.allowed(Row("unsafe", steps(step("std-a", 50))))


def test_retired_pin_is_loud_in_check_and_compile_still_publishes(gate: Gate) -> None:
    """SPEC 2.1 rule 9: a rollback merges while another tenant's pin has retired: check
    passes with a loud warning naming the tenant, and compile publishes the head."""
    row = Row("rollback", steps(go("std-young", rolled_back())), base=retired_base)
    pr, outcome = gate.run(row)
    assert outcome.exit_code == 0, outcome.explain()
    loud = {d["file"]: d for d in outcome.diagnostics if d["code"] == "MP030"}
    assert sorted(loud) == ["tenants/old-r.yaml", "tenants/std-r.yaml"]
    assert all(d["severity"] == "warning" and "RETIRED" in d["message"]
               for d in loud.values())
    out = pr.root / "dist"
    compiled = run_cli(["compile", "--repo", str(pr.root), "--rev", pr.branch, "--out",
                        str(out), "--now", NOW])
    assert compiled.exit_code == 0, compiled.explain()
    table = json.loads((out / "routing-table.json").read_text())
    assert "old-r" in json.dumps(table)
