"""A load of the work tree that reads and hashes only what changed since the last run.

``explain`` answers about one tenant, and a compile of an unchanged tree rebuilds the
same fleet: both would pay for parsing every file (seconds at 10,000 tenants) to learn
what the previous run already knew. The snapshot (``fleet-snapshot.json`` next to the
compile cache, outside the work tree: ``load/cache.py``) records, for the whole tree, a
digest of every config path with its stat signature (mtime, ctime, size, inode, as git's
index keeps them) and the entries that are not regular files, plus each file's blob id.
When the digest matches, no file is read or hashed: the blob ids come from the snapshot
and every parsed file from the content-keyed parse cache. Models are always rebuilt by
validation and the cross-file checks always run again with this run's ``now``: a
snapshot saves parsing, never a judgement. A file modified within ``RACY_NS`` of the
snapshot's writing could change again without a visible stat change ("racy git"): no
snapshot is written then. Anything unexpected in the file means "no snapshot".
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelpin.load import plain
from modelpin.load.cache import CompileCache, StatIndexedTree, StatSig, stamp
from modelpin.load.fleet import LoadResult, load_fleet
from modelpin.load.tree import DirectoryTree, Refused

SNAPSHOT_FILE = "fleet-snapshot.json"
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Signature:
    """The stat signature of a work tree, taken before any file is read."""

    digest: str
    newest_mtime: int
    stats: dict[str, StatSig]
    """Path -> (mtime_ns, ctime_ns, size, inode) of every config file."""
    taken_at: int
    """``time.time_ns()`` before the first stat (the racy check's "looked at")."""


def signature_digest(tree: DirectoryTree) -> Signature:
    """A digest of every config file's path and stat signature (and of every refused
    entry), the newest mtime, and each file's stat (reused by ``StatIndexedTree``).

    As in git's racy check, the mtime decides whether a signature can be trusted: any
    later write sets a newer mtime. The ctime is part of the signature, so a write that
    restores the old mtime (``cp -p``, ``touch -d``) is still noticed."""
    taken_at = time.time_ns()
    prefix = str(tree.root) + os.sep
    stat = os.stat
    digest = hashlib.sha256()
    newest = 0
    stats: dict[str, StatSig] = {}
    for path in tree.files():
        st = stat(prefix + path)
        sig = stats[path] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        digest.update(f"{path}\0{sig[0]} {sig[1]} {sig[2]} {sig[3]}\n".encode())
        newest = max(newest, sig[0])
    for item in tree.refused():
        digest.update(f"refused\0{item.path}\0{item.what}\n".encode())
    return Signature(digest.hexdigest(), newest, stats, taken_at)


def lookup(digest: str, directory: Path) -> dict[str, str] | None:
    """The blob ids recorded for the tree whose signature digest is ``digest``, or None."""
    try:
        with open(directory / SNAPSHOT_FILE, "rb") as fh:
            doc = plain.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not (isinstance(doc, dict) and doc.get("stamp") == stamp()
            and doc.get("digest") == digest and isinstance(doc.get("blobs"), dict)):
        return None
    blobs: dict[str, str] = {}
    for key, value in doc["blobs"].items():
        if not (isinstance(key, str) and isinstance(value, str)):
            return None
        blobs[key] = value
    return blobs


def store(digest: str, newest_mtime: int, directory: Path, blobs: dict[str, str]) -> None:
    """Record ``blobs`` under the signature ``digest`` taken *before* the files were read;
    raises ``OSError``. Nothing is written when a file changed within ``RACY_NS``."""
    if newest_mtime >= time.time_ns() - RACY_NS:
        return
    plain.write_atomically(directory / SNAPSHOT_FILE,
                           plain.dumps({"stamp": stamp(), "digest": digest, "blobs": blobs}))


class SnapshotTree:
    """The work tree as the snapshot knows it: listing and blob ids without a stat or a
    read; a file missing from the parse cache is read from the directory."""

    def __init__(self, tree: DirectoryTree, blobs: dict[str, str]) -> None:
        self.tree = tree
        self.label = tree.label
        self._blobs = blobs

    def files(self) -> list[str]:
        return self.tree.files()

    def refused(self) -> list[Refused]:
        return self.tree.refused()

    def blob_id(self, path: str) -> str:
        return self._blobs[path]

    def read(self, path: str) -> bytes:
        return self.tree.read(path)


@dataclass
class CachedLoad:
    """A load through the snapshot and the compile cache."""

    result: LoadResult
    blobs: dict[str, str]
    """Repo path -> git blob id of every config file."""
    cache: CompileCache
    """The compile cache that was read (the caller saves it)."""
    tree: StatIndexedTree | SnapshotTree
    hit: bool
    """Whether the snapshot matched (no file was read or hashed)."""


def load_cached(
    tree: DirectoryTree,
    now: datetime,
    directory: Path,
    warn: Callable[[str], None],
    progress: Callable[[int, int], None] | None = None,
    *,
    write: bool = True,
) -> CachedLoad:
    """The fleet of ``tree`` at ``now``, parsing only the files that changed."""
    # The signature is taken before any file is read: a file edited while the fleet
    # loads then fails the next lookup instead of hiding behind its new stat.
    signature = signature_digest(tree)
    digest, newest = signature.digest, signature.newest_mtime
    known = lookup(digest, directory)
    enabled = gc.isenabled()
    gc.disable()
    try:
        cache = CompileCache.load(directory, warn)
    finally:
        if enabled:
            gc.enable()
    if known is not None and set(known) == set(tree.files()):
        view = SnapshotTree(tree, known)
        result = load_fleet(view, now, cache=cache.parse, progress=progress)
        return CachedLoad(result, known, cache, view, True)
    indexed = StatIndexedTree(tree, cache.stat, signature.stats, signature.taken_at)
    result = load_fleet(indexed, now, cache=cache.parse, progress=progress)
    blobs = {path: indexed.blob_id(path) for path in indexed.files()}
    if write:
        try:
            store(digest, newest, directory, blobs)
        except OSError as exc:
            warn(f"cannot write the fleet snapshot to {directory}: {exc.strerror or exc}")
    return CachedLoad(result, blobs, cache, indexed, False)
