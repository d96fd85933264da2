"""Fleet-wide rollout facts, indexed once per fleet in O(tenants).

Gates that look beyond one tenant — has every upstream group cleared a candidate, how
many tenants of a group run a canary of it — read this index instead of scanning the
fleet, so judging k changed tenants of an n-tenant fleet costs O(n + k), not O(n * k).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from modelpin.model.fleet import Fleet
from modelpin.rollout.dag import GroupGraph
from modelpin.rollout.state import AliasState


@dataclass
class CandidateProgress:
    """How far one group has taken one candidate version."""

    cleared_by: list[str] = field(default_factory=list)
    """Tenants running it at canary 100 or pinned to it by a judged promotion (with
    ``pinned_at`` and ``promoted_from``, SPEC 2.1 rule 7); an onboarding pin clears nothing."""
    pinned_by: list[str] = field(default_factory=list)
    """Tenants pinned to it, promoted or not (a new tenant of the group may pin it)."""
    unfinished: list[tuple[str, AliasState]] = field(default_factory=list)
    """Tenants with it in flight below canary 100 (shadow, canary < 100, any pause)."""
    rolled_back: list[str] = field(default_factory=list)
    canary_tenants: set[str] = field(default_factory=set)
    """Tenants serving it traffic (canary or paused, any percent): the blast radius."""


ProgressKey = tuple[str, str]
"""(group, candidate version)."""

RollbackRecords = Mapping[tuple[str, str], Collection[str]]
"""(tenant, alias) -> candidates it rolled back from, kept on record from the published
history and not cleared by a human (SPEC 2.1 rule 7)."""


@dataclass
class FleetIndex:
    """Per group and candidate: who cleared it, who is unfinished, who rolled back."""

    tenants_per_group: dict[str, int]
    progress: dict[ProgressKey, CandidateProgress]

    @classmethod
    def build(cls, fleet: Fleet, records: RollbackRecords | None = None) -> FleetIndex:
        per_group: dict[str, int] = {}
        progress: dict[ProgressKey, CandidateProgress] = {}
        for tenant_id, tenant in fleet.tenants.items():
            group = tenant.group
            per_group[group] = per_group.get(group, 0) + 1
            for alias in tenant.aliases.values():
                state = AliasState.of(alias)
                pinned = progress.get((group, state.pin))
                if pinned is None:
                    pinned = progress[(group, state.pin)] = CandidateProgress()
                pinned.pinned_by.append(tenant_id)
                if alias.promoted_from is not None:
                    pinned.cleared_by.append(tenant_id)
                if state.candidate is None:
                    continue
                entry = progress.get((group, state.candidate))
                if entry is None:
                    entry = progress[(group, state.candidate)] = CandidateProgress()
                if state.kind == "rolled-back":
                    entry.rolled_back.append(tenant_id)
                    continue
                if state.kind == "canary" and state.percent == 100:
                    entry.cleared_by.append(tenant_id)
                else:
                    entry.unfinished.append((tenant_id, state))
                if state.kind in ("canary", "paused"):
                    entry.canary_tenants.add(tenant_id)
        for (tenant_id, _alias), candidates in (records or {}).items():
            found = fleet.tenants.get(tenant_id)
            if found is None:
                continue
            for candidate in candidates:
                entry = progress.setdefault((found.group, candidate), CandidateProgress())
                if tenant_id not in entry.rolled_back:
                    entry.rolled_back.append(tenant_id)
        return cls(per_group, progress)

    def of(self, group: str, candidate: str) -> CandidateProgress:
        return self.progress.get((group, candidate)) or _EMPTY

    def upstream_blockers(
        self, graph: GroupGraph, group: str, candidate: str, *, rollbacks_only: bool = False
    ) -> list[str]:
        """One sentence per ancestor group (with tenants) that has not cleared ``candidate``.

        Cleared: at least one tenant runs it at canary 100 or has promoted it, every
        tenant with it in flight has reached canary 100, and none rolled back from it.
        With ``rollbacks_only``, only rollbacks count (the rule for later canary steps).
        """
        out = []
        for upstream in _ancestors_in_order(graph, group):
            if not self.tenants_per_group.get(upstream):
                continue
            p = self.of(upstream, candidate)
            why = None
            if p.rolled_back:
                why = f"tenant {min(p.rolled_back)} rolled back from it"
            elif rollbacks_only:
                continue
            elif p.unfinished:
                tenant_id, state = min(p.unfinished, key=lambda u: u[0])
                why = f"tenant {tenant_id} is at {_stage(state)}"
            elif not p.cleared_by:
                why = "no tenant runs it at canary 100 or has promoted it"
            if why:
                out.append(f"upstream group {upstream} has not cleared {candidate}: {why}")
        return out


_EMPTY = CandidateProgress()


def _stage(state: AliasState) -> str:
    if state.kind in ("canary", "paused"):
        return f"{state.kind} {state.percent:g}"
    return state.kind


def _ancestors_in_order(graph: GroupGraph, group: str) -> list[str]:
    """Upstream groups of ``group``, most upstream first (groups are few: no caching)."""
    if group not in graph.graph:
        return []
    ancestors = graph.ancestors(group)
    return [g for g in graph.topological_order() if g in ancestors]
