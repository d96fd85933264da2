"""Drift of pinned versions read from Prometheus: the stable cohort now against its own
earlier window.

For every alias asked, each series a drift signal reads is queried twice, batched over
all aliases (one query per series and window): ``increase(...[window])`` (now) and
``increase(...[baseline] offset window)`` (the baseline: the ``baseline`` right before
the current window), on ``cohort="stable"`` (the pinned version serving). The series
are the ones ``modelpin.router`` exports (names from :mod:`modelpin.router.metric_names`,
the one registry), for all four drift signals of :data:`~.drift.DRIFT_SIGNALS`:

- ``tool_call_failure_rate``: tool-call failures / tool calls;
- ``refusal_rate``: refusals / answers checked for a refusal (``record(refused=)``);
- ``format_failure_rate``: format failures / format checks (``record(format_ok=)``);
- ``response_length``: the response-token summary (sum, count) and its sum of squares,
  giving the mean and the sample standard deviation Welch's test needs.

Every number goes through the validation the telemetry JSON's goes through
(:func:`~.telemetry.rate_observation`, :func:`~.telemetry.drift_rate_observation`,
:func:`~.telemetry.length_observation`): impossible data is refused per alias and
window, never clamped. A signal no pinned alias has a trial of in either window (no
series, or series at zero: gateways that do not report it) is named in a note; its
verdicts say "no data" or "too few samples".

The series carry no model version, so a baseline is only the pin's own when the pin
did not change since the baseline window began: the caller passes when each alias's
pin last changed (git) and an alias whose pin is younger is skipped, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelpin.router import metric_names as mn

from .drift import DRIFT_SIGNALS, DriftBatch, Windows
from .observations import Observation
from .promapi import PrometheusApi, Unreachable
from .telemetry import (
    InvalidObservation,
    RolloutKey,
    TelemetryError,
    drift_rate_observation,
    length_observation,
    rate_observation,
)


@dataclass(frozen=True)
class DriftSeries:
    """The samples (PromQL names) one drift signal is computed from, and how."""

    samples: tuple[str, ...]
    observe: Callable[..., Observation]
    how: str
    """What a gateway does so the series exist (for the no-data note)."""


DRIFT_SERIES: dict[str, DriftSeries] = {
    "tool_call_failure_rate": DriftSeries(
        (mn.TOOL_CALL_FAILURES.sample, mn.TOOL_CALLS.sample),
        lambda e, t: rate_observation("tool_call_failure_rate", e, t),
        "check_tool_call / record(tool_calls=)"),
    "refusal_rate": DriftSeries(
        (mn.REFUSALS.sample, mn.REFUSAL_CHECKS.sample),
        lambda e, t: drift_rate_observation("refusal_rate", e, t,
                                            ("refusals", "refusal_checks")),
        "record(refused=)"),
    "format_failure_rate": DriftSeries(
        (mn.FORMAT_FAILURES.sample, mn.FORMAT_CHECKS.sample),
        lambda e, t: drift_rate_observation("format_failure_rate", e, t),
        "record(format_ok=)"),
    "response_length": DriftSeries(
        (mn.RESPONSE_TOKENS.family + "_sum", mn.RESPONSE_TOKENS.family + "_count",
         mn.RESPONSE_TOKENS_SQUARES.sample),
        length_observation, "record(response_tokens=)"),
}
"""Drift signal -> the router series it reads: every drift signal is read."""
assert set(DRIFT_SERIES) == set(DRIFT_SIGNALS)


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

    def query(self, sample: str, tenants: Sequence[str], aliases: Sequence[str],
              *, baseline: bool) -> str:
        """The batched query of one series over one window, per (tenant, alias)."""
        selector = (f'{sample}{{tenant=~"{_regex(tenants)}",alias=~"{_regex(aliases)}",'
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
        if not keys:
            return DriftBatch({}, skipped=skipped)
        wanted = set(keys)
        tenants, aliases = [k[0] for k in keys], [k[1] for k in keys]
        general: list[str] = []
        failed: set[str] = set()  # signals with a failed query (reported, no note)
        # (sample, baseline?) -> key -> value; a failed query leaves its entry out
        values: dict[tuple[str, bool], dict[RolloutKey, float]] = {}
        for signal, series in DRIFT_SERIES.items():
            for sample in series.samples:
                for baseline in (True, False):
                    promql = self.query(sample, tenants, aliases, baseline=baseline)
                    try:
                        answer = self.api.vector(promql)
                    except Unreachable as exc:
                        return DriftBatch({}, general=(f"{exc}: drift not judged",),
                                          skipped=skipped)
                    except TelemetryError as exc:
                        general.append(f"drift {signal} ({sample}): {exc}")
                        failed.add(signal)
                        continue
                    got = values.setdefault((sample, baseline), {})
                    for labels, value in answer:
                        key = (labels.get("tenant", ""), labels.get("alias", ""))
                        if value is not None and key in wanted:
                            got[key] = value
        windows: dict[RolloutKey, Windows] = {}
        problems: dict[RolloutKey, list[str]] = {}
        seen: set[str] = set()
        for key in keys:
            pair: tuple[dict[str, Observation], dict[str, Observation]] = ({}, {})
            for signal, series in DRIFT_SERIES.items():
                for side, baseline in ((0, True), (1, False)):
                    parts = [values.get((s, baseline), {}).get(key) for s in series.samples]
                    if any(v is None for v in parts):
                        continue
                    if parts[1]:  # trials (or answers measured): the signal is reported
                        seen.add(signal)
                    try:
                        pair[side][signal] = series.observe(*parts)
                    except InvalidObservation as exc:
                        problems.setdefault(key, []).append(
                            f"{self.api.name}: {key[0]}/{key[1]} {signal} "
                            f"{'baseline' if baseline else 'current'} window refused: {exc}")
            if pair[0] or pair[1]:
                windows[key] = pair
        notes = tuple(
            f"{self.api.name}: no data for {signal} ({', '.join(series.samples)}) for any "
            f"pinned alias: its verdicts are inconclusive; gateways report it with "
            f"{series.how}"
            for signal, series in DRIFT_SERIES.items()
            if signal not in seen and signal not in failed)
        return DriftBatch(windows, {k: tuple(v) for k, v in problems.items()},
                          tuple(general), skipped, notes)
