"""``allowed_transitions``: every next step of an alias, with the numbers that block it."""

from __future__ import annotations

import pytest

from modelpin.model.tenant import Alias
from modelpin.rollout.dag import GroupGraph
from modelpin.rollout.fleet_state import FleetIndex
from modelpin.rollout.state import AliasState, RoutingMode, mode_of
from modelpin.rollout.transitions import FleetContext, TransitionOption, allowed_transitions
from tests.fleetkit import evidence, tenant
from tests.rollout.builders import (
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


def _options(spec, **kw) -> dict[str, TransitionOption]:  # type: ignore[no-untyped-def]
    ctx = FleetContext.build(build_fleet(spec))
    return {o.kind: o for o in allowed_transitions(ctx, "t1", "primary", NOW, **kw)}


@pytest.mark.parametrize(
    ("rollout", "kinds"),
    [
        (None, ["start-shadow", "repin"]),
        (shadow(ago(30)), ["first-canary", "rollback"]),
        (canary(5, ago(30)), ["advance", "pause", "rollback"]),
        (canary(100, ago(30)), ["promote", "pause", "rollback"]),
        (paused(25, ago(3)), ["resume", "rollback"]),
        (rolled_back(ago(3)), ["acknowledge-rollback"]),
    ],
    ids=["pinned", "shadow", "canary", "canary-100", "paused", "rolled-back"],
)
def test_options_per_state(rollout, kinds) -> None:  # type: ignore[no-untyped-def]
    assert list(_options(scenario(rollout))) == kinds


def test_targets_follow_the_ladder() -> None:
    options = _options(scenario(canary(5, ago(30))))
    assert options["advance"].target == AliasState("canary", A, V, 25)
    assert options["advance"].allowed
    assert options["pause"].target == AliasState("paused", A, V, 5)
    promote = _options(scenario(canary(100, ago(30))))["promote"]
    assert promote.target == AliasState("pinned", V)


def test_reasons_name_the_numbers() -> None:
    spec = scenario(canary(5, ago(31), approvals=[]), group="conservative")
    spec.add(tenant("s1", pin=V))
    spec.tenants["e1"] = tenant("e1", group="early", rollout=rolled_back(ago(2)))
    spec.evidence[:] = [evidence("t1", cases=510, passed=480, run_at=ago(24))]

    advance = _options(spec)["advance"]

    assert not advance.allowed
    assert [(r.code, r.message) for r in advance.reasons] == [
        ("MP106", "soak 31h of 72h"),
        ("MP107", "evidence pass rate 0.941 < 0.98"),
        ("MP108", "upstream group early has not cleared gpt-5-2026-03-14: "
                  "tenant e1 rolled back from it"),
        ("MP109", "group conservative needs two approvals by different people for 25%: 0 recorded"),
    ]


def test_upstream_unfinished_blocks_first_canary_only() -> None:
    spec = scenario(shadow(ago(30)))
    spec.tenants["beta-support"] = tenant("beta-support", group="early",
                                          rollout=canary(10, ago(5)))

    [reason] = _options(spec)["first-canary"].reasons

    assert reason.message == ("upstream group early has not cleared gpt-5-2026-03-14: "
                              "tenant beta-support is at canary 10")


def test_upstream_skips_groups_without_tenants_and_is_transitive() -> None:
    spec = scenario(shadow(ago(30)))
    del spec.tenants["e1"]  # early has no tenants: pioneers (transitive) must still clear
    spec.tenants["p1"] = tenant("p1", group="pioneers")
    [reason] = _options(spec)["first-canary"].reasons
    assert reason.message.startswith("upstream group pioneers has not cleared")


def test_frozen_tenant_may_only_pause_and_roll_back() -> None:
    options = _options(scenario(canary(5, ago(30)), freeze=True))
    assert [r.code for r in options["advance"].reasons] == ["MP104"]
    assert options["pause"].allowed and options["rollback"].allowed


def test_pinned_offers_compatible_candidates_and_repins() -> None:
    options = _options(scenario(None))
    assert options["start-shadow"].target == AliasState("shadow", A, V)
    assert options["start-shadow"].allowed
    assert [r.code for r in options["repin"].reasons] == ["MP105"]
    assert _options(scenario(None, override_allowed=True))["repin"].allowed
    revert = _options(scenario(None), previous_pins=[JUDGE])["repin"]
    assert revert.allowed and revert.target == AliasState("pinned", JUDGE)


def test_blast_radius_cap_counts_tenants_with_traffic() -> None:
    spec = scenario(shadow(ago(30)))
    spec.groups["standard"]["max_in_flight"] = 2
    spec.add(tenant("t2", rollout=canary(5, ago(30))))
    spec.add(tenant("t3", rollout=paused(5, ago(30))))
    spec.add(tenant("t4", rollout=shadow(ago(30))))  # shadow serves no traffic
    [reason] = _options(spec)["first-canary"].reasons
    assert reason.code == "MP110"
    assert "2 other(s) are: t2, t3" in reason.message


def test_index_is_per_group_and_candidate() -> None:
    spec = scenario(canary(5, ago(30)))
    spec.add(tenant("t2", rollout=rolled_back(ago(3))))
    fleet = build_fleet(spec)
    index = FleetIndex.build(fleet)

    standard = index.of("standard", V)
    assert standard.canary_tenants == {"t1"}
    assert standard.rolled_back == ["t2"]
    assert [t for t, _ in standard.unfinished] == ["t1"]
    assert index.of("early", V).cleared_by == ["e1"]
    assert index.tenants_per_group == {"pioneers": 1, "early": 1, "standard": 2}
    graph = GroupGraph.build(fleet.policy.groups)
    assert index.upstream_blockers(graph, "conservative", V) == [
        "upstream group standard has not cleared gpt-5-2026-03-14: tenant t2 rolled back from it"
    ]


@pytest.mark.parametrize(
    ("rollout", "mode"),
    [
        (None, RoutingMode("pinned", 0.0, False, A, None)),
        (shadow(ago(1)), RoutingMode("shadow", 0.0, False, A, V)),
        (canary(25, ago(1)), RoutingMode("canary", 25, False, A, V)),
        (paused(25, ago(1)), RoutingMode("canary", 25, True, A, V)),
        (rolled_back(ago(1)), RoutingMode("rolled-back", 0.0, False, A, V)),
    ],
)
def test_mode_of(rollout, mode) -> None:  # type: ignore[no-untyped-def]
    alias = Alias.model_validate({"kind": "chat", "pin": A,
                                  **({"rollout": rollout} if rollout else {})})
    assert mode_of(alias) == mode
