"""What a gateway sees from resolve(): modes, stickiness, rollback drain, stale tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin.router import (
    InMemorySessionStore,
    TableUnavailableError,
    UnknownAliasError,
    UnknownTenantError,
    bucket,
)
from tests.router.tables import envelope, payload, salt_of, with_route, write_atomically

T, A = "acme-legal", "primary-reasoning"
STABLE, CAND = "gpt-5-2026-01-10", "gpt-5-2026-03-14"
SALT = salt_of(T, A, CAND)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _load(router: Any, table_file: Path, doc: dict[str, Any], key: Ed25519PrivateKey) -> None:
    write_atomically(table_file, envelope(doc, [key]))
    result = router.refresh()
    assert result.outcome == "accepted", result.error


def _sessions(n: int, below: int | None = None, at_least: int | None = None) -> list[str]:
    out = []
    i = 0
    while len(out) < n:
        sid = f"session-{i}"
        b = bucket(SALT, sid)
        if (below is None or b < below) and (at_least is None or b >= at_least):
            out.append(sid)
        i += 1
    return out


def test_pinned_route_goes_to_stable(make_router: Any, key: Any, table_file: Path) -> None:
    router = make_router()
    _load(router, table_file, payload(3), key)
    d = router.resolve(T, "embedder", "any-session")
    assert (d.model, d.cohort, d.shadow, d.serial, d.session_reset) == (
        "text-embedding-4-2026-02-01", "stable", None, 3, False)
    assert not d.shadow_comparison_only


def test_shadow_route_names_the_candidate_as_comparison_only(
    make_router: Any, key: Any, table_file: Path
) -> None:
    router = make_router()
    _load(router, table_file, with_route(payload(3), T, A, mode="shadow"), key)
    d = router.resolve(T, A, "s")
    assert d.model == STABLE and d.cohort == "stable"
    assert d.shadow == CAND and d.shadow_comparison_only


def test_canary_splits_by_bucket(make_router: Any, key: Any, table_file: Path) -> None:
    router = make_router()
    _load(router, table_file, with_route(payload(3), T, A, mode="canary", percent=5), key)
    for sid in _sessions(20, below=500):
        assert router.resolve(T, A, sid).model == CAND
    for sid in _sessions(20, at_least=500):
        d = router.resolve(T, A, sid)
        assert (d.model, d.cohort) == (STABLE, "stable")


def test_a_session_keeps_its_version_while_the_percent_rises(
    make_router: Any, key: Any, table_file: Path
) -> None:
    router = make_router()
    _load(router, table_file, with_route(payload(1), T, A, mode="canary", percent=5), key)
    early = _sessions(50, at_least=500, below=5000)  # stable at 5%, canary at 50%
    assert all(router.resolve(T, A, s).cohort == "stable" for s in early)
    _load(router, table_file, with_route(payload(2), T, A, mode="canary", percent=50), key)
    assert all(router.resolve(T, A, s).cohort == "stable" for s in early)
    fresh = _sessions(50, at_least=500, below=5000)[-1] + "-new"
    newcomers = [f"{fresh}-{i}" for i in range(400)]
    share = sum(router.resolve(T, A, s).cohort == "canary" for s in newcomers) / 400
    assert 0.4 < share < 0.6


def test_paused_canary_holds_its_percent(make_router: Any, key: Any, table_file: Path) -> None:
    router = make_router()
    doc = with_route(payload(1), T, A, mode="canary", percent=25, paused=True)
    _load(router, table_file, doc, key)
    assert router.resolve(T, A, _sessions(1, below=2500)[0]).cohort == "canary"
    assert router.resolve(T, A, _sessions(1, at_least=2500)[0]).cohort == "stable"


def test_rollback_drains_pinned_sessions_then_resets_them_once(
    make_router: Any, key: Any, table_file: Path
) -> None:
    clock = Clock(1_774_000_000.0)  # 2026-03-20T09:46:40Z
    router = make_router(clock=clock)
    _load(router, table_file, with_route(payload(1), T, A, mode="canary", percent=50), key)
    on_candidate = _sessions(5, below=5000)
    on_stable = _sessions(5, at_least=5000)
    assert all(router.resolve(T, A, s).model == CAND for s in on_candidate)
    assert all(router.resolve(T, A, s).model == STABLE for s in on_stable)

    since = "2026-03-20T10:00:00Z"  # epoch 1774000800
    doc = with_route(payload(2), T, A, mode="rolled-back", since=since, drain_seconds=300)
    _load(router, table_file, doc, key)
    # New sessions go stable at once, even those whose bucket was canary.
    for s in _sessions(10, below=5000)[5:]:
        assert router.resolve(T, A, s).model == STABLE
    # Pinned sessions drain on the candidate for drain_seconds from the moment this
    # router first applied the rollback (the load above), not from `since`.
    clock.now = 1_774_000_000 + 299
    assert all(router.resolve(T, A, s).model == CAND for s in on_candidate)
    assert all(router.resolve(T, A, s).model == STABLE for s in on_stable)
    clock.now = 1_774_000_000 + 300
    first = [router.resolve(T, A, s) for s in on_candidate]
    assert all(d.model == STABLE and d.session_reset for d in first)
    assert all(d.serial == 2 for d in first)
    later = [router.resolve(T, A, s) for s in on_candidate]
    assert all(d.model == STABLE and not d.session_reset for d in later)
    assert not any(router.resolve(T, A, s).session_reset for s in on_stable)


def test_a_rollback_published_long_after_since_still_drains_in_full(
    make_router: Any, key: Any, table_file: Path
) -> None:
    clock = Clock(1_774_000_000.0)
    router = make_router(clock=clock)
    _load(router, table_file, with_route(payload(1), T, A, mode="canary", percent=50), key)
    on_candidate = _sessions(5, below=5000)
    assert all(router.resolve(T, A, s).model == CAND for s in on_candidate)
    # the PR said since 10:00; the table reaches the router two hours later
    clock.now = 1_774_000_800 + 7200
    doc = with_route(payload(2), T, A, mode="rolled-back", since="2026-03-20T10:00:00Z",
                     drain_seconds=300)
    _load(router, table_file, doc, key)
    clock.now += 299
    assert all(router.resolve(T, A, s).model == CAND for s in on_candidate)
    # a reload of a later table keeps the window where it began
    _load(router, table_file, with_route(payload(3), T, A, mode="rolled-back",
                                         since="2026-03-20T10:00:00Z", drain_seconds=300), key)
    assert all(router.resolve(T, A, s).model == CAND for s in on_candidate)
    clock.now += 1
    assert all(router.resolve(T, A, s).session_reset for s in on_candidate)


def test_a_new_candidate_starts_with_fresh_buckets(
    make_router: Any, key: Any, table_file: Path
) -> None:
    router = make_router()
    _load(router, table_file, with_route(payload(1), T, A, mode="canary", percent=100), key)
    assert router.resolve(T, A, "s-1").model == CAND
    doc = with_route(payload(2), T, A, mode="canary", percent=0.01, candidate="gpt-5-2026-01-10",
                     stable="gpt-5-2026-03-14")
    _load(router, table_file, doc, key)
    # Pins of the previous rollout do not carry over to the next one.
    assert router.resolve(T, A, "s-1").cohort == "stable"


def test_unknown_tenant_and_alias_raise_typed_errors(
    make_router: Any, key: Any, table_file: Path
) -> None:
    router = make_router()
    with pytest.raises(TableUnavailableError):
        router.resolve(T, A, "s")
    _load(router, table_file, payload(1), key)
    with pytest.raises(UnknownTenantError) as e1:
        router.resolve("initech", A, "s")
    assert e1.value.tenant == "initech"
    with pytest.raises(UnknownAliasError) as e2:
        router.resolve(T, "nope", "s")
    assert (e2.value.tenant, e2.value.alias) == (T, "nope")


def test_an_expired_table_is_served_stale_by_default(
    make_router: Any, key: Any, table_file: Path
) -> None:
    clock = Clock(1_774_000_000.0)
    router = make_router(clock=clock)
    _load(router, table_file, payload(1, expires_at="2026-03-27T10:00:00Z"), key)
    assert not router.status().stale
    clock.now = 1_774_605_600 + 1  # past expires_at
    router.refresh()
    assert router.resolve(T, "embedder", "s").serial == 1
    status = router.status()
    assert status.stale and status.serving and status.serial == 1


def test_refuse_policy_stops_serving_an_expired_table_until_a_fresh_one(
    make_router: Any, key: Any, table_file: Path
) -> None:
    clock = Clock(1_774_000_000.0)
    router = make_router(clock=clock, stale_policy="refuse")
    _load(router, table_file, payload(1, expires_at="2026-03-27T10:00:00Z"), key)
    clock.now = 1_774_605_600 + 1
    router.refresh()
    with pytest.raises(TableUnavailableError, match="expired"):
        router.resolve(T, "embedder", "s")
    assert not router.status().serving
    _load(router, table_file, payload(2, expires_at="2026-04-03T10:00:00Z"), key)
    assert router.resolve(T, "embedder", "s").serial == 2


def test_in_memory_store_forgets_after_ttl_and_stays_bounded() -> None:
    store = InMemorySessionStore(max_sessions=100, ttl=60)
    clock = Clock(1000.0)
    store._clock = clock  # type: ignore[assignment]
    assert store.claim("k", "s", "canary") == "canary"
    assert store.claim("k", "s", "stable") == "canary"  # first claim wins
    clock.now += 59
    assert store.get("k", "s") == "canary"  # use refreshes the TTL
    clock.now += 59
    assert store.get("k", "s") == "canary"
    clock.now += 61
    assert store.get("k", "s") is None
    for i in range(1000):
        store.claim("k", f"s{i}", "stable")
    assert len(store) <= 100
    assert store.get("k", "s999") == "stable"  # the newest survive eviction
