"""``modelpin lifecycle``: sunsets, decommissions and regrouping, as proposals and reports.

Read from the remote's main like ``modelpin bot``: shadows to a retiring version's
``successor`` and moves to a more conservative group are tenant-file edits judged by
``check``'s code and published as PRs (``modelpin/shadow/<tenant>/<alias>``,
``modelpin/regroup/<tenant>``); a version safe to decommission gets one issue.
Deprecations and sunsets without a proposal are printed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from modelpin.bot import history
from modelpin.bot.cycle import judge_edit
from modelpin.bot.git import GitAdapterError, ProposalGit
from modelpin.bot.github import GitHubClient, GitHubError
from modelpin.bot.lifecycle import (
    LifecycleItem,
    decommission_items,
    drift_items,
    regroup_items,
    sunset_items,
)
from modelpin.bot.proposals import PublishResult, open_issue, publish_change
from modelpin.bot.telemetry import JsonFileTelemetry, TelemetryError
from modelpin.bot.yaml_edit import YamlEditError, apply_group, apply_start_shadow
from modelpin.cli.bot_command import github_client, remote_base
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    emit_diagnostics,
    load,
    parse_time,
    repo_option,
)
from modelpin.load.history import records_at
from modelpin.rollout.reason import Reason
from modelpin.rollout.transitions import FleetContext


@click.command()
@repo_option
@click.option("--dry-run", is_flag=True, help="Print findings and diffs; touch nothing.")
@click.option("--push", is_flag=True, help="Push one branch per proposal to the remote.")
@click.option("--github", "repository", metavar="OWNER/REPO", default=None,
              help="Open PRs for proposals and issues for decommission reports "
              "(needs --push; token from GITHUB_TOKEN).")
@click.option("--github-api", default="https://api.github.com", show_default=True)
@click.option("--remote", default="origin", show_default=True)
@click.option("--main-branch", "main_branch", default="main", show_default=True)
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="Judge as of this time (default: the clock).")
@click.option("--telemetry", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Telemetry JSON with `baseline` cohorts: judge drift of pinned versions.")
@click.option("--max-telemetry-mb", default=16.0, show_default=True)
@click.option("--timeout", default=10.0, show_default=True)
@click.option("--retries", default=3, show_default=True)
@click.option("--github-interval", default=1.0, show_default=True)
def lifecycle(repo: Path | None, dry_run: bool, push: bool, repository: str | None,
              github_api: str, remote: str, main_branch: str, now_text: str | None,
              telemetry: Path | None, max_telemetry_mb: float, timeout: float, retries: int,
              github_interval: float) -> int:
    """Sunset shadows to successors, regrouping, decommission and drift reports."""
    if repository and not push and not dry_run:
        raise CommandError("--github needs --push (or --dry-run to preview)")
    now = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    preview = dry_run or not push
    git_adapter, base = remote_base(repo, remote, main_branch, preview=preview)
    result, root = load(repo, base, now.isoformat())
    if result.fleet is None:
        emit_diagnostics(result.diagnostics, "text", result.source_lines, {})
        click.echo("the fleet is invalid: fix it first", err=True)
        return EXIT_INVALID
    fleet = result.fleet
    rev = base or "HEAD"
    ctx = FleetContext.build(fleet, records_at(root, rev, fleet))
    model_files = {m: fleet.paths.get(f"model:{m}", f"model_versions/{m}.yaml")
                   for m in fleet.models}
    drift: list[LifecycleItem] = []
    if telemetry is not None:
        try:
            source = JsonFileTelemetry.from_path(
                telemetry, max_bytes=int(max_telemetry_mb * 1024 * 1024))
        except TelemetryError as exc:
            raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
        drift = drift_items(fleet, source)
    items = [
        *drift,
        *sunset_items(fleet, now.date()),
        *regroup_items(fleet, history.rollbacks(root, rev), now),
        *decommission_items(fleet, now, history.last_mentioned(root, rev, model_files)),
    ]

    def read_text(path: str) -> str:
        if git_adapter is not None and base is not None:
            return git_adapter.read(base, path)
        return (root / path).read_text(encoding="utf-8")

    github = (github_client(repository, {"api": github_api, "timeout": timeout,
                                         "retries": retries, "interval": github_interval})
              if repository and not preview else None)
    failed = 0
    for item in items:
        click.echo(f"{item.kind.upper():12} {item.subject}: {item.why}")
        try:
            outcome = _handle(item, fleet.tenant_path(item.tenant) if item.tenant else "",
                              read_text, ctx, now, preview, git_adapter, github, base,
                              main_branch)
        except (YamlEditError, GitAdapterError, GitHubError, OSError) as exc:
            failed += 1
            click.echo(f"             FAILED: {exc}")
            continue
        if outcome:
            click.echo(f"             {outcome}")
    if not items:
        click.echo("nothing to do: no sunset, regroup or decommission today")
    if failed:
        click.echo(f"{failed} of {len(items)} finding(s) failed", err=True)
        return EXIT_INVALID
    return EXIT_OK


def _handle(item: LifecycleItem, path: str, read_text: Callable[[str], str],
            ctx: FleetContext, now: datetime, preview: bool, git_adapter: ProposalGit | None,
            github: GitHubClient | None, base: str | None, main_branch: str) -> str:
    """Build, judge and (unless previewing) publish one finding; a line to print."""
    if item.kind == "drift":
        if github is None:
            return ""
        assert item.tenant is not None and item.alias is not None
        key = f"<!-- modelpin-bot-issue: drift/{item.tenant}/{item.alias}/{item.model} -->"
        res = open_issue(key, f"modelpin: {item.model} drifted for {item.subject}", item.body,
                         ["drift"], github, f"issue:{item.subject}")
        return _outcome(res)
    if item.kind == "decommission":
        if github is None or not item.safe:
            return ""
        title = f"modelpin: {item.model} is safe to decommission"
        body = (f"{item.why}.\n\nOpened by modelpin-bot (`modelpin lifecycle`).\n\n"
                f"<!-- modelpin-bot-issue: decommission/{item.model} -->\n")
        res = open_issue(f"<!-- modelpin-bot-issue: decommission/{item.model} -->", title,
                         body, ["decommission"], github, f"issue:{item.model}")
        return _outcome(res)
    if not item.proposes:
        return ""
    old = read_text(path)
    assert item.target is not None and item.tenant is not None
    if item.kind == "shadow":
        assert item.alias is not None
        new = apply_start_shadow(old, item.alias, item.target, now)
        title = (f"modelpin: shadow {item.tenant}/{item.alias} on {item.target} "
                 f"({item.model} retires)")
    else:
        new = apply_group(old, item.target)
        title = f"modelpin: move {item.tenant} to group {item.target}"
    plan, reasons = judge_edit(ctx, item.tenant, new, now)
    if reasons:
        return "REFUSED by check: " + "; ".join(_reason(r) for r in reasons)
    if preview:
        diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                    f"a/{path}", f"b/{path}")
        return "".join(diff).rstrip("\n").replace("\n", "\n             ")
    assert git_adapter is not None
    if github is None:
        pushed = git_adapter.propose(item.branch, {path: new}, title, base=base)
        return f"{pushed.status} {item.branch}"
    body = (f"## Why\n\n{item.why}.\n\n## Plan\n\n{plan.strip() or '_no plan_'}\n\n"
            "_Opened by modelpin-bot (`modelpin lifecycle`). The bot never merges: CI runs "
            "`modelpin check` on this change like any other._\n")
    res = publish_change(item.branch, path, new, title, body, [item.kind], git_adapter,
                         github, base=main_branch, base_commit=base)
    return _outcome(res)


def _reason(r: Reason) -> str:
    return f"[{r.code}] {r.message}"


def _outcome(res: PublishResult) -> str:
    where = f" {res.pr_url}" if res.pr_url else ""
    return f"{res.status} {res.branch}{where}{' - ' + res.detail if res.detail else ''}"
