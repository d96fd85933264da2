"""The stage of one tenant's alias, as a value: what the YAML says, read as a state.

``pinned`` (no rollout), ``shadow``, ``canary(p)``, ``paused(p)`` or ``rolled-back``.
Canary at 100 is the complete state; promotion then sets ``pin: candidate`` and removes
the rollout, which reads back as ``pinned``. ``mode_of`` is what the routing table
carries for the same alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelpin.model.tenant import Alias

StateKind = Literal["pinned", "shadow", "canary", "paused", "rolled-back"]
RoutingModeName = Literal["pinned", "shadow", "canary", "rolled-back"]

IN_FLIGHT: frozenset[StateKind] = frozenset({"shadow", "canary", "paused"})
"""Stages of a rollout that has neither completed nor been rolled back."""


@dataclass(frozen=True)
class AliasState:
    """One alias's stage. ``candidate``/``since`` are None exactly when ``pinned``."""

    kind: StateKind
    pin: str
    candidate: str | None = None
    percent: float | None = None
    since: datetime | None = None

    @classmethod
    def of(cls, alias: Alias) -> AliasState:
        rollout = alias.rollout
        if rollout is None:
            return cls("pinned", alias.pin)
        return cls(rollout.stage, alias.pin, rollout.candidate, rollout.percent, rollout.since)

    @property
    def in_flight(self) -> bool:
        return self.kind in IN_FLIGHT

    @property
    def traffic(self) -> float:
        """Percent of requests served by the candidate (0 for shadow: comparison only)."""
        if self.kind in ("canary", "paused") and self.percent is not None:
            return self.percent
        return 0.0

    def label(self) -> str:
        """Short human form: ``pinned gpt-a``, ``canary 10 of gpt-b``, ``rolled-back gpt-b``."""
        if self.kind == "pinned":
            return f"pinned {self.pin}"
        if self.kind in ("canary", "paused"):
            return f"{self.kind} {format_percent(self.percent)} of {self.candidate}"
        return f"{self.kind} {self.candidate}"

    def __str__(self) -> str:
        return self.label()


@dataclass(frozen=True)
class RoutingMode:
    """What a router does for an alias: ``mode``, candidate share and whether it is held."""

    mode: RoutingModeName
    percent: float
    paused: bool
    stable: str
    candidate: str | None


def mode_of(alias: Alias) -> RoutingMode:
    """The routing mode of ``alias``.

    A paused rollout keeps serving its percent (mode ``canary``, ``paused=True``): a
    pause holds traffic where it is, it does not move it. Shadow and rolled-back send
    no user traffic to the candidate (percent 0).
    """
    state = AliasState.of(alias)
    if state.kind == "pinned":
        return RoutingMode("pinned", 0.0, False, state.pin, None)
    if state.kind == "shadow":
        return RoutingMode("shadow", 0.0, False, state.pin, state.candidate)
    if state.kind == "rolled-back":
        return RoutingMode("rolled-back", 0.0, False, state.pin, state.candidate)
    return RoutingMode("canary", state.traffic, state.kind == "paused", state.pin, state.candidate)


def format_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
