"""A lean HTTP/1.1 transport under the ``openai`` SDK's httpx client: keep-alive
connections over asyncio streams, constant work per call.

Why: a BETS run makes tens of thousands of small calls, and the per-call CPU of the client
decides how close a run gets to the provider's limits on a busy machine. httpx's default
transport (httpcore + h11 + anyio) rescans every pooled connection and probes its socket
on each event: about 0.6 ms of CPU a call at 12 connections, more with more. This
transport keeps a stack of idle connections per origin and does one write and a few
buffered reads per call. The SDK above it is unchanged: auth, headers, timeouts, the
error classes (httpx exceptions become ``APIConnectionError`` / ``APITimeoutError``).

Scope, by design (``ProviderClient`` falls back to httpx's own transport otherwise): plain
HTTP/1.1 over TCP or TLS, no proxy (with ``HTTP(S)_PROXY``/``ALL_PROXY`` set, httpx's
transport is used), whole responses (the runner never streams: the body is read before
the call returns, so a connection goes back to the pool at once). A reused connection that
the server closed while idle (EOF before any byte of the response) is retried once on a
new connection: the server never saw the request, so nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxy_configured(environ: Mapping[str, str]) -> bool:
    """Whether a proxy variable httpx honours is set (then its own transport is used)."""
    return any(environ.get(name) or environ.get(name.upper()) for name in PROXY_VARIABLES)


class _Stale(Exception):
    """A reused connection was closed by the server before it answered."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}",
                                            request=request)
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % (k, v) for k, v in request.headers.raw
                 if k.lower() not in (b"content-length", b"transfer-encoding")]
        if body or request.method not in ("GET", "HEAD"):
            head.append(b"Content-Length: %d\r\n" % len(body))  # the body is sent whole
        message = b"".join(head) + b"\r\n" + body
        idle = self._idle.setdefault(origin, [])
        while True:
            conn = None
            while idle and conn is None:
                candidate = idle.pop()
                if candidate.usable():
                    conn = candidate
                else:
                    candidate.close()
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"), request)
            try:
                status, headers, content, keep = await self._exchange(
                    conn, message, request, timeouts.get("read"), reused)
            except _Stale:
                conn.close()
                continue  # the server never read it: once more on a new connection
            except BaseException:
                conn.close()  # cancelled or broken mid-exchange: state unknown
                raise
            if keep:
                idle.append(conn)
            else:
                conn.close()
            return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content),
                                  extensions={"http_version": b"HTTP/1.1"})

    async def _connect(self, origin: tuple[str, str, int], timeout: float | None,
                       request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None, limit=1 << 20)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out",
                                       request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}",
                                     request=request) from None
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, message: bytes, request: httpx.Request,
                        timeout: float | None, reused: bool
                        ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        reader = conn.reader
        received = False
        try:
            async with asyncio.timeout(timeout):
                conn.writer.write(message)
                await conn.writer.drain()
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    received = True
                    status, headers, fields = _parse_head(head)
                    if status >= 200 or status == 101:
                        break  # 1xx interim answers (100 Continue) are skipped
                content, to_eof = await _read_body(reader, request.method, status, fields)
        except TimeoutError:
            raise httpx.ReadTimeout("the provider did not answer in time",
                                    request=request) from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if reused and not received:
                raise _Stale from None
            raise httpx.RemoteProtocolError(f"the provider closed the connection: {exc}",
                                            request=request) from None
        except (ValueError, asyncio.LimitOverrunError) as exc:
            raise httpx.RemoteProtocolError(f"malformed HTTP response: {exc}",
                                            request=request) from None
        keep = not to_eof and fields.get(b"connection", b"").lower() != b"close"
        return status, headers, content, keep

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]], dict[bytes, bytes]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"status line {lines[0][:80]!r}")
    status = int(parts[1])
    headers: list[tuple[bytes, bytes]] = []
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError(f"header line {line[:80]!r}")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        fields[name.lower()] = value
    if parts[0] == b"HTTP/1.0" and fields.get(b"connection", b"").lower() != b"keep-alive":
        fields[b"connection"] = b"close"
    return status, headers, fields


async def _read_body(reader: asyncio.StreamReader, method: str, status: int,
                     fields: dict[bytes, bytes]) -> tuple[bytes, bool]:
    """The body, and whether it ran to the end of the connection."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", False
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks), False
            chunks.append((await reader.readexactly(size + 2))[:-2])
    length = fields.get(b"content-length")
    if length is not None:
        return await reader.readexactly(int(length)), False
    return await reader.read(), True


def lean_client(ssl_context: ssl.SSLContext, timeout: float) -> Any:
    """An ``httpx.AsyncClient`` on the lean transport (for ``AsyncOpenAI(http_client=)``)."""
    return httpx.AsyncClient(transport=LeanTransport(ssl_context), timeout=timeout)
