"""The shadow verdict: a rollout in stage shadow judged by its drift rate (JSON telemetry)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelpin.bot import report
from modelpin.bot.decisions import NextStep, Proposal, RolloutRef, decide
from modelpin.bot.telemetry import JsonFileTelemetry
from modelpin.model.signals import SignalsPolicy

from .conftest import TELEMETRY

FIRST_CANARY = NextStep("canary", 5)


@pytest.fixture
def shadow(rollout: RolloutRef) -> RolloutRef:
    return replace(rollout, stage="shadow", percent=None)


def _decide(case: str, policy: SignalsPolicy, ref: RolloutRef, **kw: object) -> Proposal:
    telemetry = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe(
        ref.tenant, ref.alias
    )
    args = {"next_step_allowed": True, "next_step": FIRST_CANARY} | kw
    return decide(ref, policy, telemetry, **args)  # type: ignore[arg-type]


def test_low_drift_passes_and_proposes_the_first_canary_step(signals_policy, shadow) -> None:
    p = _decide("shadow-clean", signals_policy, shadow)
    assert p.kind == "advance" and p.next_step == FIRST_CANARY
    # only the shadow signal judges a shadow: the canary signals have no canary to judge
    assert [(v.signal, v.result) for v in p.verdicts] == [("shadow_drift_rate", "pass")]
    v = p.verdicts[0]
    assert v.canary.samples == 1000 and v.canary.value == pytest.approx(0.01)
    assert v.interval is not None and v.interval[1] < 0.05 == v.limit


def test_a_passing_shadow_waits_for_the_engine(signals_policy, shadow) -> None:
    p = _decide("shadow-clean", signals_policy, shadow, next_step_allowed=False,
                blocked_reasons=("shadow for 2h of the required 24h",))
    assert p.kind == "hold"
    assert any("canary 5% not allowed: shadow for 2h of the required 24h" in r
               for r in p.reasons)


def test_drift_over_the_limit_rolls_back_with_drift_per_tool_and_kind(
        signals_policy, shadow) -> None:
    p = _decide("shadow-drift", signals_policy, shadow)
    assert p.kind == "rollback"
    assert [v.signal for v in p.breached] == ["shadow_drift_rate"]
    assert "shadow 0.15 (150/1000) is above the maximum 0.05" in p.breached[0].reason
    assert [(f["kind"], f["detail"]) for f in p.failures] == [
        ("shadow drift: field-missing", "tool `search_case_law`: 120"),
        ("shadow drift: type-changed", "tool `cite`: 30"),
        ("shadow drift: tool-changed", "tool `search_case_law`: 4"),
    ]
    body = report.body(p, "plan")
    # the tool name comes from telemetry: escaped (renders as the literal text)
    assert "- `shadow drift: field-missing`: tool \\`search\\_case\\_law\\`: 120" in body
    assert "shadow_drift_rate: shadow 1000 comparisons with stable (minimum 200)" in body


def test_the_signal_action_and_tenant_override_apply(signals_policy, shadow) -> None:
    p = _decide("shadow-drift", signals_policy, shadow, actions={"shadow_drift_rate": "pause"})
    assert p.kind == "pause"


def test_too_few_comparisons_is_inconclusive_and_says_so(signals_policy, shadow) -> None:
    p = _decide("shadow-few", signals_policy, shadow)
    assert p.kind == "hold"
    assert p.verdicts[0].result == "inconclusive"
    assert any("too few shadow comparisons: 50 < 200" in r for r in p.reasons)


def test_no_drift_data_holds(signals_policy, shadow) -> None:
    p = _decide("clean", signals_policy, shadow)  # canary data only
    assert p.kind == "hold"
    assert any("no data for shadow" in r for r in p.reasons)


def test_a_straddling_rate_is_inconclusive(signals_policy, shadow, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": 1, "records": [
        {"tenant": "acme-legal", "alias": "primary-reasoning", "cohort": "shadow",
         "window": "1h", "shadow_comparisons": 400, "shadow_drifted": 20}]}))
    t = JsonFileTelemetry.from_path(path).observe("acme-legal", "primary-reasoning")
    p = decide(shadow, signals_policy, t, next_step_allowed=True, next_step=FIRST_CANARY)
    assert p.kind == "hold" and "straddle the maximum 0.05" in p.verdicts[0].reason


def test_a_policy_without_a_shadow_signal_never_advances_a_shadow(
        signals_policy, shadow) -> None:
    raw = signals_policy.model_dump(mode="json")
    del raw["signals"]["shadow_drift_rate"]
    p = _decide("shadow-clean", SignalsPolicy.model_validate(raw), shadow)
    assert p.kind == "hold" and p.verdicts == ()
    assert any("no signal of stage shadow" in r for r in p.reasons)


def test_a_canary_is_not_judged_by_the_shadow_signal(signals_policy, rollout) -> None:
    p = _decide("shadow-drift", signals_policy, rollout)  # canary stage, drift data only
    assert "shadow_drift_rate" not in {v.signal for v in p.verdicts}
    assert p.kind == "hold"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"limit": None}, "a shadow signal is a rate, lower_is_better, with a `limit`"),
        ({"direction": "higher_is_better"}, "a shadow signal is a rate"),
        ({"stage": "canary"}, "shadow_drift_rate is judged in stage shadow"),
        ({"limit": 1.5}, "the limit of a rate is a fraction between 0 and 1"),
    ],
)
def test_the_shadow_signal_cannot_be_declared_loosely(signals_policy, change, message) -> None:
    raw = signals_policy.model_dump(mode="json")
    raw["signals"]["shadow_drift_rate"].update(change)
    with pytest.raises(ValidationError, match=message):
        SignalsPolicy.model_validate(raw)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shadow_comparisons": 10, "shadow_drifted": 11},
         r"`shadow_drifted` \(11\) exceeds `shadow_comparisons` \(10\)"),
        ({"shadow_drifted": 3}, "`shadow_drifted` needs `shadow_comparisons`"),
        ({"shadow_comparisons": -1}, "greater than or equal to 0"),
        ({"shadow_comparisons": 10, "shadow_drift": [{"tool": "t", "kind": "renamed",
                                                      "count": 1}]}, "shadow_drift.0.kind"),
    ],
)
def test_impossible_drift_records_are_refused(tmp_path: Path, fields, message) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": 1, "records": [
        {"tenant": "acme-legal", "alias": "primary-reasoning", "cohort": "shadow",
         "window": "1h", **fields}]}))
    batch = JsonFileTelemetry.from_path(path).observe_all([("acme-legal", "primary-reasoning")])
    (problem,) = batch.problems[("acme-legal", "primary-reasoning")]
    assert "records[0] refused" in problem
    assert re.search(message, problem), problem
    assert dict(batch.rollouts[("acme-legal", "primary-reasoning")].shadow.signals) == {}
