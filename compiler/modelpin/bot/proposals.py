"""Publishing a proposal: branch, commit, push, pull request — idempotently.

The imperative shell around the pure parts. Running it twice with the same proposal
opens nothing new: the branch is left as is when it already has the change, the PR
is found by its branch and PATCHed only when its text changed, labels are added only
when missing. A branch someone else committed to is never overwritten; the open PR
gets one comment saying so. A PR a human closed is not reopened for the same change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from . import report
from .decisions import Proposal
from .git import BranchResult, commit_message
from .github import Issue, PullRequest

PublishStatus = Literal[
    "dry-run", "opened", "updated", "unchanged", "foreign", "no-change", "closed", "skipped"
]
FOREIGN_NOTE = "<!-- modelpin-bot: foreign-commits -->"


class GitAdapter(Protocol):
    def propose(
        self, branch: str, files: Mapping[str, str], message: str, *, base: str | None = None
    ) -> BranchResult: ...


class PullRequests(Protocol):
    def find_pr(self, branch: str) -> PullRequest | None: ...
    def create_pr(self, branch: str, base: str, title: str, body: str) -> PullRequest: ...
    def update_pr(self, pr: PullRequest, title: str, body: str) -> tuple[PullRequest, bool]: ...
    def add_labels(self, pr: PullRequest, labels: Sequence[str]) -> tuple[str, ...]: ...
    def comments(self, number: int) -> list[str]: ...
    def comment(self, number: int, body: str) -> None: ...
    def find_issue(self, marker: str, label: str) -> Issue | None: ...
    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> Issue: ...


@dataclass(frozen=True)
class PublishResult:
    status: PublishStatus
    branch: str
    title: str
    body: str
    pr_number: int | None = None
    pr_url: str | None = None
    detail: str = ""


PUBLISHABLE = ("advance", "rollback", "pause")


def labels_for(proposal: Proposal) -> list[str]:
    labels = ["modelpin", proposal.kind]
    if proposal.rollout.manual_approval:
        labels.append("needs-approval")
    return labels


def commit_message_for(proposal: Proposal, tenant_file_path: str) -> str:
    r = proposal.rollout
    return commit_message(
        report.title(proposal),
        "\n".join(f"- {reason}" for reason in proposal.reasons),
        {
            "Modelpin-Action": proposal.kind,
            "Modelpin-Tenant": r.tenant,
            "Modelpin-Alias": r.alias,
            "Modelpin-Candidate": r.candidate,
            "Modelpin-File": tenant_file_path,
        },
    )


def publish(
    proposal: Proposal,
    tenant_file_path: str,
    new_text: str,
    git_adapter: GitAdapter,
    github_client: PullRequests,
    plan_markdown: str,
    dry_run: bool,
    *,
    evidence: Sequence[str] = (),
    base: str = "main",
    base_commit: str | None = None,
) -> PublishResult:
    """Make the proposal a pull request; ``tenant_file_path`` is relative to the repo root.

    ``hold`` and ``escalate`` change no file and are ``skipped``: the caller reports them.
    ``dry_run`` renders title and body and touches neither git nor GitHub.
    """
    title = report.title(proposal)
    body = report.body(proposal, plan_markdown, evidence)
    branch = proposal.branch

    def result(
        status: PublishStatus, pr: PullRequest | None = None, detail: str = ""
    ) -> PublishResult:
        return PublishResult(
            status,
            branch,
            title,
            body,
            pr.number if pr else None,
            pr.html_url if pr else None,
            detail,
        )

    if proposal.kind not in PUBLISHABLE:
        return result("skipped", detail=f"{proposal.kind}: no change to propose")
    if dry_run:
        return result("dry-run")

    pushed = git_adapter.propose(
        branch, {tenant_file_path: new_text}, commit_message_for(proposal, tenant_file_path),
        base=base_commit,
    )
    if pushed.status == "no-change":
        return result("no-change", detail=f"{base} already has this change")

    pr = github_client.find_pr(branch)
    if pushed.status == "foreign":
        detail = f"{branch} has commits not made by the bot: {', '.join(pushed.foreign_commits)}"
        if (
            pr is not None
            and pr.state == "open"
            and not any(FOREIGN_NOTE in c for c in github_client.comments(pr.number))
        ):
            github_client.comment(
                pr.number,
                f"modelpin-bot would now propose **{proposal.kind}** "
                f"({'; '.join(proposal.reasons)}), but this branch has commits not made "
                f"by the bot, so it was left as is.\n\n{FOREIGN_NOTE}",
            )
        return result("foreign", pr, detail)

    branch_moved = pushed.status in ("created", "updated")
    if pr is not None and pr.state != "open" and not branch_moved:
        return result("closed", pr, "the PR for this change was closed; not reopened")
    if pr is None or pr.state != "open":
        pr = github_client.create_pr(branch, base, title, body)
        status: PublishStatus = "opened"
    elif branch_moved:
        pr, _ = github_client.update_pr(pr, title, body)
        status = "updated"
    else:
        # The same edit is already proposed: the PR keeps the report it was opened
        # (or last updated) with; fresh numbers alone do not rewrite it.
        status = "unchanged"
    github_client.add_labels(pr, labels_for(proposal))
    return result(status, pr)


def open_issue(
    key: str, title: str, body: str, labels: Sequence[str], github_client: PullRequests,
    where: str,
) -> PublishResult:
    """One issue per ``key`` (a hidden marker in its body), deduplicated like PRs: an
    open one is left as it is, one a human closed is not reopened."""
    found = github_client.find_issue(key, "modelpin")
    if found is not None:
        status: PublishStatus = "unchanged" if found.state == "open" else "closed"
        detail = "" if found.state == "open" else "the issue was closed; not reopened"
        return PublishResult(status, where, title, body, found.number, found.html_url, detail)
    issue = github_client.create_issue(title, body, ["modelpin", *labels])
    return PublishResult("opened", where, title, body, issue.number, issue.html_url)


def escalate(
    proposal: Proposal,
    github_client: PullRequests,
    dry_run: bool,
    *,
    evidence: Sequence[str] = (),
) -> PublishResult:
    """Open one issue with the incident report per rollout and candidate."""
    title = report.issue_title(proposal)
    body = report.issue_body(proposal, evidence)
    where = f"issue:{proposal.rollout.tenant}/{proposal.rollout.alias}"
    if dry_run:
        return PublishResult("dry-run", where, title, body)
    return open_issue(report.issue_key(proposal), title, body, ["escalate"], github_client,
                      where)


def publish_change(
    branch: str, path: str, new_text: str, title: str, body: str, labels: Sequence[str],
    git_adapter: GitAdapter, github_client: PullRequests, *, base: str = "main",
    base_commit: str | None = None,
) -> PublishResult:
    """A lifecycle proposal (shadow to a successor, regroup) as a branch and a PR, with
    the same idempotence as :func:`publish`."""
    message = commit_message(title, "", {"Modelpin-Action": branch.split("/")[1],
                                         "Modelpin-File": path})
    pushed = git_adapter.propose(branch, {path: new_text}, message, base=base_commit)
    if pushed.status == "no-change":
        return PublishResult("no-change", branch, title, body, detail=f"{base} has it")
    pr = github_client.find_pr(branch)
    if pushed.status == "foreign":
        return PublishResult("foreign", branch, title, body, pr.number if pr else None,
                             pr.html_url if pr else None, "commits not made by the bot")
    moved = pushed.status in ("created", "updated")
    if pr is not None and pr.state != "open" and not moved:
        return PublishResult("closed", branch, title, body, pr.number, pr.html_url,
                             "the PR for this change was closed; not reopened")
    if pr is None or pr.state != "open":
        pr = github_client.create_pr(branch, base, title, body)
        status: PublishStatus = "opened"
    elif moved:
        pr, _ = github_client.update_pr(pr, title, body)
        status = "updated"
    else:
        status = "unchanged"
    github_client.add_labels(pr, ["modelpin", *labels])
    return PublishResult(status, branch, title, body, pr.number, pr.html_url)
