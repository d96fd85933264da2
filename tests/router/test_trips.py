"""Trips through a real Redis: a tripped route is a rollback at every router, only ever
toward stable; store outages never reach a request and never lift a trip."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin.router import RedisSessionStore, bucket
from modelpin.router import metric_names as mn
from modelpin.router.trips import Trip, TripStore
from tests.router.conftest import RedisServer, free_port
from tests.router.tables import envelope, payload, salt_of, with_route, write_atomically

T, A = "acme-legal", "primary-reasoning"
STABLE, CAND = "gpt-5-2026-01-10", "gpt-5-2026-03-14"
SALT = salt_of(T, A, CAND)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sessions(n: int, *, canary: bool, percent: float = 50) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        sid = f"session-{i}"
        if (bucket(SALT, sid) < percent * 100) == canary:
            out.append(sid)
        i += 1
    return out


def trip(candidate: str = CAND, **kw: Any) -> Trip:
    return Trip(T, A, candidate, kw.pop("reason", "tool_call_failure_rate failed"),
                kw.pop("tripped_at", 1.0), kw.pop("by", "guard-test"), **kw)


def load(router: Any, table_file: Path, doc: dict[str, Any], key: Ed25519PrivateKey) -> None:
    write_atomically(table_file, envelope(doc, [key]))
    assert router.refresh().outcome == "accepted"


@pytest.fixture
def canary_table(table_file: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    doc = with_route(payload(1), T, A, mode="canary", percent=50, drain_seconds=60)
    write_atomically(table_file, envelope(doc, [key]))
    return doc


def make(make_router: Any, url: str, clock: Clock | None = None, **kw: Any) -> Any:
    r = make_router(trips=TripStore.from_url(url), clock=clock or Clock(1000.0),
                    session_store=RedisSessionStore.from_url(url, timeout=0.2), **kw)
    assert r.refresh().outcome == "accepted"
    return r


def test_a_trip_is_a_rollback_new_stable_drain_then_reset(
    make_router: Any, redis_server: RedisServer, canary_table: Any
) -> None:
    clock = Clock(1000.0)
    r = make(make_router, redis_server.url, clock)
    on_canary = sessions(5, canary=True)
    on_stable = sessions(5, canary=False)
    assert all(r.resolve(T, A, s).model == CAND for s in on_canary)
    assert all(r.resolve(T, A, s).model == STABLE for s in on_stable)
    store = TripStore.from_url(redis_server.url)
    assert store.trip(trip()) is True
    assert store.trip(trip(by="another guard")) is False  # one trip per route
    assert r.refresh_trips() is True
    assert r.trips_applied() == ("acme-legal/primary-reasoning",)
    # new sessions stable, even with a canary bucket
    assert all(r.resolve(T, A, s).model == STABLE for s in sessions(20, canary=True)[5:])
    # sessions on the candidate drain for drain_seconds from first sight, then reset once
    clock.now = 1000.0 + 59
    assert all(r.resolve(T, A, s).model == CAND for s in on_canary)
    clock.now = 1000.0 + 60
    first = [r.resolve(T, A, s) for s in on_canary]
    assert all(d.model == STABLE and d.session_reset for d in first)
    assert not any(r.resolve(T, A, s).session_reset for s in on_canary)
    assert all(r.resolve(T, A, s).model == STABLE for s in on_stable)
    assert r.registry.get_sample_value(mn.TRIPS_APPLIED.family, {"router": "default"}) == 1
    # every decision of the tripped route counts under its own cohort
    served = [r.resolve(T, A, s) for s in on_canary + on_stable + sessions(3, canary=True)]
    before = {c: r.telemetry.value(T, A, c, mn.REQUESTS) for c in ("stable", "canary")}
    for d in [*first, *served]:
        assert d._row is not None
        r.record(T, A, d)
    assert r.telemetry.value(T, A, "stable", mn.REQUESTS) == before["stable"] + 18
    assert r.telemetry.value(T, A, "canary", mn.REQUESTS) == before["canary"]


def test_a_trip_never_moves_traffic_toward_a_candidate(
    make_router: Any, redis_server: RedisServer, table_file: Path, key: Ed25519PrivateKey
) -> None:
    doc = payload(1)  # primary-reasoning: canary 5%; embedder: pinned
    write_atomically(table_file, envelope(doc, [key]))
    r = make(make_router, redis_server.url)
    store = TripStore.from_url(redis_server.url)
    store.trip(Trip(T, "embedder", CAND, "x", 1.0, "g"))  # a pinned route
    store.trip(trip(candidate="gpt-5-2026-01-10"))  # names the stable model
    r.refresh_trips()
    assert r.trips_applied() == ()
    assert r.resolve(T, "embedder", "s").cohort == "stable"
    shares = [r.resolve(T, A, f"x{i}").cohort for i in range(2000)]
    assert 0.02 < shares.count("canary") / 2000 < 0.08  # the table's 5%, untouched


def test_a_tripped_shadow_stops_the_comparison_copy(
    make_router: Any, redis_server: RedisServer, table_file: Path, key: Ed25519PrivateKey
) -> None:
    write_atomically(table_file, envelope(with_route(payload(1), T, A, mode="shadow"), [key]))
    r = make(make_router, redis_server.url)
    assert r.resolve(T, A, "s").shadow == CAND
    TripStore.from_url(redis_server.url).trip(trip())
    r.refresh_trips()
    d = r.resolve(T, A, "s")
    assert d.model == STABLE and d.shadow is None


def test_redis_down_at_start_then_up(
    make_router: Any, canary_table: Any, tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    r = make(make_router, url)
    assert r.refresh_trips() is False
    assert r.registry.get_sample_value(mn.TRIP_POLL_ERRORS.sample, {"router": "default"}) == 1
    d = r.resolve(T, A, "s-1")  # never raises; decided without stickiness
    assert d.cohort in ("stable", "canary")
    import shutil
    import subprocess

    exe = shutil.which("redis-server")
    assert exe is not None
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server = RedisServer(port, proc)
        client = redis.Redis(port=port, socket_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        TripStore.from_url(server.url).trip(trip())
        assert r.refresh_trips() is True
        assert r.trips_applied() == ("acme-legal/primary-reasoning",)
    finally:
        proc.kill()
        proc.wait()


def test_redis_down_mid_run_keeps_the_trip_and_never_raises(
    make_router: Any, redis_server: RedisServer, canary_table: Any
) -> None:
    r = make(make_router, redis_server.url)
    TripStore.from_url(redis_server.url).trip(trip())
    r.refresh_trips()
    redis_server.kill()
    for _ in range(3):
        assert r.refresh_trips() is False
    assert r.trips_applied() == ("acme-legal/primary-reasoning",)  # not lifted by an outage
    new = [r.resolve(T, A, s) for s in sessions(20, canary=True)]
    assert all(d.model == STABLE for d in new)
    assert r.registry.get_sample_value(mn.TRIP_POLL_ERRORS.sample, {"router": "default"}) == 3


def test_the_trip_poller_applies_within_about_a_second(
    make_router: Any, redis_server: RedisServer, canary_table: Any
) -> None:
    r = make_router(trips=TripStore.from_url(redis_server.url), trip_poll_interval=0.2)
    r.start()
    try:
        TripStore.from_url(redis_server.url).trip(trip())
        start = time.monotonic()
        while not r.trips_applied():
            assert time.monotonic() - start < 2.0
            time.sleep(0.02)
    finally:
        r.stop()


def test_the_table_carrying_the_rollback_makes_the_trip_moot_and_keeps_the_window(
    make_router: Any, redis_server: RedisServer, canary_table: Any, table_file: Path,
    key: Ed25519PrivateKey
) -> None:
    clock = Clock(1000.0)
    r = make(make_router, redis_server.url, clock)
    on_canary = sessions(3, canary=True)
    assert all(r.resolve(T, A, s).model == CAND for s in on_canary)
    TripStore.from_url(redis_server.url).trip(trip())
    r.refresh_trips()  # first sight of the rollback: t=1000
    clock.now = 1030.0
    load(r, table_file, with_route(payload(2), T, A, mode="rolled-back", drain_seconds=60,
                                   since="2026-03-20T10:00:00Z"), key)
    assert r.trips_applied() == ()  # the table carries it
    clock.now = 1059.0
    assert all(r.resolve(T, A, s).model == CAND for s in on_canary)
    clock.now = 1060.0  # the window began at the trip, not at the table
    assert all(r.resolve(T, A, s).session_reset for s in on_canary)


def test_routers_share_the_start_of_the_drain(
    make_router: Any, redis_server: RedisServer, canary_table: Any
) -> None:
    from prometheus_client import CollectorRegistry

    a = make(make_router, redis_server.url, Clock(1000.0), name="a")
    b = make(make_router, redis_server.url, Clock(1020.0), name="b",
             registry=CollectorRegistry())
    on_canary = sessions(2, canary=True)
    for s in on_canary:
        a.resolve(T, A, s)
    TripStore.from_url(redis_server.url).trip(trip())
    a.refresh_trips()
    b.refresh_trips()  # applied 20 s later, the window is still the first router's
    b._clock.now = 1059.0  # type: ignore[attr-defined]
    assert b.resolve(T, A, on_canary[0]).model == CAND
    b._clock.now = 1060.0  # type: ignore[attr-defined]
    assert b.resolve(T, A, on_canary[0]).session_reset


def test_a_garbled_trip_is_skipped_and_reported(
    make_router: Any, redis_server: RedisServer, canary_table: Any
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.hset("modelpin:trips", "acme-legal/primary-reasoning", b"{not json")
    client.hset("modelpin:trips", "other/alias", trip().to_json())  # key and body disagree
    store = TripStore.from_url(redis_server.url)
    assert store.load() == {}
    assert set(store.invalid) == {"acme-legal/primary-reasoning", "other/alias"}
    r = make(make_router, redis_server.url)
    r.refresh_trips()
    assert r.trips_applied() == ()


def test_clear_is_logged_and_the_log_is_bounded(redis_server: RedisServer) -> None:
    store = TripStore.from_url(redis_server.url)
    store.trip(trip())
    assert store.clear(T, A, why="manual: verified", by="jane") is not None
    assert store.clear(T, A, why="again", by="jane") is None
    events = store.log()
    assert [e["event"] for e in events] == ["clear", "trip"]
    assert events[0]["by"] == "jane" and events[0]["trip"]["candidate"] == CAND


def test_leases_are_exclusive(redis_server: RedisServer) -> None:
    store = TripStore.from_url(redis_server.url)
    assert store.lock("pr:x", "g1", 5) is True
    assert store.lock("pr:x", "g2", 5) is False
    assert store.lock("pr:x", "g1", 5) is True  # re-entrant for its holder
    store.unlock("pr:x", "g2")  # not the holder: no effect
    assert store.lock("pr:x", "g2", 5) is False
    store.unlock("pr:x", "g1")
    assert store.lock("pr:x", "g2", 5) is True
