"""The fleet's lifecycle beyond canaries: sunsets, decommissions, regrouping.

Pure functions over the fleet, the clock and facts read from git (``history.py``):

- **Sunset**: a pinned model version within ``sunset_warning_days`` of ``retires_on``
  gets, for every alias pinned to it without a rollout, a proposal to start a shadow of
  its declared ``successor`` (judged by ``check``'s code like every bot proposal). No
  successor, a rollout already in flight, or a successor of another kind: reported.
  ``deprecated_on`` in the past is reported with the tenants still on the version.
- **Decommission**: a model version no tenant file has mentioned (pin or candidate, in
  any stage) for 30 days is reported "safe to decommission", with whatever else still
  names it (compatibility entries, evidence judges, other versions' ``successor``).
- **Regroup**: a tenant whose history on main shows ``REGROUP_AFTER`` rollbacks or more
  within ``REGROUP_WINDOW`` gets a proposal to move to the next, more conservative group
  (a group that comes directly ``after`` its own; the first in topological order).

Drift of pinned versions against each tenant's baseline is :mod:`modelpin.bot.drift`;
:func:`drift_items` turns its reports into findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from modelpin.model.fleet import Fleet
from modelpin.rollout.dag import GroupGraph

from .drift import DriftBatch, judge_drift, render

DECOMMISSION_AFTER = timedelta(days=30)
REGROUP_AFTER = 2
REGROUP_WINDOW = timedelta(days=180)

ItemKind = Literal["shadow", "regroup", "deprecated", "sunset", "decommission", "drift"]


@dataclass(frozen=True)
class LifecycleItem:
    """One finding; ``proposes`` says whether it comes with a file edit (a PR)."""

    kind: ItemKind
    subject: str
    """tenant/alias, tenant, or a model version id."""
    why: str
    tenant: str | None = None
    alias: str | None = None
    model: str | None = None
    target: str | None = None
    """The successor to shadow, or the group to move to."""
    safe: bool = True
    """A decommission finding with nothing else naming the version (an issue is opened)."""
    body: str = ""
    """The issue body of a drift finding."""

    @property
    def proposes(self) -> bool:
        return self.kind in ("shadow", "regroup") and self.target is not None

    @property
    def branch(self) -> str:
        if self.kind == "shadow":
            return f"modelpin/shadow/{self.tenant}/{self.alias}"
        return f"modelpin/{self.kind}/{self.subject}"


def sunset_items(fleet: Fleet, today: date, warning_days: int | None = None
                 ) -> list[LifecycleItem]:
    days = fleet.policy.sunset_warning_days if warning_days is None else warning_days
    items: list[LifecycleItem] = []
    pinned: dict[str, list[tuple[str, str]]] = {}
    for tid, tenant in sorted(fleet.tenants.items()):
        for name, alias in sorted(tenant.aliases.items()):
            pinned.setdefault(alias.pin, []).append((tid, name))
    for mid, model in sorted(fleet.models.items()):
        users = pinned.get(mid, [])
        if model.deprecated_on is not None and model.deprecated_on <= today and users:
            items.append(LifecycleItem(
                "deprecated", mid,
                f"deprecated since {model.deprecated_on}; pinned by {len(users)} alias(es): "
                + ", ".join(f"{t}/{a}" for t, a in users), model=mid))
        if model.retires_on is None or model.retired(today) or not users:
            continue
        left = (model.retires_on - today).days
        if left > days:
            continue
        successor = model.successor
        for tid, name in users:
            rollout = fleet.tenants[tid].aliases[name].rollout
            where = f"{tid}/{name}"
            base = f"{mid} retires on {model.retires_on} (in {left} days)"
            if successor is None:
                items.append(LifecycleItem("sunset", where, f"{base}; it declares no "
                             "successor: add `successor:` or plan the migration by hand",
                             tid, name, mid))
            elif rollout is not None and rollout.stage != "rolled-back":
                items.append(LifecycleItem("sunset", where, f"{base}; a rollout of "
                             f"{rollout.candidate} is in flight ({rollout.stage})",
                             tid, name, mid))
            elif rollout is not None:
                items.append(LifecycleItem("sunset", where, f"{base}; the rollout of "
                             f"{rollout.candidate} was rolled back: a human decides what next "
                             "(the bot does not replace a rolled-back rollout)", tid, name, mid))
            else:
                items.append(LifecycleItem(
                    "shadow", where, f"{base}; start a shadow of its successor {successor}",
                    tid, name, mid, successor))
    return items


def decommission_items(
    fleet: Fleet, now: datetime, last_mentioned: Mapping[str, datetime | None],
    compatibility_refs: Mapping[str, Sequence[str]] | None = None,
) -> list[LifecycleItem]:
    """``last_mentioned[model]``: when a tenant file last named it (None: never)."""
    used = {a.pin for t in fleet.tenants.values() for a in t.aliases.values()}
    used |= {a.rollout.candidate for t in fleet.tenants.values()
             for a in t.aliases.values() if a.rollout is not None}
    judges = {e.judge for e in fleet.evidence.values()}
    successors = {m.successor: mid for mid, m in fleet.models.items() if m.successor}
    items: list[LifecycleItem] = []
    for mid in sorted(fleet.models):
        if mid in used or mid not in last_mentioned:
            continue
        since = last_mentioned[mid]
        if since is not None and now - since < DECOMMISSION_AFTER:
            continue
        unused = f"no tenant file has named it since {since:%Y-%m-%d}" if since \
            else "never named by a tenant"
        still = []
        if mid in judges:
            still.append("judge of BETS evidence")
        if mid in successors:
            still.append(f"successor of {successors[mid]}")
        still += list((compatibility_refs or {}).get(mid, ()))
        if still:
            why = (f"not yet safe to decommission: {unused}, but still named as "
                   + ", ".join(still) + ": remove those first")
        else:
            why = (f"safe to decommission: {unused}: its model_versions file and provider "
                   "access can go")
        items.append(LifecycleItem("decommission", mid, why, model=mid, safe=not still))
    return items


def regroup_items(fleet: Fleet, rollbacks: Mapping[str, Sequence[datetime]], now: datetime
                  ) -> list[LifecycleItem]:
    """``rollbacks[tenant]``: when each rollback of the tenant landed on main."""
    graph = GroupGraph.build(fleet.policy.groups)
    order = graph.topological_order()
    items: list[LifecycleItem] = []
    for tid, tenant in sorted(fleet.tenants.items()):
        recent = [t for t in rollbacks.get(tid, ()) if now - t <= REGROUP_WINDOW]
        if len(recent) < REGROUP_AFTER:
            continue
        later = [g for g in order if tenant.group in fleet.policy.groups[g].after]
        why = (f"{len(recent)} rollbacks in the last {REGROUP_WINDOW.days} days "
               f"(latest {max(recent):%Y-%m-%d})")
        if not later:
            items.append(LifecycleItem("regroup", tid, f"{why}; {tenant.group} is already the "
                                       "most conservative group", tid))
            continue
        items.append(LifecycleItem("regroup", tid, f"{why}: move from {tenant.group} to "
                                   f"{later[0]}, which rolls out after it", tid,
                                   target=later[0]))
    return items


def drift_items(fleet: Fleet, batch: DriftBatch) -> list[LifecycleItem]:
    """Every alias whose pinned version drifted from the tenant's baseline window."""
    items: list[LifecycleItem] = []
    for tid, tenant in sorted(fleet.tenants.items()):
        for name, alias in sorted(tenant.aliases.items()):
            windows = batch.windows.get((tid, name))
            if windows is None:
                continue
            report = judge_drift(tid, name, alias.pin, *windows)
            if not report.drifted:
                continue
            why = f"{alias.pin} drifted from the tenant's baseline: " + "; ".join(
                f"{v.signal} ({v.reason})" for v in report.drifted)
            items.append(LifecycleItem("drift", f"{tid}/{name}", why, tid, name, alias.pin,
                                       body=render(report)))
    return items
