"""Fault injection: for each fault on one rollout (or one query), every other tenant's
proposal is still published exactly once, the fault is reported, and the exit status
says something failed. Real git (a bare origin), the fake GitHub and a fake Prometheus
on loopback, through ``modelpin bot`` itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelpin.cli import main
from tests.fleetkit import NOW, git

from . import faults
from .fake_github import FakeGitHub

OTHERS = ("r1", "r3", "r4")


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def _bot(repo: Path, telemetry: str, github: FakeGitHub, *extra: str,
         prometheus: bool = False) -> int:
    flag = "--prometheus" if prometheus else "--telemetry"
    return main(["bot", "--repo", str(repo), flag, telemetry, "--now", NOW,
                 "--push", "--github", f"{github.owner}/{github.repo}",
                 "--github-api", github.url, "--github-interval", "0", "--retries", "0",
                 *extra])


def _created(github: FakeGitHub) -> list[str]:
    return sorted(r.body["head"] for r in github.requests
                  if r.method == "POST" and r.path.endswith("/pulls"))


def _assert_others_published_once(github: FakeGitHub, repo: Path) -> None:
    expected = [f"modelpin/rollback/{t}/primary" for t in OTHERS]
    created = _created(github)
    assert [b for b in created if b in expected] == expected, created
    open_prs = sorted(p["head"]["ref"] for p in github.pulls.values())
    assert [b for b in open_prs if b in expected] == expected
    heads = git(repo, "ls-remote", "--heads", "origin")
    for branch in expected:
        assert f"refs/heads/{branch}" in heads


def test_no_fault_publishes_every_rollback_once(tmp_path: Path, github: FakeGitHub) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, str(telemetry), github) == 0
    assert _created(github) == [f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]


def test_impossible_record_is_refused_and_the_others_published(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    recs = faults.records()
    recs[3]["tool_call_failures"] = recs[3]["tool_calls"] + 1  # r2's canary: failures > calls
    telemetry = faults.write_telemetry(tmp_path / "t.json", recs)
    assert _bot(repo, str(telemetry), github) == 1
    out = capsys.readouterr()
    assert "PROBLEM: " in out.out
    assert "`tool_call_failures` (2401) exceeds `tool_calls` (2400)" in out.out
    assert "1 of 4 rollout(s) failed or were refused" in out.err
    _assert_others_published_once(github, repo)
    assert "modelpin/rollback/r2/primary" not in _created(github)


def _r2(body: Any) -> bool:
    return isinstance(body, dict) and body.get("head") == "modelpin/rollback/r2/primary"


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        (401, {"body": {"message": "Bad credentials"}}),
        (403, {"body": {"message": "Resource not accessible by integration"}}),
        (422, {"body": {"message": "Validation Failed", "errors": [{"code": "invalid"}]}}),
        (500, {"body": {"message": "Server Error"}, "times": 5}),
        (200, {"delay": 3.0}),  # a timeout: the answer comes after --timeout
        (201, {"drip": 0.4, "body": {"number": 99, "padding": "x" * 40}}),  # a byte at a time
    ],
    ids=["401", "403", "422", "500", "timeout", "drip"],
)
def test_github_fault_on_one_pr_leaves_the_others_published_once(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str],
    status: int, extra: dict[str, Any],
) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    github.inject("POST", "/repos/acme/fleet/pulls", status, when=_r2, **extra)
    started = time.monotonic()
    assert _bot(repo, str(telemetry), github, "--timeout", "1") == 1
    assert time.monotonic() - started < 20  # a dripped answer would take 30 s
    out = capsys.readouterr()
    assert "FAILED    r2/primary rollback: " in out.out
    assert "1 of 4 rollout(s) failed or were refused" in out.err
    _assert_others_published_once(github, repo)


def test_a_second_run_after_a_fault_publishes_only_what_is_missing(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    github.inject("POST", "/repos/acme/fleet/pulls", 502, when=_r2)
    assert _bot(repo, str(telemetry), github) == 1
    assert _bot(repo, str(telemetry), github) == 0
    assert sorted(p["head"]["ref"] for p in github.pulls.values()) == [
        f"modelpin/rollback/{t}/primary" for t in faults.TENANTS
    ]
    assert len([r for r in _created(github) if "r1" in r]) == 1


# --- Prometheus ----------------------------------------------------------------------


@pytest.fixture
def prom_repo(tmp_path: Path) -> Path:
    return faults.repo(tmp_path, prometheus=True)


def _prometheus(fault: dict[str, Any]) -> faults.FakePrometheus:
    return faults.FakePrometheus(faults.prometheus_table(faults.records()), fault)


def test_prometheus_batches_one_query_per_signal_query(
    prom_repo: Path, github: FakeGitHub
) -> None:
    prom = _prometheus({})
    try:
        assert _bot(prom_repo, prom.url, github, prometheus=True) == 0
    finally:
        prom.stop()
    assert len(prom.queries) == 10  # 5 signals x 2 queries, for all 4 rollouts at once
    assert all("sum by (tenant, alias, cohort)" in q for q in prom.queries)
    assert _created(github) == [f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"tasks_completed": faults.only_for("r2", "2400")},
         "`tasks_completed` (2400) exceeds `tasks` (1200)"),  # 200% task completion
        ({"similarity_mean": faults.only_for("r2", "5.0")},
         "`semantic_similarity` mean 5.0 is outside 0..1"),
        ({"tool_calls": faults.only_for("r2", "9" * 5000)}, "not a finite count"),
        ({"tool_calls": faults.only_for("r2", "1e400")}, "not a finite count"),
        ({"requests": faults.only_for("r2", "-5")}, "`requests` is negative"),
    ],
    ids=["completion-200pct", "similarity-5", "5000-digits", "1e400", "negative"],
)
def test_prometheus_impossible_data_is_refused_like_the_file(
    prom_repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str],
    fault: dict[str, Any], message: str,
) -> None:
    prom = _prometheus(fault)
    try:
        assert _bot(prom_repo, prom.url, github, prometheus=True) == 1
    finally:
        prom.stop()
    out = capsys.readouterr().out
    assert "r2/primary cohort" in out and message in out
    assert "ADVANCE" not in out
    _assert_others_published_once(github, prom_repo)
    assert "modelpin/rollback/r2/primary" not in _created(github)


def test_prometheus_data_null_is_a_problem_not_a_traceback(
    prom_repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = _prometheus({"similarity_mean": "null"})
    try:
        assert _bot(prom_repo, prom.url, github, prometheus=True) == 1
    finally:
        prom.stop()
    out = capsys.readouterr().out
    assert "PROBLEM   semantic_similarity.mean: prometheus answered without `data`" in out
    assert _created(github) == [f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]


@pytest.mark.slow
def test_a_dripping_server_does_not_hold_a_query_past_the_timeout(
    prom_repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = _prometheus({"similarity_mean": "drip"})
    started = time.monotonic()
    try:
        code = _bot(prom_repo, prom.url, github, "--timeout", "2", prometheus=True)
    finally:
        elapsed = time.monotonic() - started
        prom.stop()
    assert code == 1
    out = capsys.readouterr().out
    assert "timed out after 2.0s (--timeout 2)" in out
    assert elapsed < 15, elapsed  # the drip would take minutes
    # the signals read before the stall still judge: every rollback is published
    assert _created(github) == [f"modelpin/rollback/{t}/primary" for t in faults.TENANTS]


class _RawPrometheus(faults.FakePrometheus):
    """Answers every query with the same raw bytes."""

    raw: bytes = b""

    def _answer(self, h, query):  # type: ignore[no-untyped-def]
        self.queries.append(query)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(self.raw)))
        h.end_headers()
        h.wfile.write(self.raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"status": "success", "data": \xff}', "not UTF-8"),
        (b'{"status": "success", "data": ' + b"[" * 50000 + b"]" * 50000 + b"}",
         "nested too deeply"),
        (b'{"status": "success", "data": {"resultType": "vector", "result": [1e400]}}',
         "number 1e400 is out of range"),
        (b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
         "returned a matrix, expected a vector"),
    ],
    ids=["non-utf8", "deep-nesting", "1e400", "matrix"],
)
def test_malformed_prometheus_answers_are_problems_not_tracebacks(
    prom_repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str],
    raw: bytes, message: str,
) -> None:
    prom = _RawPrometheus({})
    prom.raw = raw
    try:
        assert _bot(prom_repo, prom.url, github, prometheus=True) == 1
    finally:
        prom.stop()
    captured = capsys.readouterr()
    assert message in captured.out
    assert "Traceback" not in captured.out + captured.err
    assert len(prom.queries) == 10  # every query tried: each fails on its own
    assert _created(github) == []  # no data -> nothing judged -> nothing proposed


def test_an_html_answer_is_not_a_prometheus_api_and_stops_the_queries(
    prom_repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str],
) -> None:
    prom = _RawPrometheus({})
    prom.raw = b"<html>502 Bad Gateway</html>"
    try:
        assert _bot(prom_repo, prom.url, github, prometheus=True) == 1
    finally:
        prom.stop()
    out = capsys.readouterr().out
    assert "is not a Prometheus HTTP API (POST /api/v1/query answered HTTP 200, not JSON)" in out
    assert "use --telemetry URL" in out
    assert len(prom.queries) == 1  # the rest are skipped: one problem, not ten
    assert _created(github) == []


def test_an_answer_over_the_size_cap_is_refused(signals_policy) -> None:
    import httpx

    from modelpin.bot.prometheus import PrometheusTelemetry
    from modelpin.model.signals import SignalsPolicy

    raw = signals_policy.model_dump(mode="json")
    for name, queries in faults.QUERIES.items():
        raw["signals"][name]["prometheus"] = queries
    prom = _prometheus({})
    try:
        with httpx.Client(base_url=prom.url) as http:
            source = PrometheusTelemetry(http, SignalsPolicy.model_validate(raw), max_bytes=100)
            batch = source.observe_all([("r1", "primary")])
    finally:
        prom.stop()
    assert batch.general and all("answer over the 100-byte cap" in g for g in batch.general)
    assert dict(batch.rollouts[("r1", "primary")].canary.signals) == {}
