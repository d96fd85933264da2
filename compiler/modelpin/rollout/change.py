"""Judging a pull request: every changed tenant and alias, as a transition from the base.

``changed_tenants`` finds what differs between two fleets (O(tenants), equality of
validated models); ``judge_tenant`` judges one tenant's changes with the rules in
``transitions``' docstring. Only changed tenants are judged, against indexes built once.

Each alias change is classified (which row of ``table.TABLE`` moves base -> head) and
gated twice (SPEC 2.1 rule 1): under the base's rules with the tenant's base settings,
and under the head's; it passes only if both allow it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from modelpin.model.fleet import Fleet
from modelpin.model.tenant import Alias, Tenant, format_time
from modelpin.rollout import gates
from modelpin.rollout.reason import ModelPath, Reason, alias_path, rollout_path
from modelpin.rollout.state import AliasState, format_percent
from modelpin.rollout.table import BY_KIND, between
from modelpin.rollout.transitions import (
    Facts,
    FleetContext,
    TransitionKind,
    transition_gates,
    under_base_rules,
    with_base_settings,
)


@dataclass(frozen=True)
class Change:
    """One changed alias (or, with ``alias`` None, a tenant-level change) and its verdict.

    ``kind`` is the transition recognised, None for an edit that moves no stage or an
    illegal move. ``reasons`` empty means the change is allowed.
    """

    tenant: str
    alias: str | None
    before: AliasState | None
    after: AliasState | None
    kind: TransitionKind | None
    reasons: tuple[Reason, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def describe(self) -> str:
        before = self.before.label() if self.before else "(none)"
        after = self.after.label() if self.after else "(removed)"
        return f"{before} -> {after}"


def changed_tenants(base: Fleet, head: Fleet) -> list[str]:
    """Tenant ids added, removed or edited between ``base`` and ``head``, sorted."""
    changed = [t for t, tenant in head.tenants.items() if base.tenants.get(t) != tenant]
    changed += [t for t in base.tenants if t not in head.tenants]
    return sorted(changed)


def judge_tenant(
    base: FleetContext,
    head: FleetContext,
    tenant_id: str,
    *,
    base_time: datetime,
    now: datetime,
    previous_pins: Mapping[str, Collection[str]] | None = None,
) -> list[Change]:
    """Every change of one tenant between base and head. ``previous_pins`` maps an alias
    to the pins it had before its base pin (from history; the caller reads git); when a
    base stage was published comes from ``base.entered``."""
    old = base.fleet.tenants.get(tenant_id)
    new = head.fleet.tenants.get(tenant_id)
    history = previous_pins or {}
    changes: list[Change] = []
    if old is not None and new is not None and old.group != new.group:
        flying = [a for t in (old, new) for a, v in t.aliases.items() if v.rollout is not None]
        if flying:
            reason = Reason(
                "MP100",
                f"group changed {old.group} -> {new.group} while alias {flying[0]} has a "
                "rollout: finish or roll back first",
                ("group",),
            )
            changes.append(Change(tenant_id, None, None, None, None, (reason,)))
    changes += _record_escapes(base, tenant_id, old, new)
    names = sorted({*(old.aliases if old else {}), *(new.aliases if new else {})})
    for name in names:
        before = old.aliases.get(name) if old else None
        after = new.aliases.get(name) if new else None
        if before == after:
            continue
        changes.append(
            judge_change(
                base,
                head,
                tenant_id,
                name,
                base_time=base_time,
                now=now,
                previous_pins=history.get(name, ()),
                entered_at=base.entered.get((tenant_id, name)),
            )
        )
    return changes


def _record_escapes(base: FleetContext, tenant_id: str, old: Tenant | None,
                    new: Tenant | None) -> list[Change]:
    """SPEC 2.1 rule 7: a rollback on record keeps its version uncleared downstream of
    the tenant's group until a human clears it. Moving the tenant to another group, or
    deleting it (or the alias), would lift the record without that clearance: refused
    while the record is open (``cleared_rollbacks`` first, in its own change)."""
    if old is None:
        return []
    out = []
    for name in sorted(old.aliases):
        on_record = sorted(base.records.get((tenant_id, name), ()))
        if not on_record:
            continue
        if new is not None and name in new.aliases and new.group == old.group:
            continue
        path: ModelPath
        if new is None:
            what, path = f"tenant {tenant_id} deleted", ()
        elif name not in new.aliases:
            what, path = f"alias {name} removed", alias_path(name)
        else:
            what, path = f"group changed {old.group} -> {new.group}", ("group",)
        out.append(Change(tenant_id, name, None, None, None, (Reason(
            "MP124",
            f"{what} while {tenant_id}/{name} has a rollback of {', '.join(on_record)} on "
            f"record: that would clear it downstream of group {old.group} without a human "
            "clearing the record",
            path,
            hint=f"first clear the record (cleared_rollbacks: [{on_record[0]}] on the "
            "alias) in its own change; once merged, move or remove the tenant",
        ),)))
    return out


def judge_change(
    base: FleetContext,
    head: FleetContext,
    tenant_id: str,
    alias_name: str,
    *,
    base_time: datetime,
    now: datetime,
    previous_pins: Collection[str] = (),
    entered_at: datetime | None = None,
) -> Change:
    """Judge one alias's change from its base state to its head state."""
    old_tenant = base.fleet.tenants.get(tenant_id)
    new_tenant = head.fleet.tenants.get(tenant_id)
    old = old_tenant.aliases.get(alias_name) if old_tenant else None
    new = new_tenant.aliases.get(alias_name) if new_tenant else None
    if new is None or new_tenant is None:
        before = AliasState.of(old) if old else None
        if before is not None and before.in_flight:
            reason = Reason(
                "MP112",
                f"alias {alias_name} removed with a rollout in flight ({before.label()}): "
                "roll back first",
                alias_path(alias_name) if new_tenant else (),
            )
            return Change(tenant_id, alias_name, before, None, None, (reason,))
        return Change(tenant_id, alias_name, before, None, None)
    if old is None or old_tenant is None:
        # A new alias (or tenant) starts pinned; a rollout in it is judged as a start.
        onboard = _onboarding_reasons(base, tenant_id, alias_name, new, new_tenant, now)
        old = Alias(kind=new.kind, pin=new.pin, pinned_at=new.pinned_at,
                    promoted_from=new.promoted_from)
    else:
        onboard = []
    verdicts: list[_Verdict] = []
    judged: list[Facts] = []
    for rules, tenant in (
        (under_base_rules(base, head), with_base_settings(new_tenant, old_tenant)),
        (head, new_tenant),
    ):
        if tenant.group not in rules.fleet.policy.groups:
            reason = Reason("MP100", f"group {tenant.group} is not defined in the base: add "
                            "the group in one change, its tenants in the next", ("group",))
            verdicts.append((None, (reason,)))
            continue
        facts = Facts(
            base,
            rules,
            tenant,
            tenant.group,
            rules.fleet.policy.groups[tenant.group],
            new_tenant.freeze or (old_tenant.freeze if old_tenant else False),
            now,
            previous_pins=previous_pins,
            override=new_tenant.override_allowed
            and (old_tenant is None or old_tenant.override_allowed),
            override_in_head=new_tenant.override_allowed,
            base_time=base_time,
            entered_at=entered_at,
        )
        verdicts.append(_classify(facts, alias_name, old, new, base_time))
        judged.append(facts)
    (kind, first), (head_kind, second) = verdicts
    reasons = [*onboard, *first, *(r for r in second if r not in first)]
    if judged and any(f.group.approval == "manual" for f in judged):
        reasons += _new_approvals(judged[0], alias_name, old, new, kind, base_time)
    if head_kind != kind and not reasons:  # cannot happen: one of them has a reason
        kind = None
    return Change(tenant_id, alias_name, AliasState.of(old), AliasState.of(new), kind,
                  tuple(reasons))


def _new_approvals(j: Facts, name: str, old: Alias, new: Alias, kind: TransitionKind | None,
                   base_time: datetime) -> list[Reason]:
    """Approvals added by the change (SPEC 2.1 rule 4): for the step entered (or the next
    one), dated within [base commit, now], signed by a key the base trusts."""
    if new.rollout is None or new.rollout.stage in ("paused", "rolled-back"):
        return []
    same = old.rollout is not None and old.rollout.candidate == new.rollout.candidate
    before = old.rollout.approvals if same and old.rollout else []
    if list(new.rollout.approvals) == list(before):
        return []
    h = AliasState.of(new)
    if kind in ("first-canary", "advance") and h.percent is not None:
        steps = [h.percent]
    elif h.kind == "shadow":
        steps = [j.group.ladder[0]]
    else:
        following = _next_after(j.group.ladder, h.percent)
        steps = [following] if following is not None else []
    return gates.new_approvals_gate(
        before, new.rollout.approvals, steps=steps, not_before=base_time, now=j.now,
        fleet=j.head.fleet, tenant_id=j.tenant.id, alias=name, path=rollout_path(name))


def _onboarding_reasons(base: FleetContext, tenant_id: str, name: str, new: Alias,
                        tenant: Tenant, now: datetime) -> list[Reason]:
    """SPEC 2.1 rule 7: a new tenant or alias pins only a version that is not retired or
    blocked (base facts) and that its group already pins or has cleared; it records no
    promotion, so it clears nothing."""
    reasons = []
    if new.pinned_at is not None or new.promoted_from is not None:
        reasons.append(Reason(
            "MP121",
            "a new alias records no promotion: pinned_at/promoted_from are written only by "
            "a judged promotion",
            alias_path(name, "promoted_from" if new.promoted_from else "pinned_at"),
        ))
    model = base.fleet.models.get(new.pin)
    path = alias_path(name, "pin")
    if model is None:
        reasons.append(Reason("MP122", f"{new.pin} is not a model version of the base: add "
                              "it in one change, pin it in the next", path))
        return reasons
    if model.blocked:
        reasons.append(Reason("MP122", f"{new.pin} is blocked in the base", path))
    if model.retired(now.date()):
        reasons.append(Reason("MP122", f"{new.pin} retired on {model.retires_on}", path))
    group = tenant.group
    if group not in base.fleet.policy.groups:
        return reasons
    progress = base.index.of(group, new.pin)
    if progress.pinned_by:
        return reasons
    if not base.graph.ancestors(group):
        return reasons  # a root group: nothing upstream to clear
    blockers = base.index.upstream_blockers(base.graph, group, new.pin)
    if blockers or not _has_upstream_tenants(base, group):
        why = blockers[0] if blockers else "no upstream group has tenants"
        reasons.append(Reason(
            "MP122",
            f"new {tenant_id}/{name} pins {new.pin}, which group {group} neither pins nor has "
            f"cleared: {why}",
            path,
            hint=f"pin a version group {group} already runs, then roll {new.pin} out",
        ))
    return reasons


def _has_upstream_tenants(base: FleetContext, group: str) -> bool:
    return any(base.index.tenants_per_group.get(g) for g in base.graph.ancestors(group))




_Verdict = tuple[TransitionKind | None, tuple[Reason, ...]]


def _classify(j: Facts, name: str, old: Alias, new: Alias, base_time: datetime) -> _Verdict:
    kind, reasons = _shape(j, name, old, new, base_time)
    return kind, (*reasons, *_record_edits(name, old, new, kind),
                  *_introduced_retired_pin(j, name, old, new, kind))


def _introduced_retired_pin(j: Facts, name: str, old: Alias, new: Alias,
                            kind: TransitionKind | None) -> list[Reason]:
    """SPEC 2.1 rule 9: a pin on a retired version is a warning while unchanged, an error
    when a change introduces it (a promotion is refused by its candidate gate)."""
    if new.pin == old.pin or kind == "promote":
        return []
    model = j.head.fleet.models.get(new.pin)
    if model is None or not model.retired(j.now.date()):
        return []
    return [Reason("MP030", f"pin {new.pin} retired on {model.retires_on}: a change may not "
                   "pin a retired version", alias_path(name, "pin"))]


def _record_edits(name: str, old: Alias, new: Alias,
                  kind: TransitionKind | None) -> list[Reason]:
    """Only a promotion writes ``pinned_at``/``promoted_from`` (SPEC 2.1 rule 7); a direct
    pin change drops them (it is no judged promotion); otherwise they never change."""
    if kind == "promote":
        return []
    record = (new.pinned_at, new.promoted_from)
    if record == (old.pinned_at, old.promoted_from) and new.pin == old.pin:
        return []
    if new.pin != old.pin and record == (None, None):
        return []
    field = "promoted_from" if new.promoted_from != old.promoted_from else "pinned_at"
    if new.pin != old.pin and new.promoted_from is None:
        field = "pinned_at"
    return [Reason(
        "MP121",
        "pinned_at/promoted_from are written only by a judged promotion (canary 100 -> "
        f"pinned): this change {'sets' if new.pin != old.pin else 'edits'} them",
        alias_path(name, field),
        hint="a direct pin change removes both fields",
    )]


def _shape(j: Facts, name: str, old: Alias, new: Alias, base_time: datetime) -> _Verdict:
    """Which row of the table moves ``old`` -> ``new``, and its gates' reasons."""
    b, h = AliasState.of(old), AliasState.of(new)
    ladder = j.group.ladder
    rows = between(b.kind, h.kind)

    def illegal(code: str, message: str, *path: str | int) -> _Verdict:
        return None, (Reason(code, message, path or rollout_path(name, "stage")),)

    def gated(kind: TransitionKind) -> _Verdict:
        row = BY_KIND[kind]
        if row not in rows:  # the table is the authority on which moves exist
            return illegal("MP100", f"{b.label()} -> {h.label()} is not a stage transition")
        reasons = transition_gates(
            j,
            kind,
            name,
            new,
            b,
            h,
            new.rollout.approvals if new.rollout else [],
            ack=bool(new.rollout and new.rollout.prompt_changes_ack),
        )
        if row.fresh_since:
            reasons = _since_reasons(name, b, h, base_time, j.now, entering=True) + reasons
        return kind, tuple(reasons)

    if b.kind == "pinned" or (b.kind == "rolled-back" and h.kind == "pinned"):
        if h.kind == "pinned":
            if h.pin == b.pin:
                return ("acknowledge-rollback" if b.kind == "rolled-back" else None), ()
            return gated("repin")
        if h.pin != b.pin:
            return illegal(
                "MP102",
                f"pin changed {b.pin} -> {h.pin} while starting a rollout",
                *alias_path(name, "pin"),
            )
        if h.kind != "shadow":
            return illegal(
                "MP117", f"a rollout starts in shadow: {b.label()} -> {h.label()} skips it"
            )
        return gated("start-shadow")
    if b.kind == "rolled-back":
        edits = _in_flight_edits(name, old, new)
        if edits:
            return None, tuple(edits)
        if h.kind == "rolled-back":
            return None, tuple(_since_reasons(name, b, h, base_time, j.now, entering=False))
        return illegal(
            "MP100",
            f"{b.label()} -> {h.label()}: acknowledge the rollback first "
            "(remove the rollout), then start again in shadow",
        )
    # b is in flight: shadow, canary or paused.
    if h.kind == "pinned":
        if h.pin == b.candidate:
            if b.kind == "canary" and b.percent == 100:
                return gated("promote")
            return illegal(
                "MP101",
                f"{b.label()} -> pinned {h.pin} promotes before canary 100",
                *alias_path(name, "pin"),
            )
        if h.pin == b.pin:
            return illegal(
                "MP100",
                f"rollout of {b.candidate} removed while in flight "
                f"({b.label()}): set stage rolled-back with a reason first",
                *alias_path(name),
            )
        return illegal(
            "MP102", f"pin changed {b.pin} -> {h.pin} while {b.label()}", *alias_path(name, "pin")
        )
    # Pause and rollback are never blocked by the approvals record (it gates advances).
    edits = _in_flight_edits(name, old, new, approvals=h.kind not in ("paused", "rolled-back"))
    if edits:
        return None, tuple(edits)
    if h.kind == "rolled-back":
        return "rollback", ()
    if h.kind == "paused":
        if b.kind == "shadow":
            return illegal(
                "MP100",
                "a shadow serves no traffic, so there is nothing to pause: "
                "roll back to stop it (never blocked)",
            )
        if h.percent != b.percent:
            return illegal(
                "MP100",
                f"a pause holds traffic at {format_percent(b.percent)}%: "
                f"{b.label()} -> {h.label()} changes it",
                *rollout_path(name, "percent"),
            )
        if b.kind == "paused":
            return None, tuple(_since_reasons(name, b, h, base_time, j.now, entering=False))
        return "pause", ()
    if h.kind == "shadow":
        if b.kind == "shadow":
            return None, tuple(_since_reasons(name, b, h, base_time, j.now, entering=False))
        return illegal("MP100", f"{b.label()} -> shadow goes backwards: pause or roll back")
    # h is canary
    if b.kind == "paused":
        if h.percent != b.percent:
            return illegal(
                "MP100",
                f"resume at the paused percent: {b.label()} -> {h.label()}",
                *rollout_path(name, "percent"),
            )
        return gated("resume")
    expected = ladder[0] if b.kind == "shadow" else _next_after(ladder, b.percent)
    if b.kind == "canary" and h.percent == b.percent:
        return None, tuple(_since_reasons(name, b, h, base_time, j.now, entering=False))
    if b.kind == "canary" and (h.percent or 0) < (b.percent or 0):
        return illegal(
            "MP100",
            f"{b.label()} -> {h.label()} lowers traffic: pause or roll back instead",
            *rollout_path(name, "percent"),
        )
    if h.percent != expected:
        return illegal(
            "MP101", _skip_message(ladder, b, h, expected), *rollout_path(name, "percent")
        )
    return gated("first-canary" if b.kind == "shadow" else "advance")


def _next_after(ladder: list[float], percent: float | None) -> float | None:
    return next((s for s in ladder if percent is not None and s > percent), None)


def _skip_message(ladder: list[float], b: AliasState, h: AliasState, expected: float | None) -> str:
    steps = ", ".join(format_percent(s) for s in ladder)
    target = format_percent(h.percent)
    if h.percent not in ladder:
        return f"percent {target} is not a step of the ladder ({steps})"
    skipped = [format_percent(s) for s in ladder if (b.percent or 0) < s < (h.percent or 0)]
    verb = "jumps to 100" if h.percent == 100 else f"skips to {target}"
    return (
        f"{b.label()} {verb}, skipping {', '.join(skipped)}: the next step is "
        f"{format_percent(expected)} (ladder {steps})"
    )


def _since_reasons(
    name: str, b: AliasState, h: AliasState, base_time: datetime, now: datetime, *,
    entering: bool
) -> list[Reason]:
    """No backdating: a changed since is not earlier than the base commit, nor later than
    now (SPEC 2.1 rule 5); a new stage gets a fresh since."""
    path = rollout_path(name, "since")
    if h.since is None:
        return []
    if h.since != b.since and h.since > now:
        return [
            Reason(
                "MP103",
                f"since {_t(h.since)} is in the future (now {_t(now)}): a stage is entered "
                "when the change merges, not later",
                path,
            )
        ]
    if entering and b.since is not None and h.since == b.since:
        return [
            Reason(
                "MP103",
                f"since not updated on entering {h.label()}: the clock of "
                "the new stage would include the previous one",
                path,
            )
        ]
    if h.since != b.since and h.since < base_time:
        return [
            Reason(
                "MP103",
                f"since {_t(h.since)} is earlier than the base commit "
                f"({_t(base_time)}): clocks cannot be backdated",
                path,
            )
        ]
    return []


def _in_flight_edits(name: str, old: Alias, new: Alias, *, approvals: bool = True) -> list[Reason]:
    """In flight the candidate and pin are fixed and approvals only grow."""
    assert old.rollout is not None and new.rollout is not None
    out = []
    if new.rollout.candidate != old.rollout.candidate:
        out.append(
            Reason(
                "MP102",
                f"candidate changed {old.rollout.candidate} -> "
                f"{new.rollout.candidate} in flight: roll back, then start the new "
                "candidate in shadow",
                rollout_path(name, "candidate"),
            )
        )
    if new.pin != old.pin:
        out.append(
            Reason(
                "MP102",
                f"pin changed {old.pin} -> {new.pin} with a rollout in flight",
                alias_path(name, "pin"),
            )
        )
    missing = [a for a in old.rollout.approvals if a not in new.rollout.approvals]
    if missing and approvals:
        out.append(
            Reason(
                "MP102",
                f"approval for {format_percent(missing[0].percent)}% by "
                f"{missing[0].by} removed or edited: approvals are append-only",
                rollout_path(name, "approvals"),
            )
        )
    return out


def _t(value: datetime) -> str:
    return format_time(value)
