"""Judging a pull request: every changed tenant and alias, as a transition from the base.

``changed_tenants`` finds what differs between two fleets (O(tenants), equality of
validated models); ``judge_tenant`` judges one tenant's changes with the rules in
``transitions``' docstring. Only changed tenants are judged, against indexes built once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from modelpin.model.fleet import Fleet
from modelpin.model.tenant import Alias, Tenant, format_time
from modelpin.rollout import gates
from modelpin.rollout.reason import Reason, alias_path, rollout_path
from modelpin.rollout.state import AliasState, format_percent
from modelpin.rollout.transitions import (
    Facts,
    FleetContext,
    TransitionKind,
    frozen_reasons,
    transition_gates,
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
    to the pins it had before its base pin (from history; the caller reads git)."""
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
            )
        )
    return changes


def judge_change(
    base: FleetContext,
    head: FleetContext,
    tenant_id: str,
    alias_name: str,
    *,
    base_time: datetime,
    now: datetime,
    previous_pins: Collection[str] = (),
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
        old = Alias(kind=new.kind, pin=new.pin)
    group_name = new_tenant.group
    group = head.fleet.policy.groups[group_name]
    facts = Facts(
        base,
        head,
        new_tenant,
        group_name,
        group,
        new_tenant.freeze or (old_tenant.freeze if old_tenant else False),
        now,
    )
    kind, reasons = _classify(facts, old_tenant, alias_name, old, new, base_time, previous_pins)
    if group.approval == "manual":
        reasons += tuple(_new_approvals(facts, alias_name, old, new, kind, base_time))
    return Change(tenant_id, alias_name, AliasState.of(old), AliasState.of(new), kind, reasons)


def _new_approvals(j: Facts, name: str, old: Alias, new: Alias, kind: TransitionKind | None,
                   base_time: datetime) -> list[Reason]:
    """Approvals added by the change (SPEC 2.1 rule 4): for the step entered (or the next
    one), dated within [base commit, now], signed by a key the base trusts."""
    if new.rollout is None or new.rollout.stage in ("paused", "rolled-back"):
        return []
    same = old.rollout is not None and old.rollout.candidate == new.rollout.candidate
    before = old.rollout.approvals if same and old.rollout else []
    if len(new.rollout.approvals) == len(before) and list(new.rollout.approvals) == before:
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


_Verdict = tuple[TransitionKind | None, tuple[Reason, ...]]


def _classify(
    j: Facts,
    old_tenant: Tenant | None,
    name: str,
    old: Alias,
    new: Alias,
    base_time: datetime,
    previous_pins: Collection[str],
) -> _Verdict:
    b, h = AliasState.of(old), AliasState.of(new)
    ladder = j.group.ladder

    def illegal(code: str, message: str, *path: str | int) -> _Verdict:
        return None, (Reason(code, message, path or rollout_path(name, "stage")),)

    def gated(kind: TransitionKind, fresh_since: bool = True) -> _Verdict:
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
        if fresh_since:
            reasons = _since_reasons(name, b, h, base_time, entering=True) + reasons
        return kind, tuple(reasons)

    if b.kind == "pinned" or (b.kind == "rolled-back" and h.kind == "pinned"):
        if h.kind == "pinned":
            if h.pin == b.pin:
                return ("acknowledge-rollback" if b.kind == "rolled-back" else None), ()
            return _repin(j, old_tenant, name, b.pin, h.pin, previous_pins)
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
            return None, tuple(_since_reasons(name, b, h, base_time, entering=False))
        return illegal(
            "MP100",
            f"{b.label()} -> {h.label()}: acknowledge the rollback first "
            "(remove the rollout), then start again in shadow",
        )
    # b is in flight: shadow, canary or paused.
    if h.kind == "pinned":
        if h.pin == b.candidate:
            if b.kind == "canary" and b.percent == 100:
                return gated("promote", fresh_since=False)
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
            return None, tuple(_since_reasons(name, b, h, base_time, entering=False))
        return "pause", ()
    if h.kind == "shadow":
        if b.kind == "shadow":
            return None, tuple(_since_reasons(name, b, h, base_time, entering=False))
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
        return None, tuple(_since_reasons(name, b, h, base_time, entering=False))
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
    name: str, b: AliasState, h: AliasState, base_time: datetime, *, entering: bool
) -> list[Reason]:
    """No backdating: a changed since is not earlier than the base commit; a new stage
    gets a fresh since."""
    path = rollout_path(name, "since")
    if h.since is None:
        return []
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


def _repin(
    j: Facts,
    old_tenant: Tenant | None,
    name: str,
    old_pin: str,
    new_pin: str,
    previous_pins: Collection[str],
) -> _Verdict:
    path = alias_path(name, "pin")
    if new_pin in previous_pins:
        return "repin", ()
    if j.tenant.override_allowed and (old_tenant is None or old_tenant.override_allowed):
        return "repin", tuple(frozen_reasons(j, "pin change", path))
    why = (
        "override_allowed must already be set in the base"
        if j.tenant.override_allowed
        else f"tenant {j.tenant.id} has no override_allowed"
    )
    return None, (
        Reason(
            "MP105",
            f"pin changed {old_pin} -> {new_pin} directly: {why}, and "
            f"{new_pin} is not a pin it had before",
            path,
            hint="change a pin through a rollout (start it in shadow)",
        ),
    )


def _t(value: datetime) -> str:
    return format_time(value)
