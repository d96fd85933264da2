"""``modelpin bot``: telemetry in, advance / pause / rollback pull requests out."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path

import click
import httpx

from modelpin.bot.cycle import Candidate, run_cycle
from modelpin.bot.git import GitAdapterError, ProposalGit
from modelpin.bot.github import GitHubClient, GitHubError
from modelpin.bot.proposals import PUBLISHABLE, commit_message_for, publish
from modelpin.bot.telemetry import (
    JsonFileTelemetry,
    PrometheusTelemetry,
    TelemetryError,
    TelemetrySource,
)
from modelpin.bot.yaml_edit import YamlEditError
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    emit_diagnostics,
    load,
    parse_time,
    repo_option,
)
from modelpin.model.signals import SignalsPolicy
from modelpin.rollout.transitions import FleetContext


def _source(telemetry: str, signals: SignalsPolicy, timeout: float) -> TelemetrySource:
    if telemetry.startswith(("http://", "https://")):
        return PrometheusTelemetry(httpx.Client(base_url=telemetry, timeout=timeout), signals,
                                   timeout=timeout)
    path = Path(telemetry)
    if not path.is_file():
        raise CommandError(f"--telemetry {telemetry}: no such file",
                           hint="a telemetry JSON file (docs/telemetry.md) or a Prometheus URL")
    return JsonFileTelemetry.from_path(path)


def _show(candidate: Candidate, *, diff: bool) -> None:
    p = candidate.proposal
    r = p.rollout
    step = f" -> {p.next_step.describe()}" if p.next_step else ""
    click.echo(f"{p.kind.upper():9} {r.tenant}/{r.alias} ({r.stage}"
               f"{' ' + format(r.percent, 'g') if r.percent is not None else ''}){step}")
    for reason in p.reasons:
        click.echo(f"          {reason}")
    for refusal in candidate.check_reasons:
        click.echo(f"          REFUSED by check [{refusal.code}]: {refusal.message}")
    if diff and candidate.changes_file:
        lines = difflib.unified_diff(
            candidate.old_text.splitlines(keepends=True),
            candidate.new_text.splitlines(keepends=True),
            f"a/{candidate.path}", f"b/{candidate.path}",
        )
        click.echo("".join(lines), nl=False)


@click.command()
@click.option("--telemetry", required=True, metavar="FILE|URL",
              help="Telemetry JSON file (docs/telemetry.md) or a Prometheus server URL.")
@repo_option
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print proposals and diffs; touch nothing.")
@click.option("--push", is_flag=True, help="Push one branch per proposal to the remote.")
@click.option("--github", "repository", metavar="OWNER/REPO", default=None,
              help="Open or update one pull request per proposal (needs --push; "
              "token from GITHUB_TOKEN).")
@click.option("--github-api", default="https://api.github.com", show_default=True,
              help="GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).")
@click.option("--remote", default="origin", show_default=True)
@click.option("--main-branch", "main_branch", default="main", show_default=True)
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="Decide as of this time (default: the clock: telemetry is live).")
@click.option("--timeout", default=10.0, show_default=True, help="Network timeout, seconds.")
def bot(telemetry: str, repo: Path | None, tenants: tuple[str, ...], dry_run: bool,
        push: bool, repository: str | None, github_api: str, remote: str, main_branch: str,
        now_text: str | None, timeout: float) -> int:
    """Judge every rollout in flight from telemetry and propose the next step as a PR.

    Without --push (or with --dry-run) it only prints what it would propose. It never
    pushes to the main branch and never merges.
    """
    if repository and not push and not dry_run:
        raise CommandError("--github needs --push (or --dry-run to preview)")
    now = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    result, root = load(repo, None, now.isoformat())
    if result.fleet is None:
        emit_diagnostics(result.diagnostics, "text", result.source_lines, {})
        click.echo("the fleet is invalid: fix it before the bot can judge rollouts", err=True)
        return EXIT_INVALID
    if result.signals is None:
        raise CommandError("policies/signals.yaml is missing",
                           hint="the bot needs signal thresholds; see README: the bot")
    unknown = sorted(set(tenants) - set(result.fleet.tenants))
    if unknown:
        raise CommandError(f"unknown tenant(s): {', '.join(unknown)}")
    try:
        source = _source(telemetry, result.signals, timeout)
        candidates = run_cycle(root, FleetContext.build(result.fleet), result.signals, source,
                               now, only=tenants)
    except (TelemetryError, YamlEditError) as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    preview = dry_run or not push
    refused = 0
    for candidate in candidates:
        _show(candidate, diff=preview)
        if candidate.check_reasons:
            refused += 1
    if not candidates:
        click.echo("no rollout in flight")
    if preview:
        return EXIT_OK
    try:
        git_adapter = ProposalGit(root, remote=remote, main=main_branch)
        github = (
            GitHubClient.from_env(httpx.Client(base_url=github_api, timeout=timeout), repository)
            if repository else None
        )
        for candidate in candidates:
            proposal = candidate.proposal
            if candidate.check_reasons or proposal.kind not in PUBLISHABLE:
                continue
            if github is None:
                pushed = git_adapter.propose(
                    proposal.branch, {candidate.path: candidate.new_text},
                    commit_message_for(proposal, candidate.path))
                click.echo(f"{pushed.status:9} {proposal.branch}")
                continue
            outcome = publish(proposal, candidate.path, candidate.new_text, git_adapter,
                              github, candidate.plan_markdown, False,
                              evidence=candidate.evidence, base=main_branch)
            where = f" {outcome.pr_url}" if outcome.pr_url else ""
            click.echo(f"{outcome.status:9} {outcome.branch}{where}"
                       f"{' - ' + outcome.detail if outcome.detail else ''}")
    except (GitAdapterError, GitHubError) as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    return EXIT_INVALID if refused else EXIT_OK
