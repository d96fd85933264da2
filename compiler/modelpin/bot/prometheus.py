"""Telemetry from a Prometheus server's HTTP API, batched, bounded and validated.

One instant query per signal query for ALL rollouts at once: the policy's templates
(``sum(...)`` aggregations over ``tenant="{tenant}"``, ``alias="{alias}"`` and
``cohort="{cohort}"`` matchers) are rewritten to regex matchers over the rollouts in
flight and to ``sum by (tenant, alias, cohort) (...)``; each answer's series are keyed
by those labels. A template that cannot be batched (no ``sum(``, or its own ``by`` or
``without``) is run per rollout and cohort, as written.

**Windows.** Without ``starts`` every query reads the policy's ``window``. With
``starts`` (per rollout, when its current step started: the later of its ``since`` and
when the stage was published on main) each rollout is read over the data since its
step started (:func:`step_window`): the start rounded *up* to ``STEP_GRID`` (so the
window's start stays fixed from look to look and the counts accumulate: what the
confidence sequence's guarantee needs), capped at ``MAX_STEP_WINDOW`` (then the window
slides). Rollouts sharing a window and alias form one term; a query is the union
(``or``) of its terms, still one request per signal query. A step younger than
``MIN_STEP_WINDOW`` has no data yet (inconclusive).

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
from datetime import UTC, datetime, timedelta
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

from .observations import CohortTelemetry, Observation, RolloutTelemetry
from .promapi import MAX_RESPONSE_BYTES, NotPrometheus, PrometheusApi, Unreachable
from .telemetry import (
    COHORTS,
    InvalidObservation,
    RolloutKey,
    TelemetryBatch,
    TelemetryError,
    drift_failures,
    mean_observation,
    rate_observation,
)

__all__ = ["MAX_RESPONSE_BYTES", "NotPrometheus", "PrometheusTelemetry", "Unreachable",
           "batched", "step_window"]


STEP_GRID = 900
"""Seconds: a step's start is rounded up to this grid (rollouts share windows)."""
MAX_STEP_WINDOW = timedelta(days=7)
"""Longest window read for a step (Prometheus keeps 15 days by default)."""
MIN_STEP_WINDOW = 60
"""Seconds: a younger step has no data yet."""


def step_window(start: datetime, at: float, *, cap: timedelta = MAX_STEP_WINDOW,
                grid: int = STEP_GRID, minimum: int = MIN_STEP_WINDOW) -> int | None:
    """Seconds of data to read at ``at`` (a POSIX time) for a step that started at
    ``start``: from the start rounded up to ``grid`` (fixed across looks) to ``at``,
    at most ``cap``; None while shorter than ``minimum`` seconds."""
    begin = math.ceil(start.timestamp() / grid) * grid
    seconds = int(at - begin)
    if seconds < minimum:
        return None
    return min(seconds, int(cap.total_seconds()))


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
        starts: Mapping[RolloutKey, datetime] | None = None,
        now: datetime | None = None,
        grid: int = STEP_GRID,
        min_window: int = MIN_STEP_WINDOW,
    ) -> None:
        """``starts``: read each rollout since its step started (module docstring);
        ``now`` (or ``at``) the evaluation time the windows are counted to; ``grid``
        the rounding of step starts and ``min_window`` the youngest step read, in
        seconds."""
        self._grid, self._min_window = grid, min_window
        self._policy = policy
        if at is None and starts is not None:
            at = (now or datetime.now(UTC)).timestamp()
        self._at = at
        self.api = PrometheusApi(http, at=at, timeout=timeout, max_bytes=max_bytes)
        self._window = format_duration(policy.window)
        self._starts = dict(starts) if starts is not None else None

    @property
    def queries_sent(self) -> int:
        return self.api.queries_sent

    def windows(self, keys: Sequence[RolloutKey]) -> dict[RolloutKey, str | None]:
        """The PromQL range each rollout is read over (None: its step is too young)."""
        if self._starts is None or self._at is None:
            return {k: self._window for k in keys}
        out: dict[RolloutKey, str | None] = {}
        for key in keys:
            start = self._starts.get(key)
            if start is None:
                out[key] = self._window
                continue
            seconds = step_window(start, self._at, grid=self._grid, minimum=self._min_window)
            out[key] = None if seconds is None else _duration(seconds)
        return out

    @property
    def name(self) -> str:
        return self.api.name

    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        """One rollout (a batch of one); a refused record or failing query raises."""
        batch = self.observe_all([(tenant, alias)])
        trouble = [*batch.general, *batch.problems.get((tenant, alias), ())]
        if trouble:
            raise TelemetryError("\n".join(trouble))
        return batch.rollouts[(tenant, alias)]

    def observe_all(self, keys: Sequence[RolloutKey]) -> TelemetryBatch:
        keys = list(dict.fromkeys(keys))
        windows = self.windows(keys)
        young = [k for k in keys if windows[k] is None]
        keys = [k for k in keys if windows[k] is not None]
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
                    got = self._query_all(template, keys, windows,
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
                drift = self._drift_by_tool(keys, windows)
            except TelemetryError as exc:
                general.append(f"shadow drift by tool and kind: {exc}")
        rollouts: dict[RolloutKey, RolloutTelemetry] = {
            k: RolloutTelemetry(tenant=k[0], alias=k[1], window="none: the step started "
                                f"under {self._min_window}s ago", source=self.name)
            for k in young
        }
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
            window = windows[(tenant, alias)]
            since_step = self._starts is not None and (tenant, alias) in self._starts
            rollouts[(tenant, alias)] = RolloutTelemetry(
                tenant=tenant, alias=alias, source=self.name,
                window=f"{window} (since the step started)" if since_step else str(window),
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
        self, template: str, keys: Sequence[RolloutKey], windows: Mapping[RolloutKey, str | None],
        *, shadow: bool = False,
    ) -> dict[SeriesKey, float]:
        """``shadow``: a shadow signal's template (no ``{cohort}``), keyed as ``shadow``."""
        if not keys:
            return {}
        cohorts: tuple[str, ...] = ("shadow",) if shadow else COHORTS
        promql = _union(keys, windows, lambda t, a, w: batched(
            template, t, a, w, per_cohort=not shadow))
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
                                      window=str(windows[(tenant, alias)]))
                value = self.query_scalar(single)
                if value is not None:
                    out[(tenant, alias, cohort)] = value
        return out

    def _drift_by_tool(self, keys: Sequence[RolloutKey],
                       windows: Mapping[RolloutKey, str | None]) -> DriftRows:
        """Shadow drift per tool and kind of every rollout (for the incident report)."""
        def term(tenants: Sequence[str], aliases: Sequence[str], window: str) -> str:
            return (f"sum by (tenant, alias, {TOOL}, {KIND}) (increase({SHADOW_DRIFT.sample}"
                    f'{{tenant=~"{_regex(tenants)}",alias=~"{_regex(aliases)}"}}[{window}]))')

        promql = _union(keys, windows, term)
        assert promql is not None
        wanted = set(keys)
        out: DriftRows = {}
        for labels, value in self._vector(promql):
            if value is None:
                continue
            if not math.isfinite(value) or value < 0:
                raise TelemetryError(f"drift count {value!r} is not a finite count:\n"
                                     f"  query: {promql}")
            key = (labels.get("tenant", ""), labels.get("alias", ""))
            if key in wanted:
                out.setdefault(key, []).append(
                    (labels.get(TOOL, ""), labels.get(KIND, ""), value))
        return out

    # --- one query -----------------------------------------------------------------------

    def query_scalar(self, promql: str) -> float | None:
        """Evaluate an instant query that must yield at most one sample."""
        return self.api.scalar(promql)

    def _vector(self, promql: str) -> list[tuple[dict[str, str], float | None]]:
        return self.api.vector(promql)


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _union(
    keys: Sequence[RolloutKey], windows: Mapping[RolloutKey, str | None],
    term: Any,
) -> str | None:
    """One query over ``keys``: ``term(tenants, aliases, window)`` for all of them when
    they share a window; else the union (``or``) of one term per window and alias, so
    that no term selects another group's (tenant, alias). None: not batchable."""
    groups: dict[str, list[RolloutKey]] = {}
    for key in keys:
        window = windows[key]
        if window is not None:
            groups.setdefault(window, []).append(key)
    if len(groups) == 1:
        (window, members), = groups.items()
        result: str | None = term([k[0] for k in members], [k[1] for k in members], window)
        return result
    terms: list[str] = []
    for window, members in sorted(groups.items()):
        by_alias: dict[str, list[str]] = {}
        for tenant, alias in members:
            by_alias.setdefault(alias, []).append(tenant)
        for alias, tenants in sorted(by_alias.items()):
            one = term(tenants, [alias], window)
            if one is None:
                return None
            terms.append(f"({one})")
    return " or ".join(terms) if terms else None


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


