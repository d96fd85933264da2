"""Drift and step windows against a real ``prometheus`` scraping a real gateway process
that embeds ``modelpin.router`` (``tests/bot/exporter.py``): the series the bot reads
are the ones routers export, under the names of ``router/metric_names.py``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelpin import signing
from modelpin.bot.drift_prometheus import PrometheusDrift
from modelpin.bot.promapi import PrometheusApi
from modelpin.bot.prometheus import PrometheusTelemetry
from modelpin.cli import main
from modelpin.model.signals import SignalsPolicy
from tests.fleetkit import NOW, FleetSpec, commit_all, git, init_repo, tenant
from tests.guard.procs import Proc, PrometheusProc, env_with, free_port, python_module, wait_http
from tests.router.tables import envelope, payload, route

ROOT = Path(__file__).resolve().parents[2]
# d1 tool calls drift, d2 steady, d3 re-pinned, d4 refusals, d5 format, d6 response length
PINNED = ("d1", "d2", "d3", "d4", "d5", "d6")
#: a steady window of answers: 1% refused, 2% failing the format, 200 +- 20 tokens
STEADY = {"answers": 2000, "refused": 20, "format_failed": 40, "tokens": 200, "spread": 20}

pytestmark = pytest.mark.slow


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    key = signing.generate_private_key()
    def entry(alias: dict[str, Any]) -> dict[str, Any]:
        return {"group": "standard", "failure_policy": "fallback-stable", "tools": {},
                "aliases": {"primary": alias}}

    tenants = {t: entry(route(t, "primary")) for t in PINNED}
    tenants["c1"] = entry(route("c1", "primary", mode="canary", percent=50))
    table = tmp_path / "table.dsse.json"
    table.write_bytes(envelope(payload(1, tenants=tenants), [key]))
    port = free_port()
    exporter = Proc(python_module("tests.bot.exporter", "--port", str(port), "--table",
                                  str(table), "--key",
                                  signing.public_key_b64(key.public_key()),
                                  "--state", str(tmp_path)),
                    tmp_path / "exporter.log", env=env_with()).start()
    prom: PrometheusProc | None = None
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", exporter, 30)
        prom = PrometheusProc(tmp_path / "prom", [f"127.0.0.1:{port}"], scrape="1s").start()
        yield {"exporter": f"http://127.0.0.1:{port}", "prometheus": prom.url}
    finally:
        if prom is not None:
            prom.stop()
        exporter.stop()


def _record(live: dict[str, Any], tenant: str, cohort: str, calls: int, failures: int,
            **answers: int) -> None:
    httpx.post(f"{live['exporter']}/record", json={
        "tenant": tenant, "alias": "primary", "cohort": cohort, "calls": calls,
        "failures": failures, **answers}, timeout=60).raise_for_status()


def _scraped(live: dict[str, Any], tenant: str, at_least: float) -> None:
    deadline = time.monotonic() + 20
    query = f'sum(modelpin_tool_calls_total{{tenant="{tenant}",cohort="stable"}})'
    while time.monotonic() < deadline:
        body = httpx.get(f"{live['prometheus']}/api/v1/query", params={"query": query}).json()
        result = body["data"]["result"]
        if result and float(result[0]["value"][1]) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"prometheus never scraped {tenant}'s calls")


def _repo(tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = init_repo(tmp_path / "work")
    spec = FleetSpec(tenants={})
    for t in PINNED:
        spec.add(tenant(t))
    spec.write(repo)
    commit_all(repo, "fleet", date=NOW)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return repo


def test_drift_and_step_windows_from_prometheus_scraping_a_router(
    tmp_path: Path, live: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(tmp_path)
    for t in PINNED:  # a pinned alias's series appear at its first request
        _record(live, t, "stable", 1, 0)
    _scraped(live, "d3", 1)
    time.sleep(2)
    # baseline: every pinned alias fails 1% of tool calls and answers steadily;
    # c1's canary fails 30%
    for t in PINNED:
        _record(live, t, "stable", 2000, 20, **STEADY)
    _record(live, "c1", "stable", 4000, 40)
    _record(live, "c1", "canary", 400, 120)
    for t in PINNED:
        _scraped(live, t, 2001)
    time.sleep(4)
    step_start = datetime.now(UTC)  # c1 advanced: its new step starts now
    time.sleep(2)
    # now: d1 fails 10% of tool calls, d4 refuses 8%, d5 fails the format 12%, d6's
    # answers are 300 tokens long; d2 and d3 are steady; c1's canary is healthy
    _record(live, "d1", "stable", 2000, 200, **STEADY)
    _record(live, "d4", "stable", 2000, 20, **{**STEADY, "refused": 160})
    _record(live, "d5", "stable", 2000, 20, **{**STEADY, "format_failed": 240})
    _record(live, "d6", "stable", 2000, 20, **{**STEADY, "tokens": 300})
    for t in ("d2", "d3"):
        _record(live, t, "stable", 2000, 20, **STEADY)
    _record(live, "c1", "stable", 4000, 40)
    _record(live, "c1", "canary", 400, 4)
    for t in PINNED:
        _scraped(live, t, 4001)
    time.sleep(2)
    at = datetime.now(UTC).replace(microsecond=0)
    d3 = repo / "tenants" / "d3.yaml"  # repinned 5 s ago: its baseline is the old pin's
    d3.write_text(d3.read_text().replace("pin: gpt-5-2026-01-10", "pin: gpt-5-2026-03-14"))
    commit_all(repo, "repin d3", date=(at - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    git(repo, "push", "-q", "origin", "main")

    code = main(["lifecycle", "--repo", str(repo), "--prometheus", live["prometheus"],
                 "--drift-window", "6s", "--baseline-window", "10s",
                 "--now", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    drift = {line.split()[1]: line for line in out.splitlines() if line.startswith("DRIFT")}
    assert sorted(drift) == ["d1/primary:", "d4/primary:", "d5/primary:", "d6/primary:"], out
    # (signal, the change recorded); the second-scale windows are not aligned with the
    # recording, so a window may mix in a little of the other: the change read is most
    # of the change recorded (the exact numbers are tests/guard/test_queries_e2e.py's)
    expected = {"d1": ("tool_call_failure_rate", 0.09), "d4": ("refusal_rate", 0.07),
                "d5": ("format_failure_rate", 0.10), "d6": ("response_length", 100.0)}
    for t, (signal, change) in expected.items():  # each flagged on its own signal only
        line = drift[f"{t}/primary:"]
        found = re.fullmatch(
            rf"DRIFT +{t}/primary: gpt-5-2026-01-10 drifted from the tenant's baseline: "
            rf"{signal} \(now worse than baseline by ([0-9.]+) \(at least [0-9.]+ at 95%\), "
            r"tolerance [0-9.]+\)", line)
        assert found is not None, line
        assert 0.6 * change < float(found.group(1)) < 1.1 * change, line
    assert "d3/primary: drift not judged: its pin changed on" in out
    assert "no data" not in out and "PROBLEM" not in out and "not exported" not in out

    raw = yaml.safe_load((ROOT / "policies" / "signals.yaml").read_text())
    policy = SignalsPolicy.model_validate(raw)
    with httpx.Client(base_url=live["prometheus"]) as http:
        step = PrometheusTelemetry(http, policy, starts={("c1", "primary"): step_start},
                                   now=at, grid=1, min_window=1).observe("c1", "primary")
        whole = PrometheusTelemetry(http, policy, at=at.timestamp()).observe("c1", "primary")
        # an alias with no series at all: "no data" notes for all four signals, no window
        missing = PrometheusDrift(PrometheusApi(http, at=at.timestamp()),
                                  window=timedelta(seconds=6),
                                  baseline=timedelta(seconds=10)).drift_all([("nobody", "x")])
    assert missing.windows == {} and not missing.problems and not missing.general
    assert [n.split(" no data for ")[1].split()[0] for n in missing.notes] == [
        "tool_call_failure_rate", "refusal_rate", "format_failure_rate", "response_length"]
    step_canary = step.canary.signals["tool_call_failure_rate"]
    whole_canary = whole.canary.signals["tool_call_failure_rate"]
    assert step_canary.value is not None and whole_canary.value is not None
    assert step_canary.value < 0.03  # only the new step's calls: 4 of 400
    assert whole_canary.value > 0.10  # the policy's 1h window mixes in the old step's 30%
    assert "since the step started" in step.window
