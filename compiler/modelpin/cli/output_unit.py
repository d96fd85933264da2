"""The compile output as one unit: three files replaced together, or not at all.

``<out>`` (default ``dist``) is a symbolic link to one release folder,
``.<out>.releases/<serial>-<n>/``, which holds ``routing-table.json``,
``routing-table.dsse.json`` and ``index.html``. A compile writes a new release into a
staging folder next to the others, syncs it, renames it into place, and then flips the
link with one ``rename`` (atomic on POSIX). A reader that opens ``dist/...`` sees
either the previous unit or the new one, never a mix, never a partial file, and
never a ``.tmp``: nothing temporary is ever created inside ``<out>``. A compile killed
at any point leaves the previous unit in place; its staging leftovers (outside
``<out>``) are removed by the next compile. The previous release is kept (a reader
that resolved the old link can finish), older ones are pruned.

An ``<out>`` that is still a plain folder (written by an older modelpin) is moved into
the releases folder once, then replaced by the link.

``MODELPIN_PAUSE_AT=<step>`` makes the writer stop at a step and wait (test hook for the
SIGKILL tests: each step is a point where a kill must leave a consistent unit).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from pathlib import Path

PAUSE_ENV = "MODELPIN_PAUSE_AT"
STEPS = ("staging", "staged", "released", "linked", "flipped")
KEEP = 2
"""Releases kept: the current one and the one before it."""


def releases_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.releases"


def _checkpoint(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        print(f"modelpin: paused at {step}", file=sys.stderr, flush=True)
        time.sleep(3600)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o644)


def write_unit(out: Path, files: dict[str, bytes], label: str) -> Path:
    """Publish ``files`` (name -> bytes) as the new content of ``out``; returns the
    release folder. Raises ``OSError``; nothing visible changes unless it succeeds."""
    if out.exists() and not out.is_symlink() and not out.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(out))
    releases = releases_dir(out)
    releases.mkdir(parents=True, exist_ok=True)
    with open(releases / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # two compiles into one out take turns
        _sweep(releases, keep=None)
        stage = releases / f"staging-{os.getpid()}-{time.time_ns()}"
        stage.mkdir()
        _checkpoint("staging")
        for name, data in files.items():
            _write(stage / name, data)
        _fsync_dir(stage)
        _checkpoint("staged")
        release = releases / f"{label}-{time.time_ns()}"
        os.rename(stage, release)
        _fsync_dir(releases)
        _checkpoint("released")
        if out.is_dir() and not out.is_symlink():
            os.rename(out, releases / f"legacy-{time.time_ns()}")  # once, from a plain folder
        link = releases / f"link-{os.getpid()}-{time.time_ns()}"
        os.symlink(os.path.join(releases.name, release.name), link)
        _checkpoint("linked")
        os.replace(link, out)
        _fsync_dir(out.parent)
        _checkpoint("flipped")
        _sweep(releases, keep=release.name)
    return release


def _sweep(releases: Path, keep: str | None) -> None:
    """Remove staging folders and links left by a killed compile; with ``keep`` (the
    release just published), also prune releases beyond the last ``KEEP``."""
    entries = [e for e in os.scandir(releases) if e.name != ".lock"]
    for entry in entries:
        if entry.name.startswith(("staging-", "link-")):
            _remove(Path(entry.path))
    if keep is None:
        return
    published = sorted((e for e in entries if not e.name.startswith(("staging-", "link-"))),
                       key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns)
    old = [e for e in published if e.name != keep][: max(len(published) - KEEP, 0)]
    for entry in old:
        _remove(Path(entry.path))


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
