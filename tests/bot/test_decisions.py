"""Decisions on recorded telemetry (tests/bot/telemetry/*.json) and on edge values."""

from __future__ import annotations

import pytest

from modelpin.bot.decisions import (
    NextStep,
    RolloutRef,
    decide,
    judge_signal,
    two_proportion_z,
)
from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.bot.telemetry import JsonFileTelemetry
from modelpin.model.signals import SignalPolicy, SignalsPolicy

from .conftest import TELEMETRY


def _decide(case: str, policy: SignalsPolicy, rollout: RolloutRef, step: NextStep, **kw: object):
    telemetry = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe(
        rollout.tenant, rollout.alias
    )
    args = {"next_step_allowed": True, "next_step": step, "blocked_reasons": ()} | kw
    return decide(rollout, policy, telemetry, **args)  # type: ignore[arg-type]


def test_clean_canary_advances(signals_policy, rollout, next_step) -> None:
    p = _decide("clean", signals_policy, rollout, next_step)
    assert p.kind == "advance"
    assert p.next_step == next_step
    assert {v.result for v in p.verdicts} == {"pass"}
    assert len(p.verdicts) == 5
    assert p.branch == "modelpin/advance/acme-legal/primary-reasoning"


def test_regression_rolls_back_naming_the_breached_signals(signals_policy, rollout, next_step):
    p = _decide("regression", signals_policy, rollout, next_step)
    assert p.kind == "rollback"
    assert [v.signal for v in p.breached] == ["tool_call_failure_rate", "task_completion_rate"]
    failure = p.breached[0]
    assert failure.canary.value == pytest.approx(90 / 2000)
    assert failure.stable.value == pytest.approx(80 / 8000)
    assert failure.interval is not None and failure.interval[0] > failure.threshold
    assert p.failures[0]["kind"] == "tool-call-schema"


def test_coercion_over_two_percent_rolls_back(signals_policy, rollout, next_step) -> None:
    p = _decide("coercion-3pct", signals_policy, rollout, next_step)
    assert p.kind == "rollback"
    assert [v.signal for v in p.breached] == ["coercion_rate"]
    assert p.breached[0].canary.value == pytest.approx(0.03)
    assert p.breached[0].limit == 0.02
    assert "above the maximum 0.02" in p.breached[0].reason


def test_too_few_samples_holds_and_says_so(signals_policy, rollout, next_step) -> None:
    p = _decide("too-few-samples", signals_policy, rollout, next_step)
    assert p.kind == "hold"
    assert {v.result for v in p.verdicts} == {"inconclusive"}
    assert all("too few samples" in v.reason for v in p.verdicts)
    assert any("canary 60 < 200" in r for r in p.reasons)


def test_noisy_insignificant_difference_does_not_roll_back(signals_policy, rollout, next_step):
    p = _decide("noisy", signals_policy, rollout, next_step)
    tool = next(v for v in p.verdicts if v.signal == "tool_call_failure_rate")
    # the bare ratio is over the tolerance; the test says the data cannot tell
    assert tool.regression is not None and tool.regression > tool.threshold
    assert tool.result == "inconclusive"
    assert p.kind == "hold"
    assert not p.breached


def test_frozen_tenant_does_not_advance(signals_policy, rollout, next_step) -> None:
    p = _decide(
        "clean",
        signals_policy,
        rollout,
        next_step,
        next_step_allowed=False,
        blocked_reasons=["tenant acme-legal is frozen"],
    )
    assert p.kind == "hold"
    assert {v.result for v in p.verdicts} == {"pass"}
    assert p.reasons == ("canary 25% not allowed: tenant acme-legal is frozen",)


def test_frozen_tenant_still_rolls_back(signals_policy, rollout, next_step) -> None:
    p = _decide("regression", signals_policy, rollout, next_step, next_step_allowed=False)
    assert p.kind == "rollback"


def test_no_next_step_holds(signals_policy, rollout) -> None:
    p = _decide("clean", signals_policy, rollout, NextStep("canary", 25), next_step=None)
    assert p.kind == "hold"


def test_most_severe_action_wins_and_pause_on_paused_holds(signals_policy, rollout) -> None:
    from modelpin.bot.observations import CohortTelemetry, RolloutTelemetry

    def tele(sim_canary: float, errors_canary: int) -> RolloutTelemetry:
        stable = CohortTelemetry(
            {
                "semantic_similarity": MeanObservation(0.9, 1000, 0.05),
                "downstream_error_rate": RateObservation(10, 10000),
                "coercion_rate": RateObservation(10, 10000),
            }
        )
        canary = CohortTelemetry(
            {
                "semantic_similarity": MeanObservation(sim_canary, 1000, 0.05),
                "downstream_error_rate": RateObservation(errors_canary, 10000),
                "coercion_rate": RateObservation(10, 10000),
            }
        )
        return RolloutTelemetry("acme-legal", "primary-reasoning", "1h", "test", stable, canary)

    step = NextStep("canary", 25)
    # similarity drop -> pause; downstream errors -> escalate; pause is more severe
    p = decide(rollout, signals_policy, tele(0.8, 500), next_step_allowed=True, next_step=step)
    assert p.kind == "pause"
    assert [v.signal for v in p.breached] == ["semantic_similarity", "downstream_error_rate"]
    only_errors = decide(
        rollout, signals_policy, tele(0.9, 500), next_step_allowed=True, next_step=step
    )
    assert only_errors.kind == "escalate"
    paused = RolloutRef(**{**rollout.__dict__, "stage": "paused"})
    again = decide(paused, signals_policy, tele(0.8, 10), next_step_allowed=True, next_step=step)
    assert again.kind == "hold"
    assert again.reasons[0] == "already paused; breach persists"


RATE = SignalPolicy(
    kind="rate",
    direction="lower_is_better",
    min_samples=100,
    confidence=0.95,
    tolerance=0.01,
    action="rollback",
)


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        ((100, 10000), (100, 10000), "pass"),  # equal, lots of data
        ((100, 10000), (400, 10000), "fail"),  # 1% -> 4%
        ((1, 100), (3, 100), "inconclusive"),  # 1% -> 3%, far too little data to tell
        ((0, 5000), (0, 5000), "pass"),  # zero events do not collapse the interval
        ((100, 10000), (90, 99), "inconclusive"),  # canary under min_samples
    ],
)
def test_rate_verdicts(stable, canary, expected) -> None:
    v = judge_signal(
        "tool_call_failure_rate", RATE, RateObservation(*stable), RateObservation(*canary)
    )
    assert v.result == expected, v.reason


def test_higher_is_better_flips_the_direction() -> None:
    policy = RATE.model_copy(update={"direction": "higher_is_better"})
    worse = judge_signal(
        "task_completion_rate", policy, RateObservation(950, 1000), RateObservation(850, 1000)
    )
    better = judge_signal(
        "task_completion_rate", policy, RateObservation(850, 1000), RateObservation(950, 1000)
    )
    assert (worse.result, better.result) == ("fail", "pass")
    assert worse.regression == pytest.approx(0.1)


def test_mean_without_std_is_judged_cautiously() -> None:
    policy = SignalPolicy(
        kind="mean",
        direction="higher_is_better",
        min_samples=50,
        confidence=0.95,
        tolerance=0.03,
        action="pause",
    )
    with_std = judge_signal(
        "semantic_similarity",
        policy,
        MeanObservation(0.9, 400, 0.05),
        MeanObservation(0.85, 400, 0.05),
    )
    without = judge_signal(
        "semantic_similarity", policy, MeanObservation(0.9, 400), MeanObservation(0.85, 400)
    )
    assert with_std.result == "fail"
    assert without.result == "inconclusive"


def test_missing_cohort_is_inconclusive() -> None:
    v = judge_signal("tool_call_failure_rate", RATE, RateObservation(1, 1000), None)
    assert (v.result, v.reason) == ("inconclusive", "no data for canary")


def test_pooled_two_proportion_z_matches_textbook() -> None:
    # 45/500 vs 30/500: pooled p = 0.075, se = sqrt(.075*.925*(2/500)) = 0.016658
    z = two_proportion_z(RateObservation(45, 500), RateObservation(30, 500))
    assert z == pytest.approx(0.03 / 0.0166583, rel=1e-4)


def test_coercion_limit_cannot_be_raised(signals_policy) -> None:
    raw = signals_policy.model_dump()
    raw["signals"]["coercion_rate"]["limit"] = 0.05
    with pytest.raises(ValueError, match="2% ceiling"):
        SignalsPolicy.model_validate(raw)
    del raw["signals"]["coercion_rate"]
    with pytest.raises(ValueError, match="coercion_rate is required"):
        SignalsPolicy.model_validate(raw)
