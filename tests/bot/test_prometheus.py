"""PrometheusTelemetry against a real ``prometheus`` loaded with the recorded cases.

The recorded JSON cases are written as OpenMetrics, turned into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics``, and served by a prometheus started
on a free loopback port. The bot's verdicts from Prometheus must equal the file's.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelpin.bot.decisions import NextStep, RolloutRef, decide
from modelpin.bot.prometheus import PrometheusTelemetry
from modelpin.bot.telemetry import JsonFileTelemetry, TelemetryError
from modelpin.model.signals import SignalsPolicy

from .conftest import TELEMETRY

CASES = ["clean", "regression", "coercion-3pct", "too-few-samples", "noisy"]
EVAL_AFTER = 30
"""The queries are evaluated this many seconds after the recorded samples."""
SHADOW_CASES = ["shadow-clean", "shadow-drift", "shadow-few"]
ALIAS = "primary-reasoning"
COUNTERS = {
    "requests": "modelpin_requests",
    "tool_calls": "modelpin_tool_calls",
    "tool_call_failures": "modelpin_tool_call_failures",
    "tasks": "modelpin_tasks",
    "tasks_completed": "modelpin_tasks_completed",
    "coercions": "modelpin_coercions",
    "downstream_errors": "modelpin_downstream_errors",
    "shadow_comparisons": "modelpin_shadow_comparisons",
    "shadow_drifted": "modelpin_shadow_drifted",
}
SIMILARITY = {"mean": "modelpin_similarity_mean", "std": "modelpin_similarity_std",
              "count": "modelpin_similarity_count"}  # fmt: skip


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"`{name}` not found: install Prometheus (Debian: apt-get install -y prometheus); "
            "this test does not skip, CI installs it",
            pytrace=False,
        )
    return path


def _openmetrics(at: int) -> str:
    """Every case as gauges: tenant = case name, one sample per series at ``at``."""
    lines: list[str] = []
    series: dict[str, list[str]] = {}
    for case in [*CASES, *SHADOW_CASES]:
        data = json.loads((TELEMETRY / f"{case}.json").read_text())
        for rec in data["records"]:
            labels = f'tenant="{case}",alias="{ALIAS}",cohort="{rec["cohort"]}"'
            for field, metric in COUNTERS.items():
                if field in rec:
                    series.setdefault(metric, []).append(f"{metric}{{{labels}}} {rec[field]} {at}")
            # drift by tool and kind: a real counter (the bot reads it with increase()),
            # 0 half an hour before the evaluation time, the count at it (no extrapolation)
            drift, end = "modelpin_shadow_drift_total", at + EVAL_AFTER
            for row in rec.get("shadow_drift", []):
                sel = f'tenant="{case}",alias="{ALIAS}",tool="{row["tool"]}",kind="{row["kind"]}"'
                series.setdefault(drift, []).extend(
                    [f"{drift}{{{sel}}} 0 {end - 1800}", f"{drift}{{{sel}}} {row['count']} {end}"])
            if "semantic_similarity" not in rec:
                continue
            for field, metric in SIMILARITY.items():
                value = rec["semantic_similarity"][field]
                series.setdefault(metric, []).append(f"{metric}{{{labels}}} {value} {at}")
    for metric, samples in series.items():
        if metric.endswith("_total"):
            family = metric.removesuffix("_total")
            lines += [f"# TYPE {family} counter", *sorted(samples, key=_series_then_time)]
        else:
            lines += [f"# TYPE {metric} gauge", *samples]
    return "\n".join([*lines, "# EOF", ""])


def _series_then_time(sample: str) -> tuple[str, int]:
    name, _value, ts = sample.rsplit(" ", 2)
    return name, int(ts)


def _test_policy(shipped: SignalsPolicy) -> SignalsPolicy:
    """The shipped thresholds; queries reading the gauges written above."""

    def q(metric: str) -> str:
        sel = 'tenant="{tenant}",alias="{alias}",cohort="{cohort}"'
        return f"sum(last_over_time({metric}{{{sel}}}[{{window}}]))"

    def shadow_q(metric: str) -> str:  # drift has no cohort label
        sel = 'tenant="{tenant}",alias="{alias}"'
        return f"sum(last_over_time({metric}{{{sel}}}[{{window}}]))"

    queries = {
        "tool_call_failure_rate": {"events": q("modelpin_tool_call_failures"),
                                   "total": q("modelpin_tool_calls")},
        "task_completion_rate": {"events": q("modelpin_tasks_completed"),
                                 "total": q("modelpin_tasks")},
        "coercion_rate": {"events": q("modelpin_coercions"), "total": q("modelpin_requests")},
        "downstream_error_rate": {"events": q("modelpin_downstream_errors"),
                                  "total": q("modelpin_requests")},
        "shadow_drift_rate": {"events": shadow_q("modelpin_shadow_drifted"),
                              "total": shadow_q("modelpin_shadow_comparisons")},
        "semantic_similarity": {"mean": q("modelpin_similarity_mean"),
                                "std": q("modelpin_similarity_std"),
                                "count": q("modelpin_similarity_count")},
    }  # fmt: skip
    raw = shipped.model_dump(mode="json")
    for name, qs in queries.items():
        raw["signals"][name]["prometheus"] = qs
    return SignalsPolicy.model_validate(raw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    prom, promtool = _binary("prometheus"), _binary("promtool")
    work = tmp_path_factory.mktemp("prometheus")
    at = int(time.time()) - 600
    (work / "data.om").write_text(_openmetrics(at))
    storage = work / "tsdb"
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(work / "data.om"),
            str(storage),
        ],
        check=True,
        capture_output=True,
    )
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = _free_port()
    proc = subprocess.Popen(
        [
            prom,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (work / "prometheus.log").read_text()[-2000:]
                pytest.fail(f"prometheus did not become ready:\n{log}", pytrace=False)
            time.sleep(0.1)
        yield url, float(at + EVAL_AFTER)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("case", CASES)
def test_prometheus_verdicts_match_the_file(prometheus, signals_policy, case) -> None:
    url, at = prometheus
    rollout = RolloutRef(case, ALIAS, "gpt-5-2026-01-10", "gpt-5-2026-03-14", "canary", 5)
    step = NextStep("canary", 25)
    from_file = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe("acme-legal", ALIAS)
    with httpx.Client(base_url=url) as http:
        source = PrometheusTelemetry(http, _test_policy(signals_policy), at=at)
        from_prom = source.observe(case, ALIAS)
    assert from_prom.canary.signals and from_prom.stable.signals
    file_p = decide(rollout, signals_policy, from_file, next_step_allowed=True, next_step=step)
    prom_p = decide(rollout, signals_policy, from_prom, next_step_allowed=True, next_step=step)
    assert prom_p.kind == file_p.kind
    assert [(v.signal, v.result) for v in prom_p.verdicts] == [
        (v.signal, v.result) for v in file_p.verdicts
    ]
    for pv, fv in zip(prom_p.verdicts, file_p.verdicts, strict=True):
        assert pv.canary.samples == fv.canary.samples
        assert pv.canary.value == pytest.approx(fv.canary.value)
        assert pv.stable.value == pytest.approx(fv.stable.value)


def test_unknown_rollout_has_no_data(prometheus, signals_policy) -> None:
    url, at = prometheus
    with httpx.Client(base_url=url) as http:
        t = PrometheusTelemetry(http, _test_policy(signals_policy), at=at).observe("ghost", ALIAS)
    assert dict(t.canary.signals) == {} and dict(t.stable.signals) == {}


def test_bad_promql_and_many_series_are_clear_errors(prometheus, signals_policy) -> None:
    url, at = prometheus
    with httpx.Client(base_url=url) as http:
        source = PrometheusTelemetry(http, _test_policy(signals_policy), at=at)
        with pytest.raises(TelemetryError, match=r"prometheus query failed \(HTTP 400\)"):
            source.query_scalar("sum(")
        with pytest.raises(TelemetryError, match="series, expected one"):
            source.query_scalar("last_over_time(modelpin_requests[1h])")


def test_unreachable_server_is_a_clear_error(signals_policy) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{_free_port()}") as http:
        source = PrometheusTelemetry(http, _test_policy(signals_policy), timeout=1)
        with pytest.raises(
            TelemetryError, match=r"prometheus http://127\.0\.0\.1:[0-9]+: .*no signal has data"
        ):
            source.observe("clean", ALIAS)


def test_all_rollouts_in_one_batch_query_per_template(prometheus, signals_policy) -> None:
    """Five rollouts, 13 templates and the drift-by-tool query: 14 queries (not 130+),
    same observations as one by one."""
    url, at = prometheus
    with httpx.Client(base_url=url) as http:
        source = PrometheusTelemetry(http, _test_policy(signals_policy), at=at)
        batch = source.observe_all([(case, ALIAS) for case in CASES])
        assert source.queries_sent == 14
        assert not batch.problems and not batch.general
        for case in CASES:
            assert batch.rollouts[(case, ALIAS)] == source.observe(case, ALIAS)


@pytest.mark.parametrize("case", SHADOW_CASES)
def test_prometheus_shadow_verdicts_match_the_file(prometheus, signals_policy, case) -> None:
    url, at = prometheus
    rollout = RolloutRef(case, ALIAS, "gpt-5-2026-01-10", "gpt-5-2026-03-14", "shadow", None)
    step = NextStep("canary", 5)
    from_file = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe("acme-legal", ALIAS)
    with httpx.Client(base_url=url) as http:
        source = PrometheusTelemetry(http, _test_policy(signals_policy), at=at)
        batch = source.observe_all([(case, ALIAS)])
    assert not batch.problems and not batch.general
    from_prom = batch.rollouts[(case, ALIAS)]
    assert dict(from_prom.canary.signals) == {} and dict(from_prom.stable.signals) == {}
    assert from_prom.shadow.signals == from_file.shadow.signals
    assert from_prom.shadow.failures == from_file.shadow.failures  # drift per tool and kind
    file_p = decide(rollout, signals_policy, from_file, next_step_allowed=True, next_step=step)
    prom_p = decide(rollout, signals_policy, from_prom, next_step_allowed=True, next_step=step)
    assert prom_p.kind == file_p.kind == {
        "shadow-clean": "advance", "shadow-drift": "rollback", "shadow-few": "hold"}[case]
    assert prom_p.verdicts == file_p.verdicts
