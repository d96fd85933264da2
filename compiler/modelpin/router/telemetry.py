"""Request-outcome telemetry: what the router decided and what the gateway reports back.

Counts live in plain per-(tenant, alias, cohort) rows of numbers that the request path
updates in place (no label lookup, no lock, no allocation once a row exists), and a
collector turns them into Prometheus families when scraped. The names and labels come
from ``metric_names`` (the one registry the signals policy also reads).

Bound decisions: every decision ``resolve`` hands out carries the row of its (tenant,
alias, cohort) (``_row``) and an ``observe``. A route in rollout gets decisions of its
own when its table is installed (``bind``); a pinned route gets its own on its first
resolve in a table (``bind_decision``, called by the router; binding the ~100,000s of
pinned routes of a big table at install would cost tens of MB and seconds). ``record``
then finds the row on the decision with no lookup; a decision no router handed out is
looked up by tenant, alias and cohort. Rows outlive tables: a new table's decisions
are bound to the same rows (and buffers).

Thread safety (the guarantee, and what it rests on): a row update is a handful of
``row[i] += x`` on a list of floats. On a CPython build with the GIL, a float add and
a list store are C operations with no eval-breaker check between the load and the
store, and a float runs no finaliser, so no other thread runs in between: concurrent
requests never lose an update (a test runs eight threads and asserts exact totals). On
a free-threaded build (``sys._is_gil_enabled()`` false) that does not hold, and every
update takes the telemetry's lock instead. Rows are created under the lock; a scrape
copies each row in one C call, so a row is read whole (a request that is between two
of its increments shows up in the next scrape).

The healthy request (a latency, nothing else): ``decision.observe(seconds)`` is the
bound ``append`` of an ``array('d')`` kept per row: one C call, no Python frame, no
lock, no object kept (8 bytes per request). The buffered latencies are folded into the
row (``_TIMED += n``, ``_LAT_SUM += sum``) by ``flush``: at every scrape and every
``value()`` (so exported counters are exact and monotonic), at every ``refresh()``,
and about every second from a started router's poll thread. Memory is bounded by
8 bytes per request observed between two folds; a router that is neither started nor
refreshed nor scraped keeps them until ``router.telemetry.flush()``. Why the fold loses
nothing under the GIL: it takes ``n = len(buf)``, sums ``buf[:n]`` and deletes
``buf[:n]``, each one C call; ``append`` only ever extends the end, so the first ``n``
entries are the same ones throughout, and an append that lands meanwhile stays in the
buffer for the next fold. Folds are serialised by ``_fold_lock`` (two folders would
take the same entries twice). With an event sink, or on a free-threaded build,
``observe`` is a Python function instead: it goes through ``record`` (which emits the
per-request event) or takes the lock, as ``record`` does there.

Rows for every route in rollout (stable + canary, stable + shadow) are created at zero
when a table is installed, so each series exists before its first event and
Prometheus' ``increase()`` sees the first events too.

Per-request structured events are optional (``events=`` a callable taking a dict, e.g.
``JsonLinesEvents``); attribute names follow the OpenTelemetry GenAI conventions where
one exists (``gen_ai.*``) and ``modelpin.*`` otherwise. The prompt is never in an event:
only its sha256.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from . import metric_names as mn
from .table import SHADOW, Decision, Route

EventSink = Callable[[dict[str, Any]], None]

#: More tokens than any answer has: a larger ``response_tokens`` is a gateway bug.
MAX_RESPONSE_TOKENS = 1_000_000_000

#: True where ``row[i] += x`` cannot interleave with another thread (see the docstring).
GIL_ATOMIC: bool = getattr(sys, "_is_gil_enabled", lambda: True)()

# Row layout. A request reported with a latency counts in _TIMED (which is also the
# latency summary's count), one without in _UNTIMED: the healthy path (a latency and
# nothing else) is two float adds, and requests = _TIMED + _UNTIMED.
_TIMED, _LAT_SUM, _UNTIMED = 0, 1, 2
_TOOL, _FAIL, _TASK, _DONE, _COERCED, _DOWN, _SIM_SUM, _SIM_SQ, _SIM_N = range(3, 12)
# The answer's own signals (drift of pinned versions): counted only when reported.
_REF_N, _REFUSED, _FMT_N, _FMT_FAIL, _TOK_SUM, _TOK_SQ, _TOK_N = range(12, 19)
_ROW = 19
_REQUESTS = _ROW  # in a snapshot (``_view``) only: _TIMED + _UNTIMED
#: counter family -> its cell in a snapshot
_COUNTER_INDEX: tuple[tuple[mn.MetricName, int], ...] = (
    (mn.REQUESTS, _REQUESTS),
    (mn.TOOL_CALLS, _TOOL),
    (mn.TOOL_CALL_FAILURES, _FAIL),
    (mn.TASKS, _TASK),
    (mn.TASKS_COMPLETED, _DONE),
    (mn.COERCIONS, _COERCED),
    (mn.DOWNSTREAM_ERRORS, _DOWN),
    (mn.SEMANTIC_SIMILARITY_SQUARES, _SIM_SQ),
    (mn.REFUSAL_CHECKS, _REF_N),
    (mn.REFUSALS, _REFUSED),
    (mn.FORMAT_CHECKS, _FMT_N),
    (mn.FORMAT_FAILURES, _FMT_FAIL),
    (mn.RESPONSE_TOKENS_SQUARES, _TOK_SQ),
)
#: summary family -> (count cell, sum cell)
_SUMMARY_CELLS: tuple[tuple[mn.MetricName, int, int], ...] = (
    (mn.SEMANTIC_SIMILARITY, _SIM_N, _SIM_SUM),
    (mn.REQUEST_DURATION, _TIMED, _LAT_SUM),
    (mn.RESPONSE_TOKENS, _TOK_N, _TOK_SUM),
)
assert {m for m, _ in _COUNTER_INDEX} == set(mn.OUTCOME_METRICS)

Rows = dict[str, dict[str, dict[str, list[float]]]]


def _view(row: list[float]) -> list[float]:
    """A copy of a row (one C call: read whole) with the derived request count."""
    out = list(row)
    out.append(out[_TIMED] + out[_UNTIMED])
    return out


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
    """The counters of one router (label ``router=name``) and its optional event sink
    (fixed at construction)."""

    def __init__(
        self,
        name: str,
        registry: CollectorRegistry,
        *,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._events = events
        self._clock = clock
        self._rows: Rows = {}
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()  # row updates, on a free-threaded build only
        # (tenant, alias, cohort) -> (row, latency buffer) of rows with bound decisions
        self._buffers: dict[tuple[str, str, str], tuple[list[float], array[float]]] = {}
        self._fold_lock = threading.Lock()
        # (tenant, alias, cohort, coercion) -> count; (tenant, alias) -> comparisons;
        # (tenant, alias, tool, kind) -> drift count.  Rare paths: plain dicts.
        self.coercions_applied: dict[tuple[str, str, str, str], int] = {}
        self.shadow_comparisons: dict[tuple[str, str], int] = {}
        self.shadow_drifted: dict[tuple[str, str], int] = {}
        self.shadow_drift: dict[tuple[str, str, str, str], int] = {}
        self.event_errors = 0
        self.trips_applied = 0
        self.trip_poll_errors = 0
        self._atomic = GIL_ATOMIC  # read once: observe and record pick their path by it
        if not GIL_ATOMIC:  # free-threaded build: every row update under the lock
            self.record = self._locked_record  # type: ignore[method-assign]
        _exporter_for(registry).add(self)

    @property
    def events(self) -> EventSink | None:
        return self._events

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

    def bind(self, route: Route) -> None:
        """Give a route in rollout decisions of its own carrying their rows, so
        ``record`` needs no lookup. The rows are created at zero (with the shadow row and
        the comparison counters of a shadow route), so each series exists before its
        first event and ``increase()`` counts that event. Called before
        the route is visible to requests (router ``_apply``); a pinned route keeps the
        table's shared decisions."""
        if route.candidate is None:
            return
        served = (route.stable, route.canary, route.reset, route.fixed or route.stable)
        if all(d._row is not None for d in served):
            return  # bound at install; a trip re-applied
        if route.mode == SHADOW:  # the shadow model's tool calls count as cohort shadow
            self.row(route.tenant, route.alias, "shadow")
            key = (route.tenant, route.alias)  # and its comparisons are counted from zero
            with self._lock:
                self.shadow_comparisons.setdefault(key, 0)
                self.shadow_drifted.setdefault(key, 0)
        own: dict[int, Decision] = {}

        def bound(d: Decision) -> Decision:
            if d._row is not None:
                return d
            b = own.get(id(d))
            if b is None:
                b = own[id(d)] = self.bind_decision(route.tenant, route.alias, d)
            return b

        route.stable = bound(route.stable)
        route.canary = bound(route.canary)
        route.reset = bound(route.reset)
        if route.fixed is not None:
            route.fixed = bound(route.fixed)
        if route.sticky:
            route.sticky = {c: bound(d) for c, d in route.sticky.items()}

    def bind_decision(self, tenant: str, alias: str, shared: Decision) -> Decision:
        """A copy of ``shared`` carrying the row of (tenant, alias, its cohort) and an
        ``observe`` counting into it (see the module docstring). Two threads binding the
        same route at once get two decisions on the one row and buffer."""
        cohort = shared.cohort
        row = self.row(tenant, alias, cohort)
        observe: Callable[[float], None]
        if self._events is not None:  # the per-request event: through record
            record = self.record

            def observe(latency_seconds: float) -> None:
                record(tenant, alias, shared, latency_seconds)

        elif not self._atomic:  # free-threaded: under the lock, as record is there
            lock = self._count_lock

            def observe(latency_seconds: float) -> None:
                with lock:
                    row[_LAT_SUM] += latency_seconds
                    row[_TIMED] += 1.0

        else:
            key = (tenant, alias, cohort)
            held = self._buffers.get(key)
            if held is None:
                with self._lock:
                    held = self._buffers.setdefault(key, (row, array("d")))
            observe = held[1].append
        return Decision(shared.model, cohort, shared.shadow, shared.serial,
                        shared.session_reset, shared.shadow_comparison_only, row, observe)

    def flush(self) -> int:
        """Fold the latencies ``observe`` buffered into the counters; the number folded.
        Scrapes, ``value()``, ``Router.refresh()`` and a started router's poll thread
        (about every second) call it; call it yourself only on a router that is none of
        those, to bound the buffers (8 bytes per observed request)."""
        with self._fold_lock:
            return self._fold()

    def _fold(self) -> int:  # under _fold_lock
        folded = 0
        for row, buf in list(self._buffers.values()):
            n = len(buf)
            if n:
                total = sum(buf[:n])
                del buf[:n]  # appends meanwhile went after the first n: they stay
                row[_LAT_SUM] += total
                row[_TIMED] += n
                folded += n
        return folded

    def value(self, tenant: str, alias: str, cohort: str, metric: mn.MetricName) -> float:
        """The current value of one counter, or a summary's count (tests, status pages)."""
        self.flush()
        found = self._rows.get(tenant, {}).get(alias, {}).get(cohort)
        if found is None:
            return 0.0
        row = _view(found)
        for m, i in _COUNTER_INDEX:
            if m is metric:
                return row[i]
        for m, count, _ in _SUMMARY_CELLS:
            if m is metric:
                return row[count]
        raise ValueError(f"{metric.family} is not a request-outcome metric")

    # --- the request path ------------------------------------------------------------

    def record(
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
        refused: bool | None = None,
        format_ok: bool | None = None,
        response_tokens: int | None = None,
    ) -> None:
        """Report one request's outcome, counted under ``decision.cohort``.

        ``decision`` is what this router's ``resolve(tenant, alias, ...)`` returned for
        the request (a decision of a route in rollout carries its counters).
        ``latency`` in seconds; ``task_completed`` when the request ended an agent task
        (True/False); ``downstream_errors`` of systems called on the model's behalf;
        ``similarity`` the judge's score (0..1) of this answer against stable's;
        ``tool_calls``/``tool_call_failures`` only for calls that did not go through
        ``check_tool_call`` (which counts itself): e.g. a valid call whose execution
        failed is ``tool_call_failures=1``. ``session_id`` and ``prompt`` go only into
        the optional structured event (the prompt as its sha256).

        The answer's own signals (what drift of a pinned version is judged on), each
        counted only when given: ``refused`` whether the answer was a refusal (True or
        False: the refusal rate is refusals / answers checked); ``format_ok`` whether
        the answer had the format the request asked for (give it only when a format was
        asked for, e.g. a JSON response format); ``response_tokens`` the answer's length
        in tokens (the provider's completion tokens)."""
        row = decision._row
        if row is None:
            try:
                row = self._rows[tenant][alias][decision.cohort]
            except KeyError:
                row = self.row(tenant, alias, decision.cohort)
        if latency is not None:
            row[0] += 1.0  # _TIMED
            row[1] += latency  # _LAT_SUM
        else:
            row[2] += 1.0  # _UNTIMED
        if task_completed is not None or downstream_errors or similarity is not None or (
            tool_calls or tool_call_failures
        ) or refused is not None or format_ok is not None or response_tokens is not None:
            self._outcome(row, task_completed, downstream_errors, similarity, tool_calls,
                          tool_call_failures, refused, format_ok, response_tokens)
        if self._events is not None:
            self._request_event(tenant, alias, decision, latency, task_completed,
                                downstream_errors, similarity, session_id, prompt,
                                refused, format_ok, response_tokens)

    def _locked_record(self, *args: Any, **kwargs: Any) -> None:
        with self._count_lock:
            RouterTelemetry.record(self, *args, **kwargs)

    def _outcome(
        self,
        row: list[float],
        task_completed: bool | None,
        downstream_errors: int,
        similarity: float | None,
        tool_calls: int,
        tool_call_failures: int,
        refused: bool | None = None,
        format_ok: bool | None = None,
        response_tokens: int | None = None,
    ) -> None:
        if similarity is not None and not 0.0 <= similarity <= 1.0:
            raise ValueError(f"similarity is a score in 0..1, not {similarity!r}")
        if tool_calls < 0 or tool_call_failures < 0 or downstream_errors < 0:
            raise ValueError("tool_calls, tool_call_failures, downstream_errors are counts >= 0")
        _check_answer(refused, format_ok, response_tokens)
        if task_completed is not None:
            row[_TASK] += 1.0
            if task_completed:
                row[_DONE] += 1.0
        row[_DOWN] += downstream_errors
        if similarity is not None:
            row[_SIM_SUM] += similarity
            row[_SIM_SQ] += similarity * similarity
            row[_SIM_N] += 1.0
        row[_TOOL] += tool_calls
        row[_FAIL] += tool_call_failures
        if refused is not None:
            row[_REF_N] += 1.0
            if refused:
                row[_REFUSED] += 1.0
        if format_ok is not None:
            row[_FMT_N] += 1.0
            if not format_ok:
                row[_FMT_FAIL] += 1.0
        if response_tokens is not None:
            row[_TOK_SUM] += response_tokens
            row[_TOK_SQ] += response_tokens * response_tokens
            row[_TOK_N] += 1.0

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
        refused: bool | None = None,
        format_ok: bool | None = None,
        response_tokens: int | None = None,
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
        if refused is not None:
            event["modelpin.refused"] = refused
        if format_ok is not None:
            event["modelpin.format.ok"] = format_ok
        if response_tokens is not None:
            event["gen_ai.usage.output_tokens"] = response_tokens
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
        if GIL_ATOMIC:
            _count_tool_call(row, valid, coercions)
        else:
            with self._count_lock:
                _count_tool_call(row, valid, coercions)
        if coercions:
            with self._lock:
                for c in coercions:
                    key = (tenant, alias, cohort, c)
                    self.coercions_applied[key] = self.coercions_applied.get(key, 0) + 1
        if self._events is not None:
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
        sink = self._events
        if sink is None:
            return
        event.setdefault("time", self._clock())
        try:
            sink(event)
        except Exception:  # an event sink must never break a request
            self.event_errors += 1

    # --- export ----------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[str, str, str, list[float]]]:
        with self._fold_lock:  # folded, then copied with no fold in between
            self._fold()
            with self._lock:
                return [
                    (t, a, c, _view(row))
                    for t, by_alias in self._rows.items()
                    for a, by_cohort in by_alias.items()
                    for c, row in by_cohort.items()
                ]


def _check_answer(refused: object, format_ok: object, response_tokens: object) -> None:
    """The answer's signals as ``record`` takes them (before anything is counted)."""
    if refused is not None and not isinstance(refused, bool):
        raise ValueError(f"refused is True, False or None, not {refused!r}")
    if format_ok is not None and not isinstance(format_ok, bool):
        raise ValueError(f"format_ok is True, False or None, not {format_ok!r}")
    if response_tokens is not None and (
        isinstance(response_tokens, bool) or not isinstance(response_tokens, int)
        or not 0 <= response_tokens <= MAX_RESPONSE_TOKENS
    ):
        raise ValueError(f"response_tokens is a count of tokens in 0..{MAX_RESPONSE_TOKENS}, "
                         f"not {response_tokens!r}")


def _count_tool_call(row: list[float], valid: bool, coercions: tuple[str, ...]) -> None:
    row[_TOOL] += 1.0
    if not valid:
        row[_FAIL] += 1.0
    if coercions:
        row[_COERCED] += 1.0


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
        summaries = [_summary(m) for m, _, _ in _SUMMARY_CELLS]
        applied, comparisons = _counter(mn.COERCIONS_APPLIED), _counter(mn.SHADOW_COMPARISONS)
        drifted_fam, drift = _counter(mn.SHADOW_DRIFTED), _counter(mn.SHADOW_DRIFT)
        for tel in sorted(self._members, key=lambda t: t.name):
            for t, a, c, row in tel._snapshot():
                labels = [t, a, c, tel.name]
                for fam, (_, i) in zip(counters, _COUNTER_INDEX, strict=True):
                    fam.add_metric(labels, row[i])
                for summary, (_, count, total) in zip(summaries, _SUMMARY_CELLS, strict=True):
                    summary.add_metric(labels, int(row[count]), row[total])
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
        families: list[Metric] = [*counters, *summaries, applied, comparisons, drifted_fam, drift,
                                  trips, trip_errors]
        return iter(families)


def _counter(m: mn.MetricName) -> CounterMetricFamily:
    return CounterMetricFamily(m.family, m.help, labels=list(m.labels))


def _summary(m: mn.MetricName) -> SummaryMetricFamily:
    return SummaryMetricFamily(m.family, m.help, labels=list(m.labels))


def _families() -> list[Metric]:
    """Empty families of every name this exporter writes (``describe``)."""
    out: list[Metric] = [_counter(m) for m, _ in _COUNTER_INDEX]
    out += [_summary(m) for m, _, _ in _SUMMARY_CELLS]
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
