"""Request-outcome telemetry: what the router decided and what the gateway reports back.

Counts live in plain per-(tenant, alias, cohort) rows of numbers that the request path
updates in place (no label lookup, no lock, no allocation once a row exists), and a
collector turns them into Prometheus families when scraped. The names and labels come
from ``metric_names`` (the one registry the signals policy also reads).

Thread safety: a row update is a handful of ``row[i] += x`` on a list of floats. In
CPython with the GIL a float add is a C operation with no eval-breaker check between
the load and the store, so concurrent requests never lose an update (a test runs eight
threads and asserts exact totals). Rows are created under a lock.

Rows for every route in rollout (stable + canary, stable + shadow) are created at zero
when a table is installed (``prepare``), so each series exists before its first event
and Prometheus' ``increase()`` sees the first events too.

Per-request structured events are optional (``events=`` a callable taking a dict, e.g.
``JsonLinesEvents``); attribute names follow the OpenTelemetry GenAI conventions where
one exists (``gen_ai.*``) and ``modelpin.*`` otherwise. The prompt is never in an event:
only its sha256.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from . import metric_names as mn
from .table import Decision

EventSink = Callable[[dict[str, Any]], None]


class RecordFn(Protocol):
    def __call__(
        self,
        tenant: str,
        alias: str,
        decision: Decision,
        latency: float | None = None,
        task_completed: bool | None = None,
        downstream_errors: int = 0,
        similarity: float | None = None,
        tool_calls: int = 0,
        tool_call_failures: int = 0,
        session_id: str | None = None,
        prompt: str | bytes | None = None,
    ) -> None: ...

# row layout
_REQ, _TOOL, _FAIL, _TASK, _DONE, _COERCED, _DOWN, _SIM_SUM, _SIM_SQ, _SIM_N = range(10)
_LAT_SUM, _LAT_N = 10, 11  # (record() writes 0, 10, 11 as literals: the hot path)
_ROW = 12
_COUNTER_INDEX: tuple[tuple[mn.MetricName, int], ...] = (
    (mn.REQUESTS, _REQ),
    (mn.TOOL_CALLS, _TOOL),
    (mn.TOOL_CALL_FAILURES, _FAIL),
    (mn.TASKS, _TASK),
    (mn.TASKS_COMPLETED, _DONE),
    (mn.COERCIONS, _COERCED),
    (mn.DOWNSTREAM_ERRORS, _DOWN),
    (mn.SEMANTIC_SIMILARITY_SQUARES, _SIM_SQ),
)
assert {m for m, _ in _COUNTER_INDEX} == set(mn.OUTCOME_METRICS)

Rows = dict[str, dict[str, dict[str, list[float]]]]


def prompt_sha256(prompt: str | bytes) -> str:
    data = prompt.encode("utf-8") if isinstance(prompt, str) else prompt
    return hashlib.sha256(data).hexdigest()


class JsonLinesEvents:
    """An event sink writing one JSON object per line to a text stream (thread-safe).
    A failing write is counted in ``errors`` and never raised into the request."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.errors = 0

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):
                self.errors += 1


class RouterTelemetry:
    """The counters of one router (label ``router=name``) and its optional event sink."""

    def __init__(
        self,
        name: str,
        registry: CollectorRegistry,
        *,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.events = events
        self._clock = clock
        self._rows: Rows = {}
        self._lock = threading.Lock()
        # (tenant, alias, cohort, coercion) -> count; (tenant, alias) -> comparisons;
        # (tenant, alias, tool, kind) -> drift count.  Rare paths: plain dicts.
        self.coercions_applied: dict[tuple[str, str, str, str], int] = {}
        self.shadow_comparisons: dict[tuple[str, str], int] = {}
        self.shadow_drifted: dict[tuple[str, str], int] = {}
        self.shadow_drift: dict[tuple[str, str, str, str], int] = {}
        self.event_errors = 0
        self.trips_applied = 0
        self.trip_poll_errors = 0
        #: Report one request's outcome (see ``_record_function``).
        self.record: RecordFn = _record_function(self, self._rows)
        _exporter_for(registry).add(self)

    # --- rows ------------------------------------------------------------------------

    def row(self, tenant: str, alias: str, cohort: str) -> list[float]:
        """The row of numbers of one tenant, alias and cohort (created at zero)."""
        try:
            return self._rows[tenant][alias][cohort]
        except KeyError:
            pass
        if cohort not in mn.COHORTS:
            raise ValueError(f"cohort is one of {', '.join(mn.COHORTS)}, not {cohort!r}")
        with self._lock:
            by_alias = self._rows.setdefault(tenant, {})
            by_cohort = by_alias.setdefault(alias, {})
            return by_cohort.setdefault(cohort, [0.0] * _ROW)

    def prepare(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Create zero rows for these (tenant, alias, cohort) keys."""
        for tenant, alias, cohort in keys:
            self.row(tenant, alias, cohort)

    def value(self, tenant: str, alias: str, cohort: str, metric: mn.MetricName) -> float:
        """The current value of one counter (tests, status pages)."""
        row = self._rows.get(tenant, {}).get(alias, {}).get(cohort)
        if row is None:
            return 0.0
        for m, i in _COUNTER_INDEX:
            if m is metric:
                return row[i]
        if metric is mn.SEMANTIC_SIMILARITY:
            return row[_SIM_N]
        if metric is mn.REQUEST_DURATION:
            return row[_LAT_N]
        raise ValueError(f"{metric.family} is not a request-outcome metric")

    # --- the request path ------------------------------------------------------------

    def _outcome(
        self,
        row: list[float],
        task_completed: bool | None,
        downstream_errors: int,
        similarity: float | None,
        tool_calls: int,
        tool_call_failures: int,
    ) -> None:
        if similarity is not None and not 0.0 <= similarity <= 1.0:
            raise ValueError(f"similarity is a score in 0..1, not {similarity!r}")
        if tool_calls < 0 or tool_call_failures < 0 or downstream_errors < 0:
            raise ValueError("tool_calls, tool_call_failures, downstream_errors are counts >= 0")
        if task_completed is not None:
            row[_TASK] += 1
            if task_completed:
                row[_DONE] += 1
        row[_DOWN] += downstream_errors
        if similarity is not None:
            row[_SIM_SUM] += similarity
            row[_SIM_SQ] += similarity * similarity
            row[_SIM_N] += 1
        row[_TOOL] += tool_calls
        row[_FAIL] += tool_call_failures

    def _request_event(
        self,
        tenant: str,
        alias: str,
        decision: Decision,
        latency: float | None,
        task_completed: bool | None,
        downstream_errors: int,
        similarity: float | None,
        session_id: str | None,
        prompt: str | bytes | None,
    ) -> None:
        event: dict[str, Any] = {
            "event": "modelpin.request",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": decision.model,
            "gen_ai.conversation.id": session_id,
            "modelpin.tenant": tenant,
            "modelpin.alias": alias,
            "modelpin.cohort": decision.cohort,
            "modelpin.serial": decision.serial,
            "modelpin.router": self.name,
        }
        if decision.session_reset:
            event["modelpin.session_reset"] = True
        if latency is not None:
            event["modelpin.latency_seconds"] = latency
        if task_completed is not None:
            event["modelpin.task.completed"] = task_completed
        if downstream_errors:
            event["modelpin.downstream_errors"] = downstream_errors
        if similarity is not None:
            event["modelpin.similarity"] = similarity
        if prompt is not None:
            event["modelpin.prompt.sha256"] = prompt_sha256(prompt)
        self.emit(event)

    def tool_call(
        self,
        tenant: str,
        alias: str,
        cohort: str,
        tool: str,
        valid: bool,
        coercions: tuple[str, ...],
        errors: tuple[str, ...],
    ) -> None:
        """Count one checked tool call (``check_tool_call`` calls this)."""
        try:
            row = self._rows[tenant][alias][cohort]
        except KeyError:
            row = self.row(tenant, alias, cohort)
        row[_TOOL] += 1
        if not valid:
            row[_FAIL] += 1
        if coercions:
            row[_COERCED] += 1
            with self._lock:
                for c in coercions:
                    key = (tenant, alias, cohort, c)
                    self.coercions_applied[key] = self.coercions_applied.get(key, 0) + 1
        if self.events is not None:
            event: dict[str, Any] = {
                "event": "modelpin.tool_call",
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "modelpin.tenant": tenant,
                "modelpin.alias": alias,
                "modelpin.cohort": cohort,
                "modelpin.router": self.name,
                "modelpin.tool_call.valid": valid,
            }
            if coercions:
                event["modelpin.coercions"] = list(coercions)
            if errors:
                event["error.type"] = "invalid_tool_call"
                event["modelpin.tool_call.errors"] = list(errors[:5])
            self.emit(event)

    def drift(self, tenant: str, alias: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Count one shadow comparison and its differences, (tool, kind) -> count."""
        with self._lock:
            key = (tenant, alias)
            self.shadow_comparisons[key] = self.shadow_comparisons.get(key, 0) + 1
            if counts:
                self.shadow_drifted[key] = self.shadow_drifted.get(key, 0) + 1
            for (tool, kind), n in counts.items():
                dkey = (tenant, alias, tool, kind)
                self.shadow_drift[dkey] = self.shadow_drift.get(dkey, 0) + n

    def emit(self, event: dict[str, Any]) -> None:
        sink = self.events
        if sink is None:
            return
        event.setdefault("time", self._clock())
        try:
            sink(event)
        except Exception:  # an event sink must never break a request
            self.event_errors += 1

    # --- export ----------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[str, str, str, list[float]]]:
        with self._lock:
            return [
                (t, a, c, list(row))
                for t, by_alias in self._rows.items()
                for a, by_cohort in by_alias.items()
                for c, row in by_cohort.items()
            ]


def _record_function(tel: RouterTelemetry, rows: Rows) -> RecordFn:
    """``record`` as a plain closure over the rows (no method binding, no attribute
    lookups on ``self``): the request path's only telemetry cost."""
    row_for = tel.row
    outcome = tel._outcome
    request_event = tel._request_event

    def record(
        tenant: str,
        alias: str,
        decision: Decision,
        latency: float | None = None,
        task_completed: bool | None = None,
        downstream_errors: int = 0,
        similarity: float | None = None,
        tool_calls: int = 0,
        tool_call_failures: int = 0,
        session_id: str | None = None,
        prompt: str | bytes | None = None,
    ) -> None:
        """Report one request's outcome, counted under ``decision.cohort``.

        ``latency`` in seconds; ``task_completed`` when the request ended an agent task
        (True/False); ``downstream_errors`` of systems called on the model's behalf;
        ``similarity`` the judge's score (0..1) of this answer against stable's;
        ``tool_calls``/``tool_call_failures`` only for calls that did not go through
        ``check_tool_call`` (which counts itself): e.g. a valid call whose execution
        failed is ``tool_call_failures=1``. ``session_id`` and ``prompt`` go only into
        the optional structured event (the prompt as its sha256)."""
        try:
            row = rows[tenant][alias][decision.cohort]
        except KeyError:
            row = row_for(tenant, alias, decision.cohort)
        row[0] += 1  # _REQ
        if latency is not None:
            row[10] += latency  # _LAT_SUM
            row[11] += 1  # _LAT_N
        if task_completed is not None or downstream_errors or similarity is not None or (
            tool_calls or tool_call_failures
        ):
            outcome(row, task_completed, downstream_errors, similarity, tool_calls,
                    tool_call_failures)
        if tel.events is not None:
            request_event(tenant, alias, decision, latency, task_completed,
                          downstream_errors, similarity, session_id, prompt)

    return record


class _Exporter:
    """One collector per registry, exporting the telemetry of every router on it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._members: weakref.WeakSet[RouterTelemetry] = weakref.WeakSet()
        registry.register(self)

    def add(self, telemetry: RouterTelemetry) -> None:
        if any(t.name == telemetry.name for t in self._members):
            raise ValueError(
                f"a router named {telemetry.name!r} already exports telemetry to this "
                "registry: give each Router its own name"
            )
        self._members.add(telemetry)

    def describe(self) -> Iterator[Metric]:
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        counters = [_counter(m) for m, _ in _COUNTER_INDEX]
        sim, lat = _summary(mn.SEMANTIC_SIMILARITY), _summary(mn.REQUEST_DURATION)
        applied, comparisons = _counter(mn.COERCIONS_APPLIED), _counter(mn.SHADOW_COMPARISONS)
        drifted_fam, drift = _counter(mn.SHADOW_DRIFTED), _counter(mn.SHADOW_DRIFT)
        for tel in sorted(self._members, key=lambda t: t.name):
            for t, a, c, row in tel._snapshot():
                labels = [t, a, c, tel.name]
                for fam, (_, i) in zip(counters, _COUNTER_INDEX, strict=True):
                    fam.add_metric(labels, row[i])
                sim.add_metric(labels, int(row[_SIM_N]), row[_SIM_SUM])
                lat.add_metric(labels, int(row[_LAT_N]), row[_LAT_SUM])
            with tel._lock:
                coerc = list(tel.coercions_applied.items())
                comps = list(tel.shadow_comparisons.items())
                drifted = dict(tel.shadow_drifted)
                drifts = list(tel.shadow_drift.items())
            for (t, a, c, name), n in coerc:
                applied.add_metric([t, a, c, tel.name, name], n)
            for (t, a), n in comps:
                comparisons.add_metric([t, a, tel.name], n)
                drifted_fam.add_metric([t, a, tel.name], drifted.get((t, a), 0))
            for (t, a, tool, kind), n in drifts:
                drift.add_metric([t, a, tel.name, tool, kind], n)
        trips = GaugeMetricFamily(mn.TRIPS_APPLIED.family, mn.TRIPS_APPLIED.help,
                                  labels=list(mn.TRIPS_APPLIED.labels))
        trip_errors = _counter(mn.TRIP_POLL_ERRORS)
        for tel in sorted(self._members, key=lambda t: t.name):
            trips.add_metric([tel.name], tel.trips_applied)
            trip_errors.add_metric([tel.name], tel.trip_poll_errors)
        families: list[Metric] = [*counters, sim, lat, applied, comparisons, drifted_fam, drift,
                                  trips, trip_errors]
        return iter(families)


def _counter(m: mn.MetricName) -> CounterMetricFamily:
    return CounterMetricFamily(m.family, m.help, labels=list(m.labels))


def _summary(m: mn.MetricName) -> SummaryMetricFamily:
    return SummaryMetricFamily(m.family, m.help, labels=list(m.labels))


def _families() -> list[Metric]:
    """Empty families of every name this exporter writes (``describe``)."""
    out: list[Metric] = [_counter(m) for m, _ in _COUNTER_INDEX]
    out += [_summary(mn.SEMANTIC_SIMILARITY), _summary(mn.REQUEST_DURATION)]
    out += [_counter(m) for m in (mn.COERCIONS_APPLIED, mn.SHADOW_COMPARISONS,
                                  mn.SHADOW_DRIFTED, mn.SHADOW_DRIFT)]
    out += [GaugeMetricFamily(mn.TRIPS_APPLIED.family, mn.TRIPS_APPLIED.help,
                              labels=list(mn.TRIPS_APPLIED.labels)),
            _counter(mn.TRIP_POLL_ERRORS)]
    return out


_exporters: weakref.WeakKeyDictionary[CollectorRegistry, _Exporter] = (
    weakref.WeakKeyDictionary()
)
_exporters_lock = threading.Lock()


def _exporter_for(registry: CollectorRegistry) -> _Exporter:
    with _exporters_lock:
        exporter = _exporters.get(registry)
        if exporter is None:
            exporter = _exporters[registry] = _Exporter(registry)
        return exporter
