"""``Decision.observe``: the healthy request's one C call, folded into exact counters.

Every decision ``resolve`` hands out (canary, stable, shadow, rolled back, tripped,
pinned) carries an ``observe``; buffered latencies are folded at every scrape, so the
exported counters are exact and monotonic whatever runs at the same time."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelpin.router import RedisSessionStore, UnboundDecisionError, bucket, telemetry
from modelpin.router import metric_names as mn
from modelpin.router.table import Decision
from modelpin.router.telemetry import JsonLinesEvents
from tests.router.conftest import RedisServer
from tests.router.tables import envelope, payload, salt_of, with_route, write_atomically

T, A, P = "acme-legal", "primary-reasoning", "embedder"
SALT = salt_of(T, A, "gpt-5-2026-03-14")


def table(serial: int = 1, **routes: dict[str, Any]) -> dict[str, Any]:
    doc = with_route(payload(serial), T, A, mode="canary", percent=50)
    for alias, kw in routes.items():
        doc = with_route(doc, T, alias, **kw)
    return doc


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def router(make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry) -> Any:
    write_atomically(table_file, envelope(table(), [key]))
    r = make_router(registry=registry, name="gw-1")
    assert r.refresh().outcome == "accepted"
    return r


def session(canary: bool, start: int = 0) -> str:
    return next(f"s{i}" for i in range(start, 10_000)
                if (bucket(SALT, f"s{i}") < 5000) == canary)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    """(sample name, alias, cohort) -> value, parsed from the text exposition."""
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("router") == "gw-1" and s.labels.get("tenant") == T:
                out[(s.name, s.labels["alias"], s.labels["cohort"])] = s.value
    return out


def in_threads(work: Any, threads: int) -> None:
    ts = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_eight_threads_of_observes_and_records_count_exactly(router: Any,
                                                              registry: Any) -> None:
    decisions = {"canary": router.resolve(T, A, session(True)),
                 "stable": router.resolve(T, A, session(False))}
    assert {c: d.cohort for c, d in decisions.items()} == {"canary": "canary",
                                                          "stable": "stable"}
    pinned = router.resolve(T, P, "s-1")
    n, threads = 5_000, 8

    def work(_: int) -> None:
        for i in range(n):
            for d in decisions.values():
                d.observe(0.25)
            pinned.observe(0.5)
            if i % 10 == 0:  # the general API counts into the same row
                router.record(T, A, decisions["canary"], latency=0.125)

    in_threads(work, threads)
    got = scrape(registry)
    records = threads * n // 10
    assert got[(mn.REQUESTS.sample, A, "canary")] == threads * n + records
    assert got[(mn.REQUEST_DURATION.family + "_count", A, "canary")] == threads * n + records
    assert got[(mn.REQUEST_DURATION.family + "_sum", A, "canary")] == (
        threads * n * 0.25 + records * 0.125)
    assert got[(mn.REQUESTS.sample, A, "stable")] == threads * n
    assert got[(mn.REQUEST_DURATION.family + "_sum", A, "stable")] == threads * n * 0.25
    assert got[(mn.REQUESTS.sample, P, "stable")] == threads * n
    assert got[(mn.REQUEST_DURATION.family + "_count", P, "stable")] == threads * n
    assert got[(mn.REQUEST_DURATION.family + "_sum", P, "stable")] == threads * n * 0.5
    assert router.telemetry.flush() == 0  # the scrape folded everything


def test_folds_and_scrapes_during_observes_lose_nothing_and_only_grow(
    router: Any, registry: Any
) -> None:
    # Threads switch every 10 µs instead of every 5 ms, so a fold that took
    # entries it had not counted, or two folds of the same entries, would show.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        _fold_while_observing(router, registry)
    finally:
        sys.setswitchinterval(previous)


def _fold_while_observing(router: Any, registry: Any) -> None:
    d = router.resolve(T, A, session(True))
    observers = 4
    stop, done = threading.Event(), threading.Event()
    folded: list[int] = []
    seen: list[float] = []
    observed = [0] * observers

    def fold() -> None:
        while not done.is_set():
            folded.append(router.telemetry.flush())

    def scrape_loop() -> None:
        while not done.is_set():
            seen.append(scrape(registry)[(mn.REQUESTS.sample, A, "canary")])

    def work(k: int) -> None:
        n = 0
        while not stop.is_set() or n < 10_000:  # observe until the scrapes are in
            for _i in range(100):
                d.observe(0.5)
            n += 100
        observed[k] = n

    side = [threading.Thread(target=fold), threading.Thread(target=fold),
            threading.Thread(target=scrape_loop)]
    for t in side:
        t.start()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(observers)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 60
    while (len(seen) < 5 or sum(f > 0 for f in folded) < 5) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in workers:
        t.join()
    done.set()
    for t in side:
        t.join()
    assert sum(f > 0 for f in folded) >= 5  # the folders really folded during observes
    assert len(seen) >= 5 and seen == sorted(seen)  # every scrape at least the one before
    total = sum(observed)
    assert router.telemetry.value(T, A, "canary", mn.REQUESTS) == total
    assert router.telemetry.value(T, A, "canary", mn.REQUEST_DURATION) == total
    assert scrape(registry)[(mn.REQUEST_DURATION.family + "_sum", A, "canary")] == total * 0.5


def test_the_text_exposition_carries_observed_requests(router: Any, registry: Any) -> None:
    d = router.resolve(T, A, session(True))
    for latency in (0.25, 0.5, 1.0):
        d.observe(latency)
    lines = generate_latest(registry).decode().splitlines()
    labels = (f'alias="{A}"', 'cohort="canary"', 'router="gw-1"', f'tenant="{T}"')
    for name, value in ((mn.REQUESTS.sample, "3.0"),
                        (mn.REQUEST_DURATION.family + "_count", "3.0"),
                        (mn.REQUEST_DURATION.family + "_sum", "1.75")):
        found = [x for x in lines if x.startswith(name + "{") and x.endswith("} " + value)
                 and all(part in x for part in labels)]
        assert len(found) == 1, (name, value, [x for x in lines if x.startswith(name)])


def test_a_pinned_route_is_bound_on_its_first_resolve_then_served_as_before(
    router: Any, key: Any, table_file: Path
) -> None:
    route = router.table.routes[T][P]
    shared = route.stable
    assert route.fixed is shared and shared._row is None  # nothing bound at install
    first = router.resolve(T, P, "s-1")
    assert first == shared and first is not shared and first._row is not None
    assert route.fixed is first  # kept: every later resolve is the fast path
    assert all(router.resolve(T, P, f"s{i}") is first for i in range(50))
    first.observe(0.5)
    assert router.telemetry.value(T, P, "stable", mn.REQUESTS) == 1
    # a new table: a new decision on the same row
    write_atomically(table_file, envelope(table(2), [key]))
    assert router.refresh().outcome == "accepted"
    again = router.resolve(T, P, "s-1")
    assert again.serial == 2 and again is not first and again._row is first._row
    again.observe(0.25)
    assert router.telemetry.value(T, P, "stable", mn.REQUEST_DURATION) == 2


def test_two_threads_binding_one_pinned_route_at_once_count_into_one_row(
    router: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tel = router.telemetry
    original = tel.bind_decision
    both_inside = threading.Barrier(2, timeout=10)

    def slow_bind(*args: Any) -> Decision:
        both_inside.wait()  # neither finishes before the other has started
        return original(*args)  # type: ignore[no-any-return]

    monkeypatch.setattr(tel, "bind_decision", slow_bind)
    got: dict[int, Decision] = {}

    def work(n: int) -> None:
        got[n] = router.resolve(T, P, f"s{n}")

    in_threads(work, 2)
    a, b = got[0], got[1]
    assert a is not b and a._row is b._row  # two decisions, one row
    assert router.table.routes[T][P].fixed in (a, b)
    a.observe(0.5)
    b.observe(0.5)
    router.resolve(T, P, "later").observe(0.5)
    assert tel.value(T, P, "stable", mn.REQUESTS) == 3


def test_a_redis_outage_on_a_pinned_routes_first_resolve_still_answers(
    redis_server: RedisServer, make_router: Any, key: Any, table_file: Path,
    registry: CollectorRegistry
) -> None:
    store = RedisSessionStore.from_url(redis_server.url, timeout=0.05, retry_after=0.2)
    write_atomically(table_file, envelope(table(), [key]))
    r = make_router(session_store=store, registry=registry, name="gw-1")
    assert r.refresh().outcome == "accepted"
    redis_server.kill()
    started = time.monotonic()
    pinned = r.resolve(T, P, "s-1")  # its first resolve, with Redis gone
    assert time.monotonic() - started < 0.05  # the store was not even asked
    assert pinned._row is not None and r.resolve(T, P, "s-2") is pinned
    pinned.observe(0.5)
    canary = r.resolve(T, A, session(True))  # the rollout answers without stickiness
    assert canary.cohort == "canary"
    canary.observe(0.5)
    got = scrape(registry)
    assert got[(mn.REQUESTS.sample, P, "stable")] == 1
    assert got[(mn.REQUESTS.sample, A, "canary")] == 1
    errors = registry.get_sample_value("modelpin_router_session_store_errors_total",
                                       {"router": "gw-1"})
    assert errors == 1  # the canary resolve's; none for the pinned route


def test_with_an_event_sink_observe_still_emits_the_request_event(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(table(), [key]))
    out = io.StringIO()
    r = make_router(events=JsonLinesEvents(out), name="gw-e")
    assert r.refresh().outcome == "accepted"
    canary = r.resolve(T, A, session(True))
    pinned = r.resolve(T, P, "s-1")
    canary.observe(0.125)
    pinned.observe(0.5)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["modelpin.alias"], e["modelpin.cohort"],
             e["gen_ai.request.model"], e["modelpin.latency_seconds"]) for e in events] == [
        ("modelpin.request", A, "canary", canary.model, 0.125),
        ("modelpin.request", P, "stable", pinned.model, 0.5),
    ]
    assert r.telemetry.value(T, A, "canary", mn.REQUEST_DURATION) == 1
    assert r.telemetry.value(T, P, "stable", mn.REQUESTS) == 1


def test_the_free_threaded_path_observes_under_the_lock_exactly(
    make_router: Any, key: Any, table_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "GIL_ATOMIC", False)
    write_atomically(table_file, envelope(table(), [key]))
    reg = CollectorRegistry()
    r = make_router(registry=reg, name="gw-1")
    assert r.refresh().outcome == "accepted"
    d = r.resolve(T, A, session(True))
    pinned = r.resolve(T, P, "s-1")
    n, threads = 3_000, 4

    def work(_: int) -> None:
        for _i in range(n):
            d.observe(0.5)
            pinned.observe(0.25)

    in_threads(work, threads)
    assert r.telemetry.flush() == 0  # nothing was buffered: counted under the lock
    got = scrape(reg)
    assert got[(mn.REQUESTS.sample, A, "canary")] == n * threads
    assert got[(mn.REQUEST_DURATION.family + "_sum", A, "canary")] == n * threads * 0.5
    assert got[(mn.REQUEST_DURATION.family + "_count", P, "stable")] == n * threads


def test_observe_on_a_decision_no_router_handed_out_fails_loudly(router: Any) -> None:
    shared = router.table.routes[T][P].stable  # the table's shared decision
    by_hand = Decision("gpt-5-2026-01-10", "stable", None, 1)
    for d in (shared, by_hand):
        with pytest.raises(UnboundDecisionError, match=r"not handed out by Router\.resolve"):
            d.observe(0.5)
    assert issubclass(UnboundDecisionError, TypeError)
    assert router.telemetry.value(T, P, "stable", mn.REQUESTS) == 0


def test_observe_refuses_a_latency_that_is_not_a_number(router: Any) -> None:
    d = router.resolve(T, A, session(True))
    with pytest.raises(TypeError):
        d.observe("0.5")  # type: ignore[arg-type]
    assert router.telemetry.value(T, A, "canary", mn.REQUESTS) == 0


def test_every_decision_resolve_hands_out_observes_into_its_routes_row(
    make_router: Any, key: Any, table_file: Path
) -> None:
    clock = [1_000.0]
    write_atomically(table_file, envelope(table(
        shadowed={"mode": "shadow"},
        old={"mode": "rolled-back", "since": "2026-03-20T10:00:00Z", "drain_seconds": 60},
    ), [key]))
    r = make_router(name="gw-1", clock=lambda: clock[0])
    assert r.refresh().outcome == "accepted"
    expected: dict[tuple[str, str], int] = {}
    handed = []
    for alias in (A, P, "shadowed", "old"):
        for i in range(40):
            d = r.resolve(T, alias, f"s{i}")
            handed.append((alias, d))
    clock[0] += 120  # the rolled-back route's drain is over: resets, then stable
    handed += [("old", r.resolve(T, "old", f"s{i}")) for i in range(40)]
    for alias, d in handed:
        d.observe(0.5)
        expected[(alias, d.cohort)] = expected.get((alias, d.cohort), 0) + 1
    assert {a for a, _ in expected} == {A, P, "shadowed", "old"}
    for (alias, cohort), n in expected.items():
        assert r.telemetry.value(T, alias, cohort, mn.REQUESTS) == n, (alias, cohort)


def test_buffers_are_folded_by_refresh_and_by_a_started_routers_poll_thread(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(table(), [key]))
    r = make_router(name="gw-1", poll_interval=3600.0)
    r.refresh()
    d = r.resolve(T, A, session(True))

    def buffered() -> int:
        return sum(len(buf) for _, buf in list(r.telemetry._buffers.values()))

    for _ in range(1000):
        d.observe(0.5)
    assert buffered() == 1000
    r.refresh()  # a gateway that refreshes by hand bounds its buffers too
    assert buffered() == 0
    r.start()  # polls hourly here, and folds about every second
    try:
        for _ in range(1000):
            d.observe(0.5)
        deadline = time.monotonic() + 10
        while buffered() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert buffered() == 0
    finally:
        r.stop()
    assert r.telemetry.value(T, A, "canary", mn.REQUESTS) == 2000
