"""Stickiness shared by router replicas through a real Redis server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry

from modelpin.router import RedisSessionStore, bucket
from tests.router.conftest import RedisServer
from tests.router.tables import envelope, payload, salt_of, with_route, write_atomically

T, A = "acme-legal", "primary-reasoning"
SALT = salt_of(T, A, "gpt-5-2026-03-14")


def _canary_at(serial: int, percent: float) -> dict[str, Any]:
    return with_route(payload(serial), T, A, mode="canary", percent=percent)


def test_two_replicas_share_stickiness_while_the_percent_goes_5_25_50(
    redis_server: RedisServer, make_router: Any, key: Any, tmp_path: Path
) -> None:
    file_a, file_b = tmp_path / "a.json", tmp_path / "b.json"
    a = make_router(source=file_a, state_file=tmp_path / "fa.json",
                    session_store=RedisSessionStore.from_url(redis_server.url))
    b = make_router(source=file_b, state_file=tmp_path / "fb.json",
                    session_store=RedisSessionStore.from_url(redis_server.url))

    def publish(serial: int, percent: float) -> None:
        data = envelope(_canary_at(serial, percent), [key])
        for f, r in ((file_a, a), (file_b, b)):
            write_atomically(f, data)
            assert r.refresh().outcome == "accepted"

    sessions = [f"conv-{i}" for i in range(600)]
    publish(1, 5)
    first = {s: (a if i % 2 else b).resolve(T, A, s).cohort for i, s in enumerate(sessions)}
    assert 10 <= sum(c == "canary" for c in first.values()) <= 60
    for serial, percent in ((2, 25), (3, 50)):
        publish(serial, percent)
        for i, s in enumerate(sessions):
            # The other replica than the one that first saw the session answers it.
            d = (b if i % 2 else a).resolve(T, A, s)
            assert d.cohort == first[s], (s, percent)
            assert d.serial == serial
    # Sessions first seen at 50% follow the new percent; the stable ones at 5% whose
    # bucket is now canary stayed stable (stickiness, not bucketing, answered them).
    moved_by_bucket = [s for s in sessions if first[s] == "stable" and bucket(SALT, s) < 5000]
    assert len(moved_by_bucket) > 100
    newcomers = [f"late-{i}" for i in range(400)]
    share = sum(a.resolve(T, A, s).cohort == "canary" for s in newcomers) / 400
    assert 0.4 < share < 0.6
    # Redis holds the pins, with a TTL.
    client = redis.Redis.from_url(redis_server.url)
    key_name = f"modelpin:session:{SALT}:conv-0"
    assert client.get(key_name) == first["conv-0"].encode()
    assert 0 < client.ttl(key_name) <= 24 * 3600


def test_resolves_keep_answering_when_redis_dies(
    redis_server: RedisServer, make_router: Any, key: Any, table_file: Path
) -> None:
    registry = CollectorRegistry()
    store = RedisSessionStore.from_url(redis_server.url, timeout=0.05, retry_after=0.2)
    router = make_router(session_store=store, registry=registry, name="gw")
    write_atomically(table_file, envelope(_canary_at(1, 25), [key]))
    router.refresh()
    before = {f"s{i}": router.resolve(T, A, f"s{i}").cohort for i in range(200)}

    redis_server.kill()
    started = time.monotonic()
    during = {}
    for _ in range(3):
        for i in range(200):
            during[f"s{i}"] = router.resolve(T, A, f"s{i}").cohort
        time.sleep(0.25)  # let the store retry after its back-off
    elapsed = time.monotonic() - started
    # Without the store, decisions fall back to bucketing (no exception, no hang).
    for s, cohort in during.items():
        assert cohort == ("canary" if bucket(SALT, s) < 2500 else "stable")
    assert before == during  # nothing moved: at a steady percent buckets agree with pins
    assert elapsed < 5
    errors = registry.get_sample_value(
        "modelpin_router_session_store_errors_total", {"router": "gw"})
    assert errors is not None and errors >= 600


def test_rollback_cut_over_happens_once_across_replicas(
    redis_server: RedisServer, make_router: Any, key: Any, tmp_path: Path
) -> None:
    replicas = []
    for n in range(2):
        f = tmp_path / f"t{n}.json"
        write_atomically(f, envelope(_canary_at(1, 100), [key]))
        r = make_router(source=f, state_file=tmp_path / f"floor{n}.json",
                        session_store=RedisSessionStore.from_url(redis_server.url))
        r.refresh()
        replicas.append((f, r))
    assert replicas[0][1].resolve(T, A, "conv").cohort == "canary"
    gone = with_route(payload(2), T, A, mode="rolled-back", since="2026-01-01T00:00:00Z",
                      drain_seconds=0)
    for f, r in replicas:
        write_atomically(f, envelope(gone, [key]))
        assert r.refresh().outcome == "accepted"
    answers = [r.resolve(T, A, "conv") for _, r in replicas for _ in range(3)]
    assert all(d.model == "gpt-5-2026-01-10" for d in answers)
    assert sum(d.session_reset for d in answers) == 1
