"""Prometheus read since each rollout's step started: fixed starts (counts accumulate, so
the confidence sequence's guarantee holds across looks), a cap, batching into one
request per signal query, and the bot's step starts from git."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelpin.bot import stats
from modelpin.bot.decisions import judge_signal
from modelpin.bot.observations import RateObservation
from modelpin.bot.prometheus import (
    MAX_STEP_WINDOW,
    MIN_STEP_WINDOW,
    STEP_GRID,
    PrometheusTelemetry,
    step_window,
)
from modelpin.cli import main
from modelpin.model.signals import SignalPolicy, SignalsPolicy
from tests.fleetkit import NOW, commit_all, git

from . import faults

START = datetime(2026, 3, 25, 9, 7, 30, tzinfo=UTC)


def test_the_window_start_is_the_step_start_rounded_up_and_stays_fixed() -> None:
    begin = datetime(2026, 3, 25, 9, 15, tzinfo=UTC).timestamp()  # 09:07:30 -> 09:15
    looks = [START.timestamp() + h * 3600 + random.Random(h).uniform(0, 59) for h in range(1, 60)]
    for at in looks:
        w = step_window(START, at)
        assert w is not None
        assert at - w == pytest.approx(begin, abs=1.0)  # every look reads from 09:15 on
    assert step_window(START, begin + MIN_STEP_WINDOW - 1) is None  # too young: no data yet
    assert step_window(START, begin + MIN_STEP_WINDOW) == MIN_STEP_WINDOW


def test_the_window_is_capped_and_then_slides() -> None:
    cap = int(MAX_STEP_WINDOW.total_seconds())
    at = START.timestamp() + cap + 5 * 3600
    assert step_window(START, at) == cap
    assert step_window(START, at + 3600) == cap


def test_a_start_on_the_grid_loses_nothing() -> None:
    start = datetime.fromtimestamp(STEP_GRID * 2_000_000, tz=UTC)
    assert step_window(start, start.timestamp() + 7200) == 7200


def test_repeated_looks_on_step_windows_do_not_inflate_false_trips() -> None:
    """Healthy canaries looked at every hour for 48 hours over the step window: the data
    is cumulative, so the confidence sequence fails at most ~alpha of them, where the
    fixed interval checked at every look fails several times more."""
    rng = random.Random(7)
    policy = SignalPolicy(kind="rate", direction="lower_is_better", min_samples=200,
                          confidence=0.95, tolerance=0.0, action="rollback")
    paths, crossed = 300, {"fixed": 0, "sequential": 0}
    for _ in range(paths):
        stable, canary = [0, 0], [0, 0]
        hit = {"fixed": False, "sequential": False}
        for hour in range(1, 49):
            at = START.timestamp() + hour * 3600
            w = step_window(START, at)
            assert w is not None and at - w == pytest.approx(
                datetime(2026, 3, 25, 9, 15, tzinfo=UTC).timestamp())
            for cohort, n in ((stable, 3800), (canary, 200)):
                cohort[1] += n
                cohort[0] += sum(rng.random() < 0.02 for _ in range(n))
            for looks in ("fixed", "sequential"):
                v = judge_signal("tool_call_failure_rate", policy,
                                 RateObservation(*stable), RateObservation(*canary),
                                 looks=looks)  # type: ignore[arg-type]
                hit[looks] = hit[looks] or v.result == "fail"
        for looks in crossed:
            crossed[looks] += hit[looks]
    assert crossed["sequential"] / paths <= 0.05
    assert crossed["fixed"] >= 2 * max(1, crossed["sequential"])
    assert stats.sequential_multiplier(800, 0.05, 800) > 1.645


def _policy(raw: Any) -> SignalsPolicy:
    raw["signals"] = {n: {**s, "prometheus": faults.QUERIES[n]}
                      for n, s in raw["signals"].items() if n in faults.QUERIES}
    return SignalsPolicy.model_validate(raw)


def test_rollouts_with_different_steps_are_read_in_one_request_each_over_its_window(
    signals_policy: SignalsPolicy,
) -> None:
    import httpx

    policy = _policy(signals_policy.model_dump(mode="json", exclude_none=True))
    prom = faults.FakePrometheus(faults.prometheus_table(faults.records()))
    at = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
    ago = {"r1": timedelta(hours=2), "r2": timedelta(hours=2), "r3": timedelta(days=30),
           "r4": timedelta(seconds=20)}
    starts = {(t, "primary"): at - d for t, d in ago.items()}
    try:
        with httpx.Client(base_url=prom.url) as http:
            source = PrometheusTelemetry(http, policy, starts=starts, now=at)
            batch = source.observe_all(list(starts))
    finally:
        prom.stop()
    assert source.queries_sent == 10  # one per signal query, whatever the windows
    query = prom.queries[0]
    assert query.count(" or ") == 1  # two windows: 2h (r1, r2) and the 7-day cap (r3)
    assert 'tenant=~"r1|r2",alias=~"primary"' in query and "[2h]" in query
    assert 'tenant=~"r3",alias=~"primary"' in query and "[7d]" in query
    assert "r4" not in query  # 20 s old: nothing to read yet
    assert batch.rollouts[("r4", "primary")].canary.signals == {}
    assert "under 60s ago" in batch.rollouts[("r4", "primary")].window
    assert batch.rollouts[("r1", "primary")].window == "2h (since the step started)"
    assert batch.rollouts[("r3", "primary")].canary.signals  # read


def test_the_bot_reads_each_rollout_since_its_published_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``since`` is written by the author; the step starts when main published it
    (later here): the window is counted from the merge commit, like the soak clock."""
    repo = faults.repo(tmp_path, prometheus=True)
    path = repo / "tenants" / "r2.yaml"
    path.write_text(path.read_text().replace("percent: 10", "percent: 100"))
    commit_all(repo, "advance r2", date="2026-03-25T10:00:00Z")
    git(repo, "push", "-q", "origin", "main")
    prom = faults.FakePrometheus(faults.prometheus_table(faults.records()))
    try:
        code = main(["bot", "--repo", str(repo), "--prometheus", prom.url, "--now", NOW,
                     "--dry-run"])
    finally:
        prom.stop()
    assert code == 0, capsys.readouterr()
    query = prom.queries[0]
    assert 'tenant=~"r2",alias=~"primary"' in query and "[2h]" in query  # since 10:00
    assert 'tenant=~"r1|r3|r4",alias=~"primary"' in query and "[132h]" in query  # since

