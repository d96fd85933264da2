"""A persistent compile cache: parsed files, tenant fragments and a stat index, on disk.

What is cached, and why it is safe:

- ``parse``: the loader's ``ParseCache``, keyed by (path, git blob id). A file's entry is
  a function of its bytes, so a content-hash key cannot go stale.
- ``fragments``: canonical bytes of tenant payload objects, keyed by
  ``routing.payload.fragment_key`` (the tenant file's blob id and the policy values the
  fragment contains).
- ``stat``: path -> (mtime_ns, ctime_ns, size, inode, blob id), as git's index keeps it,
  so an unchanged file is not even read. An entry is recorded only for a file whose
  mtime is older than ``RACY_NS`` before the moment it was looked at: a file written
  in the same timestamp granule as the look could change again without a visible stat
  change ("racy git"); such files are hashed again next time.

The file is a pickle with a version header. Anything unexpected when reading it (other
version, truncated, corrupt, unreadable) means an empty cache and, for real damage, a
warning: a cache never makes a compile fail. It is written atomically (temp file in the
same directory, fsync, ``os.replace``). The cache directory must be as trusted as the
repository itself: unpickling runs code.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from modelpin import __version__
from modelpin.load.fleet import ParseCache
from modelpin.load.tree import DirectoryTree, blob_id_of

CACHE_FILE = "compile-cache.pickle"
CACHE_FORMAT = 1
RACY_NS = 2_000_000_000
StatEntry = tuple[int, int, int, int, str]


def _stamp() -> dict[str, Any]:
    """What must match for a cache to be read: our format and the code that pickled it."""
    return {
        "magic": "modelpin-compile-cache",
        "format": CACHE_FORMAT,
        "modelpin": __version__,
        "pydantic": pydantic.VERSION,
        "python": list(sys.version_info[:2]),
    }


@dataclass
class CompileCache:
    parse: ParseCache = field(default_factory=dict)
    fragments: dict[str, bytes] = field(default_factory=dict)
    stat: dict[str, StatEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, warn: Callable[[str], None]) -> CompileCache:
        path = directory / CACHE_FILE
        try:
            with open(path, "rb") as fh:
                stamp = pickle.load(fh)
                if stamp != _stamp():
                    return cls()  # another version wrote it: silently start over
                body = pickle.load(fh)
        except FileNotFoundError:
            return cls()
        except Exception as exc:
            warn(f"ignoring the compile cache {path}: {type(exc).__name__}: {exc}")
            return cls()
        if not (
            isinstance(body, dict)
            and isinstance(body.get("parse"), dict)
            and isinstance(body.get("fragments"), dict)
            and isinstance(body.get("stat"), dict)
        ):
            warn(f"ignoring the compile cache {path}: unexpected content")
            return cls()
        return cls(body["parse"], body["fragments"], body["stat"])

    def save(self, directory: Path) -> None:
        """Write atomically; raises ``OSError`` (callers warn and go on)."""
        directory.mkdir(parents=True, exist_ok=True)
        body = {"parse": self.parse, "fragments": self.fragments, "stat": self.stat}
        fd, tmp = tempfile.mkstemp(prefix=".compile-cache.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(_stamp(), fh, protocol=pickle.HIGHEST_PROTOCOL)
                pickle.dump(body, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, directory / CACHE_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def retain(self, parse_keys: set[tuple[str, str]], fragment_keys: set[str]) -> None:
        """Drop entries this compile did not use (deleted or changed files)."""
        self.parse = {k: v for k, v in self.parse.items() if k in parse_keys}
        self.fragments = {k: v for k, v in self.fragments.items() if k in fragment_keys}


class StatIndexedTree:
    """A ``DirectoryTree`` that knows each file's blob id, reading only changed files.

    ``blob_id(path)`` trusts the stat index when the file's (mtime, ctime, size, inode)
    are those recorded; otherwise it reads and hashes the file and keeps the bytes for
    the ``read`` that follows. The index is updated in place (``stat`` of the cache).
    """

    def __init__(self, tree: DirectoryTree, stat_index: dict[str, StatEntry]) -> None:
        self.tree = tree
        self.label = tree.label
        self.index = stat_index
        self.reads = 0
        self._pending: dict[str, bytes] = {}
        self._blobs: dict[str, str] = {}
        self._root = str(tree.root)

    def files(self) -> list[str]:
        return self.tree.files()

    def read(self, path: str) -> bytes:
        data = self._pending.pop(path, None)
        if data is None:
            self.reads += 1
            data = self.tree.read(path)
        return data

    def blob_id(self, path: str) -> str:
        known = self._blobs.get(path)
        if known is not None:
            return known
        looked_at = time.time_ns()
        st = os.stat(os.path.join(self._root, path))
        sig = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        entry = self.index.get(path)
        if entry is not None and entry[:4] == sig:
            blob = entry[4]
        else:
            data = self.read(path)
            blob = blob_id_of(data)
            self._pending[path] = data
            if max(st.st_mtime_ns, st.st_ctime_ns) < looked_at - RACY_NS and len(data) == (
                st.st_size
            ):
                self.index[path] = (*sig, blob)
            else:
                self.index.pop(path, None)
        self._blobs[path] = blob
        return blob

    def prune(self) -> None:
        """Forget index entries of files that are gone."""
        live = set(self._blobs)
        for path in [p for p in self.index if p not in live]:
            del self.index[path]
