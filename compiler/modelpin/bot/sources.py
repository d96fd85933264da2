"""Where telemetry comes from, said explicitly: a JSON file or a Prometheus server.

The kind of a source is never guessed from its address: ``--telemetry FILE|URL`` is a
telemetry JSON file (``docs/telemetry.md``), on disk or served over http(s), and
``--prometheus URL`` is a Prometheus server's HTTP API. Given the wrong kind, each says
so with the flag to use instead: a ``--telemetry`` URL that answers with a redirect, an
HTML page or a Prometheus API answer, a ``--prometheus`` value that is not an http(s)
URL, or a ``--prometheus`` server whose ``/api/v1/query`` is not there
(:class:`~modelpin.bot.prometheus.NotPrometheus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from modelpin.model.signals import SignalsPolicy

from .http import ExchangeTimeout, ExchangeTooLarge, bounded_exchange
from .promapi import PrometheusApi
from .prometheus import PrometheusTelemetry
from .telemetry import JsonFileTelemetry, RolloutKey, TelemetryError, parse_json_bytes

USE_PROMETHEUS = "a Prometheus server? use --prometheus URL"
USE_TELEMETRY = "a telemetry JSON file? use --telemetry FILE|URL"


class SourceError(TelemetryError):
    """The source cannot be used at all; ``hint`` says what to do instead."""

    def __init__(self, message: str, hint: str = "", *, usage: bool = True) -> None:
        super().__init__(message)
        self.hint = hint
        self.usage = usage
        """The wrong kind of source or no such file (exit 2), not a failing fetch (1)."""


def is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def prometheus_source(
    url: str, signals: SignalsPolicy, *, timeout: float,
    starts: Mapping[RolloutKey, datetime] | None = None, now: datetime | None = None,
) -> PrometheusTelemetry:
    """``--prometheus URL``; ``starts``: per rollout, when its current step started."""
    _prometheus_url(url)
    return PrometheusTelemetry(httpx.Client(base_url=url, timeout=timeout), signals,
                               timeout=timeout, starts=starts, now=now)


def prometheus_api(url: str, *, timeout: float, at: float | None = None) -> PrometheusApi:
    """``--prometheus URL`` as a bare query client (drift of pinned versions)."""
    _prometheus_url(url)
    return PrometheusApi(httpx.Client(base_url=url, timeout=timeout), at=at, timeout=timeout)


def _prometheus_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"--prometheus {url}: not an http(s) URL of a Prometheus server",
                          hint=USE_TELEMETRY)


def json_source(where: str, *, timeout: float, max_bytes: int,
                http: httpx.Client | None = None) -> JsonFileTelemetry:
    """``--telemetry FILE|URL``: a telemetry JSON file on disk or served over http(s)."""
    if not is_url(where):
        path = Path(where)
        if not path.is_file():
            raise SourceError(f"--telemetry {where}: no such file",
                              hint="a telemetry JSON file (docs/telemetry.md) or its http(s) "
                              "URL; for a Prometheus server use --prometheus URL")
        return JsonFileTelemetry.from_path(path, max_bytes=max_bytes)
    client = http or httpx.Client(timeout=timeout)
    try:
        answer = bounded_exchange(client, "GET", where, timeout=timeout, max_bytes=max_bytes,
                                  headers={"Accept": "application/json"})
    except (ExchangeTimeout, ExchangeTooLarge, httpx.HTTPError) as exc:
        raise SourceError(f"--telemetry {where}: {exc or type(exc).__name__}",
                          usage=False) from None
    finally:
        if http is None:
            client.close()
    if 300 <= answer.status < 400:
        to = answer.headers.get("location", "?")
        raise SourceError(f"--telemetry {where}: answered HTTP {answer.status} (a redirect to "
                          f"{to}), not a telemetry JSON file", hint=USE_PROMETHEUS)
    if answer.status != 200:
        raise SourceError(f"--telemetry {where}: answered HTTP {answer.status}, not a "
                          "telemetry JSON file", hint=f"check the URL; {USE_PROMETHEUS}",
                          usage=False)
    kind = answer.headers.get("content-type", "")
    if "html" in kind or answer.body.lstrip()[:1] == b"<":
        raise SourceError(f"--telemetry {where}: answered an HTML page, not a telemetry "
                          "JSON file", hint=USE_PROMETHEUS)
    raw: Any = parse_json_bytes(answer.body, f"--telemetry {where}")
    if isinstance(raw, dict) and "status" in raw and "records" not in raw:
        raise SourceError(f"--telemetry {where}: answered like a Prometheus API "
                          f"(`status`: {str(raw.get('status'))[:20]!r}), not a telemetry "
                          "JSON file", hint=USE_PROMETHEUS)
    return JsonFileTelemetry.from_raw(raw, source=f"url {where}", where=where)
