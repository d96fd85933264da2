"""``modelpin bot`` rules on real git and the fake GitHub: proposals built from the
remote's main (a stale checkout reverts nothing), an unchanged proposal changes nothing,
escalations open deduplicated issues, tenants override a signal's action."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelpin.cli import main
from tests.fleetkit import NOW, commit_all, git

from . import faults
from .fake_github import FakeGitHub


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    monkeypatch.setenv("GITHUB_TOKEN", server.token)
    yield server
    server.stop()


def _bot(repo: Path, telemetry: Path, github: FakeGitHub, now: str = NOW) -> int:
    return main(["bot", "--repo", str(repo), "--telemetry", str(telemetry), "--now", now,
                 "--push", "--github", f"{github.owner}/{github.repo}",
                 "--github-api", github.url, "--github-interval", "0", "--retries", "0"])


def _edit_on_origin(tmp_path: Path, path: str, **fields: object) -> None:
    """Someone else lands an edit on main; the bot's checkout does not have it."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    doc = yaml.safe_load((other / path).read_text())
    doc.update(fields)
    (other / path).write_text(yaml.safe_dump(doc, sort_keys=False))
    commit_all(other, "land an edit")
    git(other, "push", "-q", "origin", "main")


def test_a_stale_checkout_does_not_revert_what_landed_on_main(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = faults.repo(tmp_path)
    _edit_on_origin(tmp_path, "tenants/r1.yaml", freeze=True,
                    failure_policy="structured-error")
    local_before = (repo / "tenants/r1.yaml").read_text()
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, telemetry, github) == 0
    git(repo, "fetch", "-q", "origin")
    proposed = yaml.safe_load(git(repo, "show", "origin/modelpin/rollback/r1/primary:"
                                  "tenants/r1.yaml"))
    assert proposed["freeze"] is True
    assert proposed["failure_policy"] == "structured-error"
    assert proposed["aliases"]["primary"]["rollout"]["stage"] == "rolled-back"
    parent = git(repo, "rev-parse", "origin/modelpin/rollback/r1/primary^")
    assert parent == git(repo, "rev-parse", "origin/main")
    assert (repo / "tenants/r1.yaml").read_text() == local_before  # checkout untouched


def test_an_unchanged_proposal_changes_nothing(
    tmp_path: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, telemetry, github) == 0
    heads = git(repo, "ls-remote", "--heads", "origin")
    calls = len(github.requests)
    capsys.readouterr()
    assert _bot(repo, telemetry, github, now="2026-03-25T13:00:00Z") == 0  # an hour later
    assert git(repo, "ls-remote", "--heads", "origin") == heads, "no push, no new since"
    later = [(r.method, r.path) for r in github.requests[calls:]]
    assert all(method == "GET" for method, _ in later), later  # no PATCH, no POST
    out = capsys.readouterr().out
    assert out.count("unchanged modelpin/rollback/") == 4


def test_a_changed_proposal_updates_its_branch_and_pr(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, telemetry, github) == 0
    before = dict(line.split("\t")[::-1] for line in
                  git(repo, "ls-remote", "--heads", "origin").splitlines())
    _edit_on_origin(tmp_path, "tenants/r1.yaml", owner="legal@acme.example")
    assert _bot(repo, telemetry, github) == 0
    after = dict(line.split("\t")[::-1] for line in
                 git(repo, "ls-remote", "--heads", "origin").splitlines())
    moved = sorted(ref for ref in after if after[ref] != before.get(ref))
    # r1's file changed on main: its branch is rebuilt on it; the others stay as they are
    assert moved == ["refs/heads/main", "refs/heads/modelpin/rollback/r1/primary"]
    git(repo, "fetch", "-q", "origin")
    assert "owner: legal@acme.example" in git(
        repo, "show", "origin/modelpin/rollback/r1/primary:tenants/r1.yaml")
    assert len(github.pulls) == 4


def _escalating(recs: list[dict], tenant_id: str) -> list[dict]:
    """Only downstream errors regress for ``tenant_id`` (policy action: escalate)."""
    for r in recs:
        if r["tenant"] == tenant_id and r["cohort"] == "canary":
            r.update(tool_call_failures=23, downstream_errors=300)
    return recs


def test_escalate_opens_one_issue_with_the_incident_report(
    tmp_path: Path, github: FakeGitHub
) -> None:
    repo = faults.repo(tmp_path)
    telemetry = faults.write_telemetry(tmp_path / "t.json",
                                       _escalating(faults.records(), "r2"))
    assert _bot(repo, telemetry, github) == 0
    assert _bot(repo, telemetry, github, now="2026-03-25T13:00:00Z") == 0
    (issue,) = github.issues.values()
    assert issue["title"].startswith("modelpin: r2/primary canary gpt-5-2026-03-14 needs a human")
    assert "## Incident report" in issue["body"] and "downstream_error_rate" in issue["body"]
    assert "nothing was changed" in issue["body"]
    assert {label["name"] for label in issue["labels"]} == {"modelpin", "escalate"}
    assert "modelpin/rollback/r2/primary" not in {p["head"]["ref"] for p in github.pulls.values()}


def test_a_tenant_overrides_a_signals_action(tmp_path: Path, github: FakeGitHub) -> None:
    """r1 (say, legal) escalates tool-call failures; r3 keeps the policy's rollback."""
    repo = faults.repo(tmp_path)
    _edit_on_origin(tmp_path, "tenants/r1.yaml",
                    signal_actions={"tool_call_failure_rate": "escalate"})
    telemetry = faults.write_telemetry(tmp_path / "t.json", faults.records())
    assert _bot(repo, telemetry, github) == 0
    branches = {p["head"]["ref"] for p in github.pulls.values()}
    assert "modelpin/rollback/r1/primary" not in branches
    assert "modelpin/rollback/r3/primary" in branches
    (issue,) = github.issues.values()
    assert "r1/primary" in issue["title"]


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ({"tool_call_failure_rate": "ignore"}, "Input should be 'rollback', 'pause' or"),
        ({"latency": "rollback"}, "Input should be 'tool_call_failure_rate'"),
    ],
)
def test_signal_actions_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      actions: dict, message: str) -> None:
    repo = faults.repo(tmp_path)
    doc = yaml.safe_load((repo / "tenants/r1.yaml").read_text())
    doc["signal_actions"] = actions
    (repo / "tenants/r1.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["validate", "--repo", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "tenants/r1.yaml:" in out and message in out
