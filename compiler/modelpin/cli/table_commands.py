"""``modelpin verify`` and ``modelpin resolve``: a signed table, checked by the router.

There is one verifier: these commands load the envelope through ``modelpin.router``
(the same ``Router``/``TrustedTableSet`` code a gateway runs, root chain included), so
the CLI accepts exactly what routers accept. verify prints what the table holds;
resolve says where one new session of one tenant alias goes (debugging).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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

if TYPE_CHECKING:  # the router is imported when a command runs
    from modelpin.router import RoutingTable

MAX_ENVELOPE_BYTES = 256 << 20
ROOT_DIR = Path("root")
"""Where a fleet repository keeps its trust root chain: ``root/<N>.root.json``."""


@dataclass(frozen=True)
class RouteRow:
    tenant: str
    alias: str
    mode: str
    paused: bool
    stable: str
    candidate: str | None
    percent: float


def table_rows(table: RoutingTable) -> list[RouteRow]:
    return [RouteRow(t, a, r.mode, r.paused, r.stable_model, r.candidate, r.percent)
            for t, aliases in table.routes.items() for a, r in aliases.items()]


def table_counts(table: RoutingTable) -> dict[str, int]:
    """tenants, aliases, and aliases per mode (a paused canary counts as ``paused``)."""
    counts: dict[str, int] = {"tenants": len(table.routes), "aliases": 0}
    for aliases in table.routes.values():
        for r in aliases.values():
            counts["aliases"] += 1
            mode = "paused" if r.paused else r.mode
            counts[mode] = counts.get(mode, 0) + 1
    return counts


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


@dataclass(frozen=True)
class Trust:
    """What the CLI trusts: a key list with a threshold, or an initial root file."""

    keys: dict[str, Ed25519PublicKey] | None = None
    threshold: int = 1
    root: Path | None = None


def verify_table(data: bytes, trust: Trust, now: float, label: str,
                 root_dirs: tuple[Path, ...] = ()) -> tuple[RoutingTable, int | None]:
    """Envelope bytes through the router's own loader: (table, root version) or a
    ``CommandError`` saying why a router would refuse them."""
    import logging

    from prometheus_client import CollectorRegistry

    from modelpin.router import Router
    from modelpin.router.sources import root_name

    class _Bytes:
        def fetch(self) -> Any:
            from modelpin.router.sources import Fetched

            return Fetched(data, None)

        def commit(self, token: object) -> None:
            pass

        def describe(self) -> str:
            return label

        def fetch_root(self, version: int) -> bytes | None:
            for directory in root_dirs:
                path = directory / root_name(version)
                try:
                    return path.read_bytes()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise CommandError(f"cannot read {path}: {exc.strerror}",
                                       exit_code=EXIT_INVALID) from None
            return None

    # The reason is the command's error message; the router's log line would repeat it.
    router_log = logging.getLogger("modelpin.router")
    if not router_log.handlers:
        router_log.addHandler(logging.NullHandler())
    try:
        router = Router(_Bytes(), trust.keys, threshold=trust.threshold, root=trust.root,
                        max_bytes=MAX_ENVELOPE_BYTES, registry=CollectorRegistry(),
                        clock=lambda: now)
    except ValueError as exc:
        raise CommandError(f"cannot set up the trust: {exc}", exit_code=EXIT_INVALID) from None
    except Exception as exc:  # RootRejected from a bad initial root
        raise CommandError(f"{trust.root}: {exc}", exit_code=EXIT_INVALID) from None
    result = router.refresh()
    table = router.table
    if result.error is not None or table is None:
        what = _KINDS.get(getattr(result.error, "kind", ""), "rejected")
        raise CommandError(f"{label}: {what}: {result.error}", exit_code=EXIT_INVALID)
    return table, router.status().root_version


_KINDS = {
    "unsigned": "signature check failed",
    "malformed": "not a valid routing table",
    "oversize": "too large",
    "expired": "expired",
    "root": "trust root rejected",
    "root-version": "trust root rejected",
    "root-expired": "trust root expired",
}


def _trust(root: Path, key_files: tuple[Path, ...], threshold: int | None,
           root_file: Path | None) -> Trust:
    if root_file is not None:
        return Trust(root=root_file)
    if key_files:
        return Trust(keys=trusted_from_files(key_files), threshold=threshold or 1)
    first_root = root / ROOT_DIR / "1.root.json"
    if first_root.is_file():
        return Trust(root=first_root)
    policy = read_artifact_policy(root)
    trusted = {k.computed_keyid: signing.load_public_key_b64(k.public_key)
               for k in policy.trusted_keys}
    if trusted:
        return Trust(keys=trusted, threshold=threshold or policy.threshold)
    dev = root / DEV_KEY
    if not dev.is_file():
        raise CommandError(
            f"no trusted keys: {root / ARTIFACT} lists none, there is no trust root at "
            f"{first_root} and no development key at {dev}", exit_code=EXIT_INVALID,
            hint="pass --root FILE or --key PUBLIC_KEY_FILE, or list trusted_keys in the policy")
    pub = read_private_key(dev.read_bytes(), str(dev)).key.public_key()
    click.echo(f"note: {ARTIFACT} lists no trusted keys; verifying against the "
               f"local development key {dev}", err=True)
    return Trust(keys={signing.keyid_of(pub): pub}, threshold=threshold or 1)


def _verified(envelope: Path, key_files: tuple[Path, ...], threshold: int | None,
              repo: Path | None, now_text: str | None,
              root_file: Path | None) -> tuple[RoutingTable, int | None]:
    try:
        if envelope.stat().st_size > MAX_ENVELOPE_BYTES:
            raise CommandError(f"{envelope} is larger than {MAX_ENVELOPE_BYTES >> 20} MiB",
                               exit_code=EXIT_INVALID)
        data = envelope.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {envelope}: {exc.strerror}",
                           exit_code=EXIT_INVALID) from None
    root = repo if repo is not None else default_repo()
    trust = _trust(root, key_files, threshold, root_file)
    now = parse_time(now_text) if now_text else datetime.now(UTC).replace(microsecond=0)
    # The chain is looked up where routers look (beside the table), then beside the
    # initial root, then in the repository's root/ directory.
    dirs = [envelope.parent]
    if trust.root is not None:
        dirs.append(trust.root.parent)
    dirs.append(root / ROOT_DIR)
    return verify_table(data, trust, now.timestamp(), str(envelope), tuple(dict.fromkeys(dirs)))


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
    func = click.option("--root", "root_file", default=None,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Initial trust root (e.g. root/1.root.json); newer roots are "
                        "followed beside the envelope, beside this file and in <repo>/root/. "
                        "Default: <repo>/root/1.root.json if present.")(func)
    return repo_option(func)


@click.command(name="verify")
@click.argument("envelope", type=click.Path(dir_okay=False, path_type=Path))
@_verify_options
@click.option("--table", "show_table", is_flag=True, help="Print every route.")
def verify_command(envelope: Path, key_files: tuple[Path, ...], threshold: int | None,
                   repo: Path | None, now_text: str | None, root_file: Path | None,
                   show_table: bool) -> int:
    """Verify a signed routing table exactly as a router would: trust root chain,
    signatures, canonical payload, schema, expiry."""
    table, root_version = _verified(envelope, key_files, threshold, repo, now_text, root_file)
    counts = table_counts(table)
    modes = ", ".join(f"{m} {counts.get(m, 0)}"
                      for m in ("pinned", "shadow", "canary", "paused", "rolled-back"))
    click.echo(f"verified: {envelope}")
    click.echo(f"  serial     {table.serial}")
    click.echo(f"  commit     {table.source_commit}")
    click.echo(f"  issued     {table.issued_at}")
    click.echo(f"  expires    {table.expires_at}")
    click.echo(f"  signed by  {', '.join(table.signed_by)}")
    if root_version is not None:
        click.echo(f"  root       version {root_version}")
    click.echo(f"  tenants    {counts['tenants']}, aliases {counts['aliases']}: {modes}")
    if show_table:
        print_routes(table_rows(table))
    return EXIT_OK


def _route(routes: Mapping[str, Mapping[str, Any]], tenant: str, alias: str) -> Any:
    if tenant not in routes:
        raise CommandError(f"tenant '{tenant}' is not in the table", exit_code=EXIT_INVALID,
                           hint=did_you_mean(tenant, sorted(routes)))
    aliases = routes[tenant]
    if alias not in aliases:
        raise CommandError(f"tenant '{tenant}' has no alias '{alias}'", exit_code=EXIT_INVALID,
                           hint=did_you_mean(alias, sorted(aliases))
                           or f"aliases: {', '.join(sorted(aliases))}")
    return aliases[alias]


@click.command(name="resolve")
@click.argument("envelope", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("tenant")
@click.argument("alias")
@click.argument("session")
@_verify_options
def resolve_command(envelope: Path, tenant: str, alias: str, session: str,
                    key_files: tuple[Path, ...], threshold: int | None, repo: Path | None,
                    now_text: str | None, root_file: Path | None) -> int:
    """Where a new SESSION of TENANT's ALIAS goes under a verified table (debugging)."""
    from modelpin.router.bucketing import basis_points, bucket

    table, _ = _verified(envelope, key_files, threshold, repo, now_text, root_file)
    r = _route(table.routes, tenant, alias)
    mode, stable, candidate = r.mode, r.stable_model, r.candidate
    b = bucket(r.salt, session)
    click.echo(f"{tenant}/{alias} in serial {table.serial}: mode {mode}"
               f"{' (paused)' if r.paused else ''}, stable {stable}, "
               f"candidate {candidate or '-'}")
    click.echo(f"  session {session!r}: bucket {b} of 10000 (salt {r.salt})")
    if mode == "canary":
        threshold_bp = basis_points(r.percent)
        cohort = "canary" if b < threshold_bp else "stable"
        model = candidate if cohort == "canary" else stable
        click.echo(f"  canary takes buckets below {threshold_bp} ({r.percent:g}%)")
    else:
        cohort, model = "stable", stable
    click.echo(f"model {model} (cohort {cohort})")
    if mode == "shadow":
        click.echo(f"shadow {candidate}: comparison only, never execute its tool calls")
    if mode == "rolled-back":
        until = datetime.fromtimestamp(r.drain_until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"note: sessions already on {candidate} drain until {until} "
                   f"(since {r.since}), then move to {stable} with session_reset")
    click.echo("note: a session that already started keeps its cohort (session store); "
               "this is the answer for a new session", err=True)
    return EXIT_OK


