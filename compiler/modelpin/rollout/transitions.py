"""The stage transition engine: which next steps a tenant's alias may take, and whether
a pull request's change to it is one of them. Pure: fleets, times and history in,
values out.

Per tenant and alias the state is ``pinned``, ``shadow``, ``canary(p)``, ``paused(p)``
or ``rolled-back`` (``state.AliasState``). The rules (SPEC section 2), as enforced:

* pinned -> shadow(V): V resolves, has the alias's kind, is not retired or blocked; the
  compatibility verdict for the tenant's workload is ``compatible`` (or
  ``needs-prompt-changes`` with ``prompt_changes_ack``); the tenant is not frozen. A
  rollout always starts in shadow, also when the group's shadow time is 0.
* shadow -> canary(first step): shadow held >= the group's ``shadow``; the BETS evidence
  passes every rule of SPEC 1 (``gates.evidence_gate``); every upstream group has
  cleared V (``FleetIndex.upstream_blockers``); a manual group has an approval for the
  step; the group's ``max_in_flight`` is not exceeded; not frozen.
* canary(p_i) -> canary(p_i+1): held >= ``soak``; evidence still passes; not frozen; no
  upstream tenant rolled back from V; approval for the step if manual. Any other
  percent is a skipped step (or a jump to 100) or a decrease (pause or roll back).
* canary(100) -> pinned(pin = V): held >= ``soak`` (promotion); not frozen.
* canary(p), paused(p) -> paused(p): always. A pause holds the traffic where it is, so
  it keeps the percent; a shadow serves no traffic and is stopped by a rollback.
* paused(p) -> canary(p): not frozen.
* shadow, canary, paused -> rolled-back: always; nothing can block a rollback.
* rolled-back -> pinned (same pin, rollout removed): always.
* pinned(A) -> pinned(B): ``override_allowed`` in both base and head and not frozen, or
  B is a pin this tenant had before A (a revert, from ``previous_pins``).
* In flight the candidate and the pin never change, and approvals are only appended.

Time. ``now`` is the head commit time (or ``--now``); ``base_time`` is the base commit
time. Soak and shadow clocks run from the *base* state's ``since``: a change cannot
shorten them. Every changed ``since`` must not be earlier than ``base_time`` (no
backdating), and a transition into a new stage (other than pause and rollback, which
are never blocked) must set a fresh ``since``.

Which fleet answers what, when judging a change: clocks, the stage moved from and
upstream clearance come from the base; upstream clearance must hold in the head too
(one change cannot roll an upstream back and advance a downstream); evidence, the
compatibility matrix and ``max_in_flight`` counts come from the head. ``freeze`` holds
if set in either, so unfreezing and advancing are two changes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelpin.model.fleet import Fleet
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Alias, Approval, Tenant
from modelpin.rollout import gates
from modelpin.rollout.dag import GroupGraph
from modelpin.rollout.fleet_state import FleetIndex
from modelpin.rollout.reason import ModelPath, Reason, alias_path, rollout_path
from modelpin.rollout.state import AliasState

TransitionKind = Literal[
    "start-shadow",
    "first-canary",
    "advance",
    "promote",
    "pause",
    "resume",
    "rollback",
    "acknowledge-rollback",
    "repin",
]


@dataclass(frozen=True)
class FleetContext:
    """A fleet with its group graph and index, built once (O(tenants))."""

    fleet: Fleet
    graph: GroupGraph
    index: FleetIndex

    @classmethod
    def build(cls, fleet: Fleet) -> FleetContext:
        return cls(fleet, GroupGraph.build(fleet.policy.groups), FleetIndex.build(fleet))


@dataclass(frozen=True)
class TransitionOption:
    """A possible next step and what blocks it (allowed when nothing does)."""

    kind: TransitionKind
    target: AliasState
    reasons: tuple[Reason, ...] = ()
    note: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Facts:
    """The facts one transition is judged against."""

    base: FleetContext
    head: FleetContext
    tenant: Tenant
    group_name: str
    group: RolloutGroup
    frozen: bool
    now: datetime


def allowed_transitions(
    ctx: FleetContext,
    tenant_id: str,
    alias_name: str,
    now: datetime,
    *,
    previous_pins: Collection[str] = (),
) -> list[TransitionOption]:
    """Every possible next transition of one alias, each allowed or with its reasons.

    Raises ``KeyError`` for an unknown tenant or alias (misuse: callers check first).
    """
    tenant = ctx.fleet.tenants[tenant_id]
    alias = tenant.aliases[alias_name]
    group = ctx.fleet.policy.groups[tenant.group]
    judge = Facts(ctx, ctx, tenant, tenant.group, group, tenant.freeze, now)
    state = AliasState.of(alias)
    approvals = alias.rollout.approvals if alias.rollout else []
    options: list[TransitionOption] = []

    def option(kind: TransitionKind, target: AliasState, note: str | None = None) -> None:
        reasons = transition_gates(
            judge, kind, alias_name, alias, state, target, approvals, ack=True
        )
        options.append(TransitionOption(kind, target, tuple(reasons), note))

    if state.kind == "pinned":
        for upgrade in ctx.fleet.compatibility.upgrades:
            if upgrade.from_ == state.pin:
                note = None
                verdict = upgrade.verdicts.get(tenant.workload)
                if verdict == "needs-prompt-changes":
                    note = "needs prompt_changes_ack: true"
                option("start-shadow", AliasState("shadow", state.pin, upgrade.to), note)
        repins = sorted(set(previous_pins) - {state.pin})
        for pin in repins:
            option("repin", AliasState("pinned", pin), "revert to an earlier pin")
        if not repins:
            options.append(_repin_any(judge, alias_name, state))
        return options
    candidate = state.candidate or ""
    ladder = group.ladder
    if state.kind == "shadow":
        option("first-canary", AliasState("canary", state.pin, candidate, ladder[0]))
    elif state.kind == "canary":
        following = _next_step(ladder, state.percent)
        if following is not None:
            option("advance", AliasState("canary", state.pin, candidate, following))
        elif state.percent == 100:
            option("promote", AliasState("pinned", candidate))
        option("pause", AliasState("paused", state.pin, candidate, state.percent))
    elif state.kind == "paused":
        option("resume", AliasState("canary", state.pin, candidate, state.percent))
    if state.in_flight:
        option("rollback", AliasState("rolled-back", state.pin, candidate))
    if state.kind == "rolled-back":
        option("acknowledge-rollback", AliasState("pinned", state.pin))
    return options


def _repin_any(judge: Facts, alias_name: str, state: AliasState) -> TransitionOption:
    target = AliasState("pinned", "*")
    path = alias_path(alias_name, "pin")
    if not judge.tenant.override_allowed:
        reason = Reason(
            "MP105",
            f"tenant {judge.tenant.id} has no override_allowed: a pin changes through a "
            "rollout, or reverts to a pin it had before",
            path,
        )
        return TransitionOption("repin", target, (reason,))
    reasons = gates.frozen_gate(judge.tenant, "pin change", path)
    return TransitionOption("repin", target, tuple(reasons), "any version (override_allowed)")


def _next_step(ladder: Sequence[float], percent: float | None) -> float | None:
    for step in ladder:
        if percent is not None and step > percent:
            return step
    return None


def transition_gates(
    j: Facts,
    kind: TransitionKind,
    alias_name: str,
    alias: Alias,
    current: AliasState,
    target: AliasState,
    approvals: Sequence[Approval],
    *,
    ack: bool,
) -> list[Reason]:
    """The gates of one legal-shaped transition ``current`` -> ``target``."""
    tenant, group, now = j.tenant, j.group, j.now
    candidate = target.candidate or ""
    reasons: list[Reason] = []
    if kind in ("pause", "rollback", "acknowledge-rollback"):
        return reasons
    if kind == "start-shadow":
        path = alias_path(alias_name, "rollout")
        reasons += frozen_reasons(j, "advance", path)
        reasons += gates.candidate_gate(j.head.fleet, alias.kind, candidate, now, path)
        reasons += gates.compatibility_gate(j.head.fleet, tenant, current.pin, candidate, ack, path)
        return reasons
    if kind == "resume":
        return frozen_reasons(j, "resume", rollout_path(alias_name, "stage"))
    if kind == "promote":
        path = alias_path(alias_name, "pin")
        reasons += frozen_reasons(j, "promotion", path)
        reasons += gates.clock_gate("soak", current.since, now, group.soak, path)
        return reasons
    if kind == "repin":
        return []
    # first-canary and advance
    first = kind == "first-canary"
    path = rollout_path(alias_name, "stage" if first else "percent")
    reasons += frozen_reasons(j, "advance", path)
    if first:
        reasons += gates.clock_gate("shadow", current.since, now, group.shadow, path)
    else:
        reasons += gates.clock_gate("soak", current.since, now, group.soak, path)
    check = gates.evidence_gate(
        j.head.fleet, tenant, alias_name, current.pin, candidate, group, now, path,
        facts=j.base.fleet,
    )
    reasons += check.reasons
    blockers: list[str] = []
    for ctx in (j.base, j.head) if j.base is not j.head else (j.base,):
        for sentence in ctx.index.upstream_blockers(
            ctx.graph, j.group_name, candidate, rollbacks_only=not first
        ):
            if sentence not in blockers:
                blockers.append(sentence)
    reasons += [Reason("MP108", sentence, path) for sentence in blockers]
    if target.percent is not None:
        base_tenant = j.base.fleet.tenants.get(tenant.id) or tenant
        reasons += gates.approval_gate(
            j.group_name, group, approvals, target.percent, now, rollout_path(alias_name),
            fleet=j.head.fleet, tenant_id=tenant.id, alias=alias_name,
            contacts=base_tenant.contacts,
            signed=bool(j.base.fleet.approvers and j.base.fleet.approvers.keys),
        )
    if first and group.max_in_flight is not None:
        others = j.head.index.of(j.group_name, candidate).canary_tenants - {tenant.id}
        if len(others) >= group.max_in_flight:
            names = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
            reasons.append(
                Reason(
                    "MP110",
                    f"group {j.group_name} allows {group.max_in_flight} tenant(s) in canary of "
                    f"{candidate} at once (max_in_flight); {len(others)} other(s) are: {names}",
                    path,
                )
            )
    return reasons


def frozen_reasons(j: Facts, action: str, path: ModelPath) -> list[Reason]:
    if not j.frozen:
        return []
    return [
        Reason(
            "MP104",
            f"tenant {j.tenant.id} is frozen: no {action}; only pause and rollback are allowed",
            path,
        )
    ]
