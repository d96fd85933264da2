"""A snapshot of the last validated fleet, reused while no config file has changed.

``explain`` answers about one tenant, and a compile of an unchanged tree rebuilds the
same fleet: both pay for validating every file (seconds at 10,000 tenants) to learn
what the previous run already knew. The snapshot holds the previous ``LoadResult`` and,
per file, the stat signature git's index uses (mtime, ctime, size, inode) and the blob
id. It is reused only when the same files exist with the same signatures, the date the
cross-checks judged against (retirement, sunset) is the same, and the code that wrote
it is this one. A file modified within ``RACY_NS`` of the snapshot's writing could have
changed again without a visible stat change ("racy git"): such a snapshot is not
trusted. Anything unexpected in the file means "no snapshot". The snapshot is written
atomically; like the compile cache, its directory must be as trusted as the repo.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelpin.load.cache import RACY_NS, CompileCache, StatIndexedTree, _stamp, write_pickles
from modelpin.load.fleet import LoadResult, load_fleet
from modelpin.load.tree import DirectoryTree

SNAPSHOT_FILE = "fleet-snapshot.pickle"


@dataclass(frozen=True)
class Snapshot:
    result: LoadResult
    blobs: dict[str, str]


def signature_digest(tree: DirectoryTree) -> tuple[str, int]:
    """A digest of every config file's path and stat signature, and the newest mtime.

    As in git's racy check, the mtime decides whether a signature can be trusted: any
    later write sets a newer mtime. The ctime is part of the signature, so a write that
    restores the old mtime (``cp -p``, ``touch -d``) is still noticed."""
    prefix = str(tree.root) + os.sep
    stat = os.stat
    digest = hashlib.sha256()
    newest = 0
    for path in tree.files():
        st = stat(prefix + path)
        digest.update(f"{path}\0{st.st_mtime_ns} {st.st_ctime_ns} {st.st_size} "
                      f"{st.st_ino}\n".encode())
        newest = max(newest, st.st_mtime_ns)
    return digest.hexdigest(), newest


def lookup(digest: str, now: datetime, directory: Path, *,
           blobs: bool = False) -> Snapshot | None:
    """The snapshot for the tree whose signature digest is ``digest``, or None. The blob
    ids are read only when asked for (``compile`` needs them; ``explain`` does not)."""
    path = directory / SNAPSHOT_FILE
    enabled = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as fh:
            if pickle.load(fh) != _stamp():
                return None
            header = pickle.load(fh)
            if header != (now.date().isoformat(), digest):
                return None
            result = pickle.load(fh)
            ids = pickle.load(fh) if blobs else {}
    except Exception:  # missing, truncated, from another version: no snapshot
        return None
    finally:
        if enabled:
            gc.enable()
    if not isinstance(result, LoadResult) or not isinstance(ids, dict):
        return None
    return Snapshot(result, ids)


def store(digest: str, newest_mtime: int, now: datetime, directory: Path,
          result: LoadResult, blobs: dict[str, str]) -> None:
    """Write a snapshot of ``result`` under the signature ``digest`` taken *before* the
    files were read; raises ``OSError``. Nothing is written when a file changed within
    ``RACY_NS``: its signature could not tell a later edit in the same timestamp granule
    apart.
    """
    if newest_mtime >= time.time_ns() - RACY_NS:
        return
    flagged = {diag.file for diag in result.diagnostics}
    documents = {p: d for p, d in result.documents.items() if p in flagged}
    kept = LoadResult(result.fleet, result.diagnostics, documents, result.signals,
                      result.stats)
    write_pickles(directory / SNAPSHOT_FILE,
                  (_stamp(), (now.date().isoformat(), digest), kept, blobs))


@dataclass
class CachedLoad:
    """A load through the snapshot and, on a miss, the compile cache."""

    result: LoadResult
    blobs: dict[str, str]
    """Repo path -> git blob id of every config file."""
    cache: CompileCache | None
    """The compile cache read on a miss (the caller saves it); None on a hit."""
    tree: StatIndexedTree | None
    hit: bool


def load_cached(
    tree: DirectoryTree,
    now: datetime,
    directory: Path,
    warn: Callable[[str], None],
    progress: Callable[[int, int], None] | None = None,
    *,
    want_blobs: bool = True,
    write: bool = True,
) -> CachedLoad:
    """The fleet of ``tree`` at ``now``: from the snapshot when nothing changed, else
    loaded through the compile cache's stat index and parse cache, then snapshotted
    (``write``: pickling a large fleet costs a few tenths of a second, worth it for the
    interactive ``explain``, not for a compile that follows each commit)."""
    # The signature is taken before any file is read: a file edited while the fleet
    # loads then fails the next lookup instead of hiding behind its new stat.
    digest, newest = signature_digest(tree)
    snap = lookup(digest, now, directory, blobs=want_blobs)
    if snap is not None:
        return CachedLoad(snap.result, snap.blobs, None, None, True)
    enabled = gc.isenabled()
    gc.disable()
    try:
        cache = CompileCache.load(directory, warn)
    finally:
        if enabled:
            gc.enable()
    indexed = StatIndexedTree(tree, cache.stat)
    result = load_fleet(indexed, now, cache=cache.parse, progress=progress)
    blobs = {path: indexed.blob_id(path) for path in indexed.files()}
    if write and result.fleet is not None:
        try:
            store(digest, newest, now, directory, result, blobs)
        except OSError as exc:
            warn(f"cannot write the fleet snapshot to {directory}: {exc.strerror or exc}")
    return CachedLoad(result, blobs, cache, indexed, False)
