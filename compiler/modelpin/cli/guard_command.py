"""``modelpin guard``: trip a failing canary in seconds; ``guard clear`` / ``guard list``."""

from __future__ import annotations

import gc
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
import httpx

from modelpin.cli.common import EXIT_INVALID, EXIT_OK, CommandError


def _store(url: str) -> Any:
    from modelpin.router.trips import TripStore

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise CommandError(f"--redis {url}: not a Redis URL", hint="e.g. redis://redis:6379/0")
    return TripStore.from_url(url)


@click.group()
def guard() -> None:
    """The fast path of the bot: trip failing canaries in seconds (see README: the guard)."""


@guard.command("run")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="A clone of the config repository (its remote is read "
              "and pushed to; the checkout is never changed).")
@click.option("--prometheus", required=True, metavar="URL", help="Prometheus server URL.")
@click.option("--redis", "redis_url", required=True, metavar="URL",
              help="The Redis the routers read trips from.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between cycles.")
@click.option("--timeout", default=3.0, show_default=True,
              help="Prometheus deadline per query, seconds.")
@click.option("--window", default=None, metavar="DURATION",
              help="Telemetry window instead of policies/signals.yaml's (e.g. 15m).")
@click.option("--table", "table_source", default=None, metavar="URL|FILE",
              help="The routers' signed table: a trip clears when it carries the rollback.")
@click.option("--trusted-key", "trusted", multiple=True, metavar="BASE64",
              help="Public key the table must be signed with (repeatable; with --table).")
@click.option("--root", "root_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="The trust root (modelpin root) the table is verified under, as the "
              "routers are configured (with --table; instead of --trusted-key).")
@click.option("--threshold", default=1, show_default=True, help="Signatures the table needs.")
@click.option("--clear-grace", default=30.0, show_default=True,
              help="Seconds the table must carry the rollback before the trip clears.")
@click.option("--github", "repository", default=None, metavar="OWNER/REPO",
              help="Open the rollback PR there (token from GITHUB_TOKEN).")
@click.option("--github-api", default="https://api.github.com", show_default=True)
@click.option("--dispatch", is_flag=True,
              help="Also send repository_dispatch 'modelpin-guard-trip' (runs bot.yml).")
@click.option("--remote", default="origin", show_default=True)
@click.option("--main-branch", "main_branch", default="main", show_default=True)
@click.option("--metrics-port", type=int, default=None,
              help="Serve the guard's own Prometheus metrics on this port.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True)
@click.option("--id", "guard_id", default=None, help="This guard's name in trips and logs.")
@click.option("--once", is_flag=True, help="Run one cycle, print what it did, exit.")
def run_command(repo: Path, prometheus: str, redis_url: str, interval: float, timeout: float,
                window: str | None, table_source: str | None, trusted: tuple[str, ...],
                root_file: Path | None, threshold: int, clear_grace: float,
                repository: str | None, github_api: str, dispatch: bool, remote: str,
                main_branch: str, metrics_port: int | None,
                metrics_address: str, guard_id: str | None, once: bool) -> int:
    """Judge every rollout in flight every INTERVAL seconds; trip and PR a rollback."""
    from prometheus_client import CollectorRegistry, start_http_server

    from modelpin.bot.github import GitHubClient, GitHubError
    from modelpin.bot.guard import Guard, GuardOptions
    from modelpin.model.base import parse_duration
    from modelpin.router.router import Router, trusted_keys

    gc.enable()  # a long-running process: the CLI's short-process GC setting does not fit
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if interval <= 0 or timeout <= 0 or clear_grace < 0:
        raise CommandError("--interval and --timeout must be positive, --clear-grace >= 0")
    if not prometheus.startswith(("http://", "https://")):
        raise CommandError(f"--prometheus {prometheus}: not an http(s) URL")
    if table_source and not trusted and root_file is None:
        raise CommandError("--table needs --root or --trusted-key",
                           hint="the routers' trust root file, or the table's public key(s)")
    if (trusted or root_file is not None) and not table_source:
        raise CommandError("--root and --trusted-key need --table",
                           hint="the routers' signed table (URL or file)")
    try:
        window_td = parse_duration(window) if window else None
    except ValueError as exc:
        raise CommandError(f"--window {window}: {exc}") from None
    store = _store(redis_url)
    registry = CollectorRegistry()
    table = None
    if table_source:
        try:
            keys = trusted_keys(list(trusted)) if trusted else None
        except ValueError as exc:
            raise CommandError(f"--trusted-key: {exc}") from None
        root = None
        if root_file is not None:
            try:
                root = root_file.read_bytes()
            except OSError as exc:
                raise CommandError(f"--root {root_file}: {exc.strerror or exc}") from None
        try:
            table = Router(table_source, keys, threshold=threshold, root=root,
                           name="guard-table", registry=registry)
        except Exception as exc:  # RootRejected: a bad, unsigned or expired root
            raise CommandError(f"--root {root_file}: {exc}",
                               hint="make it with modelpin root init / sign") from None
    github = None
    if repository:
        try:
            github = GitHubClient.from_env(httpx.Client(base_url=github_api, timeout=10.0),
                                           repository, max_retries=2)
        except GitHubError as exc:
            raise CommandError(str(exc)) from None
    options = GuardOptions(repo=repo, prometheus=prometheus, remote=remote, main=main_branch,
                           interval=interval, timeout=timeout, window=window_td,
                           github=repository, github_api=github_api, dispatch=dispatch,
                           clear_grace=clear_grace)
    if guard_id:
        options = GuardOptions(**{**options.__dict__, "guard_id": guard_id})
    try:
        the_guard = Guard(options, store, registry=registry, table=table, github=github)
    except Exception as exc:  # e.g. not a git repository
        raise CommandError(f"cannot start the guard: {exc}") from None
    if once:
        report = the_guard.cycle()
        click.echo(json.dumps(report.__dict__, indent=2, sort_keys=True))
        return EXIT_INVALID if report.errors else EXIT_OK
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_address, registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"modelpin guard {options.guard_id}: every {interval:g}s, "
               f"prometheus {prometheus}, trips in {store.describe()}", err=True)
    the_guard.run(stop)
    return EXIT_OK


@guard.command("clear")
@click.argument("tenant")
@click.argument("alias")
@click.option("--redis", "redis_url", required=True, metavar="URL")
@click.option("--reason", required=True, help="Why (written to the trip log).")
@click.option("--by", "by", default=None, help="Who (default: $USER).")
def clear_command(tenant: str, alias: str, redis_url: str, reason: str, by: str | None) -> int:
    """Clear the trip of TENANT ALIAS by hand (logged). Routers resume the table's
    routing within about a second."""
    import os

    from modelpin.router.trips import TripStoreUnavailable

    who = by or os.environ.get("USER") or "unknown"
    try:
        trip = _store(redis_url).clear(tenant, alias, why=f"manual: {reason}", by=who)
    except TripStoreUnavailable as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    if trip is None:
        click.echo(f"no trip for {tenant}/{alias}", err=True)
        return EXIT_INVALID
    click.echo(f"cleared trip {tenant}/{alias} (candidate {trip.candidate}) by {who}: {reason}")
    return EXIT_OK


@guard.command("list")
@click.option("--redis", "redis_url", required=True, metavar="URL")
@click.option("--log", "log_lines", default=10, show_default=True,
              help="Also show this many trip-log events.")
def list_command(redis_url: str, log_lines: int) -> int:
    """Show the trips in force and the newest trip-log events."""
    from modelpin.router.trips import TripStoreUnavailable

    store = _store(redis_url)
    try:
        trips = store.load()
        events = store.log(log_lines) if log_lines > 0 else []
    except TripStoreUnavailable as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    if not trips:
        click.echo("no trips")
    for key, trip in sorted(trips.items()):
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(trip.tripped_at))
        click.echo(f"TRIPPED {key} candidate {trip.candidate} at {when} by {trip.by}: "
                   f"{trip.reason}{' PR ' + trip.pr_url if trip.pr_url else ''}")
    for key, problem in sorted(store.invalid.items()):
        click.echo(f"INVALID {key}: {problem}")
    for event in events:
        click.echo(json.dumps(event, sort_keys=True))
    return EXIT_OK
