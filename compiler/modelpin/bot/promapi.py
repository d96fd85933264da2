"""One Prometheus HTTP API client: instant queries, bounded, answers checked.

``POST /api/v1/query`` with a total deadline per request (however slowly the server
drips: :func:`~modelpin.bot.http.bounded_exchange`) and a size cap. A server that is not
a Prometheus HTTP API (404/405/501, or an answer that is not JSON) is
:class:`NotPrometheus`; an unreachable or too slow one :class:`Unreachable`; any other
bad answer a :class:`~modelpin.bot.telemetry.TelemetryError` naming the query.
Used by the canary source (:mod:`.prometheus`) and drift (:mod:`.drift_prometheus`).
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from .http import ExchangeTimeout, ExchangeTooLarge, bounded_exchange
from .telemetry import TelemetryError, parse_json_bytes

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class Unreachable(TelemetryError):
    """The server did not answer in time or at all: the remaining queries are skipped."""


class NotPrometheus(Unreachable):
    """The server answered, but not as a Prometheus HTTP API (a file server, a page)."""


class PrometheusApi:
    """Instant queries at ``at`` (a POSIX time; None: the server's now)."""

    def __init__(self, http: httpx.Client, *, at: float | None = None, timeout: float = 10.0,
                 max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._http = http
        self._at = at
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.queries_sent = 0

    @property
    def name(self) -> str:
        return f"prometheus {self._http.base_url}"

    def scalar(self, promql: str) -> float | None:
        """Evaluate an instant query that must yield at most one sample."""
        series = self.vector(promql)
        if len(series) > 1:
            raise TelemetryError(
                f"prometheus query returned {len(series)} series, expected one "
                f"(aggregate with sum()):\n  query: {promql}"
            )
        return series[0][1] if series else None

    def vector(self, promql: str) -> list[tuple[dict[str, str], float | None]]:
        params: dict[str, str] = {"query": promql}
        if self._at is not None:
            params["time"] = f"{self._at:.3f}"
        self.queries_sent += 1
        status, data = bounded_request(
            self._http, "POST", "/api/v1/query", data=params,
            timeout=self._timeout, max_bytes=self._max_bytes, what=self.name,
        )
        if status in (404, 405, 501) or (200 <= status < 400 and data.lstrip()[:1] != b"{"):
            raise NotPrometheus(
                f"{self.name} is not a Prometheus HTTP API (POST /api/v1/query answered "
                f"HTTP {status}{', not JSON' if status < 400 else ''}): a telemetry JSON "
                "file served over HTTP? use --telemetry URL")
        body = parse_json_bytes(data, f"{self.name} answer") if data else None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else data[:200].decode(
                "utf-8", "replace")
            raise TelemetryError(
                f"prometheus query failed (HTTP {status}): {detail}\n  query: {promql}"
            )
        return _series(body.get("data"), promql)


def _number(raw: Any, promql: str) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise TelemetryError(f"prometheus returned a non-number {str(raw)[:40]!r}: {promql}"
                             ) from None
    return None if math.isnan(value) else value


def _series(data: Any, promql: str) -> list[tuple[dict[str, str], float | None]]:
    if not isinstance(data, dict):
        raise TelemetryError(f"prometheus answered without `data`: {promql}")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [({}, _number(result[1], promql))]
    if kind != "vector" or not isinstance(result, list):
        raise TelemetryError(f"prometheus query returned a {kind}, expected a vector: {promql}")
    out: list[tuple[dict[str, str], float | None]] = []
    for item in result:
        value = item.get("value") if isinstance(item, dict) else None
        metric = item.get("metric", {}) if isinstance(item, dict) else None
        if not isinstance(value, list) or len(value) != 2 or not isinstance(metric, dict):
            raise TelemetryError(f"prometheus returned a malformed sample: {promql}")
        labels = {str(k): str(v) for k, v in metric.items()}
        out.append((labels, _number(value[1], promql)))
    return out


def bounded_request(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    what: str,
    **kw: Any,
) -> tuple[int, bytes]:
    """One request whose whole exchange ends within ``timeout`` seconds and ``max_bytes``
    (:func:`modelpin.bot.http.bounded_exchange`), with telemetry errors."""
    try:
        answer = bounded_exchange(http, method, url, timeout=timeout, max_bytes=max_bytes, **kw)
    except ExchangeTimeout as exc:
        raise Unreachable(f"{what} {exc}") from None
    except ExchangeTooLarge as exc:
        raise TelemetryError(f"{what}: {exc}") from None
    except httpx.TimeoutException:
        raise Unreachable(f"{what} timed out after {timeout:g}s") from None
    except httpx.TransportError as exc:
        raise Unreachable(f"{what}: {exc}") from None
    except httpx.HTTPError as exc:
        raise TelemetryError(f"{what}: {exc}") from None
    return answer.status, answer.body
