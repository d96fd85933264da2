"""The verified routing table as the request path sees it: immutable, pre-built answers.

A ``RoutingTable`` is built once per accepted payload (see ``payload.py``) and never
mutated; the router swaps a single reference to install a new one, so a request reads
one whole table. Every answer the request path can give is a ``Decision`` object built
here at load time, so ``resolve`` allocates nothing: pinned and shadow routes carry
their one ``fixed`` decision, sticky routes map a session's stored cohort to a decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from .errors import UnboundDecisionError

STABLE: Final = "stable"
CANARY: Final = "canary"

PINNED: Final = "pinned"
SHADOW: Final = "shadow"
CANARY_MODE: Final = "canary"
ROLLED_BACK: Final = "rolled-back"
MODES: Final = frozenset({PINNED, SHADOW, CANARY_MODE, ROLLED_BACK})

FALLBACK_STABLE: Final = "fallback-stable"
STRUCTURED_ERROR: Final = "structured-error"
FAILURE_POLICIES: Final = frozenset({FALLBACK_STABLE, STRUCTURED_ERROR})


def _not_handed_out(latency_seconds: float) -> None:
    """``observe`` of a decision no router handed out: it carries no counters."""
    raise UnboundDecisionError(
        "Decision.observe: this decision was not handed out by Router.resolve (a "
        "table's shared decision, or one built by hand: it carries no counters); "
        "observe on the decision resolve returned, or report with "
        "router.record(tenant, alias, decision, latency=...)"
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one request goes.

    ``model`` is the exact model version to call; ``cohort`` is ``"stable"`` or
    ``"canary"``; ``shadow`` names the model that receives a comparison-only copy (shadow
    mode) and then ``shadow_comparison_only`` is True: the gateway must never execute a
    tool call the shadow model makes, only record it for comparison. ``serial`` is the
    serial of the verified table that produced the answer. ``session_reset`` is True
    exactly once for a session cut over from a rolled-back candidate to stable: the
    gateway should drop conversation state that depended on the candidate.

    ``observe(latency_seconds)`` reports a healthy request: it finished in that many
    seconds and there is nothing else to report (no task, error, similarity, answer
    signal or unchecked tool call; for those use ``Router.record``). On a decision
    ``resolve`` handed out it is a single C call (the ``append`` of the route's latency
    buffer, folded into the counters at every scrape; ``telemetry.py``); on a decision
    no router handed out it raises ``UnboundDecisionError`` rather than drop the count.

    ``_row`` is private to the router: the telemetry counters of the route and cohort
    this decision was handed out for (``telemetry.RouterTelemetry.bind``), or None for
    a decision shared across routes. Neither takes part in equality, hashing or repr.
    """

    model: str
    cohort: str
    shadow: str | None
    serial: int
    session_reset: bool = False
    shadow_comparison_only: bool = False
    _row: list[float] | None = field(default=None, compare=False, hash=False, repr=False)
    observe: Callable[[float], None] = field(
        default=_not_handed_out, compare=False, hash=False, repr=False
    )


class Route:
    """One tenant alias in one table, with its pre-built decisions.

    ``fixed`` is the single answer of a route that needs no session (pinned, shadow).
    A pinned route's own answer, carrying its counters, is made by the router on the
    route's first resolve (``Router._bind_pinned``): until then the private slot
    ``_fixed`` that ``resolve`` reads is unset (reading it raises AttributeError, which
    costs the request path nothing), and ``fixed`` is the table's shared decision.
    Otherwise ``sticky`` maps a stored cohort to its decision; a rolled-back route has no
    entry for ``"canary"``: those sessions drain until ``drain_until`` (epoch seconds),
    then get ``reset`` once and ``stable`` afterwards. ``session_key`` namespaces stored
    session pins: it is the route's salt, which changes with the candidate, so pins of an
    earlier rollout never leak into a new one.
    """

    __slots__ = (
        "_fixed",
        "alias",
        "basis_points",
        "canary",
        "candidate",
        "drain_seconds",
        "drain_until",
        "mode",
        "paused",
        "percent",
        "reset",
        "salt",
        "session_key",
        "since",
        "stable",
        "stable_model",
        "sticky",
        "tenant",
    )

    def __init__(
        self,
        tenant: str,
        alias: str,
        mode: str,
        stable_model: str,
        candidate: str | None,
        percent: float,
        paused: bool,
        salt: str,
        since: str | None,
        drain_until: float | None,
        stable: Decision,
        fixed: Decision | None,
        canary: Decision,
        reset: Decision,
        sticky: dict[str, Decision],
    ) -> None:
        self.tenant = tenant
        self.alias = alias
        self.mode = mode
        self.stable_model = stable_model
        self.candidate = candidate
        self.percent = percent
        self.basis_points = round(percent * 100) if percent else 0
        self.paused = paused
        self.salt = salt
        self.session_key = salt
        self.since = since
        self.drain_until = drain_until
        # Set by the table builder; a rolled-back route's drain runs from when a router
        # first applied the rollback (router.py), not from ``since``.
        self.drain_seconds = 0
        self.stable = stable
        if mode != PINNED:  # a pinned route's is bound on its first resolve (see above)
            self._fixed = fixed
        # For routes without a candidate, canary and reset are the stable decision and
        # are never served.
        self.canary = canary
        self.reset = reset
        self.sticky = sticky

    @property
    def fixed(self) -> Decision | None:
        try:
            return self._fixed
        except AttributeError:  # a pinned route not resolved yet
            return self.stable

    @fixed.setter
    def fixed(self, decision: Decision | None) -> None:
        self._fixed = decision


class TenantPolicy(NamedTuple):
    """What a tenant's tool calls must satisfy, and what happens when one does not.

    (A NamedTuple: one is built per tenant at load, and a frozen dataclass costs ~1 µs
    per instance more.)"""

    failure_policy: str
    tools: dict[str, Any]
    coercions: tuple[str, ...] = ()  # the tenant's allowed coercions (coercion.py)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """A verified table. ``routes[tenant][alias]`` is the request path's only lookup."""

    serial: int
    sha256: str
    issued_at: str
    expires_at: str
    expires_ts: float
    source_commit: str
    routes: dict[str, dict[str, Route]]
    tenants: dict[str, TenantPolicy]
    models: dict[str, dict[str, str]]
    issued_ts: float = 0.0
    signed_by: tuple[str, ...] = ()
    """Ids of the trusted keys whose signatures verified (set by ``TrustedTableSet``)."""
