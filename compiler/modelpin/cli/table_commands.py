"""``modelpin verify`` and ``modelpin resolve``: a signed table, checked as a router would.

verify: signature(s) from trusted keys, expiry, the payload schema; prints what the table
holds. resolve: where one new session of one tenant alias goes, by the router's own
bucketing (debugging).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click

from modelpin import signing
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    default_repo,
    parse_time,
    repo_option,
)
from modelpin.cli.keys import DEV_KEY, read_artifact_policy, read_private_key, trusted_from_files
from modelpin.load.document import did_you_mean
from modelpin.load.fleet import ARTIFACT
from modelpin.routing.verify import RouteRow, VerifiedTable, VerifyError, verify_envelope

MAX_ENVELOPE_BYTES = 256 << 20


def print_routes(rows: list[RouteRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name in ("tenant", "alias", "mode", "stable", "candidate", "percent"):
        table.add_column(name, justify="right" if name == "percent" else "left", no_wrap=True)
    for r in rows:
        mode = "canary (paused)" if r.paused else r.mode
        percent = f"{r.percent:g}" if r.mode == "canary" else "-"
        table.add_row(r.tenant, r.alias, mode, r.stable, r.candidate or "-", percent)
    width = 12 + sum(
        max([len(h)] + [len(str(v)) for v in col]) for h, col in (
            ("tenant", [r.tenant for r in rows]), ("alias", [r.alias for r in rows]),
            ("mode", ["canary (paused)"]), ("stable", [r.stable for r in rows]),
            ("candidate", [r.candidate or "-" for r in rows]), ("percent", ["100"])))
    Console(width=max(80, width), highlight=False, soft_wrap=True).print(table)



def _schema() -> dict[str, Any]:
    text = resources.files("modelpin").joinpath("schemas/routing-table.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _verified(envelope: Path, key_files: tuple[Path, ...], threshold: int | None,
              repo: Path | None, now_text: str | None) -> VerifiedTable:
    try:
        if envelope.stat().st_size > MAX_ENVELOPE_BYTES:
            raise CommandError(f"{envelope} is larger than {MAX_ENVELOPE_BYTES >> 20} MiB",
                               exit_code=EXIT_INVALID)
        data = envelope.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {envelope}: {exc.strerror}",
                           exit_code=EXIT_INVALID) from None
    root = repo if repo is not None else default_repo()
    if key_files:
        trusted = trusted_from_files(key_files)
        need = threshold or 1
    else:
        policy = read_artifact_policy(root)
        trusted = {k.computed_keyid: signing.load_public_key_b64(k.public_key)
                   for k in policy.trusted_keys}
        need = threshold or policy.threshold
        if not trusted:
            dev = root / DEV_KEY
            if not dev.is_file():
                raise CommandError(
                    f"no trusted keys: {root / ARTIFACT} lists none and there is no "
                    f"development key at {dev}", exit_code=EXIT_INVALID,
                    hint="pass --key PUBLIC_KEY_FILE, or list trusted_keys in the policy")
            pub = read_private_key(dev.read_bytes(), str(dev)).key.public_key()
            trusted = {signing.keyid_of(pub): pub}
            need = threshold or 1
            click.echo(f"note: {ARTIFACT} lists no trusted keys; verifying against the "
                       f"local development key {dev}", err=True)
    now = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    try:
        return verify_envelope(data, trusted, need, _schema(), now)
    except VerifyError as exc:
        raise CommandError(f"{envelope}: {exc}", exit_code=EXIT_INVALID) from None


def _verify_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--key", "key_files", multiple=True,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Trusted public key (PEM or base64 of the raw 32 bytes); "
                        "repeatable. Default: trusted_keys of <repo>/policies/artifact.yaml.")(func)
    func = click.option("--threshold", type=click.IntRange(min=1), default=None,
                        help="Signatures required (default: the policy's threshold, "
                        "1 with --key).")(func)
    func = click.option("--now", "now_text", default=None, metavar="TIME",
                        help="Check expiry at this time (default: the clock).")(func)
    return repo_option(func)


@click.command(name="verify")
@click.argument("envelope", type=click.Path(dir_okay=False, path_type=Path))
@_verify_options
@click.option("--table", "show_table", is_flag=True, help="Print every route.")
def verify_command(envelope: Path, key_files: tuple[Path, ...], threshold: int | None,
                   repo: Path | None, now_text: str | None, show_table: bool) -> int:
    """Verify a signed routing table: signature, expiry, payload schema."""
    table = _verified(envelope, key_files, threshold, repo, now_text)
    doc = table.document
    counts = table.counts()
    modes = ", ".join(f"{m} {counts.get(m, 0)}"
                      for m in ("pinned", "shadow", "canary", "paused", "rolled-back"))
    click.echo(f"verified: {envelope}")
    click.echo(f"  serial     {table.serial}")
    click.echo(f"  commit     {table.commit}")
    click.echo(f"  issued     {doc['issued_at']}")
    click.echo(f"  expires    {doc['expires_at']}")
    click.echo(f"  signed by  {', '.join(table.keyids)}")
    click.echo(f"  tenants    {counts['tenants']}, aliases {counts['aliases']}: {modes}")
    if show_table:
        print_routes(table.rows())
    return EXIT_OK


def _route(doc: Mapping[str, Any], tenant: str, alias: str) -> dict[str, Any]:
    tenants = doc["tenants"]
    if tenant not in tenants:
        raise CommandError(f"tenant '{tenant}' is not in the table", exit_code=EXIT_INVALID,
                           hint=did_you_mean(tenant, sorted(tenants)))
    aliases = tenants[tenant]["aliases"]
    if alias not in aliases:
        raise CommandError(f"tenant '{tenant}' has no alias '{alias}'", exit_code=EXIT_INVALID,
                           hint=did_you_mean(alias, sorted(aliases))
                           or f"aliases: {', '.join(sorted(aliases))}")
    route: dict[str, Any] = aliases[alias]
    return route


@click.command(name="resolve")
@click.argument("envelope", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("tenant")
@click.argument("alias")
@click.argument("session")
@_verify_options
def resolve_command(envelope: Path, tenant: str, alias: str, session: str,
                    key_files: tuple[Path, ...], threshold: int | None, repo: Path | None,
                    now_text: str | None) -> int:
    """Where a new SESSION of TENANT's ALIAS goes under a verified table (debugging)."""
    from modelpin.router.bucketing import basis_points, bucket

    table = _verified(envelope, key_files, threshold, repo, now_text)
    r = _route(table.document, tenant, alias)
    mode, stable, candidate = r["mode"], r["stable"], r["candidate"]
    b = bucket(r["salt"], session)
    click.echo(f"{tenant}/{alias} in serial {table.serial}: mode {mode}"
               f"{' (paused)' if r['paused'] else ''}, stable {stable}, "
               f"candidate {candidate or '-'}")
    click.echo(f"  session {session!r}: bucket {b} of 10000 (salt {r['salt']})")
    if mode == "canary":
        threshold_bp = basis_points(r["percent"])
        cohort = "canary" if b < threshold_bp else "stable"
        model = candidate if cohort == "canary" else stable
        click.echo(f"  canary takes buckets below {threshold_bp} ({r['percent']:g}%)")
    else:
        cohort, model = "stable", stable
    click.echo(f"model {model} (cohort {cohort})")
    if mode == "shadow":
        click.echo(f"shadow {candidate}: comparison only, never execute its tool calls")
    if mode == "rolled-back":
        click.echo(f"note: sessions already on {candidate} drain for {r['drain_seconds']}s "
                   f"after {r['since']}, then move to {stable} with session_reset")
    click.echo("note: a session that already started keeps its cohort (session store); "
               "this is the answer for a new session", err=True)
    return EXIT_OK


