"""The journal of completed calls: what makes a killed run resumable without paying twice.

An append-only JSON Lines file. The first line is the run's header (its ``run_at``, so
a resumed run writes the same evidence); every other line is one completed call keyed
by (suite id, suite version, case, model, request hash) and holding the answer. Lines
are written whole and fsynced in batches by one writer thread (group commit): ``append``
returns once its line is durable. Only successful answers are journaled; a call that
failed is tried again by the next run. On open, a torn last line (the process was
killed mid-write) is cut off. The index keeps only key -> file offset, so memory stays
proportional to the number of calls, not their size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

JOURNAL_FORMAT = 1


class JournalError(Exception):
    """The journal cannot be used (another run's, unreadable)."""


def call_key(suite_id: str, suite_version: int, case_id: str, model: str,
             request: dict[str, Any]) -> str:
    body = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    request_hash = hashlib.sha256(body.encode()).hexdigest()
    parts = json.dumps([suite_id, suite_version, case_id, model, request_hash])
    return hashlib.sha256(parts.encode()).hexdigest()[:40]


class Journal:
    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        """Open (or create) the journal at ``path``. An existing journal keeps its own
        header (the run being resumed); ``header`` must agree on ``run`` (what is run)."""
        self.path = path
        self.index: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.header = self._load(header)
        self._pending: list[tuple[str, bytes, asyncio.Future[None],
                                  asyncio.AbstractEventLoop]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.resumed = len(self.index)

    def _load(self, header: dict[str, Any]) -> dict[str, Any]:
        data = b""
        with open(self.path, "rb") as fh:
            data = fh.read()
        good = data.rfind(b"\n") + 1
        if good < len(data):  # a torn last line: the run was killed mid-write
            os.ftruncate(self._fd, good)
            data = data[:good]
        if not data:
            line = json.dumps({"journal": JOURNAL_FORMAT, **header}, sort_keys=True) + "\n"
            os.write(self._fd, line.encode())
            os.fsync(self._fd)
            return dict(header)
        offset = 0
        first = True
        found: dict[str, Any] = {}
        for raw in data.splitlines(keepends=True):
            try:
                entry = json.loads(raw)
            except ValueError:
                raise JournalError(f"{self.path}: line at byte {offset} is not JSON") from None
            if first:
                if entry.get("journal") != JOURNAL_FORMAT:
                    raise JournalError(f"{self.path} is not a BETS journal of this version")
                if entry.get("run") != header.get("run"):
                    raise JournalError(f"{self.path} belongs to another run")
                found = {k: v for k, v in entry.items() if k != "journal"}
                first = False
            else:
                self.index[str(entry["k"])] = offset
            offset += len(raw)
        return found

    def get(self, key: str) -> dict[str, Any] | None:
        offset = self.index.get(key)
        if offset is None:
            return None
        chunk = b""
        while not chunk.endswith(b"\n"):
            more = os.pread(self._fd, 65536, offset + len(chunk))
            if not more:
                break
            chunk += more
            if b"\n" in more:
                chunk = chunk[: chunk.index(b"\n") + 1]
        answer: dict[str, Any] = json.loads(chunk)["a"]
        return answer

    async def append(self, key: str, answer: dict[str, Any]) -> None:
        line = json.dumps({"k": key, "a": answer}, sort_keys=True, ensure_ascii=False) + "\n"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._writer, name="bets-journal",
                                                daemon=True)
                self._thread.start()
            self._pending.append((key, line.encode(), future, loop))
            self._cond.notify()
        await future

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            self._flush(batch)

    def _flush(self, batch: Sequence[tuple[str, bytes, asyncio.Future[None],
                                          asyncio.AbstractEventLoop]]) -> None:
        error: BaseException | None = None
        try:
            offset = os.fstat(self._fd).st_size  # one writer: appends land here
            os.write(self._fd, b"".join(line for _k, line, _f, _l in batch))
            os.fsync(self._fd)
        except OSError as exc:
            error = exc
        else:
            for key, line, _f, _l in batch:
                self.index[key] = offset
                offset += len(line)
        loop = batch[0][3]
        loop.call_soon_threadsafe(_settle_all, [f for _k, _l, f, _lp in batch], error)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        os.close(self._fd)


def _settle_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
