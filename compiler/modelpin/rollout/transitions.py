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

The table itself (which stage follows which, through which gates) is data in
``table.TABLE``; this module implements the gates and lists the options.

Time. ``now`` is the runner's clock (or ``--now``), never a commit date (SPEC 2.1 rule
5); ``base_time`` is the base commit time. Soak and shadow clocks run from the *base*
state's ``since``, or from when that stage was published on main if later
(``clock_start``, ``FleetContext.entered``): a change cannot shorten them, and explain,
the bot and check count them alike. Every changed ``since`` must not be
earlier than ``base_time`` (no backdating) nor later than ``now`` (no future times), and
a transition into a new stage (other than pause and rollback, which are never blocked)
must set a fresh ``since``.

Which fleet answers what, when judging a change (SPEC 2.1 rule 1): every change is
judged twice, and passes only if both judgements allow it. First by the *base's* rules
(group policies, model facts, compatibility verdicts, trust lists) and the tenant's
*base* settings (group, workload, bets_suite, freeze, override_allowed), applied to the
head's data (the alias's new state, its evidence, its approvals): ``under_base_rules``.
Then by the head's own rules and settings. So lowering a gate, un-retiring a model,
flipping a verdict, moving group or unfreezing in the same change as an advance does not
help; the rule change itself is listed by ``plan`` and applies to later changes.
Clocks, the stage moved from and upstream clearance come from the base; upstream
clearance must hold in the head too (one change cannot roll an upstream back and advance
a downstream). ``max_in_flight`` counts the head's tenants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelpin.model.fleet import Fleet
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Alias, Approval, Tenant, format_time
from modelpin.rollout import gates
from modelpin.rollout.dag import GroupGraph
from modelpin.rollout.fleet_state import FleetIndex, RollbackRecords
from modelpin.rollout.reason import ModelPath, Reason, alias_path, rollout_path
from modelpin.rollout.state import AliasState
from modelpin.rollout.table import BY_KIND, GateName, Transition, TransitionKind, leaving

__all__ = [
    "BASE_SETTINGS",
    "Facts",
    "FleetContext",
    "TransitionKind",
    "TransitionOption",
    "allowed_transitions",
    "clock_start",
    "frozen_reasons",
    "transition_gates",
    "under_base_rules",
    "with_base_settings",
]

BASE_SETTINGS = ("group", "workload", "bets_suite", "freeze", "override_allowed", "contacts")
"""A tenant's own settings that judge its changes as of the base (SPEC 2.1 rule 1)."""


@dataclass(frozen=True)
class FleetContext:
    """A fleet with its group graph and index, built once (O(tenants)).

    ``records``: rollbacks kept on record from the published history (SPEC 2.1 rule 7),
    per (tenant, alias) the candidates rolled back from and not cleared since.
    ``entered``: per (tenant, alias) in flight, when its current stage was published on
    the first-parent history (``load.history.stages_entered``); the one source of the
    soak and shadow clocks for explain, the bot and check alike (``clock_start``).
    """

    fleet: Fleet
    graph: GroupGraph
    index: FleetIndex
    records: RollbackRecords = field(default_factory=dict)
    entered: Mapping[tuple[str, str], datetime] = field(default_factory=dict)

    @classmethod
    def build(cls, fleet: Fleet, records: RollbackRecords | None = None,
              entered: Mapping[tuple[str, str], datetime] | None = None) -> FleetContext:
        records = dict(records or {})
        return cls(fleet, GroupGraph.build(fleet.policy.groups),
                   FleetIndex.build(fleet, records), records, dict(entered or {}))


def under_base_rules(base: FleetContext, head: FleetContext) -> FleetContext:
    """The head's data (tenants, evidence) under the base's rules: policies, model facts,
    compatibility, artifact and trust lists come from the base. O(1): the head's index
    and the base's group graph are reused."""
    rules = {f.name: getattr(base.fleet, f.name) for f in dataclasses.fields(Fleet)
             if f.name not in _DATA_FIELDS}
    return FleetContext(dataclasses.replace(head.fleet, **rules), base.graph, head.index,
                        base.records, base.entered)


_DATA_FIELDS = frozenset({"tenants", "evidence", "paths", "evidence_sources", "evidence_trust",
                          "approval_verdicts"})
"""Fields of ``Fleet`` that are the change's data; every other field is a rule, taken from
the base when judging by the base (a new field is a rule unless listed here)."""


def with_base_settings(tenant: Tenant, base_tenant: Tenant | None) -> Tenant:
    """``tenant`` (the head's) with the base's own settings (``BASE_SETTINGS``)."""
    if base_tenant is None:
        return tenant
    fields = type(tenant).model_fields
    update = {name: getattr(base_tenant, name) for name in BASE_SETTINGS if name in fields}
    return tenant.model_copy(update=update)


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
    """The facts one transition is judged against.

    ``head`` is the fleet whose rules judge (the head, or ``under_base_rules``);
    ``previous_pins``: the pins this alias had before its base pin (the base's
    first-parent history); ``override``: override_allowed as it judges a direct pin
    change (base and head both).
    """

    base: FleetContext
    head: FleetContext
    tenant: Tenant
    group_name: str
    group: RolloutGroup
    frozen: bool
    now: datetime
    previous_pins: Collection[str] = ()
    override: bool = False
    override_in_head: bool = False
    base_time: datetime | None = None
    entered_at: datetime | None = None
    """When the base stage was published (first-parent history), when known: the soak
    and shadow clocks run from the later of it and the base ``since``."""


def allowed_transitions(
    ctx: FleetContext,
    tenant_id: str,
    alias_name: str,
    now: datetime,
    *,
    previous_pins: Collection[str] = (),
) -> list[TransitionOption]:
    """Every possible next transition of one alias, each allowed or with its reasons:
    the rows of ``table.TABLE`` leaving its state.

    Raises ``KeyError`` for an unknown tenant or alias (misuse: callers check first).
    """
    tenant = ctx.fleet.tenants[tenant_id]
    alias = tenant.aliases[alias_name]
    group = ctx.fleet.policy.groups[tenant.group]
    judge = Facts(ctx, ctx, tenant, tenant.group, group, tenant.freeze, now,
                  previous_pins=previous_pins, override=tenant.override_allowed,
                  override_in_head=tenant.override_allowed,
                  entered_at=ctx.entered.get((tenant_id, alias_name)))
    state = AliasState.of(alias)
    approvals = alias.rollout.approvals if alias.rollout else []
    options: list[TransitionOption] = []

    def option(kind: TransitionKind, target: AliasState, note: str | None = None) -> None:
        reasons = transition_gates(
            judge, kind, alias_name, alias, state, target, approvals, ack=True
        )
        options.append(TransitionOption(kind, target, tuple(reasons), note))

    candidate = state.candidate or ""
    for row in leaving(state.kind):
        for target, note in _targets(row, state, candidate, ctx, tenant, group.ladder,
                                     previous_pins):
            option(row.kind, target, note)
    return options


def _targets(
    row: Transition,
    state: AliasState,
    candidate: str,
    ctx: FleetContext,
    tenant: Tenant,
    ladder: Sequence[float],
    previous_pins: Collection[str],
) -> list[tuple[AliasState, str | None]]:
    """The concrete target states of one table row from ``state``."""
    kind = row.kind
    if kind == "start-shadow":
        out: list[tuple[AliasState, str | None]] = []
        for upgrade in ctx.fleet.compatibility.upgrades:
            if upgrade.from_ == state.pin:
                verdict = upgrade.verdicts.get(tenant.workload)
                note = "needs prompt_changes_ack: true" if verdict == "needs-prompt-changes" \
                    else None
                out.append((AliasState("shadow", state.pin, upgrade.to), note))
        return out
    if kind == "repin":
        repins = sorted(set(previous_pins) - {state.pin})
        if repins:
            return [(AliasState("pinned", pin), "revert to an earlier pin") for pin in repins]
        note = "any version (override_allowed)" if tenant.override_allowed else None
        return [(AliasState("pinned", "*"), note)]
    if kind == "first-canary":
        return [(AliasState("canary", state.pin, candidate, ladder[0]), None)]
    if kind == "advance":
        following = _next_step(ladder, state.percent)
        return [] if following is None else [
            (AliasState("canary", state.pin, candidate, following), None)]
    if kind == "promote":
        return [(AliasState("pinned", candidate), None)] if state.percent == 100 else []
    if kind == "pause":
        return [] if state.kind == "paused" else [
            (AliasState("paused", state.pin, candidate, state.percent), None)]
    if kind == "resume":
        return [(AliasState("canary", state.pin, candidate, state.percent), None)]
    if kind == "rollback":
        return [(AliasState("rolled-back", state.pin, candidate), None)]
    return [(AliasState("pinned", state.pin), None)]  # acknowledge-rollback


def _next_step(ladder: Sequence[float], percent: float | None) -> float | None:
    for step in ladder:
        if percent is not None and step > percent:
            return step
    return None


@dataclass(frozen=True)
class _Move:
    """One transition being gated: everything a gate may read."""

    j: Facts
    row: Transition
    alias_name: str
    alias: Alias
    current: AliasState
    target: AliasState
    approvals: Sequence[Approval]
    ack: bool
    path: ModelPath

    @property
    def candidate(self) -> str:
        return self.target.candidate or self.current.candidate or ""


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
    """The gates of one legal-shaped transition ``current`` -> ``target``: the gates of
    its table row, in order."""
    row = BY_KIND[kind]
    move = _Move(j, row, alias_name, alias, current, target, approvals, ack,
                 alias_path(alias_name, *row.field))
    reasons: list[Reason] = []
    for gate in row.gates:
        reasons += _GATES[gate](move)
    return reasons


def _frozen(m: _Move) -> list[Reason]:
    return frozen_reasons(m.j, m.row.action, m.path)


def _candidate(m: _Move) -> list[Reason]:
    return gates.candidate_gate(m.j.head.fleet, m.alias.kind, m.candidate, m.j.now, m.path)


def _compatibility(m: _Move) -> list[Reason]:
    return gates.compatibility_gate(m.j.head.fleet, m.j.tenant, m.current.pin, m.candidate,
                                    m.ack, m.path)


def _rollback_record(m: _Move) -> list[Reason]:
    """SPEC 2.1 rule 7: a version this alias rolled back from is not started again until
    a human clears the record (``cleared_rollbacks`` on the alias, as of the base)."""
    on_record = m.j.base.records.get((m.j.tenant.id, m.alias_name), ())
    if m.candidate not in on_record:
        return []
    return [Reason(
        "MP124",
        f"{m.j.tenant.id}/{m.alias_name} rolled back from {m.candidate} (on record in the "
        "published history): it is not started again until the record is cleared",
        m.path,
        hint=f"a human adds {m.candidate} to cleared_rollbacks of the alias in its own "
        "change; once merged, the rollout can start",
    )]


def clock_start(since: datetime | None, published: datetime | None) -> datetime | None:
    """When a stage's soak or shadow clock starts: the later of its ``since`` and the
    commit that published the stage on main (SPEC 2.1 rule 5: a stage is entered when the
    change merges; an author may write a ``since`` as old as a days-old base commit). The
    one definition: check, explain and the bot all count from here."""
    if since is None or published is None:
        return since
    return max(since, published)


def _shadow_time(m: _Move) -> list[Reason]:
    start = clock_start(m.current.since, m.j.entered_at)
    return gates.clock_gate("shadow", start, m.j.now, m.j.group.shadow, m.path)


def _soak(m: _Move) -> list[Reason]:
    start = clock_start(m.current.since, m.j.entered_at)
    return gates.clock_gate("soak", start, m.j.now, m.j.group.soak, m.path)


def _evidence(m: _Move) -> list[Reason]:
    check = gates.evidence_gate(m.j.head.fleet, m.j.tenant, m.alias_name, m.current.pin,
                                m.candidate, m.j.group, m.j.now, m.path, facts=m.j.base.fleet)
    return list(check.reasons)


def _upstream(rollbacks_only: bool) -> Callable[[_Move], list[Reason]]:
    def gate(m: _Move) -> list[Reason]:
        j = m.j
        blockers: list[str] = []
        for ctx in (j.base, j.head) if j.base is not j.head else (j.base,):
            for sentence in ctx.index.upstream_blockers(
                ctx.graph, j.group_name, m.candidate, rollbacks_only=rollbacks_only
            ):
                if sentence not in blockers:
                    blockers.append(sentence)
        return [Reason("MP108", sentence, m.path) for sentence in blockers]

    return gate


def _approval(m: _Move) -> list[Reason]:
    if m.target.percent is None:
        return []
    base = m.j.base.fleet
    base_tenant = base.tenants.get(m.j.tenant.id) or m.j.tenant
    return gates.approval_gate(m.j.group_name, m.j.group, m.approvals, m.target.percent,
                               m.j.now, rollout_path(m.alias_name), fleet=m.j.head.fleet,
                               tenant_id=m.j.tenant.id, alias=m.alias_name,
                               contacts=base_tenant.contacts,
                               signed=bool(base.approvers and base.approvers.keys))


def _max_in_flight(m: _Move) -> list[Reason]:
    j, cap = m.j, m.j.group.max_in_flight
    if cap is None:
        return []
    others = j.head.index.of(j.group_name, m.candidate).canary_tenants - {j.tenant.id}
    if len(others) < cap:
        return []
    names = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
    return [Reason(
        "MP110",
        f"group {j.group_name} allows {cap} tenant(s) in canary of {m.candidate} at once "
        f"(max_in_flight); {len(others)} other(s) are: {names}",
        m.path,
    )]


def _promotion_record(m: _Move) -> list[Reason]:
    """SPEC 2.1 rule 7: the promotion writes ``promoted_from`` (the old pin) and a fresh
    ``pinned_at`` (not in the future). Checked on a change; ``explain`` has no head."""
    if m.j.base is m.j.head:
        return []
    alias, name = m.alias, m.alias_name
    reasons = []
    if alias.promoted_from != m.current.pin:
        found = alias.promoted_from or "nothing"
        reasons.append(Reason(
            "MP121",
            f"a promotion records promoted_from: {m.current.pin} (the pin it replaces); "
            f"found {found}",
            alias_path(name, "promoted_from" if alias.promoted_from else "pin"),
            hint=f"set promoted_from: {m.current.pin} and pinned_at: <now>",
        ))
    at = alias.pinned_at
    if at is None:
        reasons.append(Reason("MP121", "a promotion records pinned_at: the time it was made",
                              alias_path(name, "pin")))
    elif at > m.j.now:
        reasons.append(Reason("MP103", f"pinned_at {format_time(at)} is in the future "
                              f"(now {format_time(m.j.now)})", alias_path(name, "pinned_at")))
    elif m.j.base_time is not None and at < m.j.base_time:
        reasons.append(Reason(
            "MP121",
            f"pinned_at {format_time(at)} is earlier than the base commit "
            f"({format_time(m.j.base_time)}): a promotion records when it was made",
            alias_path(name, "pinned_at"),
        ))
    return reasons


def _revert_or_override(m: _Move) -> list[Reason]:
    j = m.j
    new_pin = m.target.pin
    if new_pin in j.previous_pins:
        return []
    if j.override:
        return frozen_reasons(j, m.row.action, m.path)
    if new_pin == "*":
        why = (f"tenant {j.tenant.id} has no override_allowed: a pin changes through a "
               "rollout, or reverts to a pin it had before")
        return [Reason("MP105", why, m.path)]
    why = ("override_allowed must already be set in the base" if j.override_in_head
           else f"tenant {j.tenant.id} has no override_allowed")
    return [Reason(
        "MP105",
        f"pin changed {m.current.pin} -> {new_pin} directly: {why}, and {new_pin} is not a "
        "pin it had before",
        m.path,
        hint="change a pin through a rollout (start it in shadow)",
    )]


_GATES: Mapping[GateName, Callable[[_Move], list[Reason]]] = {
    "frozen": _frozen,
    "candidate": _candidate,
    "compatibility": _compatibility,
    "rollback-record": _rollback_record,
    "shadow-time": _shadow_time,
    "soak": _soak,
    "evidence": _evidence,
    "upstream-cleared": _upstream(rollbacks_only=False),
    "upstream-rollbacks": _upstream(rollbacks_only=True),
    "approval": _approval,
    "max-in-flight": _max_in_flight,
    "promotion-record": _promotion_record,
    "revert-or-override": _revert_or_override,
}
"""The implementation of every gate a table row may name (one per ``GateName``)."""


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
