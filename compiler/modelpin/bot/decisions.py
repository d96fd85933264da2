"""Judging a rollout in flight from telemetry: pure functions over values.

Rules, in order:

1. Per signal, a three-valued verdict. Fewer than ``min_samples`` in either cohort, or
   no data, is **inconclusive**. A canary value beyond the signal's absolute ``limit``
   (coercion over 2% always) **fails** when its own one-sided interval (Wilson, at the
   signal's confidence) is beyond the limit too. Otherwise the *regression* ``d`` — how much worse
   the canary is than stable, in the signal's own units, positive = worse — gets a
   one-sided confidence interval at the signal's ``confidence``: the lower bound above
   ``tolerance`` **fails** (significantly worse than allowed), the upper bound below
   ``tolerance`` **passes** (significantly within the margin), else **inconclusive**.
   Rates use the Agresti–Caffo interval for a difference of proportions, means
   Welch's interval (t at the Welch–Satterthwaite df; an unreported std is taken as
   0.5, the widest spread of a score in 0..1, which can only make the verdict more
   cautious). With ``looks="sequential"`` both use the normal-mixture confidence
   sequence instead (:mod:`modelpin.bot.stats`): valid at every look at once, so a
   loop that looks every few seconds does not trip more often than ``confidence``
   says. A tenant may override a signal's action (``signal_actions`` in its file).
   A rollout in stage ``shadow`` is judged by the shadow signals only (``stage:
   shadow`` in the policy, e.g. ``shadow_drift_rate``): the shadow's own rate against
   ``limit`` (:func:`judge_shadow_signal`); no shadow signal in the policy -> hold.
2. Per rollout: any fail -> the most severe failing signal's action (rollback > pause >
   escalate); all pass and the rollout engine allows the next step -> advance; anything
   else -> hold, with every reason. Inconclusive data never advances and never rolls back.

The rollout engine's answer is an input (``next_step_allowed``, ``blocked_reasons``):
this module does not know the transition rules and must not grow a second copy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

from modelpin.model.signals import FailAction, SignalName, SignalPolicy, SignalsPolicy

from . import stats
from .observations import MeanObservation, Observation, RateObservation, RolloutTelemetry

Result = Literal["pass", "fail", "inconclusive"]
ProposalKind = Literal["advance", "rollback", "pause", "escalate", "hold"]
Looks = Literal["fixed", "sequential"]
"""``fixed``: one look at a fixed window. ``sequential``: a look of many (always valid)."""
SEQUENTIAL_TUNED_AT = 4
"""The confidence sequence is tightest at this many times ``min_samples`` per cohort."""

UNREPORTED_STD = 0.5
_SEVERITY: dict[str, int] = {"rollback": 3, "pause": 2, "escalate": 1}


@dataclass(frozen=True)
class RolloutRef:
    """The rollout being judged, as the tenant file has it."""

    tenant: str
    alias: str
    pin: str
    candidate: str
    stage: str  # shadow | canary | paused | rolled-back
    percent: float | None
    since: datetime | None = None
    group: str | None = None
    manual_approval: bool = False


@dataclass(frozen=True)
class NextStep:
    """The transition the rollout engine proposes next: a canary step or promotion."""

    kind: Literal["canary", "promote"]
    percent: float | None = None

    def describe(self) -> str:
        if self.kind == "promote":
            return "promote the candidate to pin"
        return f"canary {_pct(self.percent)}"


@dataclass(frozen=True)
class CohortValue:
    value: float | None
    samples: int


@dataclass(frozen=True)
class SignalVerdict:
    """One signal's verdict with everything a reviewer needs to check it.

    ``regression`` is canary-worse-than-stable (positive = worse) and ``interval`` its
    one-sided bounds at ``confidence``; ``threshold`` is the regression the policy
    tolerates; ``limit`` the absolute bound on the canary value, if any.
    """

    signal: SignalName
    kind: str
    direction: str
    result: Result
    reason: str
    stable: CohortValue
    canary: CohortValue
    min_samples: int
    confidence: float
    threshold: float
    limit: float | None = None
    regression: float | None = None
    interval: tuple[float, float] | None = None
    action: FailAction = "rollback"
    method: str = ""
    """The interval used: agresti-caffo, welch, or either + confidence-sequence."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = list(self.interval) if self.interval else None
        return data


@dataclass(frozen=True)
class Proposal:
    kind: ProposalKind
    rollout: RolloutRef
    verdicts: tuple[SignalVerdict, ...]
    reasons: tuple[str, ...]
    next_step: NextStep | None = None
    window: str = ""
    source: str = ""
    failures: tuple[dict[str, str | None], ...] = field(default_factory=tuple)

    @property
    def breached(self) -> tuple[SignalVerdict, ...]:
        return tuple(v for v in self.verdicts if v.result == "fail")

    @property
    def branch(self) -> str:
        return f"modelpin/{self.kind}/{self.rollout.tenant}/{self.rollout.alias}"

    def to_json(self) -> dict[str, Any]:
        """The machine-readable verdict carried by the PR (hidden marker)."""
        r = self.rollout
        return {
            "proposal": self.kind,
            "tenant": r.tenant,
            "alias": r.alias,
            "pin": r.pin,
            "candidate": r.candidate,
            "stage": r.stage,
            "percent": r.percent,
            "next_step": asdict(self.next_step) if self.next_step else None,
            "window": self.window,
            "source": self.source,
            "reasons": list(self.reasons),
            "signals": [v.to_json() for v in self.verdicts],
        }


# --- signal verdicts -----------------------------------------------------------------


def judge_signal(
    name: SignalName,
    policy: SignalPolicy,
    stable: Observation | None,
    canary: Observation | None,
    limit: float | None = None,
    *,
    action: FailAction | None = None,
    looks: Looks = "fixed",
) -> SignalVerdict:
    """The verdict of one signal; ``limit`` is the effective absolute bound.

    ``action`` overrides the policy's (a tenant's ``signal_actions``).
    """
    threshold = policy.tolerance
    base = SignalVerdict(
        signal=name,
        kind=policy.kind,
        direction=policy.direction,
        result="inconclusive",
        reason="",
        stable=_cohort(stable),
        canary=_cohort(canary),
        min_samples=policy.min_samples,
        confidence=policy.confidence,
        threshold=threshold,
        limit=limit,
        action=action or policy.action,
    )
    if stable is None or canary is None:
        missing = " and ".join(c for c, o in (("stable", stable), ("canary", canary)) if o is None)
        return replace(base, reason=f"no data for {missing}")
    expected = RateObservation if policy.kind == "rate" else MeanObservation
    if not (isinstance(stable, expected) and isinstance(canary, expected)):
        raise ValueError(f"{name}: observations do not match the signal kind {policy.kind}")
    short = [
        f"{c} {o.samples} < {policy.min_samples}"
        for c, o in (("stable", stable), ("canary", canary))
        if o.samples < policy.min_samples
    ]
    if short:
        return replace(base, reason="too few samples: " + ", ".join(short))

    worse_sign = 1.0 if policy.direction == "lower_is_better" else -1.0
    canary_value = canary.value
    assert canary_value is not None  # samples >= min_samples >= 1
    alpha = 1.0 - policy.confidence
    if isinstance(stable, RateObservation) and isinstance(canary, RateObservation):
        diff = canary.events / canary.total - stable.events / stable.total
        centre, se = stats.agresti_caffo(canary.events, canary.total, stable.events, stable.total)
        method, z = "agresti-caffo", NormalDist().inv_cdf(policy.confidence)
    else:
        assert isinstance(stable, MeanObservation) and isinstance(canary, MeanObservation)
        sc = UNREPORTED_STD if canary.std is None else canary.std
        ss = UNREPORTED_STD if stable.std is None else stable.std
        diff, se, df = stats.welch(canary.mean, sc, canary.count, stable.mean, ss, stable.count)
        centre = diff
        method, z = "welch", stats.t_ppf(policy.confidence, df)
    if looks == "sequential":
        n = min(canary.samples, stable.samples)
        z = stats.sequential_multiplier(n, alpha, SEQUENTIAL_TUNED_AT * policy.min_samples)
        method += " + confidence-sequence"
    regression = worse_sign * diff
    mid = worse_sign * centre
    low, high = mid - z * se, mid + z * se
    base = replace(base, regression=regression, interval=(low, high), method=method)

    if limit is not None:
        # The canary's own value, with its own interval: beyond the limit only when the
        # whole interval is (a point estimate over 2% on 200 requests is noise).
        if isinstance(canary, RateObservation):
            c_low, c_high = stats.wilson(canary.events, canary.total, z)
        else:
            c_se = (UNREPORTED_STD if canary.std is None else canary.std) / math.sqrt(
                canary.count)
            c_low, c_high = canary_value - z * c_se, canary_value + z * c_se
        beyond = c_low > limit if worse_sign > 0 else c_high < limit
        if beyond:
            side = "above the maximum" if worse_sign > 0 else "below the minimum"
            bound = c_low if worse_sign > 0 else c_high
            return replace(
                base, result="fail",
                reason=f"canary {_num(canary_value)} is {side} {_num(limit)} "
                f"({'at least' if worse_sign > 0 else 'at most'} {_num(bound)} "
                f"at {policy.confidence:.0%})",
            )
    if low > threshold:
        return replace(
            base,
            result="fail",
            reason=(
                f"canary worse than stable by {_num(regression)} "
                f"(at least {_num(low)} at {policy.confidence:.0%}), "
                f"tolerance {_num(threshold)}"
            ),
        )
    if high < threshold:
        return replace(
            base,
            result="pass",
            reason=(
                f"canary within tolerance {_num(threshold)} of stable "
                f"(at most {_num(high)} worse at {policy.confidence:.0%})"
            ),
        )
    return replace(
        base,
        reason=(
            f"difference {_num(regression)} not significant either way: "
            f"bounds {_num(low)}..{_num(high)} straddle tolerance {_num(threshold)}"
        ),
    )


def judge_shadow_signal(
    name: SignalName,
    policy: SignalPolicy,
    shadow: Observation | None,
    limit: float,
    *,
    action: FailAction | None = None,
    looks: Looks = "fixed",
) -> SignalVerdict:
    """A shadow signal: the shadow's own rate (e.g. drift) against ``limit``.

    Wilson's one-sided interval at the signal's confidence (the confidence-sequence
    multiplier with ``looks="sequential"``): wholly above the limit fails, wholly
    below passes, fewer than ``min_samples`` or a straddle is inconclusive. The
    verdict's ``canary`` is the shadow (there is no stable cohort to compare with).
    """
    base = SignalVerdict(
        signal=name, kind=policy.kind, direction=policy.direction, result="inconclusive",
        reason="", stable=CohortValue(None, 0), canary=_cohort(shadow),
        min_samples=policy.min_samples, confidence=policy.confidence,
        threshold=policy.tolerance, limit=limit, action=action or policy.action,
    )
    if shadow is None:
        return replace(base, reason="no data for shadow")
    if not isinstance(shadow, RateObservation):
        raise ValueError(f"{name}: a shadow signal takes a rate observation")
    if shadow.total < policy.min_samples:
        return replace(
            base, reason=f"too few shadow comparisons: {shadow.total} < {policy.min_samples}"
        )
    z = NormalDist().inv_cdf(policy.confidence)
    method = "wilson"
    if looks == "sequential":
        z = stats.sequential_multiplier(
            shadow.total, 1.0 - policy.confidence, SEQUENTIAL_TUNED_AT * policy.min_samples
        )
        method += " + confidence-sequence"
    low, high = stats.wilson(shadow.events, shadow.total, z)
    rate = shadow.events / shadow.total
    base = replace(base, regression=rate, interval=(low, high), method=method)
    at = f"at {policy.confidence:.0%}"
    if low > limit:
        return replace(base, result="fail", reason=(
            f"shadow {_num(rate)} ({shadow.events}/{shadow.total}) is above the maximum "
            f"{_num(limit)} (at least {_num(low)} {at})"))
    if high < limit:
        return replace(base, result="pass", reason=(
            f"shadow {_num(rate)} ({shadow.events}/{shadow.total}) is below the maximum "
            f"{_num(limit)} (at most {_num(high)} {at})"))
    return replace(base, reason=(
        f"shadow {_num(rate)} ({shadow.events}/{shadow.total}): bounds "
        f"{_num(low)}..{_num(high)} straddle the maximum {_num(limit)}"))


def two_proportion_z(canary: RateObservation, stable: RateObservation) -> float:
    """The classic pooled two-proportion z statistic (canary - stable), for reports."""
    n1, n2 = canary.total, stable.total
    pooled = (canary.events + stable.events) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = canary.events / n1 - stable.events / n2
    return 0.0 if se == 0 else diff / se


def judge_signals(
    policy: SignalsPolicy,
    telemetry: RolloutTelemetry,
    *,
    actions: Mapping[SignalName, FailAction] | None = None,
    looks: Looks = "fixed",
    stage: str = "canary",
) -> tuple[SignalVerdict, ...]:
    """The verdicts of the signals judged in ``stage``: a rollout in stage ``shadow``
    is judged by the shadow signals only, any other stage by the canary signals."""
    overrides = actions or {}
    wanted = "shadow" if stage == "shadow" else "canary"
    if wanted == "shadow":
        return tuple(
            judge_shadow_signal(
                name, signal, telemetry.shadow.signals.get(name),
                limit=policy.effective_limit(name) or 0.0,
                action=overrides.get(name), looks=looks,
            )
            for name, signal in policy.signals.items()
            if signal.stage == "shadow"
        )
    return tuple(
        judge_signal(
            name,
            signal,
            telemetry.stable.signals.get(name),
            telemetry.canary.signals.get(name),
            limit=policy.effective_limit(name),
            action=overrides.get(name),
            looks=looks,
        )
        for name, signal in policy.signals.items()
        if signal.stage == "canary"
    )


# --- the rollout verdict -------------------------------------------------------------


def decide(
    rollout: RolloutRef,
    policy: SignalsPolicy,
    telemetry: RolloutTelemetry,
    *,
    next_step_allowed: bool,
    next_step: NextStep | None,
    blocked_reasons: Sequence[str] = (),
    actions: Mapping[SignalName, FailAction] | None = None,
    looks: Looks = "fixed",
) -> Proposal:
    """Judge one rollout in flight; the engine's answer about the next step is an input.

    ``next_step`` is what the engine would do next (``None`` when there is none);
    ``next_step_allowed`` and ``blocked_reasons`` are its verdict on it. ``actions``
    are the tenant's overrides of the policy's action per signal.
    """
    verdicts = judge_signals(
        policy, telemetry, actions=actions, looks=looks, stage=rollout.stage
    )
    judged = telemetry.shadow if rollout.stage == "shadow" else telemetry.canary
    failures = tuple({"kind": f.kind, "detail": f.detail, "ref": f.ref} for f in judged.failures)

    def proposal(
        kind: ProposalKind, reasons: Sequence[str], step: NextStep | None = None
    ) -> Proposal:
        return Proposal(
            kind=kind,
            rollout=rollout,
            verdicts=verdicts,
            reasons=tuple(reasons),
            next_step=step,
            window=telemetry.window,
            source=telemetry.source,
            failures=failures,
        )

    if rollout.stage == "rolled-back":
        return proposal("hold", ["already rolled back"])

    failed = [v for v in verdicts if v.result == "fail"]
    if failed:
        action = max((v.action for v in failed), key=lambda a: _SEVERITY[a])
        reasons = [f"{v.signal} failed: {v.reason} -> {v.action}" for v in failed]
        if action == "pause" and rollout.stage == "paused":
            return proposal("hold", ["already paused; breach persists", *reasons])
        return proposal(action, reasons)

    held = [f"{v.signal} inconclusive: {v.reason}" for v in verdicts if v.result != "pass"]
    if not verdicts:
        held.append(f"no signal of stage {rollout.stage} in the policy: nothing to judge by")
    if next_step is None:
        held.append("no next step: the rollout is complete or waiting for a human")
    elif not next_step_allowed:
        blocked = "; ".join(blocked_reasons) or "no reason given"
        held.append(f"{next_step.describe()} not allowed: {blocked}")
    if held:
        return proposal("hold", held, next_step)
    assert next_step is not None
    return proposal("advance", [f"all signals pass; {next_step.describe()} is allowed"], next_step)


def _cohort(obs: Observation | None) -> CohortValue:
    if obs is None:
        return CohortValue(value=None, samples=0)
    return CohortValue(value=obs.value, samples=obs.samples)


def _num(x: float) -> str:
    return f"{x:.4g}"


def _pct(p: float | None) -> str:
    return "?%" if p is None else f"{p:g}%"
