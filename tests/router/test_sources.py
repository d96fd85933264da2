"""Fetching: ETag revalidation, the size cap while streaming, stat polling, backoff."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelpin.router import FileSource, HttpSource, OversizeTableError, SourceError
from modelpin.router.sources import backoff_delay
from tests.router.conftest import TableServer
from tests.router.tables import envelope, payload, write_atomically


def test_http_revalidates_with_etag_after_an_accepted_fetch(
    make_router: Any, key: Any, table_server: TableServer
) -> None:
    table_server.body = envelope(payload(1), [key])
    router = make_router(source=HttpSource(table_server.url))
    assert router.refresh().outcome == "accepted"
    assert router.refresh().outcome == "unchanged"
    assert table_server.not_modified == 1
    table_server.body = envelope(payload(2), [key])
    assert router.refresh().outcome == "accepted"
    assert router.status().serial == 2


def test_a_rejected_http_table_is_fetched_again_not_remembered(
    make_router: Any, key: Any, table_server: TableServer
) -> None:
    table_server.body = envelope(payload(2), [key])
    router = make_router(source=HttpSource(table_server.url))
    router.refresh()
    table_server.body = envelope(payload(1), [key])
    assert router.refresh().outcome == "rejected"
    assert router.refresh().outcome == "rejected"  # fetched in full again, not a 304
    assert table_server.not_modified == 0


def test_http_stops_reading_past_the_cap_without_a_content_length(
    table_server: TableServer,
) -> None:
    table_server.body = b"x" * 3_000_000
    table_server.lie_about_length = True
    with pytest.raises(OversizeTableError):
        HttpSource(table_server.url, max_bytes=100_000).fetch()
    table_server.lie_about_length = False
    with pytest.raises(OversizeTableError, match="announces"):
        HttpSource(table_server.url, max_bytes=100_000).fetch()


def test_http_errors_are_source_errors_and_keep_the_table(
    make_router: Any, key: Any, table_server: TableServer
) -> None:
    table_server.body = envelope(payload(1), [key])
    router = make_router(source=HttpSource(table_server.url))
    router.refresh()
    table_server.status = 503
    result = router.refresh()
    assert result.outcome == "source-error" and isinstance(result.error, SourceError)
    assert router.resolve("acme-legal", "embedder", "s").serial == 1
    dead = HttpSource("http://127.0.0.1:9/table", client=httpx.Client(timeout=0.5))
    with pytest.raises(SourceError):
        dead.fetch()


def test_file_source_sees_replacements_and_skips_unchanged(
    tmp_path: Path, key: Any
) -> None:
    path = tmp_path / "t.json"
    write_atomically(path, envelope(payload(1), [key]))
    source = FileSource(path)
    first = source.fetch()
    assert first is not None
    source.commit(first.token)
    assert source.fetch() is None
    write_atomically(path, envelope(payload(2), [key]))
    assert source.fetch() is not None
    path.unlink()
    with pytest.raises(SourceError):
        source.fetch()


def test_background_polling_picks_up_a_new_file(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))
    router = make_router(poll_interval=0.02)
    with router:
        write_atomically(table_file, envelope(payload(2), [key]))
        deadline = time.monotonic() + 5
        while router.status().serial != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert router.status().serial == 2


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    rng = random.Random(1)
    assert backoff_delay(0, 5, 300, rng) == 5
    delays = [backoff_delay(n, 5, 300, rng) for n in range(1, 10)]
    assert 8 <= delays[0] <= 12
    assert 16 <= delays[1] <= 24
    assert all(d <= 360 for d in delays) and delays[-1] >= 240
