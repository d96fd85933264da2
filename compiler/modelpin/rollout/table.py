"""The stage transition table, as data: the one definition of which stage may follow
which, and which gates each move must pass (SPEC section 2).

``allowed_transitions`` (``explain``, the bot) lists the rows leaving a state;
``change._classify`` (``check``, ``plan``) finds the row between a base and a head state;
both run the row's gates through ``transitions.transition_gates``. A rule therefore
exists once: change a row here and explain, the bot and check all follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelpin.rollout.state import StateKind

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

GateName = Literal[
    "frozen",  # the tenant is not frozen (base or head)
    "candidate",  # the candidate exists, has the alias's kind, is neither retired nor blocked
    "compatibility",  # the verdict for the tenant's workload allows pin -> candidate
    "rollback-record",  # the tenant never rolled back from the candidate (2.1 rule 7)
    "shadow-time",  # the shadow was held >= the group's shadow, from the base since
    "soak",  # the stage was held >= the group's soak, from the base since
    "evidence",  # BETS evidence passes the group's gate
    "upstream-cleared",  # every upstream group has cleared the candidate
    "upstream-rollbacks",  # no upstream tenant rolled back from the candidate
    "approval",  # manual groups: the step is approved
    "max-in-flight",  # the group's blast-radius cap
    "promotion-record",  # pinned_at / promoted_from written by the promotion (2.1 rule 7)
    "revert-or-override",  # a direct pin change: a revert, or override_allowed
]


@dataclass(frozen=True)
class Transition:
    """One row: ``sources`` -> ``target``, allowed when every gate in ``gates`` is open.

    ``field`` is where a blocking reason points, relative to the alias (the field the
    change edits); ``fresh_since``: entering the target stage must set a new ``since``;
    ``action`` names the move in a frozen tenant's refusal.
    """

    kind: TransitionKind
    sources: frozenset[StateKind]
    target: StateKind
    gates: tuple[GateName, ...]
    field: tuple[str, ...]
    fresh_since: bool
    action: str
    summary: str


def _row(kind: TransitionKind, sources: set[StateKind], target: StateKind,
         gates: tuple[GateName, ...], field: tuple[str, ...], summary: str, *,
         fresh_since: bool = True, action: str = "advance") -> Transition:
    return Transition(kind, frozenset(sources), target, gates, field, fresh_since, action,
                      summary)


TABLE: tuple[Transition, ...] = (
    _row("start-shadow", {"pinned"}, "shadow",
         ("frozen", "candidate", "compatibility", "rollback-record"), ("rollout",),
         "V resolves, same kind, not retired or blocked; compatibility allows it; not "
         "frozen; the tenant has no rollback of V on record"),
    _row("first-canary", {"shadow"}, "canary",
         ("frozen", "candidate", "shadow-time", "evidence", "upstream-cleared", "approval",
          "max-in-flight"), ("rollout", "stage"),
         "shadow held >= the group's shadow; V still not retired or blocked; evidence "
         "passes; every upstream group has cleared V; approval if manual; max_in_flight "
         "not exceeded; not frozen"),
    _row("advance", {"canary"}, "canary",
         ("frozen", "candidate", "soak", "evidence", "upstream-rollbacks", "approval"),
         ("rollout", "percent"),
         "held >= soak; V still not retired or blocked; evidence still passes; no upstream "
         "rollback of V; approval if manual; not frozen"),
    _row("promote", {"canary"}, "pinned", ("frozen", "candidate", "soak", "promotion-record"),
         ("pin",),
         "canary 100 held >= soak; pinned_at and promoted_from recorded; not frozen",
         fresh_since=False, action="promotion"),
    _row("pause", {"canary", "paused"}, "paused", (), ("rollout", "stage"),
         "always (reason required)", fresh_since=False, action="pause"),
    _row("resume", {"paused"}, "canary", ("frozen", "candidate"), ("rollout", "stage"),
         "not frozen; V not retired or blocked since", action="resume"),
    _row("rollback", {"shadow", "canary", "paused"}, "rolled-back", (), ("rollout", "stage"),
         "always (reason required): nothing blocks a rollback", fresh_since=False,
         action="rollback"),
    _row("acknowledge-rollback", {"rolled-back"}, "pinned", (), ("rollout",),
         "always (the rollback stays on record)", fresh_since=False, action="acknowledgement"),
    _row("repin", {"pinned"}, "pinned", ("revert-or-override",), ("pin",),
         "override_allowed (in the base), or a revert to an earlier pin of the base's "
         "first-parent history (not frozen, for an override)", fresh_since=False,
         action="pin change"),
)

BY_KIND: dict[TransitionKind, Transition] = {row.kind: row for row in TABLE}


def leaving(state: StateKind) -> list[Transition]:
    """The rows that leave ``state``, in table order."""
    return [row for row in TABLE if state in row.sources]


def between(source: StateKind, target: StateKind) -> list[Transition]:
    """The rows from ``source`` to ``target`` (several only for canary -> canary and
    pinned -> pinned, which the caller tells apart by percent and pin)."""
    return [row for row in TABLE if source in row.sources and row.target == target]
