"""``modelpin guard``: the fast path of the bot's own decisions.

Every few seconds the guard fetches the remote's main, judges every rollout in flight
from Prometheus with the bot's cycle (``cycle.run_cycle``: the same engine, statistics
and proposals as ``modelpin bot``, with the always-valid sequential intervals, so
looking every few seconds does not inflate false alarms), and for a proposal whose
action is **rollback**:

1. trips the route in the shared store (``modelpin.router.trips``, HSETNX: of several
   guards exactly one trips it); every router honours it within about a second;
2. opens the rollback PR with the incident report through the bot's path
   (``proposals.publish``), once: only the guard holding the route's PR lease does it,
   and the PR's URL is written into the trip;
3. optionally sends a ``repository_dispatch`` (``modelpin-guard-trip``) so the bot's
   workflow runs at once.

A trip is cleared when the routers' table carries the rollback (``--table``: the guard
verifies the published table with the router library itself), or the rollout has moved
on to another candidate, continuously for ``clear_grace`` seconds (so every router has
had time to load that table); without ``--table`` main's state stands in for the table.
``modelpin guard clear`` clears one by hand; both are written to the trip log.

Faults never stop the loop: an unreachable Prometheus, Redis, git remote or GitHub is
counted (``modelpin_guard_errors_total{kind}``), logged, and retried next cycle. Trips
live in Redis, so a restarted guard loses none; a rollback decided while Redis is down is
decided again next cycle.

Every live trip gets its rollback PR, whoever tripped it and whenever: each cycle
(the first one at start included) a trip without a PR whose rollout main still has in
flight is published again. With this cycle's rollback verdict when there is one (the
full incident report); otherwise (GitHub was down when it tripped, the guard was
restarted, and the failing data has since aged out of the window, or Prometheus is
down) from the trip itself: the same edit, check and plan, and the trip's reason as the
incident. Never two: the PR lease lets one guard at a time publish, and the bot's path
finds the branch's PR before opening one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from modelpin.bot.cycle import Candidate, candidate_for, run_cycle
from modelpin.bot.decisions import Proposal
from modelpin.bot.evaluate import rollouts_in_flight
from modelpin.bot.git import GitAdapterError, ProposalGit
from modelpin.bot.github import GitHubClient, GitHubError
from modelpin.bot.prometheus import PrometheusTelemetry
from modelpin.bot.proposals import publish
from modelpin.bot.telemetry import TelemetryError
from modelpin.load.fleet import load_fleet
from modelpin.load.history import records_at, stages_entered
from modelpin.load.tree import GitTree
from modelpin.model.base import format_duration
from modelpin.model.signals import SignalsPolicy
from modelpin.rollout.transitions import FleetContext
from modelpin.router import metric_names as mn
from modelpin.router.router import Router
from modelpin.router.trips import Trip, TripStore, TripStoreUnavailable

log = logging.getLogger("modelpin.guard")

DISPATCH_EVENT = "modelpin-guard-trip"
PR_LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class GuardOptions:
    repo: Path
    prometheus: str
    remote: str = "origin"
    main: str = "main"
    interval: float = 5.0
    timeout: float = 3.0
    window: timedelta | None = None
    github: str | None = None
    github_api: str = "https://api.github.com"
    dispatch: bool = False
    clear_grace: float = 30.0
    guard_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


@dataclass
class GuardMetrics:
    cycles: Counter
    evaluations: Counter
    trips: Counter
    clears: Counter
    errors: Counter
    last_cycle: Gauge
    active: Gauge

    @classmethod
    def on(cls, registry: CollectorRegistry) -> GuardMetrics:
        def counter(m: mn.MetricName) -> Counter:
            return Counter(m.family, m.help, list(m.labels), registry=registry)

        def gauge(m: mn.MetricName) -> Gauge:
            return Gauge(m.family, m.help, list(m.labels), registry=registry)

        return cls(counter(mn.GUARD_CYCLES), counter(mn.GUARD_EVALUATIONS),
                   counter(mn.GUARD_TRIPS), counter(mn.GUARD_CLEARS),
                   counter(mn.GUARD_ERRORS), gauge(mn.GUARD_LAST_CYCLE),
                   gauge(mn.GUARD_ACTIVE_TRIPS))


@dataclass
class CycleReport:
    """What one cycle did (also logged)."""

    tripped: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    prs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    proposals: dict[str, str] = field(default_factory=dict)


class Guard:
    def __init__(
        self,
        options: GuardOptions,
        store: TripStore,
        *,
        registry: CollectorRegistry | None = None,
        table: Router | None = None,
        github: GitHubClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.store = store
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = GuardMetrics.on(self.registry)
        self.table = table
        self.github = github
        self._clock = clock
        self._git = ProposalGit(options.repo, remote=options.remote, main=options.main,
                                token=github.git_token() if github is not None else None)
        self._base: str | None = None
        self._ctx: FleetContext | None = None
        self._signals: SignalsPolicy | None = None
        self._moot_since: dict[str, float] = {}
        self._http = httpx.Client(base_url=options.prometheus, timeout=options.timeout)

    # --- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = self._clock()
            try:
                self.cycle()
            except Exception:  # a bug must not end the guard: log, count, go on
                log.exception("guard: unexpected error in a cycle")
                self.metrics.errors.labels("bug").inc()
            stop.wait(max(0.0, self.options.interval - (self._clock() - started)))

    def cycle(self) -> CycleReport:
        report = CycleReport()
        self._sync(report)
        trips = self._load_trips(report)
        if self.table is not None:
            self.table.refresh()
        if trips is not None:
            self._clear_moot(trips, report)
        attempted: set[str] = set()
        if self._ctx is not None and self._signals is not None:
            self._judge(trips, report, attempted)
        if trips is not None and self._ctx is not None:
            self._heal(trips, attempted, report)
        outcome = "error" if report.errors else "ok"
        self.metrics.cycles.labels(outcome).inc()
        self.metrics.last_cycle.set(self._clock())
        return report

    # --- steps -------------------------------------------------------------------------

    def _error(self, report: CycleReport, kind: str, message: str) -> None:
        report.errors.append(f"{kind}: {message}")
        self.metrics.errors.labels(kind).inc()
        log.warning("guard: %s: %s", kind, message)

    def _sync(self, report: CycleReport) -> None:
        try:
            base = self._git.fetch_main()
        except GitAdapterError as exc:
            self._error(report, "git", str(exc))
            return
        if base == self._base:
            return
        result = load_fleet(GitTree(self.options.repo, base), datetime.now(UTC))
        if result.fleet is None or result.signals is None:
            what = "invalid" if result.fleet is None else "without policies/signals.yaml"
            self._error(report, "fleet", f"main {base[:12]} is {what}; judging the last good")
            self._base = base
            return
        signals = result.signals
        if self.options.window is not None:
            signals = signals.model_copy(update={"window": self.options.window})
        # Rollbacks on record (SPEC 2.1 rule 7) keep a version uncleared downstream; the
        # soak clocks count from each stage's publication on main (rule 5), as check does.
        self._ctx = FleetContext.build(result.fleet,
                                       records_at(self.options.repo, base, result.fleet),
                                       stages_entered(self.options.repo, base, result.fleet))
        self._signals = signals
        self._base = base
        log.info("guard: judging main %s", base[:12])

    def _load_trips(self, report: CycleReport) -> dict[str, Trip] | None:
        try:
            trips = self.store.load()
        except TripStoreUnavailable as exc:
            self._error(report, "redis", str(exc))
            return None
        self.metrics.active.set(len(trips))
        return trips

    def _moot(self, trip: Trip) -> str | None:
        """Why this trip is no longer needed, or None."""
        if self.table is not None:
            table = self.table.table
            if table is None:
                return None
            route = table.routes.get(trip.tenant, {}).get(trip.alias)
            if route is None:
                return "the table has no such route"
            if route.candidate != trip.candidate:
                return "the table routes another candidate"
            if route.mode == "rolled-back":
                return f"the table (serial {table.serial}) carries the rollback"
            return None
        if self._ctx is None:
            return None
        tenant = self._ctx.fleet.tenants.get(trip.tenant)
        alias = None if tenant is None else tenant.aliases.get(trip.alias)
        rollout = None if alias is None else alias.rollout
        if rollout is None or rollout.candidate != trip.candidate:
            return "main no longer rolls out that candidate"
        if rollout.stage == "rolled-back":
            return "main carries the rollback"
        return None

    def _clear_moot(self, trips: dict[str, Trip], report: CycleReport) -> None:
        now = self._clock()
        for key in list(self._moot_since):
            if key not in trips:
                del self._moot_since[key]
        for key, trip in list(trips.items()):
            why = self._moot(trip)
            if why is None:
                self._moot_since.pop(key, None)
                continue
            since = self._moot_since.setdefault(key, now)
            if now - since < self.options.clear_grace:
                continue
            try:
                self.store.clear(trip.tenant, trip.alias, why=why, by=self.options.guard_id)
            except TripStoreUnavailable as exc:
                self._error(report, "redis", str(exc))
                return
            del trips[key]
            self._moot_since.pop(key, None)
            self.metrics.clears.labels("table" if self.table is not None else "main").inc()
            report.cleared.append(key)
            log.warning("guard: cleared trip %s: %s", key, why)

    def _judge(self, trips: dict[str, Trip] | None, report: CycleReport,
               attempted: set[str]) -> None:
        assert self._ctx is not None and self._signals is not None and self._base is not None
        base = self._base
        source = PrometheusTelemetry(self._http, self._signals, timeout=self.options.timeout)
        try:
            cycle = run_cycle(lambda path: self._git.read(base, path), self._ctx,
                              self._signals, source, datetime.now(UTC).replace(microsecond=0))
        except (TelemetryError, GitAdapterError) as exc:
            self._error(report, "prometheus", str(exc))
            return
        for problem in cycle.general:
            self._error(report, "prometheus", problem)
        for candidate in cycle.candidates:
            key = f"{candidate.rollout.tenant}/{candidate.rollout.alias}"
            proposal = candidate.proposal
            kind = "error" if proposal is None else proposal.kind
            report.proposals[key] = kind
            self.metrics.evaluations.labels(kind).inc()
            if proposal is None or proposal.kind != "rollback":
                continue
            existing = None if trips is None else trips.get(key)
            if existing is not None and existing.candidate == candidate.rollout.candidate:
                if existing.pr_url is None:
                    attempted.add(key)
                    self._open_pr(existing, candidate, report)
                continue
            self._trip(candidate, report)

    def _heal(self, trips: dict[str, Trip], attempted: set[str], report: CycleReport) -> None:
        """Open the rollback PR of every live trip that has none, from the trip itself
        (``attempted``: the trips this cycle's verdict already published)."""
        if self.github is None:
            return
        for key, trip in sorted(trips.items()):
            if trip.pr_url is not None or key in attempted or self._moot(trip) is not None:
                continue
            try:
                candidate = self._candidate_from_trip(trip)
            except Exception as exc:  # e.g. the tenant file cannot be edited: report it
                self._error(report, "fleet", f"rollback PR for {key}: {exc}")
                continue
            if candidate is None:
                continue  # main no longer has that rollout in flight: nothing to roll back
            self._open_pr(trip, candidate, report)

    def _candidate_from_trip(self, trip: Trip) -> Candidate | None:
        assert self._ctx is not None and self._base is not None
        now = datetime.now(UTC).replace(microsecond=0)
        flights, _ = rollouts_in_flight(self._ctx, now, only=[trip.tenant])
        ref = next((f.ref for f in flights
                    if f.ref.alias == trip.alias and f.ref.candidate == trip.candidate), None)
        if ref is None or ref.stage == "rolled-back":
            return None
        when = datetime.fromtimestamp(trip.tripped_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        window = "" if self._signals is None else format_duration(self._signals.window)
        proposal = Proposal(
            "rollback", ref, (), (f"tripped by guard {trip.by} at {when}: {trip.reason}",),
            window=window, source=f"modelpin guard trip ({', '.join(trip.signals) or 'n/a'})",
            failures=({"kind": "guard trip", "detail": trip.reason, "ref": when},),
        )
        base = self._base
        return candidate_for(self._ctx, proposal, lambda path: self._git.read(base, path),
                             now)

    def _trip(self, candidate: Candidate, report: CycleReport) -> None:
        proposal = candidate.proposal
        assert proposal is not None
        r = candidate.rollout
        trip = Trip(
            tenant=r.tenant, alias=r.alias, candidate=r.candidate,
            reason="; ".join(proposal.reasons), tripped_at=self._clock(),
            by=self.options.guard_id, signals=tuple(v.signal for v in proposal.breached),
        )
        try:
            created = self.store.trip(trip)
        except TripStoreUnavailable as exc:
            self._error(report, "redis", f"cannot trip {trip.key}: {exc}")
            return
        if not created:  # another guard was first: it opens the PR
            return
        self.metrics.trips.inc()
        report.tripped.append(trip.key)
        log.warning("guard: TRIPPED %s (candidate %s): %s", trip.key, trip.candidate,
                    trip.reason)
        self._dispatch(trip, report)
        self._open_pr(trip, candidate, report)

    def _open_pr(self, trip: Trip, candidate: Candidate, report: CycleReport) -> None:
        proposal = candidate.proposal
        if self.github is None or proposal is None or not candidate.changes_file:
            return
        lease = f"pr:{trip.key}:{trip.candidate}"
        try:
            if not self.store.lock(lease, self.options.guard_id, PR_LEASE_SECONDS):
                return  # another guard is opening it
        except TripStoreUnavailable as exc:
            self._error(report, "redis", str(exc))
            return
        try:
            outcome = publish(proposal, candidate.path, candidate.new_text, self._git,
                              self.github, candidate.plan_markdown, False,
                              evidence=candidate.evidence, base=self.options.main,
                              base_commit=self._base)
        except (GitAdapterError, GitHubError) as exc:
            self._error(report, "github", f"rollback PR for {trip.key}: {exc}")
            self._unlock(lease)
            return
        if outcome.pr_url is None:
            self._error(report, "github", f"rollback PR for {trip.key}: {outcome.status} "
                        f"{outcome.detail}")
            self._unlock(lease)
            return
        try:
            self.store.update(trip.with_pr(outcome.pr_url))
        except TripStoreUnavailable as exc:
            self._error(report, "redis", str(exc))
        report.prs.append(outcome.pr_url)
        log.warning("guard: rollback PR for %s: %s (%s)", trip.key, outcome.pr_url,
                    outcome.status)

    def _unlock(self, lease: str) -> None:
        with contextlib.suppress(TripStoreUnavailable):  # else the lease expires by itself
            self.store.unlock(lease, self.options.guard_id)

    def _dispatch(self, trip: Trip, report: CycleReport) -> None:
        if self.github is None or not self.options.dispatch:
            return
        payload: dict[str, Any] = {"tenant": trip.tenant, "alias": trip.alias,
                                   "candidate": trip.candidate, "signals": list(trip.signals)}
        try:
            self.github.dispatch(DISPATCH_EVENT, payload)
        except GitHubError as exc:
            self._error(report, "github", f"repository_dispatch: {exc}")
