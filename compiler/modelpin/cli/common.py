"""What every command shares: the repo and time options, errors, diagnostics output.

Commands return an exit code: 0 fine, 1 the config or change is invalid (diagnostics
printed), 2 usage error. A ``CommandError`` is the one user-facing error type; ``main``
catches it once and prints its message, never a traceback.
"""

from __future__ import annotations

import functools
import gc
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from modelpin.diagnostics import Diagnostic, count, render_github, render_json, render_text
from modelpin.load.fleet import LoadResult, load_fleet
from modelpin.load.tree import DirectoryTree, GitTree, SourceTree, TreeError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A fault the user can fix; printed as ``modelpin: error: <message>``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, hint: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.hint = hint


def without_gc(func: F) -> F:
    """Run a command that holds a whole fleet with the cyclic garbage collector off:
    hundreds of thousands of long-lived objects and no cycles to speak of make every
    full collection pure cost (``compile`` and the loader do the same)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper  # type: ignore[return-value]


def warn(message: str) -> None:
    """A warning on stderr: the run goes on."""
    click.echo(f"modelpin: warning: {message}", err=True)


def example_fleet_dir() -> Path | None:
    """The example fleet next to the source tree (an editable install or a checkout)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "policies" / "rollout-groups.yaml").is_file() else None


def default_repo() -> Path:
    cwd = Path.cwd()
    if (cwd / "policies").is_dir() or (cwd / "tenants").is_dir():
        return cwd
    example = example_fleet_dir()
    return example if example is not None else cwd


def repo_option(func: F) -> F:
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Config repository (default: the current directory if it holds a fleet, "
        "else the bundled example fleet).",
    )(func)


def format_option(*choices: str) -> Callable[[F], F]:
    def deco(func: F) -> F:
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(list(choices)),
            default=choices[0],
            show_default=True,
            help="Output format.",
        )(func)

    return deco


def now_option(func: F) -> F:
    return click.option(
        "--now",
        "now_text",
        default=None,
        metavar="TIME",
        help="Evaluate at this time (RFC 3339, e.g. 2026-03-20T10:00:00Z). "
        "Default: the head commit's time, or the clock outside git.",
    )(func)


def judgement_now_option(func: F) -> F:
    return click.option(
        "--now",
        "now_text",
        default=None,
        metavar="TIME",
        help="Judge at this time (RFC 3339, e.g. 2026-03-20T10:00:00Z). "
        "Default: this machine's clock; commit dates are never trusted.",
    )(func)


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"--now {text!r} is not a time", hint="write RFC 3339, e.g. 2026-03-20T10:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def git_head(repo: Path) -> tuple[str, datetime] | None:
    """(commit, commit time) of HEAD if ``repo`` is inside a git work tree."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%H %ct"],
            capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    commit, stamp = proc.stdout.split()
    return commit, datetime.fromtimestamp(int(stamp), tz=UTC)


def system_now() -> datetime:
    """The clock of the machine running the command (whole seconds, UTC)."""
    return datetime.now(UTC).replace(microsecond=0)


def judgement_now(now_text: str | None) -> datetime:
    """"Now" for every judgement (check, plan, explain, bot): ``--now`` or the runner's
    clock, never a commit date (SPEC 2.1 rule 5: a commit date is whatever its author
    wrote)."""
    return parse_time(now_text) if now_text else system_now()


def resolve_now(now_text: str | None, repo: Path, tree: SourceTree | None = None) -> datetime:
    """"Now" for ``compile`` and ``validate``: ``--now``, else the commit's time (for
    reproducible bytes: ``issued_at`` is stamped from the commit), else the clock."""
    if now_text:
        return parse_time(now_text)
    if isinstance(tree, GitTree):
        return tree.commit_time
    head = git_head(repo)
    if head is not None:
        return head[1]
    return system_now()


def open_tree(repo: Path | None, rev: str | None = None) -> tuple[Path, SourceTree]:
    root = repo if repo is not None else default_repo()
    try:
        if rev:
            return root, GitTree(root, rev)
        return root, DirectoryTree(root)
    except TreeError as exc:
        raise CommandError(str(exc)) from None


def progress_reporter(label: str) -> Callable[[int, int], None] | None:
    """A rich progress bar on an interactive stderr for large trees; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        if total < 2000:
            return
        if "progress" not in state:
            progress = Progress(transient=True, console=None)
            progress.start()
            state["progress"] = progress
            state["task"] = progress.add_task(label, total=total)
        state["progress"].update(state["task"], completed=done)
        if done >= total:
            state["progress"].stop()

    return report


def load(repo: Path | None, rev: str | None, now_text: str | None) -> tuple[LoadResult, Path]:
    root, tree = open_tree(repo, rev)
    now = resolve_now(now_text, root, tree)
    return load_fleet(tree, now, progress=progress_reporter("validating")), root


def emit_diagnostics(
    diagnostics: Sequence[Diagnostic],
    fmt: str,
    source_lines: Callable[[str], Sequence[str] | None],
    summary: dict[str, object],
) -> None:
    if fmt == "json":
        click.echo(render_json(diagnostics, summary), nl=False)
        return
    if fmt == "github":
        click.echo(render_github(diagnostics), nl=False)
    else:
        click.echo(render_text(diagnostics, source_lines), nl=False, err=False)


def summary_line(stats: dict[str, int], diagnostics: Sequence[Diagnostic]) -> str:
    errors, warnings = count(diagnostics)
    return (
        f"{stats.get('files', 0)} files, {stats.get('tenants', 0)} tenants, "
        f"{stats.get('aliases', 0)} aliases: {errors} error(s), {warnings} warning(s)"
    )


def cache_options(func: F) -> F:
    """``--cache-dir`` and ``--no-cache``, on every command that keeps a cache."""
    func = click.option("--no-cache", is_flag=True,
                        help="Neither read nor write the cache (everything is parsed again).")(func)
    return click.option(
        "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Cache folder (default: $XDG_CACHE_HOME/modelpin/<repo id>, else "
        "~/.cache/modelpin/<repo id>; never inside the repository).")(func)


def cache_directory(root: Path, cache_dir: Path | None, no_cache: bool) -> Path | None:
    """Where this run's cache lives, or None with ``--no-cache``. A folder inside the
    repository is refused: a commit could plant a cache there (SPEC 2.1 rule 8)."""
    if no_cache:
        return None
    from modelpin.load.cache import cache_root

    directory = cache_dir if cache_dir is not None else cache_root(root)
    repo = root.resolve()
    where = directory.resolve()
    if where == repo or repo in where.parents:
        raise CommandError(f"the cache folder {directory} is inside the repository {root}",
                           hint="caches never live in the work tree: pick a folder outside "
                           "it, or leave --cache-dir out")
    return directory
