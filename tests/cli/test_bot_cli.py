"""``modelpin bot`` end to end on real parts: a git repo with a bare origin, telemetry
files, and the local fake GitHub (tests/bot/fake_github.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelpin.cli import main
from tests.bot.fake_github import FakeGitHub
from tests.fleetkit import (
    NOW,
    FleetSpec,
    cohort,
    commit_all,
    evidence,
    git,
    init_repo,
    telemetry,
    tenant,
)

SINCE = "2026-03-20T00:00:00Z"


def _spec() -> FleetSpec:
    spec = FleetSpec(tenants={})
    spec.add(tenant("p1", group="pioneers", pin="gpt-5-2026-03-14"))
    for tid in ("e1", "e2"):
        spec.add(tenant(tid, group="early", rollout={
            "candidate": "gpt-5-2026-03-14", "stage": "canary", "percent": 10, "since": SINCE}))
        spec.evidence.append(evidence(tid))
    return spec


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = init_repo(tmp_path / "work")
    _spec().write(work)
    commit_all(work, "fleet", date=NOW)
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    (tmp_path / "telemetry.json").write_text(json.dumps(telemetry(
        # e1: healthy with enough data for the confidence sequence (--looks sequential)
        cohort("e1", "primary", "stable", requests=80000, tool_calls=32000,
               tool_call_failures=320, tasks=16000, tasks_completed=15200, coercions=160,
               downstream_errors=240),
        cohort("e1", "primary", "canary", requests=24000, tool_calls=9600,
               tool_call_failures=92, tasks=4800, tasks_completed=4564,
               coercions=48, downstream_errors=72),
        cohort("e2", "primary", "stable"), cohort("e2", "primary", "canary", requests=6000,
                                                  tool_calls=2400, tool_call_failures=120,
                                                  tasks=1200, tasks_completed=1000,
                                                  coercions=12, downstream_errors=18),
    )))
    return work


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def _bot(repo: Path, *extra: str) -> int:
    return main(["bot", "--repo", str(repo), "--telemetry", str(repo.parent / "telemetry.json"),
                 "--now", NOW, *extra])


def test_dry_run_prints_proposals_and_diffs_and_touches_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert _bot(repo, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "ADVANCE   e1/primary (canary 10) -> canary 100%" in out
    assert "ROLLBACK  e2/primary (canary 10)" in out
    assert "+      percent: 100" in out
    assert "+      stage: rolled-back" in out
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "ls-remote", "--heads", "origin").count("\n") == 0  # only main


def test_push_opens_one_pr_per_proposal_and_is_idempotent(
    repo: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--push", "--github", f"{github.owner}/{github.repo}", "--github-api", github.url)
    assert _bot(repo, *args) == 0
    heads = git(repo, "ls-remote", "--heads", "origin")
    assert "refs/heads/modelpin/advance/e1/primary" in heads
    assert "refs/heads/modelpin/rollback/e2/primary" in heads
    titles = sorted(pr["title"] for pr in github.pulls.values())
    assert len(titles) == 2
    rollback = next(pr for pr in github.pulls.values() if "rollback" in pr["head"]["ref"])
    assert {label["name"] for label in rollback["labels"]} >= {"modelpin", "rollback"}
    assert "tool_call_failure_rate" in rollback["body"]
    posts = [c for c in github.calls() if c[0] == "POST"]

    capsys.readouterr()
    assert _bot(repo, *args) == 0
    assert len(github.pulls) == 2
    assert [c for c in github.calls() if c[0] == "POST"] == posts, "second run opens nothing"


def test_every_pushed_proposal_passes_check(repo: Path, github: FakeGitHub) -> None:
    args = ("--push", "--github", f"{github.owner}/{github.repo}", "--github-api", github.url)
    assert _bot(repo, *args) == 0
    git(repo, "fetch", "-q", "origin")
    for branch in ("modelpin/advance/e1/primary", "modelpin/rollback/e2/primary"):
        assert main(["check", "--repo", str(repo), "--base", "main",
                     "--head", f"origin/{branch}", "--now", NOW]) == 0, branch


def test_github_without_push_is_a_usage_error(repo: Path) -> None:
    assert _bot(repo, "--github", "acme/fleet") == 2


def test_missing_telemetry_file_is_a_usage_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bot", "--repo", str(repo), "--telemetry", str(repo / "nope.json")])
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_a_rollback_on_record_upstream_stops_the_advance(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPEC 2.1 rule 7: a pioneer rolled back from V, then acknowledged (the rollout
    removed), stays on record in main's history: the bot proposes no advance of V in a
    downstream group, as ``check`` would refuse it."""
    spec = _spec()
    spec.add(tenant("p2", group="pioneers", rollout={
        "candidate": "gpt-5-2026-03-14", "stage": "rolled-back", "since": SINCE,
        "reason": "tool calls broke"}))
    spec.write(repo)
    commit_all(repo, "p2: roll back", date=NOW)
    spec.add(tenant("p2", group="pioneers"))
    spec.write(repo)
    commit_all(repo, "p2: acknowledge the rollback", date=NOW)
    git(repo, "push", "-q", "origin", "main")
    assert _bot(repo, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "ADVANCE   e1/primary" not in out
    assert "HOLD      e1/primary (canary 10) -> canary 100%" in out
    assert "tenant p2 rolled back from it" in out
    assert "ROLLBACK  e2/primary (canary 10)" in out, "rollbacks are never blocked"
