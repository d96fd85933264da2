"""Drift of a pinned version: a tenant's current window against its own baseline.

Nothing changed in git, yet the provider's model behaves differently (a silent update,
a new safety layer, a changed tokenizer): the pinned version's ``stable`` cohort now is
compared with the tenant's ``baseline`` window on the same pin, per drift signal, with
the same interval code as canaries (:func:`~modelpin.bot.decisions.judge_signal`:
Agresti–Caffo for rates, Welch for the mean, the confidence sequence because the bot
looks again every run). A signal drifts when it is worse than baseline by more than its
tolerance at ``confidence``; response length drifts either way by more than
``LENGTH_CHANGE`` of the baseline mean. Drift raises an issue; it never edits a file.

The thresholds are data (``DRIFT_SIGNALS``), in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, cast

from modelpin.model.signals import SignalName, SignalPolicy

from .decisions import Looks, SignalVerdict, judge_signal
from .observations import MeanObservation, Observation

CONFIDENCE = 0.95
LENGTH_CHANGE = 0.20
"""Response length drifts when its mean moves by more than 20% of the baseline mean."""


@dataclass(frozen=True)
class DriftSignal:
    kind: Literal["rate", "mean"]
    tolerance: float
    """Absolute for rates; for the mean, set from ``LENGTH_CHANGE`` x baseline."""
    min_samples: int
    meaning: str


DRIFT_SIGNALS: dict[str, DriftSignal] = {
    "tool_call_failure_rate": DriftSignal("rate", 0.005, 200, "failed tool calls / tool calls"),
    "refusal_rate": DriftSignal("rate", 0.01, 200, "refused answers / answers checked"),
    "format_failure_rate": DriftSignal(
        "rate", 0.01, 200, "responses failing their format check / format checks"),
    "response_length": DriftSignal("mean", 0.0, 100, "mean response tokens"),
}


Windows = tuple[dict[str, Observation], dict[str, Observation]]
"""(baseline, current) observations of one alias, per drift signal."""


@dataclass(frozen=True)
class DriftBatch:
    """The drift windows of every alias that has data; what was refused or skipped."""

    windows: Mapping[tuple[str, str], Windows]
    problems: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    general: tuple[str, ...] = ()
    skipped: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """Aliases not judged, and why (a pin younger than the baseline window)."""
    notes: tuple[str, ...] = ()
    """What the source cannot judge at all (signals it has no data for)."""


class DriftSource(Protocol):
    def drift_all(self, keys: Sequence[tuple[str, str]]) -> DriftBatch:
        """The (baseline, current) windows of the pinned aliases ``keys``."""
        ...


@dataclass(frozen=True)
class DriftReport:
    tenant: str
    alias: str
    pin: str
    verdicts: tuple[SignalVerdict, ...]

    @property
    def drifted(self) -> tuple[SignalVerdict, ...]:
        return tuple(v for v in self.verdicts if v.result == "fail")


def judge_drift(
    tenant: str, alias: str, pin: str,
    baseline: Mapping[str, Observation], current: Mapping[str, Observation],
    *, looks: Looks = "sequential",
) -> DriftReport:
    verdicts: list[SignalVerdict] = []
    for name, signal in DRIFT_SIGNALS.items():
        base, now = baseline.get(name), current.get(name)
        if signal.kind == "rate":
            policy = SignalPolicy(kind="rate", direction="lower_is_better",
                                  min_samples=signal.min_samples, confidence=CONFIDENCE,
                                  tolerance=signal.tolerance, action="escalate")
            verdicts.append(judge_signal(cast(SignalName, name), policy, base, now,
                                         looks=looks))
            continue
        tolerance = (LENGTH_CHANGE * base.mean
                     if isinstance(base, MeanObservation) and base.count else 0.0)
        for direction in ("lower_is_better", "higher_is_better"):
            policy = SignalPolicy(kind="mean", direction=direction,
                                  min_samples=signal.min_samples, confidence=CONFIDENCE,
                                  tolerance=tolerance, action="escalate")
            v = judge_signal(cast(SignalName, name), policy, base, now, looks=looks)
            if v.result == "fail" or direction == "higher_is_better":
                verdicts.append(v)
                break
    worded = tuple(
        replace(v, reason=v.reason.replace("canary", "now").replace("stable", "baseline"))
        for v in verdicts
    )
    return DriftReport(tenant, alias, pin, worded)


def render(report: DriftReport) -> str:
    """The issue body: every drift signal with both windows and the bound."""
    rows = ["| signal | baseline | now | samples (now / baseline) | bound | verdict |",
            "|---|---|---|---|---|---|"]
    for v in report.verdicts:
        bound = "n/a" if v.interval is None else \
            f"{v.interval[0]:.4g} .. {v.interval[1]:.4g} ({v.confidence:.0%}, {v.method})"
        base = "n/a" if v.stable.value is None else f"{v.stable.value:.4g}"
        now = "n/a" if v.canary.value is None else f"{v.canary.value:.4g}"
        rows.append(f"| {v.signal} | {base} | {now} | {v.canary.samples} / {v.stable.samples}"
                    f" | {bound} | {'**DRIFT**' if v.result == 'fail' else v.result} |")
    lines = [
        "## Drift of a pinned version",
        "",
        f"`{report.tenant}` / `{report.alias}` is pinned to `{report.pin}` and nothing "
        "changed in git, yet its current window differs from the tenant's own baseline "
        "window on the same pin:",
        "",
        *[f"- {v.signal}: {v.reason}" for v in report.drifted],
        "",
        *rows,
        "",
        "Check the provider's changelog; consider a BETS run against the pin, or a "
        "rollout to a newer version. _Opened by modelpin-bot (`modelpin lifecycle`)._",
        "",
        drift_key(report),
        "",
    ]
    return "\n".join(lines)


def drift_key(report: DriftReport) -> str:
    return f"<!-- modelpin-bot-issue: drift/{report.tenant}/{report.alias}/{report.pin} -->"
