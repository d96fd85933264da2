"""``modelpin compile``: the validated fleet in, the signed routing table out.

Load and validate the fleet (through the fleet snapshot and the persistent cache), build
the canonical payload, sign it, render the dashboard, and only then publish the three
files as one unit (``cli/output_unit.py``: a release folder and a link flip).
"""

from __future__ import annotations

import gc
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from modelpin import signing
from modelpin.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    cache_directory,
    cache_options,
    default_repo,
    emit_diagnostics,
    format_option,
    now_option,
    progress_reporter,
    repo_option,
    resolve_now,
    summary_line,
    warn,
)
from modelpin.cli.keys import KEY_ENV, signing_keys
from modelpin.cli.output_unit import write_unit
from modelpin.cli.table_commands import Trust, print_routes, table_rows, verify_table
from modelpin.dashboard import DashboardMeta, dashboard_rows, render_dashboard
from modelpin.diagnostics import has_errors
from modelpin.load.cache import CompileCache, StatIndexedTree
from modelpin.load.fleet import load_fleet
from modelpin.load.snapshot import load_cached
from modelpin.load.tree import CONFIG_DIRS, DirectoryTree, GitTree, SourceTree, TreeError
from modelpin.model.fleet import Fleet
from modelpin.model.tenant import format_time
from modelpin.rollout.dag import GroupGraph
from modelpin.routing.payload import NO_COMMIT, Header, PayloadError, build, fragment_key

PAYLOAD_FILE = "routing-table.json"
ENVELOPE_FILE = "routing-table.dsse.json"
DASHBOARD_FILE = "index.html"


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


def _shallow(root: Path) -> bool:
    return _git(root, "rev-parse", "--is-shallow-repository") == "true"


def _dirty_config(root: Path, commit: str, blobs: dict[str, str] | None) -> bool:
    """Whether the config files compiled differ from those of ``commit``.

    With the blob id of every config file the load read (``blobs``: the snapshot and
    the stat index know them), one ``git ls-tree`` of the commit answers: any path
    added, removed or with other bytes. An ignored file in a config folder counts as a
    change here (the load reads it; ``git status`` would not show it). Without them,
    ``git status``, which stats the whole work tree."""
    if blobs is None:
        out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *CONFIG_DIRS)
        return bool(out)
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *CONFIG_DIRS)
    if listing is None:
        return True
    committed: dict[str, str] = {}
    for entry in listing.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, _kind, sha = meta.split()
            committed[path] = sha if mode in ("100644", "100755") else f"{mode}:{sha}"
    return committed != blobs


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
    gc.disable()  # decoding builds many long-lived objects: GC passes are pure cost
    try:
        return CompileCache.load(directory, warn)
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
    except (OSError, ValueError, TypeError) as exc:  # a cache never fails a command
        warn(f"cannot write the compile cache to {directory}: "
             f"{getattr(exc, 'strerror', None) or exc}")


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
@cache_options
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
    cache_path = cache_directory(root, cache_dir, no_cache)
    content_ids: dict[str, str] | None = None
    all_blobs: dict[str, str] | None = None
    cache: CompileCache | None
    tree: SourceTree
    if rev is None and cache_path is not None:
        # The work tree: through the fleet snapshot and the compile cache.
        try:
            directory_tree = DirectoryTree(root)
        except TreeError as exc:
            raise CommandError(str(exc)) from None
        now = resolve_now(now_text, root, directory_tree)
        loaded = load_cached(directory_tree, now, cache_path, warn,
                             progress_reporter("compiling"))
        result = loaded.result
        cache = loaded.cache
        tree = loaded.tree
        all_blobs = loaded.blobs
        if result.fleet is not None:
            content_ids = {tid: loaded.blobs[result.fleet.tenant_path(tid)]
                           for tid in result.fleet.tenants}
    else:
        cache = None if cache_path is None else _load_cache(cache_path)
        tree = _open_tree(root, rev, cache)
        now = resolve_now(now_text, root, tree)
        result = load_fleet(tree, now, cache=cache.parse if cache is not None else None,
                            progress=progress_reporter("compiling"))
        if cache is not None and result.fleet is not None:
            content_ids = _content_ids(tree, result.fleet)
    fleet = result.fleet
    if fleet is None or has_errors(result.diagnostics):
        if cache is not None and cache_path is not None:
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
        warn(f"{root} is not a git repository: source commit is {NO_COMMIT[:8]}…")
    elif rev is None and _dirty_config(root, source.commit, all_blobs):
        warn("the config files have uncommitted changes: the table is labelled with "
              f"commit {source.commit[:12]} but built from the work tree")
    if serial is None and source.count is not None and _shallow(root):
        raise CommandError(
            f"{root} is a shallow clone: the serial counts the commits of main, and a "
            "shallow history would give a serial routers refuse (lower than the one "
            "they hold); nothing written", exit_code=EXIT_INVALID,
            hint="fetch the full history (actions/checkout with fetch-depth: 0, or "
            "`git fetch --unshallow`), or pass --serial N explicitly")
    if serial is None:
        serial = source.serial(now)
        if serial is None:
            warn("no git history to count: serial is 1 (pass --serial N; routers refuse "
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
        page = render_dashboard(
            dashboard_rows(fleet, now),
            DashboardMeta(serial, source.commit, header.issued_at, header.expires_at,
                          GroupGraph.build(fleet.policy.groups).topological_order()),
        )
        write_unit(target, {PAYLOAD_FILE: payload, ENVELOPE_FILE: envelope,
                            DASHBOARD_FILE: page.encode("utf-8")}, str(serial))
    except OSError as exc:
        raise CommandError(f"cannot write the routing table to {target}: "
                           f"{exc.strerror or exc}; nothing was replaced",
                           exit_code=EXIT_INVALID) from None
    if cache is not None and cache_path is not None:
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
    if header.expires_at <= datetime.now(UTC):
        warn(f"the table expired at {format_time(header.expires_at)}, before it was written "
             f"(issued_at is {'--now' if now_text else 'the commit time'}, "
             f"{format_time(header.issued_at)}, and the ttl is "
             f"{fleet.artifact.ttl.total_seconds() / 3600:g}h): routers "
             "and `modelpin verify` will refuse it. Re-issue it with the clock: "
             "`modelpin compile --now $(date -u +%Y-%m-%dT%H:%M:%SZ)`")
    if show_table:
        # Through the router's own loader: what is printed is what routers will load.
        trust = Trust(keys={k.keyid: k.key.public_key() for k in keys},
                      threshold=len({k.keyid for k in keys}))
        table, _ = verify_table(envelope, trust, header.issued_at.timestamp(),
                                str(target / ENVELOPE_FILE))
        print_routes(table_rows(table))
    return EXIT_OK


