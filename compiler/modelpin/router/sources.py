"""Where a router fetches the signed envelope from: a local file or an HTTP(S) URL.

A source returns new bytes or None ("unchanged since the last accepted fetch"). The
change token (file identity or ETag) is committed only once the router has accepted
the bytes, so a rejected envelope is fetched and reported again rather than silently
remembered as current. Both sources stop reading past ``max_bytes``: an oversize
envelope is never held in memory, let alone parsed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from .errors import OversizeTableError, SourceError
from .trusted import DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    token: object


class TableSource(Protocol):
    def fetch(self) -> Fetched | None:
        """New envelope bytes, or None if unchanged since the last ``commit``."""
        ...

    def commit(self, token: object) -> None:
        """Remember ``token`` (from an accepted fetch) as the current version."""
        ...

    def describe(self) -> str: ...


class FileSource:
    """A local file, polled with ``stat``: a change of inode, size or mtime is new."""

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._current: object = None

    def describe(self) -> str:
        return str(self.path)

    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def fetch(self) -> Fetched | None:
        try:
            if self._identity(os.stat(self.path)) == self._current:
                return None
            with open(self.path, "rb") as f:
                # Identify what was actually opened, not what stat saw a moment earlier.
                token = self._identity(os.fstat(f.fileno()))
                if token[2] > self.max_bytes:
                    raise OversizeTableError(
                        f"{self.path} is {token[2]} bytes, the cap is {self.max_bytes}"
                    )
                data = f.read(self.max_bytes + 1)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc}") from None
        if len(data) > self.max_bytes:
            raise OversizeTableError(f"{self.path} is over the cap of {self.max_bytes} bytes")
        return Fetched(data, token)

    def commit(self, token: object) -> None:
        self._current = token


class HttpSource:
    """An HTTP(S) URL fetched with ``If-None-Match``; a 304 is "unchanged"."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            follow_redirects=False,
        )
        self._etag: str | None = None

    def describe(self) -> str:
        return self.url

    def close(self) -> None:
        self._client.close()

    def fetch(self) -> Fetched | None:
        headers = {"Accept": "application/json"}
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        try:
            with self._client.stream("GET", self.url, headers=headers) as response:
                if response.status_code == 304:
                    return None
                if response.status_code != 200:
                    raise SourceError(f"GET {self.url}: HTTP {response.status_code}")
                length = response.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > self.max_bytes:
                    raise OversizeTableError(
                        f"{self.url} announces {length} bytes, the cap is {self.max_bytes}"
                    )
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise OversizeTableError(
                            f"{self.url} sent over the cap of {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                return Fetched(b"".join(chunks), response.headers.get("etag"))
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {self.url}: {type(exc).__name__}: {exc}") from None

    def commit(self, token: object) -> None:
        self._etag = token if isinstance(token, str) else None


_rng = random.Random()


def backoff_delay(
    failures: int, interval: float, max_delay: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before the next poll after ``failures`` consecutive failures:
    ``interval`` when healthy, then doubling up to ``max_delay``, with +-20% jitter so
    replicas do not poll in lockstep."""
    if failures <= 0:
        return interval
    delay = min(max_delay, interval * (2 ** min(failures, 30)))
    jitter = (rng or _rng).random()
    return float(delay * (0.8 + 0.4 * jitter))
