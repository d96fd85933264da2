"""Drift of pinned versions read from Prometheus: the stable cohort now against its own
earlier window.

For every alias asked, each drift signal the routers export is read twice, batched
over all aliases (one query per counter and window): ``increase(...[window])`` (now)
and ``increase(...[baseline] offset window)`` (the baseline: the ``baseline`` right
before the current window), on ``cohort="stable"`` (the pinned version serving). The
metric names come from :mod:`modelpin.router.metric_names` (the one registry).

Exported by routers today: tool calls and their failures (``tool_call_failure_rate``).
Refusals, format checks and response length are NOT recorded by ``modelpin.router``:
those drift signals are read only from a telemetry JSON file's ``baseline`` records
(``NOT_EXPORTED`` says which; every report says so too).

The series carry no model version, so a baseline is only the pin's own when the pin
did not change since the baseline window began: the caller passes when each alias's
pin last changed (git) and an alias whose pin is younger is skipped, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

from modelpin.model.signals import SignalName
from modelpin.router import metric_names as mn

from .drift import DRIFT_SIGNALS, DriftBatch, Windows
from .observations import Observation
from .promapi import PrometheusApi, Unreachable
from .telemetry import InvalidObservation, RolloutKey, TelemetryError, rate_observation

DRIFT_METRICS: dict[str, tuple[mn.MetricName, mn.MetricName]] = {
    "tool_call_failure_rate": (mn.TOOL_CALL_FAILURES, mn.TOOL_CALLS),
}
"""Drift signal -> (events, trials) counters the routers export."""
NOT_EXPORTED = tuple(name for name in DRIFT_SIGNALS if name not in DRIFT_METRICS)

def promql_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _regex(values: Sequence[str]) -> str:
    return "|".join(re.escape(v).replace("\\", "\\\\") for v in sorted(set(values)))


class PrometheusDrift:
    """``drift_all(keys)``: the drift windows of pinned aliases from Prometheus."""

    def __init__(self, api: PrometheusApi, *, window: timedelta = timedelta(days=1),
                 baseline: timedelta = timedelta(days=7),
                 pinned_since: Mapping[RolloutKey, datetime] | None = None,
                 now: datetime | None = None) -> None:
        if window.total_seconds() < 1 or baseline.total_seconds() < 1:
            raise ValueError("drift windows must be at least one second")
        self.api = api
        self.window = window
        self.baseline = baseline
        self._pinned_since = dict(pinned_since or {})
        self._now = now

    def query(self, metric: mn.MetricName, tenants: Sequence[str], aliases: Sequence[str],
              *, baseline: bool) -> str:
        selector = (f'{metric.sample}{{tenant=~"{_regex(tenants)}",alias=~"{_regex(aliases)}",'
                    f'cohort="stable"}}')
        if baseline:
            rng = f"[{promql_duration(self.baseline)}] offset {promql_duration(self.window)}"
        else:
            rng = f"[{promql_duration(self.window)}]"
        return f"sum by (tenant, alias) (increase({selector}{rng}))"

    def drift_all(self, keys: Sequence[RolloutKey]) -> DriftBatch:
        keys = list(dict.fromkeys(keys))
        skipped: dict[RolloutKey, str] = {}
        if self._now is not None:
            begins = self._now - self.window - self.baseline
            for key in keys:
                since = self._pinned_since.get(key)
                if since is not None and since > begins:
                    skipped[key] = (f"its pin changed on {since:%Y-%m-%d %H:%M}Z, inside the "
                                    "baseline window: the baseline is another version's")
        keys = [k for k in keys if k not in skipped]
        notes = (f"{self.api.name}: drift judged on {', '.join(DRIFT_METRICS)} only; "
                 f"{', '.join(NOT_EXPORTED)} are not exported by modelpin routers (give a "
                 "telemetry JSON file with `baseline` records for them)",) if NOT_EXPORTED else ()
        if not keys:
            return DriftBatch({}, skipped=skipped, notes=notes)
        tenants, aliases = [k[0] for k in keys], [k[1] for k in keys]
        general: list[str] = []
        # (signal, part, baseline?) -> key -> value
        values: dict[tuple[str, str, bool], dict[RolloutKey, float]] = {}
        for signal, (events, total) in DRIFT_METRICS.items():
            for part, metric in (("events", events), ("total", total)):
                for baseline in (True, False):
                    promql = self.query(metric, tenants, aliases, baseline=baseline)
                    try:
                        series = self.api.vector(promql)
                    except Unreachable as exc:
                        return DriftBatch({}, general=(f"{exc}: drift not judged",),
                                          skipped=skipped, notes=notes)
                    except TelemetryError as exc:
                        general.append(f"drift {signal}.{part}: {exc}")
                        continue
                    got = values.setdefault((signal, part, baseline), {})
                    for labels, value in series:
                        key = (labels.get("tenant", ""), labels.get("alias", ""))
                        if value is not None and key in set(keys):
                            got[key] = value
        windows: dict[RolloutKey, Windows] = {}
        problems: dict[RolloutKey, list[str]] = {}
        for key in keys:
            pair: tuple[dict[str, Observation], dict[str, Observation]] = ({}, {})
            for signal in DRIFT_METRICS:
                for side, baseline in ((0, True), (1, False)):
                    e = values.get((signal, "events", baseline), {}).get(key)
                    t = values.get((signal, "total", baseline), {}).get(key)
                    if e is None or t is None:
                        continue
                    try:
                        pair[side][signal] = rate_observation(cast(SignalName, signal), e, t)
                    except InvalidObservation as exc:
                        problems.setdefault(key, []).append(
                            f"{self.api.name}: {key[0]}/{key[1]} "
                            f"{'baseline' if baseline else 'current'} window refused: {exc}")
            if pair[0] or pair[1]:
                windows[key] = pair
        return DriftBatch(windows, {k: tuple(v) for k, v in problems.items()},
                          tuple(general), skipped, notes)
