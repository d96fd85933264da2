"""``modelpin compile | verify | keygen | resolve``: the signed routing table.

compile: load and validate the fleet (with a persistent cache), build the canonical
payload, sign it, and only then write both files, each atomically. verify: check an
envelope the way a router does. keygen: make an Ed25519 key pair. resolve: where one
session of one tenant alias goes under a table, by the router's bucketing.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelpin import signing
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    default_repo,
    emit_diagnostics,
    format_option,
    now_option,
    parse_time,
    progress_reporter,
    repo_option,
    resolve_now,
    summary_line,
)
from modelpin.dashboard import DashboardMeta, dashboard_rows, render_dashboard
from modelpin.diagnostics import has_errors
from modelpin.load.cache import CompileCache, StatIndexedTree
from modelpin.load.document import did_you_mean, parse
from modelpin.load.fleet import ARTIFACT, load_fleet
from modelpin.load.snapshot import load_cached
from modelpin.load.tree import CONFIG_DIRS, DirectoryTree, GitTree, SourceTree, TreeError
from modelpin.model.fleet import Fleet
from modelpin.model.policies import ArtifactPolicy
from modelpin.model.tenant import format_time
from modelpin.rollout.dag import GroupGraph
from modelpin.routing.payload import NO_COMMIT, Header, PayloadError, build, fragment_key
from modelpin.routing.verify import RouteRow, VerifiedTable, VerifyError, verify_envelope

PAYLOAD_FILE = "routing-table.json"
ENVELOPE_FILE = "routing-table.dsse.json"
DASHBOARD_FILE = "index.html"
DEV_KEY = Path(".modelpin") / "dev-signing-key.pem"
KEY_ENV = "MODELPIN_SIGNING_KEY"
MAX_ENVELOPE_BYTES = 256 << 20


def _warn(message: str) -> None:
    click.echo(f"modelpin: warning: {message}", err=True)


# --- git: source commit and serial ------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


SERIAL_STRIDE = 1_000_000
"""Serial = commits reachable from the source commit x SERIAL_STRIDE + the minutes from
the commit's time to ``issued_at`` (clamped to 0 .. SERIAL_STRIDE - 1). Monotonic along
main (a later commit outranks every re-issue of an earlier one), and a re-issue of the
same commit later (the daily publish that keeps a quiet repo's table from expiring)
gets a higher serial instead of the same serial with other bytes."""


@dataclass(frozen=True)
class Source:
    commit: str
    count: int | None  # None outside git
    commit_time: datetime | None = None

    def serial(self, issued_at: datetime) -> int | None:
        if self.count is None or self.commit_time is None:
            return None
        minutes = int((issued_at - self.commit_time).total_seconds() // 60)
        return self.count * SERIAL_STRIDE + min(max(minutes, 0), SERIAL_STRIDE - 1)


def source_of(root: Path, tree: SourceTree) -> Source:
    """The commit the table is compiled from, its commit count and time."""
    commit = tree.commit if isinstance(tree, GitTree) else _git(root, "rev-parse", "HEAD")
    if not commit:
        return Source(NO_COMMIT, None)
    count = _git(root, "rev-list", "--count", commit)
    stamp = _git(root, "show", "-s", "--format=%ct", commit)
    when = datetime.fromtimestamp(int(stamp), tz=UTC) if stamp and stamp.isdigit() else None
    return Source(commit, int(count) if count and count.isdigit() else None, when)


def _dirty_config(root: Path) -> bool:
    out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *CONFIG_DIRS)
    return bool(out)


# --- keys -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigningKey:
    key: Ed25519PrivateKey
    origin: str

    @property
    def keyid(self) -> str:
        return signing.keyid_of(self.key.public_key())


def _read_private(data: bytes, origin: str) -> SigningKey:
    try:
        return SigningKey(signing.load_private_key(data), origin)
    except signing.KeyFileError as exc:
        raise CommandError(f"{origin}: {exc}",
                           hint="a PKCS#8 PEM Ed25519 key, as `modelpin keygen` writes") from None


def _write_new_file(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    """Write ``data`` with ``mode`` from the first byte on (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if ``path`` appeared meanwhile: never overwrite
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dev_key(root: Path) -> SigningKey:
    path = root / DEV_KEY
    if path.is_file():
        return _read_private(path.read_bytes(), str(path))
    key = signing.generate_private_key()
    try:
        _write_new_file(path, signing.private_key_pem(key), 0o600, force=False)
    except FileExistsError:
        return _read_private(path.read_bytes(), str(path))
    except OSError as exc:
        raise CommandError(f"cannot create the development key {path}: {exc.strerror}",
                           hint="pass --key FILE or set MODELPIN_SIGNING_KEY") from None
    return SigningKey(key, str(path))


def signing_keys(root: Path, key_files: tuple[Path, ...], policy: ArtifactPolicy,
                 *, require_key: bool = False) -> tuple[list[SigningKey], bool]:
    """The keys to sign with, and whether that is the local development key."""
    keys: list[SigningKey] = []
    for path in key_files:
        try:
            keys.append(_read_private(path.read_bytes(), str(path)))
        except OSError as exc:
            raise CommandError(f"cannot read --key {path}: {exc.strerror}") from None
    env = os.environ.get(KEY_ENV, "").strip()
    if not keys and env:
        # CI secrets sometimes arrive with literal "\n" for newlines.
        text = env.replace("\\n", "\n") if "\n" not in env else env
        keys.append(_read_private(text.encode("utf-8"), f"${KEY_ENV}"))
    dev = not keys
    if dev and require_key:
        raise CommandError(
            f"no signing key: pass --key FILE or set {KEY_ENV} (--require-key refuses the "
            "local development key)", exit_code=EXIT_INVALID)
    if dev:
        keys.append(_dev_key(root))
    trusted = {k.computed_keyid: k.owner for k in policy.trusted_keys}
    if trusted:
        for k in keys:
            if k.keyid not in trusted:
                what = "the local development key" if dev else f"the key from {k.origin}"
                raise CommandError(
                    f"refusing to sign with {what} (keyid {k.keyid[:16]}…): it is not one "
                    f"of the {len(trusted)} trusted_keys in {ARTIFACT}",
                    exit_code=EXIT_INVALID,
                    hint="pass --key FILE or set MODELPIN_SIGNING_KEY to a trusted private key",
                )
        distinct = {k.keyid for k in keys}
        if len(distinct) < policy.threshold:
            raise CommandError(
                f"{ARTIFACT} requires {policy.threshold} signatures, {len(distinct)} "
                "distinct key(s) given", exit_code=EXIT_INVALID,
                hint="pass --key once per signing key")
    return keys, dev


def _trusted_from_files(paths: tuple[Path, ...]) -> dict[str, Ed25519PublicKey]:
    out: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = signing.load_public_key(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read --key {path}: {exc.strerror}",
                               exit_code=EXIT_INVALID) from None
        except signing.KeyFileError as exc:
            raise CommandError(f"--key {path}: {exc}", exit_code=EXIT_INVALID) from None
        out[signing.keyid_of(key)] = key
    return out


def read_artifact_policy(root: Path) -> ArtifactPolicy:
    path = root / ARTIFACT
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ArtifactPolicy()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", exit_code=EXIT_INVALID) from None
    doc = parse(ARTIFACT, raw)
    try:
        if has_errors(doc.diagnostics):
            raise ValueError(doc.diagnostics[0].message)
        return ArtifactPolicy.model_validate(doc.data if doc.data is not None else {})
    except ValueError as exc:
        raise CommandError(f"{path} is invalid: {str(exc).splitlines()[0]}",
                           exit_code=EXIT_INVALID,
                           hint=f"run `modelpin validate --repo {root}`") from None


# --- atomic output ----------------------------------------------------------------------

def write_atomically(files: list[tuple[Path, bytes]]) -> None:
    """Write every file or none: all temp files are written and synced before any rename."""
    temps: list[str] = []
    try:
        for path, data in files:
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
        for (path, _), tmp in zip(files, temps, strict=True):
            os.replace(tmp, path)
        temps = []
        for parent in {path.parent for path, _ in files}:
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)


# --- compile ----------------------------------------------------------------------------

def _open_tree(root: Path, rev: str | None, cache: CompileCache | None) -> SourceTree:
    try:
        if rev:
            return GitTree(root, rev)
        tree = DirectoryTree(root)
    except TreeError as exc:
        raise CommandError(str(exc)) from None
    return StatIndexedTree(tree, cache.stat) if cache is not None else tree


def _content_ids(tree: SourceTree, fleet: Fleet) -> dict[str, str] | None:
    blob = getattr(tree, "blob_id", None)
    if not callable(blob):
        return None
    return {tid: blob(fleet.tenant_path(tid)) for tid in fleet.tenants}


def _load_cache(directory: Path) -> CompileCache:
    enabled = gc.isenabled()
    gc.disable()  # unpickling builds many long-lived objects: GC passes are pure cost
    try:
        return CompileCache.load(directory, _warn)
    finally:
        if enabled:
            gc.enable()


def _save_cache(cache: CompileCache, directory: Path, tree: SourceTree,
                fragment_keys: set[str] | None) -> None:
    blob = getattr(tree, "blob_id", None)
    keys = {(p, blob(p)) for p in tree.files()} if callable(blob) else set(cache.parse)
    if isinstance(tree, StatIndexedTree):
        tree.prune()
    try:
        cache.save(directory, keys, fragment_keys)
    except OSError as exc:
        _warn(f"cannot write the compile cache to {directory}: {exc.strerror or exc}")


@click.command(name="compile")
@repo_option
@click.option("--rev", default=None, help="Compile this git revision (default: the files in "
              "the work tree, labelled with HEAD).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: <repo>/dist).")
@click.option("--key", "key_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help=f"Private signing key (PKCS#8 PEM); repeat for several. Default: ${KEY_ENV}, "
              "else a local development key.")
@now_option
@click.option("--serial", type=click.IntRange(min=1), default=None,
              help="Serial number (default: commits x 1,000,000 + minutes from the commit "
              "to --now; see docs/routing-table.md).")
@click.option("--require-key", is_flag=True,
              help="Fail instead of signing with the local development key (for CI).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Persistent parse cache (default: <repo>/.modelpin/cache).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--table", "show_table", is_flag=True, help="Print the routes after compiling.")
@format_option("text", "github", "json")
def compile_command(repo: Path | None, rev: str | None, out: Path | None,
                    key_files: tuple[Path, ...], now_text: str | None, serial: int | None,
                    cache_dir: Path | None, no_cache: bool, show_table: bool, fmt: str,
                    require_key: bool) -> int:
    """Compile the fleet into a signed routing table (dist/routing-table.dsse.json)."""
    # Hundreds of thousands of long-lived objects and no cyclic garbage to speak of:
    # generational GC passes would be pure cost (the loader does the same).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compile(repo, rev, out, key_files, now_text, serial, cache_dir, no_cache,
                        show_table, fmt, require_key)
    finally:
        if enabled:
            gc.enable()


def _compile(repo: Path | None, rev: str | None, out: Path | None,
             key_files: tuple[Path, ...], now_text: str | None, serial: int | None,
             cache_dir: Path | None, no_cache: bool, show_table: bool, fmt: str,
             require_key: bool = False) -> int:
    root = repo if repo is not None else default_repo()
    cache_path = cache_dir if cache_dir is not None else root / ".modelpin" / "cache"
    content_ids: dict[str, str] | None = None
    cache: CompileCache | None
    if rev is None and not no_cache:
        # The work tree: through the fleet snapshot and the compile cache.
        try:
            directory_tree = DirectoryTree(root)
        except TreeError as exc:
            raise CommandError(str(exc)) from None
        now = resolve_now(now_text, root, directory_tree)
        loaded = load_cached(directory_tree, now, cache_path, _warn,
                             progress_reporter("compiling"))
        result = loaded.result
        warm = loaded.cache if loaded.cache is not None else _load_cache(cache_path)
        cache = warm
        tree: SourceTree = loaded.tree or StatIndexedTree(directory_tree, warm.stat)
        if result.fleet is not None:
            content_ids = {tid: loaded.blobs[result.fleet.tenant_path(tid)]
                           for tid in result.fleet.tenants}
    else:
        cache = None if no_cache else _load_cache(cache_path)
        tree = _open_tree(root, rev, cache)
        now = resolve_now(now_text, root, tree)
        result = load_fleet(tree, now, cache=cache.parse if cache is not None else None,
                            progress=progress_reporter("compiling"))
        if cache is not None and result.fleet is not None:
            content_ids = _content_ids(tree, result.fleet)
    fleet = result.fleet
    if fleet is None or has_errors(result.diagnostics):
        if cache is not None:
            _save_cache(cache, cache_path, tree, None)
        emit_diagnostics(result.diagnostics, fmt, result.source_lines,
                         {**result.stats, "valid": False})
        click.echo(f"invalid: {summary_line(result.stats, result.diagnostics)}; "
                   "nothing written", err=True)
        return EXIT_INVALID
    if result.diagnostics and fmt != "json":
        emit_diagnostics(result.diagnostics, fmt, result.source_lines, {})
    keys, dev = signing_keys(root, key_files, fleet.artifact, require_key=require_key)
    source = source_of(root, tree)
    if source.commit == NO_COMMIT:
        _warn(f"{root} is not a git repository: source commit is {NO_COMMIT[:8]}…")
    elif rev is None and _dirty_config(root):
        _warn("the config files have uncommitted changes: the table is labelled with "
              f"commit {source.commit[:12]} but built from the work tree")
    if serial is None:
        serial = source.serial(now)
        if serial is None:
            _warn("no git history to count: serial is 1 (pass --serial N; routers refuse "
                  "a serial lower than the one they hold)")
            serial = 1
    header = Header(serial, source.commit, now, now + fleet.artifact.ttl)
    try:
        payload = build(fleet, header, content_ids=content_ids,
                        fragments=cache.fragments if cache is not None else None)
    except PayloadError as exc:
        raise CommandError(str(exc), exit_code=EXIT_INVALID) from None
    envelope = signing.dump_envelope(signing.sign(payload, [k.key for k in keys]))
    target = out if out is not None else root / "dist"
    try:
        target.mkdir(parents=True, exist_ok=True)
        page = render_dashboard(
            dashboard_rows(fleet, now),
            DashboardMeta(serial, source.commit, header.issued_at, header.expires_at,
                          GroupGraph.build(fleet.policy.groups).topological_order()),
        )
        write_atomically([(target / PAYLOAD_FILE, payload), (target / ENVELOPE_FILE, envelope),
                          (target / DASHBOARD_FILE, page.encode("utf-8"))])
    except OSError as exc:
        raise CommandError(f"cannot write the routing table to {target}: "
                           f"{exc.strerror or exc}; nothing was replaced",
                           exit_code=EXIT_INVALID) from None
    if cache is not None:
        drain = fleet.artifact.drain_seconds
        _save_cache(cache, cache_path, tree,
                    {fragment_key(c, drain) for c in (content_ids or {}).values()})
    if dev:
        click.secho(f"modelpin: WARNING: signed with the local DEVELOPMENT key {keys[0].origin} "
                    f"(keyid {keys[0].keyid[:16]}…). Routers must not trust it: run "
                    f"`modelpin keygen` and pass --key or ${KEY_ENV}.", err=True, fg="yellow")
    stats = result.stats
    click.echo(f"compiled serial {serial} (commit {source.commit[:12]}): {stats['tenants']} "
               f"tenants, {stats['aliases']} aliases, expires {format_time(header.expires_at)}")
    click.echo(f"  wrote {target / PAYLOAD_FILE}")
    click.echo(f"  wrote {target / ENVELOPE_FILE} (signed by "
               f"{', '.join(k.keyid[:16] for k in keys)})")
    click.echo(f"  wrote {target / DASHBOARD_FILE} (fleet dashboard)")
    if show_table:
        document = json.loads(payload)
        print_routes(VerifiedTable(payload, document, ()).rows())
    return EXIT_OK


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


# --- verify / resolve -------------------------------------------------------------------

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
        trusted = _trusted_from_files(key_files)
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
            pub = _read_private(dev.read_bytes(), str(dev)).key.public_key()
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


# --- keygen -----------------------------------------------------------------------------

@click.command(name="keygen")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for modelpin-signing-key.pem and .pub (default: current dir).")
@click.option("--private", "private_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Private key file (with --public).")
@click.option("--public", "public_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Public key file (with --private).")
@click.option("--owner", default="platform-ci", show_default=True,
              help="Owner recorded in the printed policy snippet.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_command(out_dir: Path | None, private_path: Path | None, public_path: Path | None,
                   owner: str, force: bool) -> int:
    """Create an Ed25519 signing key pair and print its policies/artifact.yaml entry."""
    if (private_path is None) != (public_path is None):
        raise CommandError("--private and --public go together", exit_code=EXIT_USAGE)
    if private_path is not None and out_dir is not None:
        raise CommandError("use either --out DIR or --private/--public", exit_code=EXIT_USAGE)
    if private_path is None or public_path is None:
        base = out_dir if out_dir is not None else Path.cwd()
        private_path = base / "modelpin-signing-key.pem"
        public_path = base / "modelpin-signing-key.pub"
    if private_path.resolve() == public_path.resolve():
        raise CommandError("--private and --public name the same file", exit_code=EXIT_USAGE)
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise CommandError(f"{path} exists; not overwriting a key",
                                   exit_code=EXIT_USAGE, hint="pass --force to replace it")
    key = signing.generate_private_key()
    public = key.public_key()
    b64 = signing.public_key_b64(public)
    try:
        _write_new_file(private_path, signing.private_key_pem(key), 0o600, force=force)
        _write_new_file(public_path, (b64 + "\n").encode("ascii"), 0o644, force=force)
    except FileExistsError as exc:
        raise CommandError(f"{exc.filename} exists; not overwriting a key", exit_code=EXIT_USAGE,
                           hint="pass --force to replace it") from None
    except OSError as exc:
        raise CommandError(f"cannot write the key pair: {exc.strerror} ({exc.filename})",
                           exit_code=EXIT_INVALID) from None
    keyid = signing.keyid_of(public)
    click.echo(f"wrote private key {private_path} (mode 0600: keep it secret; in CI pass its "
               f"PEM text as ${KEY_ENV})", err=True)
    click.echo(f"wrote public key  {public_path}", err=True)
    click.echo(f"add to {ARTIFACT}:", err=True)
    click.echo(f"trusted_keys:\n  - keyid: {keyid}\n    public_key: \"{b64}\"\n"
               f"    owner: {json.dumps(owner)}")
    return EXIT_OK


COMMANDS = (compile_command, verify_command, keygen_command, resolve_command)
