"""``modelpin check --base REF``: real git repositories, base and head commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelpin.cli import main
from tests.cli.rollout_repo import BASE_DATE, line_of, repo_with
from tests.fleetkit import commit_all, git, init_repo, tenant
from tests.rollout.builders import JUDGE, A, canary, scenario, shadow

NOW_BASE = "2026-03-24T00:00:00Z"  # a since well before the base commit


NOW = "2026-03-25T12:00:00Z"  # the runner's clock: commit dates are never trusted (2.1 rule 5)


def run(repo: Path, *args: str) -> int:
    return main(["check", "--repo", str(repo), "--base", "HEAD~1", "--now", NOW, *args])


def test_allowed_advance_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repo_with(tmp_path, scenario(canary(5, NOW_BASE)),
                     scenario(canary(25, "2026-03-25T11:00:00Z")))
    assert run(repo) == 0
    assert "ok: 1 change(s) in 1 tenant(s), 0 violation(s)" in capsys.readouterr().out


def test_skipped_step_points_at_the_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repo_with(tmp_path, scenario(canary(5, NOW_BASE)),
                     scenario(canary(100, "2026-03-25T11:00:00Z")))
    assert run(repo) == 1
    line, col = line_of(repo, "tenants/t1.yaml", "percent: ")
    out = capsys.readouterr().out
    assert f"tenants/t1.yaml:{line}:{col}: error[MP101]: t1/primary: canary 5 of " in out
    assert "jumps to 100, skipping 25, 50" in out
    assert "1 violation(s)" in out


def test_backdated_since_is_reported_at_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repo_with(tmp_path, scenario(shadow("2026-03-25T09:00:00Z")),
                     scenario(shadow("2026-03-20T00:00:00Z")))
    assert run(repo, "--format", "github") == 1
    line, col = line_of(repo, "tenants/t1.yaml", "since: ")
    out = capsys.readouterr().out
    assert f"::error file=tenants/t1.yaml,line={line},col={col},title=MP103" in out


def test_one_diagnostic_per_violation_only_for_changed_tenants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = scenario(canary(5, NOW_BASE))
    base.add(tenant("t2", rollout=canary(5, NOW_BASE)))
    base.add(tenant("t3", rollout=canary(5, NOW_BASE)))  # unchanged: never judged
    head = scenario(canary(25, "2026-03-25T11:00:00Z"))
    head.add(tenant("t2", rollout={**canary(5, NOW_BASE), "candidate": JUDGE}))
    head.add(tenant("t3", rollout=canary(5, NOW_BASE)))
    repo = repo_with(tmp_path, base, head)

    assert run(repo, "--format", "json") == 1

    doc = json.loads(capsys.readouterr().out)
    assert [(d["file"], d["code"]) for d in doc["diagnostics"]] == [("tenants/t2.yaml", "MP102")]
    assert doc["summary"]["changes"] == 2
    assert doc["summary"]["violations"] == 1


def test_revert_uses_the_base_history(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    scenario(None, pin=JUDGE).write(repo)
    commit_all(repo, "on claude", "2026-03-01T00:00:00Z")
    scenario(None, pin=A).write(repo)
    commit_all(repo, "moved to gpt", BASE_DATE)
    scenario(None, pin=JUDGE).write(repo)
    commit_all(repo, "revert", "2026-03-25T12:00:00Z")
    assert main(["check", "--repo", str(repo), "--base", "HEAD~1", "--now", NOW]) == 0
    # a pin the tenant never had is a direct change
    spec = scenario(None, pin="gpt-5-2026-03-14")
    spec.write(repo)
    commit_all(repo, "direct", "2026-03-25T13:00:00Z")
    assert run(repo) == 1


def test_head_defaults_to_HEAD_and_can_be_named(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, scenario(canary(5, NOW_BASE)),
                     scenario(canary(100, "2026-03-25T11:00:00Z")))
    git(repo, "branch", "base", "HEAD~1")
    assert main(["check", "--repo", str(repo), "--base", "base", "--head", "base",
                 "--now", NOW]) == 0


def test_unknown_ref_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repo_with(tmp_path, scenario(None), scenario(None))
    assert main(["check", "--repo", str(repo), "--base", "nope"]) == 2
    assert "unknown git revision 'nope'" in capsys.readouterr().err


def test_invalid_head_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = scenario(None)
    head.tenants["t1"]["group"] = "no-such-group"
    repo = repo_with(tmp_path, scenario(None), head)
    assert run(repo) == 1
    captured = capsys.readouterr()
    assert "MP020" in captured.out
    assert "head HEAD is not a valid fleet" in captured.err
