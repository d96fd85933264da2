"""``Router``: the imperative shell a gateway embeds.

It fetches the envelope from its source, runs it through ``TrustedTableSet`` (verify),
persists the floor, then installs the table by swapping one reference (swap). Requests
read that reference once and never take a lock; every answer is a ``Decision`` built at
load time. Any reload failure keeps the current table and is reported three ways:
``status()``, the ``modelpin.router`` logger, and Prometheus metrics.

Expired table policy (``stale_policy``): ``"serve"`` (the default) keeps answering from
the last good table and reports ``stale=True``, because refusing would turn a stuck CI
pipeline into a platform outage; ``"refuse"`` makes ``resolve`` raise
``TableUnavailableError`` once the table has expired (noticed by the next reload attempt,
so within one poll interval).

Freshness and the freeze attack: an attacker who blocks updates (or a stuck pipeline)
can keep a router on its last table until that table goes stale: ``expires_at``
(issued_at + the policy ``ttl``), or sooner with ``max_staleness`` (seconds after
``issued_at``). Past that, ``stale_policy="refuse"`` stops answering; ``"serve"`` keeps
answering and reports ``stale=True`` (the bound is then an alarm, not a stop).

Trust: either a plain list of trusted keys with a threshold, or a trust ``root`` (see
``root.py``). With a root, every reload first follows the root chain published beside
the table (``<N>.root.json``, N = the trusted version + 1, ...), persists each adopted
root in the state file, and only then verifies the table against the newest root.

The library never touches process-wide state (the garbage collector, signal handlers,
the root logger): it runs inside a customer's gateway.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import CollectorRegistry

from modelpin import signing

from . import drift
from .bucketing import bucket
from .drift import ToolCall
from .errors import (
    ResolveError,
    RollbackError,
    RootRejected,
    RouterError,
    SerialConflictError,
    SourceError,
    StateFileError,
    TableRejected,
    TableUnavailableError,
    UnexpectedReloadError,
    UnknownAliasError,
    UnknownTenantError,
    UntrustedTableError,
)
from .floor import Floor, State, load_state, save_state
from .metrics import RouterMetrics
from .root import MAX_ROOT_ROTATIONS, Root
from .sessions import InMemorySessionStore, SessionStore
from .sources import FileSource, HttpSource, TableSource, backoff_delay
from .table import (
    CANARY,
    CANARY_MODE,
    ROLLED_BACK,
    SHADOW,
    STABLE,
    Decision,
    Route,
    RoutingTable,
)
from .telemetry import EventSink, RouterTelemetry
from .tools import ToolCallResult, ToolContracts
from .trips import Trip, TripStore, TripStoreUnavailable
from .trusted import DEFAULT_MAX_BYTES, TrustedTableSet

log = logging.getLogger("modelpin.router")

StalePolicy = Literal["serve", "refuse"]
Outcome = Literal["accepted", "unchanged", "rejected", "source-error", "error"]

_REFUSING: dict[str, dict[str, Route]] = {}
#: A started router folds ``Decision.observe``'s latency buffers this often (seconds).
FOLD_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RefreshResult:
    outcome: Outcome
    serial: int | None
    error: RouterError | None = None


@dataclass(frozen=True, slots=True)
class RouterStatus:
    serial: int | None
    sha256: str | None
    issued_at: str | None
    expires_at: str | None
    stale: bool
    serving: bool
    source: str
    last_attempt: float | None
    last_success: float | None
    last_error: str | None
    last_error_kind: str | None
    consecutive_failures: int
    root_version: int | None = None
    """Version of the trust root in use (None with a plain list of trusted keys)."""


@dataclass(frozen=True, slots=True)
class _Installed:
    table: RoutingTable
    contracts: ToolContracts


def trusted_keys(keys: Iterable[Ed25519PublicKey | str]) -> dict[str, Ed25519PublicKey]:
    """Key id -> key for public keys given as objects or as base64 of the raw 32 bytes."""
    out: dict[str, Ed25519PublicKey] = {}
    for k in keys:
        key = signing.load_public_key_b64(k) if isinstance(k, str) else k
        out[signing.keyid_of(key)] = key
    return out


def _read_root(root: bytes | str | Path) -> bytes:
    if isinstance(root, bytes):
        return root
    try:
        return Path(root).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the trust root {root}: {exc}") from None


def _source_for(source: TableSource | str | Path, max_bytes: int) -> TableSource:
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return HttpSource(source, max_bytes=max_bytes)
    if isinstance(source, (str, Path)):
        return FileSource(source, max_bytes=max_bytes)
    return source


class Router:
    """Resolve requests against the newest verified routing table."""

    __slots__ = (
        "_apply_lock",
        "_clock",
        "_current",
        "_effective",
        "_envelope_digest",
        "_failures",
        "_last_attempt",
        "_last_error",
        "_last_success",
        "_max_backoff",
        "_metrics",
        "_poll_interval",
        "_refresh_lock",
        "_revoked",
        "_rollback_seen",
        "_routes",
        "_source",
        "_stale_policy",
        "_state_file",
        "_stop",
        "_store",
        "_store_claim",
        "_store_get",
        "_telemetry",
        "_thread",
        "_trip_interval",
        "_trip_thread",
        "_trips",
        "_trips_applied",
        "_trips_known",
        "_trusted",
        "accepted_serials",
        "name",
        "record",
        "registry",
    )

    def __init__(
        self,
        source: TableSource | str | Path,
        trusted: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey | str] | None = None,
        *,
        threshold: int = 1,
        root: bytes | str | Path | None = None,
        max_staleness: float | None = None,
        state_file: str | Path | None = None,
        session_store: SessionStore | None = None,
        stale_policy: StalePolicy = "serve",
        poll_interval: float = 5.0,
        max_backoff: float = 300.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        name: str = "default",
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        events: EventSink | None = None,
        trips: TripStore | None = None,
        trip_poll_interval: float = 1.0,
    ) -> None:
        if stale_policy not in ("serve", "refuse"):
            raise ValueError("stale_policy is 'serve' or 'refuse'")
        if (trusted is None) == (root is None):
            raise ValueError("pass either trusted keys or a trust root")
        self.name = name
        self._source = _source_for(source, max_bytes)
        self._state_file = Path(state_file) if state_file is not None else None
        state = load_state(self._state_file) if self._state_file is not None else State()
        if root is not None:
            self._trusted = TrustedTableSet(
                root=_read_root(root), floor=state.floor, max_bytes=max_bytes,
                max_staleness=max_staleness,
            )
            if state.root is not None:
                try:
                    self._trusted.adopt_persisted_root(state.root)
                except RootRejected as exc:
                    raise StateFileError(
                        f"state file {self._state_file} holds a bad root: {exc}"
                    ) from None
        else:
            assert trusted is not None
            keys = dict(trusted) if isinstance(trusted, Mapping) else trusted_keys(trusted)
            self._trusted = TrustedTableSet(
                keys, threshold=threshold, floor=state.floor, max_bytes=max_bytes,
                max_staleness=max_staleness,
            )
        # `is None`, not `or`: an empty InMemorySessionStore is falsy (it has __len__).
        self._store: SessionStore = (
            session_store if session_store is not None else InMemorySessionStore()
        )
        self._store_get = self._store.get
        self._store_claim = self._store.claim
        self._stale_policy = stale_policy
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        # The caller's registry, else a private one (``router.registry``): a library
        # registers nothing in the process-global registry behind the gateway's back.
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = RouterMetrics(name, self.registry)
        self._telemetry = RouterTelemetry(name, self.registry, events=events, clock=clock)
        #: ``record(tenant, alias, decision, latency=None, task_completed=None,
        #: downstream_errors=0, similarity=None, tool_calls=0, tool_call_failures=0,
        #: session_id=None, prompt=None, refused=None, format_ok=None,
        #: response_tokens=None)``: report one request's outcome (see
        #: ``RouterTelemetry.record``). Bound straight to the telemetry: one call, no lock.
        self.record = self._telemetry.record
        self._clock = clock
        self._routes: dict[str, dict[str, Route]] = _REFUSING
        self._effective: dict[str, dict[str, Route]] = _REFUSING
        self._apply_lock = threading.Lock()
        self._trips = trips
        self._trip_interval = trip_poll_interval
        self._trip_thread: threading.Thread | None = None
        self._trips_known: dict[str, Trip] = {}
        self._trips_applied: tuple[str, ...] = ()
        # session key -> when this router (or, with a trip store, the first router)
        # first applied a rollback of that route: the drain window starts there.
        self._rollback_seen: dict[str, float] = {}
        self._current: _Installed | None = None
        self._envelope_digest: str | None = None
        self._refresh_lock = threading.Lock()
        self._last_attempt: float | None = None
        self._last_success: float | None = None
        self._last_error: RouterError | None = None
        self._failures = 0
        self._revoked = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Every serial this router has installed (a gateway can audit against it).
        self.accepted_serials: set[int] = set()

    # --- request path: no locks, no allocation beyond what a new session needs -------

    def resolve(self, tenant: str, alias: str, session_id: str) -> Decision:
        """The decision for one request; raises a ``ResolveError`` subclass if the tenant
        or alias is unknown or no usable table is loaded. Never raises a store fault."""
        try:
            route = self._routes[tenant][alias]
            fixed = route._fixed
        except KeyError:
            raise self._resolve_error(tenant, alias) from None
        except AttributeError:  # a pinned route's first resolve in this table
            return self._bind_pinned(route)
        if fixed is not None:
            return fixed
        try:
            cohort = self._store_get(route.session_key, session_id)
        except Exception:
            return self._without_store(route, session_id)
        if cohort is not None:
            decision = route.sticky.get(cohort)
            if decision is not None:
                return decision
        return self._first_sight(route, session_id, cohort)

    def _bind_pinned(self, route: Route) -> Decision:
        """The pinned route's own decision, carrying its counters, made on its first
        resolve and kept as its answer (``Route``): later resolves are the fast path.
        Needs no store. Two threads here at once make two decisions on the one row."""
        decision = self._telemetry.bind_decision(route.tenant, route.alias, route.stable)
        route.fixed = decision
        return decision

    def _first_sight(self, route: Route, session_id: str, cohort: str | None) -> Decision:
        if route.mode != CANARY_MODE:  # rolled-back
            if cohort != CANARY:
                return route.stable
            assert route.drain_until is not None
            if self._clock() < route.drain_until:
                return route.canary
            try:
                changed = self._store.cut_over(route.session_key, session_id, STABLE)
            except Exception:
                # The session was seen on the candidate: resetting twice is safer than
                # switching models under a conversation without telling the gateway.
                self._metrics.store_errors.inc()
                return route.reset
            return route.reset if changed else route.stable
        want = CANARY if bucket(route.salt, session_id) < route.basis_points else STABLE
        try:
            got = self._store_claim(route.session_key, session_id, want)
        except Exception:
            self._metrics.store_errors.inc()
            return route.sticky[want]
        return route.sticky.get(got) or route.sticky[want]

    def _without_store(self, route: Route, session_id: str) -> Decision:
        self._metrics.store_errors.inc()
        if route.mode != CANARY_MODE:
            return route.stable
        if bucket(route.salt, session_id) < route.basis_points:
            return route.canary
        return route.stable

    def _resolve_error(self, tenant: str, alias: str) -> ResolveError:
        current = self._current
        if current is None:
            return TableUnavailableError("no verified routing table is loaded")
        if self._routes is _REFUSING:
            return TableUnavailableError(
                f"routing table serial {current.table.serial} expired at "
                f"{current.table.expires_at} and the stale policy is 'refuse'"
            )
        if tenant not in current.table.routes:
            return UnknownTenantError(tenant)
        return UnknownAliasError(tenant, alias)

    def check_tool_call(
        self,
        tenant: str,
        tool: str,
        arguments: Any,
        *,
        shadow: bool = False,
        alias: str | None = None,
        cohort: str | None = None,
    ) -> ToolCallResult:
        """Validate a tool call's arguments against the tenant's contract and apply its
        failure policy. ``shadow=True`` for a call made by a shadow model (see
        ``Decision.shadow_comparison_only``): the answer is then never ``EXECUTE``.

        The call counts itself in the telemetry under ``alias`` and ``cohort`` (the
        request's ``Decision.cohort``; ``shadow=True`` counts as ``shadow``). Without
        them it counts under cohort ``unknown``, which no rollout signal reads."""
        current = self._current
        if current is None or self._routes is _REFUSING:
            raise self._resolve_error(tenant, "")
        policy = current.table.tenants.get(tenant)
        if policy is None:
            raise UnknownTenantError(tenant)
        result = current.contracts.check(tenant, policy, tool, arguments, shadow=shadow)
        self._telemetry.tool_call(
            tenant,
            alias or "",
            "shadow" if shadow else (cohort if cohort in (STABLE, CANARY) else "unknown"),
            tool,
            result.valid,
            result.coercions,
            result.errors,
        )
        return result

    def compare_shadow(
        self,
        tenant: str,
        alias: str,
        stable_calls: Sequence[ToolCall],
        shadow_calls: Sequence[ToolCall],
    ) -> dict[tuple[str, str], int]:
        """Compare a shadow answer's tool calls, ``[(tool, arguments), ...]``, with the
        stable answer's for the same request; count the comparison and each difference
        per tool and kind (``drift.py``) and return them."""
        counts = drift.compare(stable_calls, shadow_calls)
        self._telemetry.drift(tenant, alias, counts)
        return counts

    @property
    def telemetry(self) -> RouterTelemetry:
        return self._telemetry

    # --- reload: verify, persist, swap --------------------------------------------

    def refresh(self) -> RefreshResult:
        """Fetch, verify and install the newest table once. Never raises a table or
        source fault: the result (and ``status()``) says what happened."""
        with self._refresh_lock:
            start = self._clock()
            self._last_attempt = start
            try:
                result = self._refresh(start)
            except TableRejected as exc:
                result = self._failed("rejected", exc)
            except (SourceError, StateFileError) as exc:
                result = self._failed("source-error", exc)
            except Exception as exc:  # a bug, or a fault nobody foresaw: never raise
                log.exception("router %s: unexpected error while reloading", self.name)
                result = self._failed(
                    "error", UnexpectedReloadError(f"{type(exc).__name__}: {exc}")
                )
            else:
                self._failures = 0
                self._last_error = None
                self._last_success = start
                self._metrics.reload(result.outcome)
            self._check_expiry(self._clock())
            self._telemetry.flush()  # bounds observe's buffers on a router never started
            return result

    def _refresh(self, start: float) -> RefreshResult:
        if self._trusted.root is not None:
            self._update_root()
        fetched = self._source.fetch()
        serial = None if self._current is None else self._current.table.serial
        if fetched is None:
            return RefreshResult("unchanged", serial)
        digest = hashlib.sha256(fetched.data).hexdigest()
        if digest == self._envelope_digest:  # the very bytes already accepted
            self._source.commit(fetched.token)
            return RefreshResult("unchanged", serial)
        table = self._trusted.verify(fetched.data, start)
        if table is None:
            self._source.commit(fetched.token)
            return RefreshResult("unchanged", serial)
        self._persist(Floor(table.serial, table.sha256))
        self._trusted.accept(table)
        self._install(table)
        self._envelope_digest = digest
        self._source.commit(fetched.token)
        log.info("router %s: installed routing table serial %d", self.name, table.serial)
        return RefreshResult("accepted", table.serial)

    def _persist(self, floor: Floor | None, root: Root | None = None) -> None:
        if self._state_file is None:
            return
        root = root or self._trusted.root
        save_state(self._state_file, State(floor, None if root is None else root.envelope))

    def _update_root(self) -> None:
        """Follow the root chain: adopt root N+1, N+2, ... while the source has one.
        Each is verified against the one before (and itself), persisted, then adopted."""
        fetch_root = getattr(self._source, "fetch_root", None)
        if fetch_root is None:
            return
        for _ in range(MAX_ROOT_ROTATIONS):
            current = self._trusted.root
            assert current is not None
            data = fetch_root(current.version + 1)
            if data is None:
                break
            root = self._trusted.verify_root(data)
            self._persist(self._trusted.floor_after(root), root)
            self._trusted.accept_root(root)
            log.warning("router %s: adopted trust root version %d (table keys %s, "
                        "threshold %d)", self.name, root.version,
                        ", ".join(k[:16] for k in root.table.keys), root.table.threshold)
            self._envelope_digest = None  # re-verify the held table under the new root
        current_table = self.table
        revoked = current_table is not None and not self._trusted.still_trusted(current_table)
        if revoked and not self._revoked:
            log.error("router %s: ALARM the table being served (serial %d) was signed by "
                      "keys the trust root no longer trusts", self.name,
                      current_table.serial if current_table else 0)
            self._metrics.alarm(UntrustedTableError.kind)
        self._revoked = revoked

    def _install(self, table: RoutingTable) -> None:
        self.accepted_serials.add(table.serial)
        self._current = _Installed(table, ToolContracts())
        self._revoked = False
        self._apply(table, install=True)  # the swap: one reference, read once per request
        self._metrics.serial.set(table.serial)
        self._metrics.expires.set(table.expires_ts)

    def _failed(self, outcome: Outcome, exc: RouterError) -> RefreshResult:
        self._failures += 1
        self._last_error = exc
        kind = getattr(exc, "kind", "error")
        self._metrics.reload(kind)
        if isinstance(exc, (SerialConflictError, RollbackError)):
            self._metrics.alarm(kind)
            log.error("router %s: ALARM %s: %s", self.name, kind, exc)
        else:
            log.warning("router %s: reload failed (%s): %s", self.name, kind, exc)
        serial = None if self._current is None else self._current.table.serial
        return RefreshResult(outcome, serial, exc)

    def _check_expiry(self, now: float) -> None:
        current = self._current
        if current is None:
            return
        stale = self._revoked or self._trusted.stale_at(current.table) <= now
        self._metrics.stale.set(1 if stale else 0)
        if stale and self._stale_policy == "refuse":
            if self._routes is not _REFUSING:
                log.error("router %s: table expired, refusing requests", self.name)
            self._routes = _REFUSING
        elif self._routes is not self._effective:
            self._routes = self._effective

    # --- background polling ----------------------------------------------------------

    def start(self) -> RefreshResult:
        """Load once now, then poll in a daemon thread (backoff on failures). The poller
        is started whatever the first load did, so a good table published later is
        still picked up; with a trip store, trips are read now and then about every
        second."""
        try:
            return self.refresh()
        finally:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._poll, name=f"modelpin-router-{self.name}", daemon=True
                )
                self._thread.start()
            if self._trips is not None and self._trip_thread is None:
                self.refresh_trips()
                self._trip_thread = threading.Thread(
                    target=self._poll_trips, name=f"modelpin-trips-{self.name}", daemon=True
                )
                self._trip_thread.start()

    def _poll(self) -> None:
        """Reload every poll interval (with backoff); fold the telemetry's latency
        buffers about every second in between (their memory bound, ``telemetry.py``)."""
        due = time.monotonic() + backoff_delay(self._failures, self._poll_interval,
                                               self._max_backoff)
        while not self._stop.wait(min(FOLD_SECONDS, max(0.0, due - time.monotonic()))):
            self._telemetry.flush()
            if time.monotonic() < due:
                continue
            try:
                self.refresh()
            except Exception:  # a bug must not kill reloading for good
                log.exception("router %s: unexpected error while reloading", self.name)
            due = time.monotonic() + backoff_delay(self._failures, self._poll_interval,
                                                   self._max_backoff)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._trip_thread is not None:
            self._trip_thread.join()
            self._trip_thread = None

    # --- trips and rollbacks -----------------------------------------------------------

    def _poll_trips(self) -> None:
        while not self._stop.wait(self._trip_interval):
            try:
                self.refresh_trips()
            except Exception:  # a bug must not end trip polling
                log.exception("router %s: unexpected error while reading trips", self.name)

    def refresh_trips(self) -> bool:
        """Read the trips once and apply any change; True if the routing changed. Never
        raises: on a store fault the trips last read stay applied (a trip does not
        lapse because Redis is down) and the fault is counted."""
        store = self._trips
        if store is None:
            return False
        try:
            trips = store.load()
        except TripStoreUnavailable as exc:
            self._telemetry.trip_poll_errors += 1
            log.warning("router %s: cannot read trips (keeping %d known): %s", self.name,
                        len(self._trips_known), exc)
            return False
        if trips == self._trips_known:
            return False
        self._trips_known = trips
        current = self._current
        if current is not None:
            self._apply(current.table)
        return True

    def trips_applied(self) -> tuple[str, ...]:
        """``tenant/alias`` of the routes a trip currently turns into rollbacks."""
        return self._trips_applied

    def _first_applied(self, session_key: str, now: float, store_ok: list[bool]) -> float:
        seen = self._rollback_seen.get(session_key)
        if seen is not None:
            return seen
        seen = now
        if self._trips is not None and store_ok[0]:
            try:
                seen = self._trips.first_applied(session_key, now)
            except TripStoreUnavailable:
                store_ok[0] = False  # decide locally; do not wait on Redis per route
        self._rollback_seen[session_key] = seen
        return seen

    def _apply(self, table: RoutingTable, *, install: bool = False) -> None:
        """Install ``table``'s routes with the rollbacks in force: drain windows from
        first sight, and tripped routes turned into rolled-back ones."""
        with self._apply_lock:
            now = self._clock()
            store_ok = [True]
            for aliases in table.routes.values():
                for route in aliases.values():
                    if route.mode == ROLLED_BACK and route.session_key not in self._rollback_seen:
                        route.drain_until = (
                            self._first_applied(route.session_key, now, store_ok)
                            + route.drain_seconds
                        )
                    elif route.mode == ROLLED_BACK:
                        route.drain_until = (
                            self._rollback_seen[route.session_key] + route.drain_seconds
                        )
            routes = table.routes
            applied: list[str] = []
            for key, trip in sorted(self._trips_known.items()):
                target = routes.get(trip.tenant, {}).get(trip.alias)
                if target is None or target.candidate != trip.candidate:
                    continue
                if target.mode not in (CANARY_MODE, SHADOW):
                    continue  # pinned or already rolled back: the trip is moot
                if routes is table.routes:
                    routes = dict(routes)
                routes[trip.tenant] = dict(routes[trip.tenant])
                first = self._first_applied(target.session_key, now, store_ok)
                self._telemetry.bind(target)  # the table's route too: its decisions are
                # handed out (a gateway's sessionless request); the tripped one shares them
                routes[trip.tenant][trip.alias] = tripped(target, first, table.serial)
                applied.append(key)
            added = set(applied) - set(self._trips_applied)
            for key in sorted(added):
                log.warning("router %s: trip applied to %s: %s", self.name, key,
                            self._trips_known[key].reason)
            for key in sorted(set(self._trips_applied) - set(applied)):
                log.warning("router %s: trip no longer applied to %s", self.name, key)
            self._trips_applied = tuple(applied)
            self._telemetry.trips_applied = len(applied)
            bind = self._telemetry.bind
            for aliases in routes.values():  # before the swap: requests see bound routes
                for route in aliases.values():
                    bind(route)
            self._effective = routes
            if install or self._routes is not _REFUSING:
                self._routes = routes  # the swap (an expired 'refuse' table stays refused)

    def __enter__(self) -> Router:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reporting -------------------------------------------------------------------

    def status(self) -> RouterStatus:
        current = self._current
        table = None if current is None else current.table
        err = self._last_error
        return RouterStatus(
            serial=None if table is None else table.serial,
            sha256=None if table is None else table.sha256,
            issued_at=None if table is None else table.issued_at,
            expires_at=None if table is None else table.expires_at,
            stale=table is not None and (
                self._revoked or self._trusted.stale_at(table) <= self._clock()
            ),
            serving=table is not None and self._routes is not _REFUSING,
            source=self._source.describe(),
            last_attempt=self._last_attempt,
            last_success=self._last_success,
            last_error=None if err is None else str(err),
            last_error_kind=None if err is None else getattr(err, "kind", "error"),
            consecutive_failures=self._failures,
            root_version=None if self._trusted.root is None else self._trusted.root.version,
        )

    @property
    def table(self) -> RoutingTable | None:
        current = self._current
        return None if current is None else current.table


def tripped(route: Route, first_applied: float, serial: int) -> Route:
    """``route`` as a rollback: new sessions stable, canary sessions drain from
    ``first_applied`` for the route's drain time, then are cut over with a reset. A
    shadow stops being copied."""
    stable = route.stable
    reset = Decision(stable.model, STABLE, None, serial, True, False)
    fixed = stable if route.mode == SHADOW else None
    out = Route(route.tenant, route.alias, ROLLED_BACK, route.stable_model, route.candidate,
                0, False, route.salt, route.since, first_applied + route.drain_seconds,
                stable, fixed, route.canary, reset, {STABLE: stable})
    out.drain_seconds = route.drain_seconds
    return out
