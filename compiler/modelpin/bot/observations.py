"""Telemetry as values: what a source observed per cohort, the input of the decisions.

Sources (a JSON file, Prometheus) produce these; :mod:`modelpin.bot.decisions` consumes
them. A missing signal is ``None``: no data, which is inconclusive, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelpin.model.signals import SignalName

Cohort = Literal["stable", "canary"]


@dataclass(frozen=True)
class RateObservation:
    """``events`` out of ``total`` trials (failures of tool calls, completed tasks...)."""

    events: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or self.events < 0 or self.events > self.total:
            raise ValueError(f"rate needs 0 <= events <= total, got {self.events}/{self.total}")

    @property
    def value(self) -> float | None:
        return self.events / self.total if self.total else None

    @property
    def samples(self) -> int:
        return self.total


@dataclass(frozen=True)
class MeanObservation:
    """A sample mean with its spread; ``std`` None means the source did not report it."""

    mean: float
    count: int
    std: float | None = None

    def __post_init__(self) -> None:
        if self.count < 0 or (self.std is not None and self.std < 0):
            raise ValueError(f"mean needs count >= 0 and std >= 0, got {self.count}, {self.std}")

    @property
    def value(self) -> float | None:
        return self.mean if self.count else None

    @property
    def samples(self) -> int:
        return self.count


Observation = RateObservation | MeanObservation


@dataclass(frozen=True)
class SampleFailure:
    """One example of what went wrong in a cohort, for the incident report."""

    kind: str
    detail: str
    ref: str | None = None


@dataclass(frozen=True)
class CohortTelemetry:
    signals: Mapping[SignalName, Observation]
    failures: tuple[SampleFailure, ...] = ()


@dataclass(frozen=True)
class RolloutTelemetry:
    """Both cohorts of one tenant's alias over one window, and where they came from."""

    tenant: str
    alias: str
    window: str
    source: str
    stable: CohortTelemetry = field(default_factory=lambda: CohortTelemetry({}))
    canary: CohortTelemetry = field(default_factory=lambda: CohortTelemetry({}))
    shadow: CohortTelemetry = field(default_factory=lambda: CohortTelemetry({}))
    """The shadow's comparisons with stable (``shadow_drift_rate``), judged in stage shadow."""

    def cohort(self, name: Cohort) -> CohortTelemetry:
        return self.stable if name == "stable" else self.canary
