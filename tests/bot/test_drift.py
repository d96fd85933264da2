"""Drift of pinned versions against the tenant's own baseline window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelpin.bot.drift import judge_drift
from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.bot.telemetry import JsonFileTelemetry
from modelpin.cli import main
from tests.fleetkit import NOW, commit_all, git, init_repo

from .fake_github import FakeGitHub
from .test_lifecycle import _spec

BASE = {"tool_call_failure_rate": RateObservation(520, 52000),
        "refusal_rate": RateObservation(1400, 140000),
        "format_failure_rate": RateObservation(150, 30000),
        "response_length": MeanObservation(412.0, 140000, 160.0)}


def _now(**changes: object) -> dict:
    return {**{"tool_call_failure_rate": RateObservation(77, 7400),
               "refusal_rate": RateObservation(210, 20000),
               "format_failure_rate": RateObservation(24, 4300),
               "response_length": MeanObservation(405.0, 20000, 158.0)}, **changes}


def test_a_steady_pin_does_not_drift() -> None:
    report = judge_drift("t", "a", "m", BASE, _now())
    assert report.drifted == ()
    assert [v.result for v in report.verdicts] == ["pass"] * 4


@pytest.mark.parametrize(
    ("changes", "signal"),
    [
        ({"refusal_rate": RateObservation(520, 20000)}, "refusal_rate"),  # 1% -> 2.6%
        ({"format_failure_rate": RateObservation(260, 4300)}, "format_failure_rate"),
        ({"tool_call_failure_rate": RateObservation(300, 7400)}, "tool_call_failure_rate"),
        ({"response_length": MeanObservation(290.0, 20000, 150.0)}, "response_length"),  # -30%
        ({"response_length": MeanObservation(560.0, 20000, 170.0)}, "response_length"),  # +36%
    ],
)
def test_each_drift_signal_is_caught(changes: dict, signal: str) -> None:
    report = judge_drift("t", "a", "m", BASE, _now(**changes))
    assert [v.signal for v in report.drifted] == [signal]
    assert "baseline" in report.drifted[0].reason and "canary" not in report.drifted[0].reason


def test_too_little_data_is_not_drift() -> None:
    small = _now(refusal_rate=RateObservation(30, 150))  # 20%, but 150 < 200 samples
    report = judge_drift("t", "a", "m", BASE, small)
    assert report.drifted == ()
    (refusal,) = [v for v in report.verdicts if v.signal == "refusal_rate"]
    assert refusal.result == "inconclusive"


def _records(refusals: int) -> list[dict]:
    key = {"tenant": "e1", "alias": "primary"}
    return [
        {**key, "cohort": "baseline", "window": "7d", "requests": 140000, "refusals": 1400,
         "response_tokens": {"mean": 412.0, "count": 140000, "std": 160.0}},
        {**key, "cohort": "stable", "window": "1d", "requests": 20000, "refusals": refusals,
         "response_tokens": {"mean": 405.0, "count": 20000, "std": 158.0}},
    ]


def test_drift_fields_are_validated_per_record(tmp_path: Path) -> None:
    bad = _records(210)
    bad[1]["refusals"] = 30000  # more refusals than requests
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": 1, "records": bad}))
    source = JsonFileTelemetry.from_path(path)
    # the current window was refused
    assert ("e1", "primary") not in source.drift_all([("e1", "primary")]).windows
    batch = source.observe_all([("e1", "primary")])
    assert "`refusals` (30000) exceeds `requests` (20000)" in batch.problems[("e1", "primary")][0]


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def test_lifecycle_opens_one_drift_issue(tmp_path: Path, github: FakeGitHub,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = init_repo(tmp_path / "work")
    _spec(retires="2027-12-31").write(repo)
    commit_all(repo, "fleet", date=NOW)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    telemetry = tmp_path / "t.json"
    telemetry.write_text(json.dumps({"version": 1, "records": _records(520)}))
    args = ["lifecycle", "--repo", str(repo), "--now", NOW, "--telemetry", str(telemetry),
            "--push", "--github", "acme/fleet", "--github-api", github.url,
            "--github-interval", "0"]
    assert main(args) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "DRIFT        e1/primary: gpt-5-2026-01-10 drifted from the tenant's baseline: " \
        "refusal_rate" in out
    (issue,) = [i for i in github.issues.values() if "drift" in i["title"]]
    assert issue["title"] == "modelpin: gpt-5-2026-01-10 drifted for e1/primary"
    assert "| refusal_rate | 0.01 | 0.026 |" in issue["body"]
    assert {label["name"] for label in issue["labels"]} == {"modelpin", "drift"}
