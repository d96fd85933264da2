"""Where a router fetches the signed envelope from: a local file or an HTTP(S) URL.

A source returns new bytes or None ("unchanged since the last accepted fetch"). The
change token (file identity or ETag) is committed only once the router has accepted
the bytes, so a rejected envelope is fetched and reported again rather than silently
remembered as current. Both sources stop reading past ``max_bytes``: an oversize
envelope is never held in memory, let alone parsed. An HTTP fetch has a total
deadline as well as a per-read timeout, so a server dripping bytes cannot hold a reload
(and its lock) for longer than ``deadline`` seconds.

A source may also offer ``fetch_root(version)``: the trust root of that version,
published beside the table as ``<version>.root.json``, or None if there is none (yet).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpcore
import httpx

from .errors import OversizeTableError, SourceError
from .root import MAX_ROOT_BYTES
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


def root_name(version: int) -> str:
    """File name of root ``version`` beside the table (python-tuf's ``N.root.json``)."""
    return f"{version}.root.json"


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

    def fetch_root(self, version: int) -> bytes | None:
        path = self.path.parent / root_name(version)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_ROOT_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}") from None
        if len(data) > MAX_ROOT_BYTES:
            raise OversizeTableError(f"{path} is over the cap of {MAX_ROOT_BYTES} bytes")
        return data


class _Deadline:
    """The monotonic time by which the current fetch must be complete."""

    def __init__(self) -> None:
        self.at = float("inf")

    def left(self, timeout: float | None) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise httpcore.ReadTimeout("the fetch deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write waits at most until the deadline:
    a server that sends one byte per read timeout gets nowhere (headers included)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._deadline.left(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self._deadline.left(timeout),
                                         local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, self._deadline.left(timeout),
                                                 socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _client_with_deadline(timeout: float, deadline: _Deadline) -> httpx.Client:
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        # httpx has no total timeout; httpcore's network backend is where every socket
        # read waits, so the deadline is enforced there.
        pool._network_backend = _DeadlineBackend(deadline)
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        follow_redirects=False,
    )


class HttpSource:
    """An HTTP(S) URL fetched with ``If-None-Match``; a 304 is "unchanged".

    ``timeout`` bounds each connect and read, ``deadline`` the whole fetch. A 304 is
    believed only as the answer to a request that carried an ETag."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 10.0,
        deadline: float = 60.0,
    ) -> None:
        if deadline <= 0 or timeout <= 0:
            raise ValueError("timeout and deadline must be positive")
        self.url = url
        self.max_bytes = max_bytes
        self.deadline = deadline
        self._deadline = _Deadline()
        self._client = client or _client_with_deadline(min(timeout, deadline), self._deadline)
        self._etag: str | None = None

    def describe(self) -> str:
        return self.url

    def close(self) -> None:
        self._client.close()

    def fetch(self) -> Fetched | None:
        headers = {"Accept": "application/json"}
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        got = self._get(self.url, headers, self.max_bytes, not_modified_ok=self._etag is not None)
        if got is None:
            return None
        data, etag = got
        return Fetched(data, etag)

    def fetch_root(self, version: int) -> bytes | None:
        url = self.url.rsplit("/", 1)[0] + "/" + root_name(version)
        got = self._get(url, {"Accept": "application/json"}, MAX_ROOT_BYTES,
                        not_modified_ok=False, missing_ok=True)
        return None if got is None else got[0]

    def _get(self, url: str, headers: dict[str, str], cap: int, *, not_modified_ok: bool,
             missing_ok: bool = False) -> tuple[bytes, str | None] | None:
        """The body and ETag of a 200; None for a 304 (or a 404 when ``missing_ok``)."""
        deadline = time.monotonic() + self.deadline
        self._deadline.at = deadline
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    if not not_modified_ok:
                        raise SourceError(f"GET {url}: HTTP 304 to a request that sent no "
                                          "ETag (a broken or malicious server or proxy)")
                    return None
                if status == 404 and missing_ok:
                    return None
                if status != 200:
                    raise SourceError(f"GET {url}: HTTP {status}")
                length = response.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > cap:
                    raise OversizeTableError(f"{url} announces {length} bytes, the cap is {cap}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise OversizeTableError(f"{url} sent over the cap of {cap} bytes")
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise SourceError(f"GET {url}: not complete within the deadline "
                                          f"of {self.deadline:g} s")
                if time.monotonic() > deadline:
                    raise SourceError(f"GET {url}: not complete within the deadline "
                                      f"of {self.deadline:g} s")
                return b"".join(chunks), response.headers.get("etag")
        except httpx.HTTPError as exc:
            if time.monotonic() > deadline:
                raise SourceError(f"GET {url}: not complete within the deadline "
                                  f"of {self.deadline:g} s") from None
            raise SourceError(f"GET {url}: {type(exc).__name__}: {exc}") from None
        finally:
            self._deadline.at = float("inf")

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
