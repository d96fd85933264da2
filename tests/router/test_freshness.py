"""The freeze-attack bound: how long an attacker who blocks every update (or a stuck
pipeline) can keep a router on its last table. Without ``max_staleness`` it is the
table's ``expires_at`` (issued_at + ttl); with it, ``issued_at + max_staleness``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin.router import ExpiredTableError, TableUnavailableError
from tests.router.tables import envelope, payload, write_atomically

ISSUED = "2026-03-20T10:00:00Z"
EXPIRES = "2026-03-27T10:00:00Z"  # ttl 7 days


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _frozen_router(make_router: Any, key: Ed25519PrivateKey, table_file: Path,
                   clock: list[float], **kw: Any) -> Any:
    write_atomically(table_file, envelope(payload(5, issued_at=ISSUED, expires_at=EXPIRES),
                                          [key]))
    router = make_router(stale_policy="refuse", clock=lambda: clock[0], **kw)
    assert router.refresh().outcome == "accepted"
    return router


def test_without_max_staleness_the_bound_is_the_ttl(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    clock = [_ts(ISSUED) + 3600]
    router = _frozen_router(make_router, key, table_file, clock)
    table_file.unlink()  # the attacker blocks every update from now on
    clock[0] = _ts(EXPIRES) - 1
    router.refresh()
    assert router.resolve("acme-legal", "embedder", "s").serial == 5
    clock[0] = _ts(EXPIRES)
    router.refresh()
    assert router.status().stale
    with pytest.raises(TableUnavailableError):
        router.resolve("acme-legal", "embedder", "s")


def test_max_staleness_bounds_the_freeze_below_the_ttl(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    clock = [_ts(ISSUED) + 3600]
    router = _frozen_router(make_router, key, table_file, clock, max_staleness=2 * 86400)
    table_file.unlink()
    clock[0] = _ts(ISSUED) + 2 * 86400 - 1
    router.refresh()
    assert router.resolve("acme-legal", "embedder", "s").serial == 5
    clock[0] = _ts(ISSUED) + 2 * 86400  # five days before expires_at
    router.refresh()
    assert router.status().stale
    with pytest.raises(TableUnavailableError):
        router.resolve("acme-legal", "embedder", "s")


def test_a_table_older_than_max_staleness_is_not_accepted(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(5, issued_at=ISSUED, expires_at=EXPIRES),
                                          [key]))
    router = make_router(max_staleness=86400, clock=lambda: _ts(ISSUED) + 86400 + 60)
    result = router.refresh()
    assert isinstance(result.error, ExpiredTableError)
    assert "longer ago than max_staleness" in str(result.error)


def test_max_staleness_must_be_positive(make_router: Any) -> None:
    with pytest.raises(ValueError, match="max_staleness"):
        make_router(max_staleness=0)
