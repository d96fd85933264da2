"""Telemetry from a Prometheus server's HTTP API, batched, bounded and validated.

One instant query per signal query for ALL rollouts at once: the policy's templates
(``sum(...)`` aggregations over ``tenant="{tenant}"``, ``alias="{alias}"`` and
``cohort="{cohort}"`` matchers) are rewritten to regex matchers over the rollouts in
flight and to ``sum by (tenant, alias, cohort) (...)``; each answer's series are keyed
by those labels. A template that cannot be batched (no ``sum(``, or its own ``by`` or
``without``) is run per rollout and cohort, as written.

Every request has a total deadline (``timeout`` seconds from its start to the last
byte, however slowly the server drips) and a size cap. The numbers go through the same
validation as the JSON file (:func:`~modelpin.bot.telemetry.rate_observation`,
:func:`~modelpin.bot.telemetry.mean_observation`): a record that cannot be true is
refused, never clamped. A failing query is a general problem: its signal has no data
(inconclusive) for every rollout, and the other signals are still judged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from modelpin.model.base import format_duration
from modelpin.model.signals import (
    MeanQueries,
    RateQueries,
    SignalName,
    SignalsPolicy,
    render_query,
)
from modelpin.router.metric_names import KIND, SHADOW_DRIFT, TOOL

from .http import ExchangeTimeout, ExchangeTooLarge, bounded_exchange
from .observations import CohortTelemetry, Observation, RolloutTelemetry
from .telemetry import (
    COHORTS,
    InvalidObservation,
    RolloutKey,
    TelemetryBatch,
    TelemetryError,
    drift_failures,
    mean_observation,
    parse_json_bytes,
    rate_observation,
)

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class Unreachable(TelemetryError):
    """The server did not answer in time or at all: the remaining queries are skipped."""
SeriesKey = tuple[str, str, str]
ALL_COHORTS = (*COHORTS, "shadow")
DriftRows = dict[RolloutKey, list[tuple[str, str, float]]]
_UNBATCHABLE = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right|avg|min|max|count|stddev|stdvar|"
    r"topk|bottomk|quantile|count_values|group|limitk|limit_ratio)\s*\("
)


def _regex(values: Sequence[str]) -> str:
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in sorted(set(values)))


def batched(
    template: str, tenants: Sequence[str], aliases: Sequence[str], window: str,
    *, per_cohort: bool = True,
) -> str | None:
    """The template as one query over every rollout, or None if it cannot be batched.

    ``per_cohort=False``: a shadow signal's template, which has no ``{cohort}``.
    """
    if "sum(" not in template or _UNBATCHABLE.search(template):
        return None
    out = template
    labels = [("tenant", tenants), ("alias", aliases)]
    if per_cohort:
        labels.append(("cohort", COHORTS))
    for label, values in labels:
        exact = f'{label}="{{{label}}}"'
        if exact not in out:
            return None
        out = out.replace(exact, f'{label}=~"{_regex(values)}"')
    out = out.replace("{window}", window)
    by = "tenant, alias, cohort" if per_cohort else "tenant, alias"
    return re.sub(r"\bsum\(", f"sum by ({by}) (", out)


class PrometheusTelemetry:
    """Telemetry from ``GET|POST /api/v1/query``; ``at`` pins the evaluation time."""

    def __init__(
        self,
        http: httpx.Client,
        policy: SignalsPolicy,
        *,
        at: float | None = None,
        timeout: float = 10.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._http = http
        self._policy = policy
        self._at = at
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._window = format_duration(policy.window)
        self.queries_sent = 0

    @property
    def name(self) -> str:
        return f"prometheus {self._http.base_url}"

    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        """One rollout (a batch of one); a refused record or failing query raises."""
        batch = self.observe_all([(tenant, alias)])
        trouble = [*batch.general, *batch.problems.get((tenant, alias), ())]
        if trouble:
            raise TelemetryError("\n".join(trouble))
        return batch.rollouts[(tenant, alias)]

    def observe_all(self, keys: Sequence[RolloutKey]) -> TelemetryBatch:
        keys = list(dict.fromkeys(keys))
        tenants = [k[0] for k in keys]
        aliases = [k[1] for k in keys]
        general: list[str] = []
        failed: set[SignalName] = set()
        # (tenant, alias, cohort) -> signal -> query field -> value
        values: dict[SeriesKey, dict[SignalName, dict[str, float]]] = {}
        down: str | None = None
        for name, signal in self._policy.signals.items():
            queries = signal.prometheus
            if queries is None:
                general.append(f"signals.{name} has no `prometheus` queries: no data for it")
                continue
            for part, template in _templates(queries).items():
                if down is not None:
                    failed.add(name)
                    continue
                try:
                    got = self._query_all(template, tenants, aliases, keys,
                                          shadow=signal.stage == "shadow")
                except Unreachable as exc:
                    down = str(exc)
                    general.append(f"{exc}: no signal has data (queries skipped)")
                    failed.add(name)
                    continue
                except TelemetryError as exc:
                    general.append(f"{name}.{part}: {exc}")
                    failed.add(name)
                    continue
                for series_key, value in got.items():
                    values.setdefault(series_key, {}).setdefault(name, {})[part] = value
        drift: DriftRows = {}
        if "shadow_drift_rate" in self._policy.signals and down is None and keys:
            try:
                drift = self._drift_by_tool(tenants, aliases)
            except TelemetryError as exc:
                general.append(f"shadow drift by tool and kind: {exc}")
        rollouts: dict[RolloutKey, RolloutTelemetry] = {}
        problems: dict[RolloutKey, list[str]] = {}
        for tenant, alias in keys:
            cohorts: dict[str, CohortTelemetry] = {}
            for cohort in ALL_COHORTS:
                found = values.get((tenant, alias, cohort), {})
                try:
                    signals = _observations(
                        {k: v for k, v in found.items() if k not in failed}, self._policy
                    )
                except InvalidObservation as exc:
                    problems.setdefault((tenant, alias), []).append(
                        f"{self.name}: {tenant}/{alias} cohort {cohort} refused: {exc}"
                    )
                    signals = {}
                cohorts[cohort] = CohortTelemetry(signals=signals)
            rollouts[(tenant, alias)] = RolloutTelemetry(
                tenant=tenant, alias=alias, window=self._window, source=self.name,
                stable=cohorts["stable"], canary=cohorts["canary"],
                shadow=CohortTelemetry(
                    cohorts["shadow"].signals,
                    drift_failures(drift.get((tenant, alias), ())),
                ),
            )
        return TelemetryBatch(
            rollouts, {k: tuple(v) for k, v in problems.items()}, tuple(general)
        )

    def _query_all(
        self, template: str, tenants: Sequence[str], aliases: Sequence[str],
        keys: Sequence[RolloutKey], *, shadow: bool = False,
    ) -> dict[SeriesKey, float]:
        """``shadow``: a shadow signal's template (no ``{cohort}``), keyed as ``shadow``."""
        if not keys:
            return {}
        cohorts: tuple[str, ...] = ("shadow",) if shadow else COHORTS
        promql = batched(template, tenants, aliases, self._window, per_cohort=not shadow)
        if promql is not None:
            wanted = {(t, a, c) for t, a in keys for c in cohorts}
            out: dict[SeriesKey, float] = {}
            for labels, value in self._vector(promql):
                key = (labels.get("tenant", ""), labels.get("alias", ""),
                       "shadow" if shadow else labels.get("cohort", ""))
                if key not in wanted:
                    continue
                if key in out:
                    raise TelemetryError(f"two series for {'/'.join(key)}:\n  query: {promql}")
                if value is not None:
                    out[key] = value
            return out
        out = {}
        for tenant, alias in keys:
            for cohort in cohorts:
                single = render_query(template, tenant=tenant, alias=alias, cohort=cohort,
                                      window=self._window)
                value = self.query_scalar(single)
                if value is not None:
                    out[(tenant, alias, cohort)] = value
        return out

    def _drift_by_tool(self, tenants: Sequence[str], aliases: Sequence[str]) -> DriftRows:
        """Shadow drift per tool and kind of every rollout (for the incident report)."""
        promql = (
            f"sum by (tenant, alias, {TOOL}, {KIND}) (increase({SHADOW_DRIFT.sample}"
            f'{{tenant=~"{_regex(tenants)}",alias=~"{_regex(aliases)}"}}[{self._window}]))'
        )
        out: DriftRows = {}
        for labels, value in self._vector(promql):
            if value is None:
                continue
            if not math.isfinite(value) or value < 0:
                raise TelemetryError(f"drift count {value!r} is not a finite count:\n"
                                     f"  query: {promql}")
            key = (labels.get("tenant", ""), labels.get("alias", ""))
            out.setdefault(key, []).append((labels.get(TOOL, ""), labels.get(KIND, ""), value))
        return out

    # --- one query -----------------------------------------------------------------------

    def query_scalar(self, promql: str) -> float | None:
        """Evaluate an instant query that must yield at most one sample."""
        series = self._vector(promql)
        if len(series) > 1:
            raise TelemetryError(
                f"prometheus query returned {len(series)} series, expected one "
                f"(aggregate with sum()):\n  query: {promql}"
            )
        return series[0][1] if series else None

    def _vector(self, promql: str) -> list[tuple[dict[str, str], float | None]]:
        params: dict[str, str] = {"query": promql}
        if self._at is not None:
            params["time"] = f"{self._at:.3f}"
        self.queries_sent += 1
        status, data = bounded_request(
            self._http, "POST", "/api/v1/query", data=params,
            timeout=self._timeout, max_bytes=self._max_bytes, what=self.name,
        )
        body = parse_json_bytes(data, f"{self.name} answer") if data else None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else data[:200].decode(
                "utf-8", "replace")
            raise TelemetryError(
                f"prometheus query failed (HTTP {status}): {detail}\n  query: {promql}"
            )
        return _series(body.get("data"), promql)


def _templates(queries: RateQueries | MeanQueries) -> dict[str, str]:
    if isinstance(queries, RateQueries):
        return {"events": queries.events, "total": queries.total}
    out = {"mean": queries.mean, "count": queries.count}
    if queries.std:
        out["std"] = queries.std
    return out


def _observations(
    found: Mapping[SignalName, Mapping[str, float]], policy: SignalsPolicy
) -> dict[SignalName, Observation]:
    signals: dict[SignalName, Observation] = {}
    for name, parts in found.items():
        if policy.signals[name].kind == "rate":
            if "events" in parts and "total" in parts:
                signals[name] = rate_observation(name, parts["events"], parts["total"])
        elif "mean" in parts and "count" in parts:
            signals[name] = mean_observation(name, parts["mean"], parts["count"],
                                             parts.get("std"))
    return signals


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
