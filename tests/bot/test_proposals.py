"""publish(): real git remote in tmp, fake GitHub over HTTP; the second run opens nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from modelpin.bot.decisions import decide
from modelpin.bot.git import ProposalGit
from modelpin.bot.github import GitHubClient
from modelpin.bot.proposals import publish
from modelpin.bot.telemetry import JsonFileTelemetry
from modelpin.bot.yaml_edit import apply_advance, apply_rollback

from .conftest import PATH, TELEMETRY, TENANT_TEXT, run
from .fake_github import FakeGitHub

NOW = datetime(2026, 3, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def fake():
    server = FakeGitHub().start()
    yield server
    server.stop()


@pytest.fixture
def gh(fake):
    with httpx.Client(base_url=fake.url) as http:
        yield GitHubClient(http, "acme", "fleet", "t0k", min_interval=0.001, sleep=lambda s: None)


def proposal_for(case, signals_policy, rollout, next_step):
    telemetry = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe(
        rollout.tenant, rollout.alias
    )
    return decide(rollout, signals_policy, telemetry, next_step_allowed=True, next_step=next_step)


def test_rollback_published_once(
    remote_and_clone,
    fake,
    gh,
    signals_policy,
    rollout,
    next_step,
) -> None:
    remote, clone = remote_and_clone
    p = proposal_for("regression", signals_policy, rollout, next_step)
    new_text = apply_rollback(TENANT_TEXT, rollout.alias, "tool_call_failure_rate breached", NOW)
    git_adapter = ProposalGit(clone)

    first = publish(p, PATH, new_text, git_adapter, gh, "plan", dry_run=False)
    assert first.status == "opened"
    assert first.branch == "modelpin/rollback/acme-legal/primary-reasoning"
    assert first.pr_number == 1
    pr = fake.pulls[1]
    assert pr["head"]["ref"] == first.branch and pr["base"]["ref"] == "main"
    assert [label["name"] for label in pr["labels"]] == ["modelpin", "rollback", "needs-approval"]
    assert "stage: rolled-back" in run(remote, "show", f"{first.branch}:{PATH}")
    assert fake.calls() == [
        ("GET", "/repos/acme/fleet/pulls"),
        ("POST", "/repos/acme/fleet/pulls"),
        ("POST", "/repos/acme/fleet/issues/1/labels"),
    ]

    refs = run(remote, "for-each-ref")
    fake.requests.clear()
    second = publish(p, PATH, new_text, git_adapter, gh, "plan", dry_run=False)
    assert second.status == "unchanged"
    assert second.pr_number == 1
    assert fake.calls() == [("GET", "/repos/acme/fleet/pulls")]  # nothing mutated
    assert run(remote, "for-each-ref") == refs
    assert len(fake.pulls) == 1


def test_changed_verdict_updates_the_same_pr(
    remote_and_clone,
    fake,
    gh,
    signals_policy,
    rollout,
    next_step,
) -> None:
    _, clone = remote_and_clone
    p = proposal_for("clean", signals_policy, rollout, next_step)
    git_adapter = ProposalGit(clone)
    publish(
        p, PATH, apply_advance(TENANT_TEXT, rollout.alias, 25, NOW), git_adapter, gh, "a", False
    )
    fake.requests.clear()
    later = apply_advance(TENANT_TEXT, rollout.alias, 25, datetime(2026, 3, 22, tzinfo=UTC))
    result = publish(p, PATH, later, git_adapter, gh, "plan b", dry_run=False)
    assert result.status == "updated"
    assert fake.calls() == [
        ("GET", "/repos/acme/fleet/pulls"),
        ("PATCH", "/repos/acme/fleet/pulls/1"),
    ]
    assert "plan b" in fake.pulls[1]["body"]


def test_foreign_commits_get_one_comment(
    remote_and_clone,
    fake,
    gh,
    signals_policy,
    rollout,
    next_step,
    tmp_path,
) -> None:
    remote, clone = remote_and_clone
    p = proposal_for("clean", signals_policy, rollout, next_step)
    git_adapter = ProposalGit(clone)
    first = publish(
        p, PATH, apply_advance(TENANT_TEXT, rollout.alias, 25, NOW), git_adapter, gh, "a", False
    )
    human = tmp_path / "human"
    run(tmp_path, "clone", "-b", first.branch, str(remote), str(human))
    run(human, "-c", "user.name=J", "-c", "user.email=j@x", "commit", "--allow-empty", "-m", "x")
    run(human, "push", "origin", first.branch)
    later = apply_advance(TENANT_TEXT, rollout.alias, 25, datetime(2026, 3, 22, tzinfo=UTC))
    for _ in range(2):
        result = publish(p, PATH, later, git_adapter, gh, "b", dry_run=False)
        assert result.status == "foreign"
    assert len(fake.comments[1]) == 1
    assert "commits not made by the bot" in fake.comments[1][0]["body"]


def test_dry_run_and_hold_touch_nothing(
    remote_and_clone,
    fake,
    gh,
    signals_policy,
    rollout,
    next_step,
) -> None:
    remote, clone = remote_and_clone
    p = proposal_for("clean", signals_policy, rollout, next_step)
    new_text = apply_advance(TENANT_TEXT, rollout.alias, 25, NOW)
    dry = publish(p, PATH, new_text, ProposalGit(clone), gh, "plan", dry_run=True)
    assert dry.status == "dry-run" and "## Signals" in dry.body
    hold = proposal_for("noisy", signals_policy, rollout, next_step)
    assert publish(hold, PATH, TENANT_TEXT, ProposalGit(clone), gh, "", False).status == "skipped"
    assert fake.requests == []
    assert "modelpin" not in run(remote, "branch", "--list")
