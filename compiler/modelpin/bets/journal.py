"""The journal of completed calls: what makes a killed run resumable without paying twice.

An append-only JSON Lines file. The first line is the run's header (its ``run_at``, so
a resumed run writes the same evidence); every other line is one completed call keyed
by (suite id, suite version, case, model, request hash) and holding the answer. Lines
are written whole and fsynced in batches by one writer thread (group commit): ``append``
returns once its line is durable. Only successful answers are journaled; a call that
failed is tried again by the next run. On open, a torn last line (the process was
killed mid-write) is cut off. The index keeps only key -> file offset, so memory stays
proportional to the number of calls, not their size.

Durability: ``append`` writes its whole line to the file at once (one ``write``, from the
event loop: a few microseconds), so a killed process has lost nothing it journaled; a
background thread fsyncs at most ``FSYNC_SECONDS`` later (no fsync per call, and no call
waits for one), so a machine crash costs at most the last second's calls, paid again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

JOURNAL_FORMAT = 1
FSYNC_SECONDS = 1.0


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
        self._end = os.fstat(self._fd).st_size
        self._dirty = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
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

    def append(self, key: str, answer: dict[str, Any]) -> None:
        """Journal ``answer`` under ``key``: written when this returns, fsynced soon."""
        line = (json.dumps({"k": key, "a": answer}, sort_keys=True, ensure_ascii=False)
                + "\n").encode()
        offset = self._end
        try:
            written = os.write(self._fd, line)  # O_APPEND, and this is the only writer
            if written != len(line):
                raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
        except OSError:
            os.ftruncate(self._fd, offset)  # no torn line left before the next one
            raise
        self._end = offset + len(line)
        self.index[key] = offset
        self._dirty = True
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="bets-journal-fsync",
                                            daemon=True)
            self._syncer.start()

    def _sync_loop(self) -> None:
        while not self._stop.wait(FSYNC_SECONDS):
            if self._dirty:
                self._dirty = False
                os.fsync(self._fd)

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        if self._dirty:
            os.fsync(self._fd)
        os.close(self._fd)
