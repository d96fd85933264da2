"""Every change is shown (SPEC 2.1 rule 2): what a pull request changes besides stage
moves, and what that does to every rollout in flight.

``show_changes`` diffs the rules of two fleets (group policies, model versions, the
compatibility matrix, signals, artifact and trust lists, BETS suites: ``suite_changes``),
the evidence, and the own
settings of changed tenants, and tenants and aliases added or removed (a removed one
is no longer served; an added one may be a rename); then, for every alias whose stage
the change leaves alone, compares its next step under the base with its next step under
the head ("std-a: next step becomes canary 100, was canary 25"). It also finds the rule
changes that break an invariant wherever they appear (a retired or blocked version made
pinnable again): those are violations. Pure: fleets in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelpin.load.layout import (
    APPROVERS,
    ARTIFACT,
    COMPATIBILITY,
    EVALUATORS,
    PROVIDERS,
    ROLLOUT_GROUPS,
    SIGNALS,
)
from modelpin.model.fleet import Fleet
from modelpin.model.signals import SignalsPolicy
from modelpin.rollout.shown_diff import Shown, lines
from modelpin.rollout.suite_changes import suite_changes
from modelpin.rollout.transitions import FleetContext, TransitionOption, allowed_transitions

FORWARD = ("first-canary", "advance", "promote", "resume")
"""The transitions that move a rollout on: the "next step" whose change is shown."""

SETTINGS = ("group", "workload", "bets_suite", "freeze", "override_allowed", "contacts",
            "tools", "failure_policy", "coercions")
"""A tenant's own settings (SPEC 2.1 rule 2): every change to them is listed."""

_FILES = {"policy": ROLLOUT_GROUPS, "artifact": ARTIFACT, "compatibility": COMPATIBILITY,
          "evaluators": EVALUATORS, "approvers": APPROVERS, "providers": PROVIDERS}


@dataclass(frozen=True)
class Effect:
    tenant: str
    alias: str
    message: str


@dataclass(frozen=True)
class ShownChanges:
    shown: tuple[Shown, ...]
    effects: tuple[Effect, ...]
    violations: tuple[Shown, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "changes": [{"file": s.file, "message": s.message} for s in self.shown],
            "effects": [{"tenant": e.tenant, "alias": e.alias, "message": e.message}
                        for e in self.effects],
        }


def _compat_view(fleet: Fleet) -> dict[str, Any]:
    return {"workloads": list(fleet.compatibility.workloads),
            "upgrades": {f"{u.from_} -> {u.to}": dict(u.verdicts)
                         for u in fleet.compatibility.upgrades}}


def show_changes(base: FleetContext, head: FleetContext, now: datetime, *,
                 base_signals: SignalsPolicy | None = None,
                 head_signals: SignalsPolicy | None = None) -> ShownChanges:
    b, h = base.fleet, head.fleet
    shown: list[Shown] = []
    violations: list[Shown] = []
    for name in ("policy", "artifact", "evaluators", "approvers", "providers"):
        shown += lines(_FILES[name], getattr(b, name, None), getattr(h, name, None))
    compat = lines(COMPATIBILITY, _compat_view(b), _compat_view(h))
    shown += [Shown(s.file, ("upgrades",) if s.path[:1] == ("upgrades",) else s.path[:1],
                    s.message) for s in compat]
    shown += lines(SIGNALS, base_signals, head_signals)
    for mid in sorted({*b.models, *h.models}):
        old_model, new_model = b.models.get(mid), h.models.get(mid)
        file = h.paths.get(f"model:{mid}") or b.paths.get(f"model:{mid}") or \
            f"model_versions/{mid}.yaml"
        if old_model is None or new_model is None:
            verb = "added" if old_model is None else "removed"
            shown.append(Shown(file, (), f"model version {mid} {verb}"))
            continue
        shown += lines(file, old_model, new_model)
        if old_model.retired(now.date()) and not new_model.retired(now.date()):
            violations.append(Shown(file, ("retires_on",), (
                f"{mid} retired on {old_model.retires_on} (base); this change makes it "
                "pinnable again: a retired version stays retired")))
        if old_model.blocked and not new_model.blocked:
            violations.append(Shown(file, ("blocked",), (
                f"{mid} is blocked in the base ({old_model.blocked_reason}); this change "
                "makes it pinnable again: a blocked version stays blocked (a fixed release "
                "is a new model version)")))
    evidence_changed: set[str] = set()
    for key in sorted({*b.evidence, *h.evidence}):
        old_ev, new_ev = b.evidence.get(key), h.evidence.get(key)
        if old_ev == new_ev:
            continue
        file = h.paths.get("evidence:{}/{}/{}".format(*key)) or \
            b.paths.get("evidence:{}/{}/{}".format(*key)) or "evidence/{}/{}/{}".format(*key)
        verb = "added" if old_ev is None else "removed" if new_ev is None else "changed"
        evidence_changed.add(key[0])
        shown.append(Shown(file, (), f"evidence for {key[0]}/{key[1]} -> {key[2]} {verb}"))
    settings_changed: set[str] = set()
    shown += _tenants_and_aliases(b, h)
    for tid in sorted(set(b.tenants) & set(h.tenants)):
        old_t, new_t = b.tenants[tid], h.tenants[tid]
        if old_t == new_t:
            continue
        file = h.tenant_path(tid)
        for name in SETTINGS:
            if hasattr(old_t, name) and getattr(old_t, name) != getattr(new_t, name):
                settings_changed.add(tid)
                shown += [Shown(file, s.path, f"tenant {tid}: {s.message}")
                          for s in lines(file, {name: getattr(old_t, name)},
                                          {name: getattr(new_t, name)})]
    suites_shown, suites_broken = suite_changes(b, h)
    violations += suites_broken
    rules_changed = any(not s.file.startswith("evidence/") for s in shown
                        if not s.message.startswith("tenant "))
    shown += suites_shown
    # Rules touch every rollout; a tenant's settings, evidence or BETS suite its own.
    changed_suites = {s.file.split("/")[1] for s in suites_shown}
    suite_users = {tid for fleet in (b, h) for tid, t in fleet.tenants.items()
                   if changed_suites and t.bets_suite is not None
                   and t.bets_suite.id in changed_suites}
    effects = _effects(base, head, now, None if rules_changed
                       else settings_changed | evidence_changed | suite_users)
    return ShownChanges(tuple(shown), tuple(effects), tuple(violations))


def _tenants_and_aliases(b: Fleet, h: Fleet) -> list[Shown]:
    """Tenants and aliases added or removed: a removed one is no longer served (its
    callers get an error), an added one may be a rename taking over callers."""
    out: list[Shown] = []
    for tid in sorted(set(b.tenants) ^ set(h.tenants)):
        added = tid in h.tenants
        tenant = h.tenants[tid] if added else b.tenants[tid]
        pins = ", ".join(f"{n} pinned {a.pin}" for n, a in sorted(tenant.aliases.items()))
        if added:
            out.append(Shown(h.tenant_path(tid), (), f"tenant {tid} added ({pins})"))
        else:
            out.append(Shown(b.tenant_path(tid), (),
                             f"tenant {tid} removed ({pins}): routers stop serving it"))
    for tid in sorted(set(b.tenants) & set(h.tenants)):
        old_t, new_t = b.tenants[tid], h.tenants[tid]
        if old_t.aliases.keys() == new_t.aliases.keys():
            continue
        file = h.tenant_path(tid)
        for name in sorted(set(old_t.aliases) - set(new_t.aliases)):
            out.append(Shown(file, (), f"tenant {tid}: alias {name} removed (pinned "
                             f"{old_t.aliases[name].pin}): routers stop serving it"))
        for name in sorted(set(new_t.aliases) - set(old_t.aliases)):
            out.append(Shown(file, ("aliases", name), f"tenant {tid}: alias {name} added "
                             f"(pinned {new_t.aliases[name].pin})"))
    return out


def _forward(ctx: FleetContext, tid: str, alias: str, now: datetime) -> TransitionOption | None:
    options = allowed_transitions(ctx, tid, alias, now)
    return next((o for o in options if o.kind in FORWARD), None)


def _effects(base: FleetContext, head: FleetContext, now: datetime,
             only: set[str] | None) -> list[Effect]:
    """Per alias in flight and unchanged by the change: its next step, base vs head.
    ``only``: the tenants to look at (None: every tenant, when a rule changed)."""
    out: list[Effect] = []
    tenants = sorted(only) if only is not None else sorted(head.fleet.tenants)
    for tid in tenants:
        new_t, old_t = head.fleet.tenants.get(tid), base.fleet.tenants.get(tid)
        if new_t is None or old_t is None:
            continue
        for name, alias in sorted(new_t.aliases.items()):
            if alias.rollout is None or old_t.aliases.get(name) != alias:
                continue
            if old_t.group not in base.fleet.policy.groups or \
                    new_t.group not in head.fleet.policy.groups:
                continue
            old, new = _forward(base, tid, name, now), _forward(head, tid, name, now)
            message = _compare(old, new)
            if message:
                out.append(Effect(tid, name, f"{tid}/{name}: {message}"))
    return out


def _compare(old: TransitionOption | None, new: TransitionOption | None) -> str | None:
    if old is None and new is None:
        return None
    if old is None or new is None:
        gone = old if new is None else new
        assert gone is not None
        verb = "no longer" if new is None else "now"
        return f"{verb} {gone.kind} to {gone.target.label()}"
    if old.target != new.target:
        return f"next step becomes {new.target.label()}, was {old.target.label()}"
    if old.allowed != new.allowed:
        if new.allowed:
            return (f"{new.kind} to {new.target.label()} now allowed, was blocked: "
                    f"{old.reasons[0].message}")
        return (f"{new.kind} to {new.target.label()} now blocked: {new.reasons[0].message} "
                "(was allowed)")
    if old.reasons and new.reasons and old.reasons[0].message != new.reasons[0].message:
        return f"{new.kind} blocked by {new.reasons[0].message}, was {old.reasons[0].message}"
    return None
