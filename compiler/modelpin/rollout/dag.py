"""The rollout-group DAG: ``after`` edges from upstream to downstream groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from modelpin.model.policies import RolloutGroup


@dataclass(frozen=True)
class GroupGraph:
    """Groups and their ``after`` edges (upstream -> downstream), known to be acyclic."""

    graph: nx.DiGraph

    @classmethod
    def build(cls, groups: Mapping[str, RolloutGroup]) -> GroupGraph:
        """Build the graph; raise ``GroupCycleError`` if the edges form a cycle.

        Edges to unknown groups are ignored here (the loader reports them).
        """
        graph = nx.DiGraph()
        graph.add_nodes_from(sorted(groups))
        for name, group in groups.items():
            for upstream in group.after:
                if upstream in groups:
                    graph.add_edge(upstream, name)
        cycle = find_cycle(graph)
        if cycle:
            raise GroupCycleError(cycle)
        return cls(graph)

    def ancestors(self, group: str) -> frozenset[str]:
        """Every group upstream of ``group`` (transitively)."""
        return frozenset(nx.ancestors(self.graph, group))

    def topological_order(self) -> list[str]:
        """Upstream first; ties broken by name so the order is stable."""
        return list(nx.lexicographical_topological_sort(self.graph))


class GroupCycleError(ValueError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("rollout groups form a cycle: " + " -> ".join([*cycle, cycle[0]]))


def find_cycle(graph: nx.DiGraph) -> list[str] | None:
    """One cycle as a list of groups (each ``after`` the previous), or None."""
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    return [str(u) for u, _ in edges]
