"""Drift from Prometheus: what ``PrometheusDrift`` does with the answers it gets, the
good and the impossible (the Prometheus HTTP API behind ``httpx.MockTransport``, its
documented answer shape; the real server is ``test_prometheus_live.py`` and
``tests/guard/test_queries_e2e.py``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from modelpin.bot.drift import DRIFT_SIGNALS, judge_drift
from modelpin.bot.drift_prometheus import DRIFT_SERIES, PrometheusDrift
from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.bot.promapi import PrometheusApi
from modelpin.bot.telemetry import InvalidObservation, length_observation
from modelpin.router import metric_names as mn

KEY = ("acme", "primary")
#: sample -> (baseline, current) of KEY: steady tool calls, refusals up from 1% to 8%
VALUES: dict[str, tuple[float, float]] = {
    mn.TOOL_CALL_FAILURES.sample: (20, 20), mn.TOOL_CALLS.sample: (2000, 2000),
    mn.REFUSALS.sample: (20, 160), mn.REFUSAL_CHECKS.sample: (2000, 2000),
    mn.FORMAT_FAILURES.sample: (40, 40), mn.FORMAT_CHECKS.sample: (2000, 2000),
    "modelpin_response_tokens_sum": (400_000, 402_000),
    "modelpin_response_tokens_count": (2000, 2000),
    mn.RESPONSE_TOKENS_SQUARES.sample: (2000 * (200**2 + 20**2), 2000 * (201**2 + 20**2)),
}

Answer = Callable[[str, bool], Any]


def _prometheus(values: dict[str, tuple[float, float]], *,
                answer: Answer | None = None) -> tuple[PrometheusApi, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.content.decode())["query"][0]
        seen.append(query)
        sample = re.match(r"sum by \(tenant, alias\) \(increase\((\w+)\{", query)
        assert sample is not None, query
        baseline = " offset " in query
        if answer is not None:
            custom = answer(sample.group(1), baseline)
            if custom is not None:
                return custom  # type: ignore[no-any-return]
        pair = values.get(sample.group(1))
        result = [] if pair is None else [{
            "metric": {"tenant": KEY[0], "alias": KEY[1]},
            "value": [1.7e9, repr(float(pair[0 if baseline else 1]))]}]
        return httpx.Response(200, json={"status": "success", "data": {
            "resultType": "vector", "result": result}})

    http = httpx.Client(base_url="http://prometheus.test",
                        transport=httpx.MockTransport(handler))
    return PrometheusApi(http, timeout=5), seen


def test_every_drift_signal_is_read_and_judged_like_the_json() -> None:
    api, seen = _prometheus(VALUES)
    batch = PrometheusDrift(api, window=timedelta(hours=6)).drift_all([KEY])
    assert not batch.general and not batch.problems and not batch.notes
    baseline, now = batch.windows[KEY]
    assert set(baseline) == set(now) == set(DRIFT_SIGNALS)
    assert now["refusal_rate"] == RateObservation(160, 2000)
    assert now["format_failure_rate"] == RateObservation(40, 2000)
    length = now["response_length"]
    assert isinstance(length, MeanObservation) and length.count == 2000
    assert length.mean == 201.0
    assert length.std == pytest.approx(20 * math.sqrt(2000 / 1999))
    # one query per series and window, for all aliases at once
    assert len(seen) == 2 * sum(len(s.samples) for s in DRIFT_SERIES.values()) == 18
    assert all('cohort="stable"' in q for q in seen)
    assert sum("[7d] offset 6h" in q for q in seen) == 9
    report = judge_drift(*KEY, "m", baseline, now)
    assert [v.signal for v in report.drifted] == ["refusal_rate"]


def test_a_signal_no_alias_reports_is_a_note_and_no_data() -> None:
    values = {k: v for k, v in VALUES.items() if "refus" not in k}
    api, _ = _prometheus(values)
    batch = PrometheusDrift(api).drift_all([KEY])
    assert not batch.general and not batch.problems
    [note] = batch.notes
    assert "no data for refusal_rate (modelpin_refusals_total, " in note
    assert "gateways report it with record(refused=)" in note
    baseline, now = batch.windows[KEY]
    assert "refusal_rate" not in now and "refusal_rate" not in baseline
    verdict = {v.signal: v for v in judge_drift(*KEY, "m", baseline, now).verdicts}
    assert verdict["refusal_rate"].result == "inconclusive"
    assert "no data" in verdict["refusal_rate"].reason


def test_series_at_zero_are_a_note_too() -> None:
    """A router exports every cell of a row from its first request: a gateway that never
    reports refusals leaves their series at zero, which is no data, not a steady 0%."""
    values = {**VALUES, mn.REFUSALS.sample: (0, 0), mn.REFUSAL_CHECKS.sample: (0, 0)}
    api, _ = _prometheus(values)
    batch = PrometheusDrift(api).drift_all([KEY])
    [note] = batch.notes
    assert "no data for refusal_rate" in note
    baseline, now = batch.windows[KEY]
    verdict = {v.signal: v for v in judge_drift(*KEY, "m", baseline, now).verdicts}
    assert verdict["refusal_rate"].result == "inconclusive"
    assert "too few samples" in verdict["refusal_rate"].reason


def test_nothing_at_all_is_four_notes_and_no_windows() -> None:
    api, _ = _prometheus({})
    batch = PrometheusDrift(api).drift_all([KEY])
    assert batch.windows == {} and not batch.problems and not batch.general
    assert len(batch.notes) == 4


@pytest.mark.parametrize(("changes", "refused"), [
    ({mn.REFUSALS.sample: (20, 2001)}, "`refusals` (2001) exceeds `refusal_checks` (2000)"),
    ({mn.FORMAT_FAILURES.sample: (40, -1)}, "`format_failures` is negative"),
    ({mn.FORMAT_CHECKS.sample: (2000, math.inf)}, "`format_checks` is inf"),
    ({"modelpin_response_tokens_sum": (400_000, -5)}, "`response_tokens.sum` is -5.0"),
    ({mn.RESPONSE_TOKENS_SQUARES.sample: (2000 * 200**2, 10)},
     "sum of squares 10 is below sum^2/count"),
    ({"modelpin_response_tokens_count": (2000, 0)}, "has a sum (402000) but no count"),
])
def test_impossible_numbers_are_refused_for_that_window_only(
    changes: dict[str, tuple[float, float]], refused: str
) -> None:
    api, _ = _prometheus({**VALUES, **changes})
    batch = PrometheusDrift(api).drift_all([KEY])
    [problem] = batch.problems[KEY]
    assert "acme/primary" in problem and "current window refused" in problem
    assert refused in problem
    baseline, now = batch.windows[KEY]
    assert len(baseline) == 4 and len(now) == 3  # the other signals are still judged


def test_a_failing_query_is_a_problem_and_the_other_signals_are_judged() -> None:
    def answer(sample: str, baseline: bool) -> httpx.Response | None:
        if sample == mn.FORMAT_CHECKS.sample:
            return httpx.Response(400, json={"status": "error", "errorType": "bad_data",
                                             "error": "parse error"})
        if sample == mn.REFUSALS.sample:
            return httpx.Response(200, json={"status": "success", "data": None})
        return None

    api, _ = _prometheus(VALUES, answer=answer)
    batch = PrometheusDrift(api).drift_all([KEY])
    assert len(batch.general) == 4  # two series, two windows each
    assert any("drift format_failure_rate (modelpin_format_checks_total)" in g
               and "parse error" in g for g in batch.general)
    assert any("drift refusal_rate (modelpin_refusals_total)" in g for g in batch.general)
    assert batch.notes == ()  # failed, not absent: reported as problems, not as a note
    _, now = batch.windows[KEY]
    assert set(now) == {"tool_call_failure_rate", "response_length"}


def test_an_unreachable_server_stops_the_queries() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("connection refused")

    http = httpx.Client(base_url="http://prometheus.test",
                        transport=httpx.MockTransport(handler))
    batch = PrometheusDrift(PrometheusApi(http, timeout=5)).drift_all([KEY])
    assert batch.windows == {}
    [problem] = batch.general
    assert "drift not judged" in problem
    assert len(calls) == 1


def test_a_repinned_alias_is_skipped_before_any_query() -> None:
    api, seen = _prometheus(VALUES)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    batch = PrometheusDrift(api, pinned_since={KEY: now - timedelta(days=3)},
                            now=now).drift_all([KEY])
    assert batch.windows == {} and seen == []
    assert "its pin changed on 2026-11-28 12:00Z" in batch.skipped[KEY]


def test_length_from_sums() -> None:
    xs = [3, 5, 5, 11]
    got = length_observation(sum(xs), len(xs), sum(x * x for x in xs))
    assert got.mean == 6.0
    assert got.std == pytest.approx(math.sqrt(sum((x - 6) ** 2 for x in xs) / 3))
    assert length_observation(7, 1, 49) == MeanObservation(7.0, 1, None)
    assert length_observation(0, 0, 0) == MeanObservation(0.0, 0)
    # all answers the same length: rounding may put the squares a hair under sum^2/n
    same = length_observation(3 * 0.1 * 10, 3, 3 * (0.1 * 10) ** 2 * (1 - 1e-15))
    assert same.std == 0.0
    with pytest.raises(InvalidObservation, match="not a finite number"):
        length_observation(math.nan, 3, 10)
