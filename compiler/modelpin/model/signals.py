"""The model of ``policies/signals.yaml``: what the bot measures and how it judges it.

Each signal compares the canary cohort against the stable cohort of one tenant's alias.
A signal is a *rate* (events over trials, compared with a two-proportion test) or a
*mean* (compared with a Welch-style z on mean, spread and count). ``tolerance`` is the
worse-than-stable margin a canary may show and still pass; ``limit`` is an absolute
bound on the canary's own value. ``coercion_rate`` must be present and its limit can
only be tightened below 2%: coercion over 2% is a regression, never a normalisation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from modelpin.model.base import Duration, StrictModel, rule_error

SignalName = Literal[
    "tool_call_failure_rate",
    "task_completion_rate",
    "semantic_similarity",
    "coercion_rate",
    "downstream_error_rate",
    "shadow_drift_rate",
]
SIGNAL_NAMES: tuple[SignalName, ...] = (
    "tool_call_failure_rate",
    "task_completion_rate",
    "semantic_similarity",
    "coercion_rate",
    "downstream_error_rate",
    "shadow_drift_rate",
)
SignalKind = Literal["rate", "mean"]
Direction = Literal["lower_is_better", "higher_is_better"]
FailAction = Literal["rollback", "pause", "escalate"]
SignalStage = Literal["canary", "shadow"]
"""``canary``: canary cohort against stable. ``shadow``: the shadow's own rate against
``limit`` (e.g. drifted shadow comparisons / comparisons), judged only in stage shadow."""

COERCION_CEILING = 0.02
"""Coercion rate above this always fails, whatever the policy file says."""

MAX_MIN_SAMPLES = 10_000_000
"""More samples per cohort than any window of one tenant's alias holds: a signal asking
for more could never reach a verdict (SPEC 2.1 rule 2), so it is refused."""


class RateQueries(StrictModel):
    """PromQL templates of a rate signal; each must return one series (aggregate with sum).

    Placeholders: ``{tenant}``, ``{alias}``, ``{cohort}`` (stable|canary), ``{window}``
    (the policy window in Prometheus duration syntax, e.g. ``1h``). Only these four are
    replaced, so PromQL's own braces stay as written: ``x{tenant="{tenant}"}``.
    """

    events: str = Field(min_length=1, description="count of events in the window, e.g. failures")
    total: str = Field(min_length=1, description="count of trials in the window, e.g. tool calls")


class MeanQueries(StrictModel):
    """PromQL templates of a mean signal. Without ``std`` the bound-derived 0.5 is used."""

    mean: str = Field(min_length=1)
    count: str = Field(min_length=1)
    std: str | None = None


class SignalPolicy(StrictModel):
    kind: SignalKind
    direction: Direction
    min_samples: int = Field(ge=1, description="minimum samples per cohort for a verdict")
    confidence: float = Field(gt=0.5, lt=1.0, description="one-sided confidence level")
    tolerance: float = Field(
        default=0.0,
        ge=0.0,
        description="how much worse than stable the canary may be (absolute units) and pass",
    )
    limit: float | None = Field(
        default=None,
        description="absolute bound on the canary value: a maximum for lower_is_better, "
        "a minimum for higher_is_better",
    )
    action: FailAction
    stage: SignalStage = Field(
        default="canary",
        description="canary: canary vs stable; shadow: the shadow's own rate vs `limit`",
    )
    prometheus: RateQueries | MeanQueries | None = None

    @model_validator(mode="after")
    def _queries_match_kind(self) -> SignalPolicy:
        if self.kind == "rate" and isinstance(self.prometheus, MeanQueries):
            raise ValueError("a rate signal takes prometheus queries `events` and `total`")
        if self.kind == "mean" and isinstance(self.prometheus, RateQueries):
            raise ValueError("a mean signal takes prometheus queries `mean`, `count`, `std`")
        if self.kind == "rate" and self.limit is not None and not 0.0 <= self.limit <= 1.0:
            raise rule_error("the limit of a rate is a fraction between 0 and 1", "limit")
        # A signal that can never reach a verdict is a gate that is never closed.
        if self.min_samples > MAX_MIN_SAMPLES:
            raise rule_error(
                f"min_samples {self.min_samples} can never be reached in one window "
                f"(at most {MAX_MIN_SAMPLES:,}): the signal would never reach a verdict",
                "min_samples")
        if self.kind == "rate" and self.tolerance >= 1.0:
            raise rule_error(
                f"tolerance {self.tolerance:g} on a rate (a fraction) lets any canary pass: "
                "the signal could never fail", "tolerance")
        if self.kind == "rate" and self.limit is not None and (
            (self.direction == "lower_is_better" and self.limit >= 1.0)
            or (self.direction == "higher_is_better" and self.limit <= 0.0)
        ):
            raise rule_error(
                f"limit {self.limit:g} can never be crossed by a rate that is "
                f"{self.direction.replace('_', ' ')}: set a bound inside (0, 1) or remove it",
                "limit")
        if self.stage == "shadow" and (
            self.kind != "rate" or self.direction != "lower_is_better" or self.limit is None
        ):
            raise rule_error(
                "a shadow signal is a rate, lower_is_better, with a `limit` (it has no "
                "stable cohort to compare with)", "stage")
        return self


class SignalsPolicy(StrictModel):
    """``policies/signals.yaml``."""

    window: Duration = Field(default=timedelta(hours=1))
    signals: dict[SignalName, SignalPolicy]

    @model_validator(mode="after")
    def _coercion_is_guarded(self) -> SignalsPolicy:
        coercion = self.signals.get("coercion_rate")
        if coercion is None:
            raise rule_error("signals.coercion_rate is required: coercion over 2% always fails",
                             "signals")
        if coercion.kind != "rate" or coercion.direction != "lower_is_better":
            raise rule_error("signals.coercion_rate is a rate, lower_is_better",
                             "signals", "coercion_rate", "kind")
        if coercion.limit is not None and coercion.limit > COERCION_CEILING:
            raise rule_error(
                f"signals.coercion_rate.limit {coercion.limit} is above the 2% ceiling; "
                "coercion over 2% is a regression, never a normalisation",
                "signals", "coercion_rate", "limit")
        shadow = self.signals.get("shadow_drift_rate")
        if shadow is not None and shadow.stage != "shadow":
            raise rule_error(
                "signals.shadow_drift_rate is judged in stage shadow (stage: shadow)",
                "signals", "shadow_drift_rate", "stage")
        return self

    def effective_limit(self, name: SignalName) -> float | None:
        """The policy's limit, with the coercion ceiling applied even when unset."""
        limit = self.signals[name].limit
        if name == "coercion_rate":
            return COERCION_CEILING if limit is None else min(limit, COERCION_CEILING)
        return limit


PLACEHOLDERS = ("tenant", "alias", "cohort", "window")


def render_query(template: str, **values: str) -> str:
    """Replace ``{tenant}``, ``{alias}``, ``{cohort}``, ``{window}``; leave other braces."""
    out = template
    for key in PLACEHOLDERS:
        out = out.replace("{" + key + "}", values[key])
    return out
