"""One HTTP exchange with a total deadline and a size cap (Prometheus and GitHub).

httpx's timeouts bound each network operation, not the exchange: a server that drips a
byte a second never trips them. :func:`bounded_exchange` runs the exchange on a worker
thread and waits at most ``timeout`` seconds for all of it; the abandoned worker stops
at its next chunk (or its own read timeout). The body is read up to ``max_bytes``.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


class ExchangeTimeout(Exception):
    """The whole exchange did not finish within its deadline."""


class ExchangeTooLarge(Exception):
    """The answer is over the size cap."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def bounded_exchange(
    http: httpx.Client, method: str, url: str, *, timeout: float, max_bytes: int, **kw: Any
) -> Answer:
    """Raises :class:`ExchangeTimeout`, :class:`ExchangeTooLarge` or ``httpx.HTTPError``."""
    abandoned = threading.Event()

    def exchange() -> Answer:
        chunks: list[bytes] = []
        size = 0
        with http.stream(method, url, timeout=timeout, **kw) as response:
            for chunk in response.iter_bytes():
                if abandoned.is_set():
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise ExchangeTooLarge(f"answer over the {max_bytes}-byte cap")
                chunks.append(chunk)
            return Answer(response.status_code, response.headers, b"".join(chunks))

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(exchange)
    started = time.monotonic()
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        abandoned.set()
        raise ExchangeTimeout(
            f"timed out after {time.monotonic() - started:.1f}s (--timeout {timeout:g})"
        ) from None
    finally:
        pool.shutdown(wait=False)
