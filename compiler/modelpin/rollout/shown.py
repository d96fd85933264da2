"""Every change is shown (SPEC 2.1 rule 2): what a pull request changes besides stage
moves, and what that does to every rollout in flight.

``show_changes`` diffs the rules of two fleets (group policies, model versions, the
compatibility matrix, signals, artifact and trust lists), the evidence, and the own
settings of changed tenants, and tenants and aliases added or removed (a removed one
is no longer served; an added one may be a rename); then, for every alias whose stage
the change leaves alone, compares its next step under the base with its next step under
the head ("std-a: next step becomes canary 100, was canary 25"). It also finds the rule
changes that break an invariant wherever they appear (a retired or blocked version made
pinnable again): those are violations. Pure: fleets in, values out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

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
from modelpin.rollout.reason import ModelPath
from modelpin.rollout.transitions import FleetContext, TransitionOption, allowed_transitions

FORWARD = ("first-canary", "advance", "promote", "resume")
"""The transitions that move a rollout on: the "next step" whose change is shown."""

SETTINGS = ("group", "workload", "bets_suite", "freeze", "override_allowed", "contacts",
            "tools", "failure_policy", "coercions")
"""A tenant's own settings (SPEC 2.1 rule 2): every change to them is listed."""

_FILES = {"policy": ROLLOUT_GROUPS, "artifact": ARTIFACT, "compatibility": COMPATIBILITY,
          "evaluators": EVALUATORS, "approvers": APPROVERS, "providers": PROVIDERS}


@dataclass(frozen=True)
class Shown:
    """One changed value: ``file`` and the ``path`` inside it, and a sentence."""

    file: str
    path: ModelPath
    message: str
    code: str = "MP125"


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


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _diff(before: Any, after: Any, path: ModelPath = ()) -> Iterator[tuple[ModelPath, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted({*before, *after}):
            yield from _diff(before.get(key, _ABSENT), after.get(key, _ABSENT), (*path, key))
        return
    if before != after:
        yield path, before, after


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _fmt(value: Any) -> str:
    if value is _ABSENT or value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return _cut("[" + ", ".join(_fmt(v) for v in value) + "]")
    return _cut(str(value))


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _lines(file: str, before: Any, after: Any, prefix: ModelPath = ()) -> list[Shown]:
    out = []
    for path, old, new in _diff(_plain(before), _plain(after)):
        where = ".".join(str(p) for p in path) or "(file)"
        if old is _ABSENT:
            text = f"{where} added: {_fmt(new)}"
        elif new is _ABSENT:
            text = f"{where} removed (was {_fmt(old)})"
        else:
            text = f"{where}: {_fmt(old)} -> {_fmt(new)}"
        out.append(Shown(file, (*prefix, *path), text))
    return out


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
        shown += _lines(_FILES[name], getattr(b, name, None), getattr(h, name, None))
    compat = _lines(COMPATIBILITY, _compat_view(b), _compat_view(h))
    shown += [Shown(s.file, ("upgrades",) if s.path[:1] == ("upgrades",) else s.path[:1],
                    s.message) for s in compat]
    shown += _lines(SIGNALS, base_signals, head_signals)
    for mid in sorted({*b.models, *h.models}):
        old_model, new_model = b.models.get(mid), h.models.get(mid)
        file = h.paths.get(f"model:{mid}") or b.paths.get(f"model:{mid}") or \
            f"model_versions/{mid}.yaml"
        if old_model is None or new_model is None:
            verb = "added" if old_model is None else "removed"
            shown.append(Shown(file, (), f"model version {mid} {verb}"))
            continue
        shown += _lines(file, old_model, new_model)
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
                          for s in _lines(file, {name: getattr(old_t, name)},
                                          {name: getattr(new_t, name)})]
    rules_changed = any(not s.file.startswith("evidence/") for s in shown
                        if not s.message.startswith("tenant "))
    # Rules touch every rollout; a tenant's settings or evidence touch its own.
    effects = _effects(base, head, now,
                       None if rules_changed else settings_changed | evidence_changed)
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
