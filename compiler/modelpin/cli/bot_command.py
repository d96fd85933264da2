"""``modelpin bot``: telemetry in, advance / pause / rollback PRs and escalation issues out.

Every rollout is judged, edited and published on its own: a refused telemetry record,
a failing query, git or GitHub error on one rollout is printed as ``FAILED`` and the
others go on; the exit status is 1 when anything failed or was refused.
"""

from __future__ import annotations

import difflib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx

from modelpin.bot.cycle import Candidate, Cycle, run_cycle
from modelpin.bot.git import GitAdapterError, ProposalGit
from modelpin.bot.github import GitHubClient, GitHubError
from modelpin.bot.proposals import PUBLISHABLE, commit_message_for, escalate, publish
from modelpin.bot.sources import SourceError, json_source, prometheus_source
from modelpin.bot.telemetry import TelemetryError, TelemetrySource
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    emit_diagnostics,
    load,
    parse_time,
    repo_option,
    warn,
)
from modelpin.load.fleet import LoadResult
from modelpin.load.history import records_at, stages_entered
from modelpin.model.fleet import Fleet
from modelpin.model.signals import SignalsPolicy
from modelpin.rollout.transitions import FleetContext, clock_start


def open_source(telemetry: str | None, prometheus: str | None, signals: SignalsPolicy, *,
                timeout: float, max_mb: float,
                starts: Mapping[tuple[str, str], datetime] | None = None,
                now: datetime | None = None) -> TelemetrySource:
    """``--telemetry FILE|URL`` (JSON) or ``--prometheus URL``: exactly one of them."""
    if (telemetry is None) == (prometheus is None):
        raise CommandError("give exactly one telemetry source: --telemetry FILE|URL (a "
                           "telemetry JSON file) or --prometheus URL (a Prometheus server)")
    try:
        if prometheus is not None:
            return prometheus_source(prometheus, signals, timeout=timeout, starts=starts,
                                     now=now)
        assert telemetry is not None
        return json_source(telemetry, timeout=timeout, max_bytes=int(max_mb * 1024 * 1024))
    except SourceError as exc:
        raise CommandError(str(exc), hint=exc.hint or None,
                           exit_code=EXIT_USAGE if exc.usage else EXIT_INVALID) from None
    except TelemetryError as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None


def _show(candidate: Candidate, *, diff: bool) -> None:
    p = candidate.proposal
    r = candidate.rollout
    state = f"{r.stage}{' ' + format(r.percent, 'g') if r.percent is not None else ''}"
    if p is None:
        click.echo(f"{'FAILED':9} {r.tenant}/{r.alias} ({state})")
    else:
        step = f" -> {p.next_step.describe()}" if p.next_step else ""
        click.echo(f"{p.kind.upper():9} {r.tenant}/{r.alias} ({state}){step}")
        for reason in p.reasons:
            click.echo(f"          {reason}")
    for problem in candidate.problems:
        click.echo(f"          PROBLEM: {problem}")
    for refusal in candidate.check_reasons:
        click.echo(f"          REFUSED by check [{refusal.code}]: {refusal.message}")
    if diff and candidate.changes_file:
        lines = difflib.unified_diff(
            candidate.old_text.splitlines(keepends=True),
            candidate.new_text.splitlines(keepends=True),
            f"a/{candidate.path}", f"b/{candidate.path}",
        )
        click.echo("".join(lines), nl=False)


def _has_remote(root: Path, remote: str) -> bool:
    proc = subprocess.run(["git", "-C", str(root), "remote", "get-url", remote],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


def remote_base(repo: Path | None, remote: str, main_branch: str, *, preview: bool,
                github: GitHubClient | None = None
                ) -> tuple[ProposalGit | None, str | None]:
    """The git adapter and the remote main's commit proposals are built on.

    No remote: publishing is refused; a preview reads the working tree (with a warning).
    With ``github``, git fetches and pushes with its token (``GitHubClient.git_token``).
    """
    root = repo if repo is not None else Path.cwd()
    if _has_remote(root, remote):
        try:
            git_adapter = ProposalGit(root, remote=remote, main=main_branch,
                                      token=github.git_token() if github else None)
            return git_adapter, git_adapter.fetch_main()
        except GitAdapterError as exc:
            raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    if not preview:
        raise CommandError(f"no remote {remote!r} to push to",
                           hint="the bot builds proposals on the remote's main branch")
    if repo is not None or (Path.cwd() / ".git").exists():
        warn(f"no remote {remote!r}: proposals are built from the working tree")
    return None, None


def github_client(repository: str, api: dict[str, Any]) -> GitHubClient:
    try:
        return GitHubClient.from_env(
            httpx.Client(base_url=api["api"], timeout=api["timeout"]), repository,
            max_retries=api["retries"], min_interval=api["interval"], timeout=api["timeout"])
    except GitHubError as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None


@dataclass(frozen=True)
class RemoteFleet:
    """The fleet as of the remote's main (or the working tree when previewing without a
    remote): what ``bot`` and ``lifecycle`` both judge and edit."""

    git: ProposalGit | None
    base: str | None
    root: Path
    result: LoadResult
    now: datetime
    preview: bool

    @property
    def fleet(self) -> Fleet:
        assert self.result.fleet is not None
        return self.result.fleet

    @property
    def rev(self) -> str:
        return self.base or "HEAD"

    def read_text(self, path: str) -> str:
        if self.git is not None and self.base is not None:
            return self.git.read(self.base, path)
        return (self.root / path).read_text(encoding="utf-8")

    def context(self) -> FleetContext:
        """With the rollbacks on record (SPEC 2.1 rule 7: they keep a version uncleared)
        and when each stage was published (rule 5: the soak clocks count from it)."""
        return FleetContext.build(self.fleet, records_at(self.root, self.rev, self.fleet),
                                  stages_entered(self.root, self.rev, self.fleet))


def remote_fleet(repo: Path | None, remote: str, main_branch: str, now_text: str | None, *,
                 preview: bool, invalid: str, github: GitHubClient | None = None
                 ) -> RemoteFleet | None:
    """Fetch the remote's main and load the fleet there; None (diagnostics and
    ``invalid`` printed) when that fleet is invalid."""
    now = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    git_adapter, base = remote_base(repo, remote, main_branch, preview=preview,
                                    github=github)
    result, root = load(repo, base, now.isoformat())
    if result.fleet is None:
        emit_diagnostics(result.diagnostics, "text", result.source_lines, {})
        click.echo(invalid, err=True)
        return None
    return RemoteFleet(git_adapter, base, root, result, now, preview)


def step_starts(ctx: FleetContext) -> dict[tuple[str, str], datetime]:
    """When each rollout in flight's current step started: the soak clock's start (the
    later of its ``since`` and the commit that published the stage on main,
    ``transitions.clock_start``, SPEC 2.1 rule 5)."""
    out: dict[tuple[str, str], datetime] = {}
    for tenant_id, tenant in ctx.fleet.tenants.items():
        for name, alias in tenant.aliases.items():
            rollout = alias.rollout
            if rollout is None or rollout.stage == "rolled-back":
                continue
            start = clock_start(rollout.since, ctx.entered.get((tenant_id, name)))
            if start is not None:
                out[(tenant_id, name)] = start
    return out


@click.command()
@click.option("--telemetry", default=None, metavar="FILE|URL",
              help="A telemetry JSON file (docs/telemetry.md), a path or an http(s) URL.")
@click.option("--prometheus", default=None, metavar="URL",
              help="A Prometheus server (its HTTP API), queried with policies/signals.yaml.")
@repo_option
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print proposals and diffs; touch nothing.")
@click.option("--push", is_flag=True, help="Push one branch per proposal to the remote.")
@click.option("--github", "repository", metavar="OWNER/REPO", default=None,
              help="Open or update one pull request per proposal, one issue per "
              "escalation (needs --push; token from GITHUB_TOKEN).")
@click.option("--github-api", default="https://api.github.com", show_default=True,
              help="GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).")
@click.option("--remote", default="origin", show_default=True)
@click.option("--main-branch", "main_branch", default="main", show_default=True)
@click.option("--now", "now_text", default=None, metavar="TIME",
              help="Decide as of this time (default: the clock: telemetry is live).")
@click.option("--timeout", default=10.0, show_default=True,
              help="Network deadline per request, seconds (from start to last byte).")
@click.option("--retries", default=3, show_default=True,
              help="GitHub: retries of a 5xx answer, a timeout or a rate limit.")
@click.option("--github-interval", default=1.0, show_default=True,
              help="GitHub: seconds between content-creating requests (GitHub asks for 1).")
@click.option("--max-telemetry-mb", default=16.0, show_default=True,
              help="Refuse a telemetry file larger than this.")
@click.option("--window", "window_kind", type=click.Choice(["step", "policy"]), default="step",
              show_default=True,
              help="--prometheus: read each rollout since its step started (capped at 7 "
              "days), or over the policy's `window`.")
@click.option("--looks", type=click.Choice(["sequential", "fixed"]), default="sequential",
              show_default=True,
              help="sequential: intervals valid however often the same rollout is looked "
              "at (docs/statistics.md); fixed: a single look.")
def bot(telemetry: str | None, prometheus: str | None, repo: Path | None,
        tenants: tuple[str, ...], dry_run: bool, push: bool, repository: str | None,
        github_api: str, remote: str, main_branch: str,
        now_text: str | None, timeout: float, retries: int, github_interval: float,
        max_telemetry_mb: float, window_kind: str, looks: str) -> int:
    """Judge every rollout in flight from telemetry and propose the next step as a PR.

    Proposals are built from the remote's main (fetched), never from the checkout.
    Without --push (or with --dry-run) it only prints what it would propose. It never
    pushes to the main branch and never merges.
    """
    if repository and not push and not dry_run:
        raise CommandError("--github needs --push (or --dry-run to preview)")
    if timeout <= 0 or max_telemetry_mb <= 0 or retries < 0 or github_interval < 0:
        raise CommandError("--timeout and --max-telemetry-mb must be positive, --retries "
                           "and --github-interval not negative")
    preview = dry_run or not push
    github = (github_client(repository, {"api": github_api, "timeout": timeout,
                                         "retries": retries, "interval": github_interval})
              if repository and not preview else None)
    at = remote_fleet(repo, remote, main_branch, now_text, preview=preview, github=github,
                      invalid="the fleet is invalid: fix it before the bot can judge rollouts")
    if at is None:
        return EXIT_INVALID
    if at.result.signals is None:
        raise CommandError("policies/signals.yaml is missing",
                           hint="the bot needs signal thresholds; see README: the bot")
    unknown = sorted(set(tenants) - set(at.fleet.tenants))
    if unknown:
        raise CommandError(f"unknown tenant(s): {', '.join(unknown)}")
    ctx = at.context()
    starts = step_starts(ctx) if prometheus is not None and window_kind == "step" else None
    source = open_source(telemetry, prometheus, at.result.signals, timeout=timeout,
                         max_mb=max_telemetry_mb, starts=starts, now=at.now)
    git_adapter, base = at.git, at.base
    previous = git_adapter.branch_text if git_adapter is not None and not preview else None
    cycle = run_cycle(at.read_text, ctx, at.result.signals, source, at.now,
                      only=tenants, previous_text=previous,
                      looks="fixed" if looks == "fixed" else "sequential")
    for problem in cycle.general:
        click.echo(f"PROBLEM   {problem}")
    for candidate in cycle.candidates:
        _show(candidate, diff=preview)
    if not cycle.candidates:
        click.echo("no rollout in flight")
    failures = sum(1 for c in cycle.candidates if c.problems or c.check_reasons)
    if not preview:
        failures += _publish(cycle, git_adapter, base, github, main_branch)
    if failures or cycle.general:
        total = len(cycle.candidates)
        click.echo(f"{failures} of {total} rollout(s) failed or were refused"
                   f"{'; telemetry problems above' if cycle.general else ''}", err=True)
        return EXIT_INVALID
    return EXIT_OK


def _publish(cycle: Cycle, git_adapter: ProposalGit | None, base: str | None,
             github: GitHubClient | None, main_branch: str) -> int:
    """Publish every candidate on its own; the number that failed."""
    assert git_adapter is not None
    failed = 0
    for candidate in cycle.candidates:
        proposal = candidate.proposal
        if proposal is None or candidate.check_reasons:
            continue
        r = proposal.rollout
        try:
            if proposal.kind == "escalate":
                if github is None:
                    continue
                outcome = escalate(proposal, github, False, evidence=candidate.evidence)
            elif proposal.kind not in PUBLISHABLE or not candidate.changes_file:
                continue
            elif github is None:
                pushed = git_adapter.propose(
                    proposal.branch, {candidate.path: candidate.new_text},
                    commit_message_for(proposal, candidate.path), base=base)
                click.echo(f"{pushed.status:9} {proposal.branch}")
                continue
            else:
                outcome = publish(proposal, candidate.path, candidate.new_text, git_adapter,
                                  github, candidate.plan_markdown, False,
                                  evidence=candidate.evidence, base=main_branch,
                                  base_commit=base)
        except (GitAdapterError, GitHubError) as exc:
            failed += 1
            click.echo(f"{'FAILED':9} {r.tenant}/{r.alias} {proposal.kind}: {exc}")
            continue
        where = f" {outcome.pr_url}" if outcome.pr_url else ""
        click.echo(f"{outcome.status:9} {outcome.branch}{where}"
                   f"{' - ' + outcome.detail if outcome.detail else ''}")
    return failed
