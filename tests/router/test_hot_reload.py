"""Hot reload under load: resolving threads never see an error or an unverified serial
while the table is replaced underneath them, from a file and over HTTP."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin.router import HttpSource
from tests.router.conftest import TableServer
from tests.router.tables import envelope, payload, route, write_atomically

SWAPS = 200


def _table(serial: int, key: Ed25519PrivateKey) -> bytes:
    doc = payload(serial)
    percent = (serial % 100) + 1  # the split changes with every table
    tenants = doc["tenants"]
    tenants["acme-legal"]["aliases"]["primary-reasoning"] = route(
        "acme-legal", "primary-reasoning", mode="canary", percent=percent)
    tenants["globex"] = {
        "group": "standard", "failure_policy": "structured-error", "tools": {},
        "aliases": {"chat": route("globex", "chat", mode="shadow" if serial % 2 else "pinned")},
    }
    return envelope(doc, [key])


def _under_load(router: Any, publish: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    seen: set[int] = set()
    count = [0]
    stop = threading.Event()

    def resolver(n: int) -> None:
        local: set[int] = set()
        i = 0
        try:
            while not stop.is_set():
                i += 1
                sid = f"w{n}-{i % 5000}"
                d1 = router.resolve("acme-legal", "primary-reasoning", sid)
                d2 = router.resolve("globex", "chat", sid)
                d3 = router.resolve("acme-legal", "embedder", sid)
                local.update((d1.serial, d2.serial, d3.serial))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            seen.update(local)
            count[0] += i

    threads = [threading.Thread(target=resolver, args=(n,)) for n in range(4)]
    # With 4 CPU-bound threads the publisher waits a full switch interval (5 ms) every
    # time it wants the GIL back after I/O; hand it over more often to keep the test short.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    for t in threads:
        t.start()
    try:
        for serial in range(2, SWAPS + 2):
            publish(serial)
            result = router.refresh()
            assert result.outcome == "accepted", result.error
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert count[0] > 1000
    assert seen <= router.accepted_serials
    assert len(seen) > 10  # the resolvers really saw tables change under them
    assert router.accepted_serials == set(range(1, SWAPS + 2))
    assert router.status().serial == SWAPS + 1


def test_file_replaced_200_times_under_4_resolving_threads(
    make_router: Any, key: Ed25519PrivateKey, table_file: Path
) -> None:
    tables = {s: _table(s, key) for s in range(1, SWAPS + 2)}
    write_atomically(table_file, tables[1])
    router = make_router()
    assert router.refresh().outcome == "accepted"
    _under_load(router, lambda s: write_atomically(table_file, tables[s]))


def test_http_table_replaced_200_times_under_4_resolving_threads(
    make_router: Any, key: Ed25519PrivateKey, table_server: TableServer
) -> None:
    tables = {s: _table(s, key) for s in range(1, SWAPS + 2)}
    table_server.body = tables[1]
    router = make_router(source=HttpSource(table_server.url))
    assert router.refresh().outcome == "accepted"

    def publish(serial: int) -> None:
        table_server.body = tables[serial]

    _under_load(router, publish)
    assert table_server.requests == SWAPS + 1
