"""``modelpin lifecycle``: sunsets, decommissions and regrouping, as proposals and reports.

Read from the remote's main like ``modelpin bot``: shadows to a retiring version's
``successor`` and moves to a more conservative group are tenant-file edits judged by
``check``'s code and published as PRs (``modelpin/shadow/<tenant>/<alias>``,
``modelpin/regroup/<tenant>``); a version safe to decommission gets one issue.
Deprecations and sunsets without a proposal are printed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import click

from modelpin.bot import history
from modelpin.bot.cycle import judge_edit
from modelpin.bot.drift import DriftBatch
from modelpin.bot.drift_prometheus import PrometheusDrift
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
from modelpin.bot.sources import SourceError, json_source, prometheus_api
from modelpin.bot.telemetry import TelemetryError
from modelpin.bot.yaml_edit import YamlEditError, apply_group, apply_start_shadow
from modelpin.cli.bot_command import RemoteFleet, github_client, remote_fleet
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    repo_option,
)
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
@click.option("--telemetry", default=None, metavar="FILE|URL",
              help="Telemetry JSON with `baseline` records (a path or an http(s) URL): judge "
              "drift of pinned versions.")
@click.option("--prometheus", default=None, metavar="URL",
              help="Judge drift of pinned versions from a Prometheus server (the series "
              "routers export: tool-call failures, refusals, format checks, response tokens).")
@click.option("--drift-window", default="1d", show_default=True, metavar="DURATION",
              help="--prometheus: the current window (e.g. 1d, 6h, 90s).")
@click.option("--baseline-window", default="7d", show_default=True, metavar="DURATION",
              help="--prometheus: the baseline window, right before the current one.")
@click.option("--max-telemetry-mb", default=16.0, show_default=True)
@click.option("--timeout", default=10.0, show_default=True)
@click.option("--retries", default=3, show_default=True)
@click.option("--github-interval", default=1.0, show_default=True)
def lifecycle(repo: Path | None, dry_run: bool, push: bool, repository: str | None,
              github_api: str, remote: str, main_branch: str, now_text: str | None,
              telemetry: str | None, prometheus: str | None, drift_window: str,
              baseline_window: str, max_telemetry_mb: float, timeout: float, retries: int,
              github_interval: float) -> int:
    """Sunset shadows to successors, regrouping, decommission and drift reports."""
    if repository and not push and not dry_run:
        raise CommandError("--github needs --push (or --dry-run to preview)")
    if telemetry is not None and prometheus is not None:
        raise CommandError("give one drift source: --telemetry FILE|URL or --prometheus URL")
    windows = (_duration("--drift-window", drift_window),
               _duration("--baseline-window", baseline_window))
    preview = dry_run or not push
    github = (github_client(repository, {"api": github_api, "timeout": timeout,
                                         "retries": retries, "interval": github_interval})
              if repository and not preview else None)
    at = remote_fleet(repo, remote, main_branch, now_text, preview=preview, github=github,
                      invalid="the fleet is invalid: fix it first")
    if at is None:
        return EXIT_INVALID
    fleet, root, rev, now, base, git_adapter = at.fleet, at.root, at.rev, at.now, at.base, at.git
    ctx = at.context()
    model_files = {m: fleet.paths.get(f"model:{m}", f"model_versions/{m}.yaml")
                   for m in fleet.models}
    drift: list[LifecycleItem] = []
    failed = 0
    if telemetry is not None or prometheus is not None:
        batch = _drift_batch(at, telemetry, prometheus, windows, timeout, max_telemetry_mb,
                             now_text is not None)
        for line in batch.notes:
            click.echo(f"NOTE         {line}")
        for key, why in sorted(batch.skipped.items()):
            click.echo(f"NOTE         {key[0]}/{key[1]}: drift not judged: {why}")
        for problem in (*batch.general, *(p for v in batch.problems.values() for p in v)):
            failed += 1
            click.echo(f"PROBLEM      {problem}")
        drift = drift_items(fleet, batch)
    items = [
        *drift,
        *sunset_items(fleet, now.date()),
        *regroup_items(fleet, history.rollbacks(root, rev), now),
        *decommission_items(fleet, now, history.last_mentioned(root, rev, model_files)),
    ]

    read_text = at.read_text
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
        click.echo(f"{failed} finding(s) or drift reading(s) failed", err=True)
        return EXIT_INVALID
    return EXIT_OK


def _duration(flag: str, text: str) -> timedelta:
    match = re.fullmatch(r"(\d{1,7})([smhd])", text.strip())
    if match is None or int(match.group(1)) == 0:
        raise CommandError(f"{flag} {text!r}: not a duration", hint="e.g. 90s, 30m, 6h, 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _drift_batch(at: RemoteFleet, telemetry: str | None, prometheus: str | None,
                 windows: tuple[timedelta, timedelta], timeout: float, max_mb: float,
                 pinned_clock: bool) -> DriftBatch:
    """The drift windows of every pinned alias from the source given."""
    fleet = at.fleet
    keys = [(t, a) for t, tenant in sorted(fleet.tenants.items()) for a in sorted(tenant.aliases)]
    try:
        if telemetry is not None:
            return json_source(telemetry, timeout=timeout,
                               max_bytes=int(max_mb * 1024 * 1024)).drift_all(keys)
        assert prometheus is not None
        api = prometheus_api(prometheus, timeout=timeout,
                             at=at.now.timestamp() if pinned_clock else None)
    except SourceError as exc:
        raise CommandError(str(exc), hint=exc.hint or None,
                           exit_code=EXIT_USAGE if exc.usage else EXIT_INVALID) from None
    except TelemetryError as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    changed = history.pins_changed(at.root, at.rev)
    pinned_since = {(t, a): changed[fleet.tenant_path(t)] for t, a in keys
                    if fleet.tenant_path(t) in changed}
    return PrometheusDrift(api, window=windows[0], baseline=windows[1],
                           pinned_since=pinned_since, now=at.now).drift_all(keys)


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
