"""The decision entry point: every rollout in flight, judged from one telemetry source.

:func:`evaluate_fleet` is what ``modelpin bot`` and ``modelpin guard`` both call (the
guard must not grow a second copy of the decisions). It asks the rollout engine what
each rollout may do next (``allowed_transitions``, the code ``check`` uses), reads the
telemetry of all rollouts with one batched call, and :func:`~.decisions.decide`\\ s each
rollout on its own: a refused record, a failing query or an engine error on one
rollout is reported on that rollout (or as a general problem) and never stops the
others. Pure apart from the source's I/O; no git, no GitHub, no files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelpin.model.signals import FailAction, SignalName, SignalsPolicy
from modelpin.rollout.transitions import FleetContext, allowed_transitions

from .decisions import Looks, NextStep, Proposal, RolloutRef, decide
from .observations import RolloutTelemetry
from .telemetry import TelemetryBatch, TelemetryError, TelemetrySource

_STEP_KINDS = ("first-canary", "advance", "promote")


@dataclass(frozen=True)
class InFlight:
    """One rollout in flight and the engine's answer about its next step."""

    ref: RolloutRef
    next_step: NextStep | None
    next_step_allowed: bool
    blocked_reasons: tuple[str, ...]
    actions: Mapping[SignalName, FailAction] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """The verdict on one rollout: its proposal, or why it could not be judged.

    ``problems`` are what went wrong for this rollout (refused telemetry records, an
    engine error); with a proposal they mean its data was partial (a refused cohort has
    no data: its signals are inconclusive, so it holds).
    """

    ref: RolloutRef
    proposal: Proposal | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetEvaluation:
    evaluations: tuple[Evaluation, ...]
    general: tuple[str, ...] = ()
    """Problems of the source as a whole (a failing query: its signal has no data)."""

    @property
    def failed(self) -> bool:
        """Something was refused or failed: the exit status must say so."""
        return bool(self.general) or any(e.problems for e in self.evaluations)


def rollouts_in_flight(
    ctx: FleetContext, now: datetime, *, only: Sequence[str] = ()
) -> tuple[list[InFlight], list[Evaluation]]:
    """Every rollout in flight (or those of ``only``) with the engine's next step.

    Returns the rollouts, and an :class:`Evaluation` with the error for any rollout
    the engine could not answer for.
    """
    fleet = ctx.fleet
    out: list[InFlight] = []
    errors: list[Evaluation] = []
    for tenant_id in sorted(only or fleet.tenants):
        tenant = fleet.tenants[tenant_id]
        group = fleet.policy.groups.get(tenant.group)
        for alias_name, alias in sorted(tenant.aliases.items()):
            rollout = alias.rollout
            if rollout is None or rollout.stage == "rolled-back":
                continue
            ref = RolloutRef(
                tenant=tenant_id, alias=alias_name, pin=alias.pin,
                candidate=rollout.candidate, stage=rollout.stage, percent=rollout.percent,
                since=rollout.since, group=tenant.group,
                manual_approval=group is not None and group.approval == "manual",
            )
            try:
                options = allowed_transitions(ctx, tenant_id, alias_name, now)
            except Exception as exc:  # one rollout's engine error must not stop the rest
                errors.append(Evaluation(ref, None, (f"rollout engine: {exc!r}",)))
                continue
            step = next((o for o in options if o.kind in _STEP_KINDS), None)
            next_step: NextStep | None = None
            if step is not None:
                next_step = (
                    NextStep("promote") if step.kind == "promote"
                    else NextStep("canary", step.target.percent)
                )
            out.append(InFlight(
                ref, next_step, bool(step and step.allowed),
                tuple(r.message for r in step.reasons) if step else (),
                dict(tenant.signal_actions),
            ))
    return out, errors


def evaluate_fleet(
    ctx: FleetContext,
    signals: SignalsPolicy,
    source: TelemetrySource,
    now: datetime,
    *,
    only: Sequence[str] = (),
    looks: Looks = "sequential",
) -> FleetEvaluation:
    """Judge every rollout in flight from ``source``: one proposal per rollout.

    ``looks="sequential"`` (the default) uses the always-valid confidence sequence:
    right for anything that looks at the same rollout again and again (the hourly bot,
    the guard's loop). ``"fixed"`` is the single-look interval.
    """
    flights, evaluations = rollouts_in_flight(ctx, now, only=only)
    keys = [(f.ref.tenant, f.ref.alias) for f in flights]
    try:
        batch = source.observe_all(keys)
    except TelemetryError as exc:
        batch = TelemetryBatch({}, {}, (str(exc),))
    for flight in flights:
        key = (flight.ref.tenant, flight.ref.alias)
        telemetry = batch.rollouts.get(key) or RolloutTelemetry(
            tenant=key[0], alias=key[1], window="none", source="none"
        )
        problems = batch.problems.get(key, ())
        try:
            proposal = decide(
                flight.ref, signals, telemetry,
                next_step_allowed=flight.next_step_allowed,
                next_step=flight.next_step,
                blocked_reasons=flight.blocked_reasons,
                actions=flight.actions,
                looks=looks,
            )
        except Exception as exc:  # isolate: report this rollout, judge the next
            evaluations.append(Evaluation(flight.ref, None, (*problems, f"decision: {exc!r}")))
            continue
        evaluations.append(Evaluation(flight.ref, proposal, problems))
    evaluations.sort(key=lambda e: (e.ref.tenant, e.ref.alias))
    return FleetEvaluation(tuple(evaluations), batch.general)
