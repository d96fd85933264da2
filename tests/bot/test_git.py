"""The git adapter against real repositories and a real bare remote in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime

import git

from modelpin.bot.git import BOT_EMAIL, BOT_TRAILER, ProposalGit, commit_message
from modelpin.bot.yaml_edit import apply_advance

from .conftest import PATH, TENANT_TEXT, run

BRANCH = "modelpin/advance/acme-legal/primary-reasoning"
NOW = datetime(2026, 3, 21, 10, 0, tzinfo=UTC)


def message() -> str:
    return commit_message(
        "modelpin: advance acme-legal/primary-reasoning to canary 25%",
        "All signals pass.",
        {"Modelpin-Action": "advance", "Modelpin-Tenant": "acme-legal"},
    )


def test_branch_commit_push_with_a_diff_only_on_changed_lines(remote_and_clone) -> None:
    remote, clone = remote_and_clone
    new_text = apply_advance(TENANT_TEXT, "primary-reasoning", 25, NOW)
    result = ProposalGit(clone).propose(BRANCH, {PATH: new_text}, message())

    assert result.status == "created"
    assert run(remote, "rev-parse", f"refs/heads/{BRANCH}") == result.commit
    assert run(remote, "rev-parse", f"{BRANCH}^") == run(remote, "rev-parse", "main")
    diff = run(remote, "diff", "-U0", "main", BRANCH)
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-      percent: 5                  # a step of the group's ladder",
        "-      since: 2026-03-20T10:00:00Z # when this stage was entered",
        "+      percent: 25                 # a step of the group's ladder",
        "+      since: 2026-03-21T10:00:00Z # when this stage was entered",
    ]
    commit = git.Repo(remote).commit(BRANCH)
    assert (commit.author.name, commit.author.email) == ("modelpin-bot", BOT_EMAIL)
    assert BOT_TRAILER in str(commit.message).splitlines()
    assert "Modelpin-Tenant: acme-legal" in str(commit.message)
    # the checkout the bot ran in was not touched
    assert run(clone, "status", "--porcelain") == ""
    assert run(clone, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_second_run_changes_nothing(remote_and_clone) -> None:
    remote, clone = remote_and_clone
    new_text = apply_advance(TENANT_TEXT, "primary-reasoning", 25, NOW)
    first = ProposalGit(clone).propose(BRANCH, {PATH: new_text}, message())
    refs_before = run(remote, "for-each-ref")
    second = ProposalGit(clone).propose(BRANCH, {PATH: new_text}, message())
    assert second.status == "unchanged"
    assert second.commit == first.commit
    assert run(remote, "for-each-ref") == refs_before


def test_a_new_verdict_updates_the_bot_branch_from_current_main(remote_and_clone) -> None:
    remote, clone = remote_and_clone
    ProposalGit(clone).propose(
        BRANCH, {PATH: apply_advance(TENANT_TEXT, "primary-reasoning", 25, NOW)}, message()
    )
    later = apply_advance(TENANT_TEXT, "primary-reasoning", 50, NOW)
    result = ProposalGit(clone).propose(BRANCH, {PATH: later}, message())
    assert result.status == "updated"
    assert run(remote, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert "percent: 50" in run(remote, "show", f"{BRANCH}:{PATH}")


def test_human_commits_on_the_branch_are_not_overwritten(remote_and_clone, tmp_path) -> None:
    remote, clone = remote_and_clone
    ProposalGit(clone).propose(
        BRANCH, {PATH: apply_advance(TENANT_TEXT, "primary-reasoning", 25, NOW)}, message()
    )
    human = tmp_path / "human"
    run(tmp_path, "clone", "-b", BRANCH, str(remote), str(human))
    run(human, "config", "user.name", "Jane")
    run(human, "config", "user.email", "jane@acme.example")
    (human / "NOTE.md").write_text("hold on\n")
    run(human, "add", "NOTE.md")
    run(human, "commit", "-m", "a human note")
    run(human, "push", "origin", BRANCH)
    tip = run(remote, "rev-parse", BRANCH)

    later = apply_advance(TENANT_TEXT, "primary-reasoning", 50, NOW)
    result = ProposalGit(clone).propose(BRANCH, {PATH: later}, message())
    assert result.status == "foreign"
    assert result.foreign_commits == (tip,)
    assert run(remote, "rev-parse", BRANCH) == tip


def test_change_already_on_main_is_no_change(remote_and_clone) -> None:
    remote, clone = remote_and_clone
    result = ProposalGit(clone).propose(BRANCH, {PATH: TENANT_TEXT}, message())
    assert result.status == "no-change"
    assert run(remote, "branch", "--list", BRANCH) == ""
