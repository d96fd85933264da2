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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel

from modelpin import __version__
from modelpin.diagnostics import Diagnostic
from modelpin.load.document import Document
from modelpin.load.fleet import ParseCache
from modelpin.load.tree import DirectoryTree, Refused, blob_id_of

CACHE_FILE = "compile-cache.pickle"
CACHE_FORMAT = 2
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


Entry = tuple[Document, BaseModel | None, list[Diagnostic]]


def _pack(entry: Entry) -> bytes:
    """An entry as (model class, document, diagnostics): the validated value is rebuilt
    from the document's data on unpacking. Validation is a pure function of the data,
    and pydantic validates a dict about twice as fast as it unpickles the same model."""
    doc, value, own = entry
    cls = type(value) if value is not None else None
    return pickle.dumps((cls, doc.path, doc.text, doc.data, doc.diagnostics, own),
                        protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes) -> Entry:
    cls, path, text, raw, doc_diagnostics, own = pickle.loads(data)
    value = cls.model_validate(raw) if cls is not None else None
    return Document(path, text, raw, doc_diagnostics), value, own


class PackedParseCache(ParseCache):
    """A ``ParseCache`` whose persisted entries stay pickled until the loader asks.

    Each entry is pickled on its own, so saving reuses the bytes of every entry that was
    read from disk (content-addressed: an entry under a key never changes) and pickles
    only new ones; unpickling 10,000 models on every save would cost more than the
    compile it speeds up.
    """

    def __init__(self, packed: dict[tuple[str, str], bytes] | None = None) -> None:
        super().__init__()
        self.packed: dict[tuple[str, str], bytes] = packed or {}
        self.added = 0

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key)
        if value is None:
            data = self.packed.get(key)
            if data is None:
                return default
            value = _unpack(data)
            dict.__setitem__(self, key, value)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self.packed:
            self.added += 1
        dict.__setitem__(self, key, value)

    def pack(self, keep: set[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        out: dict[tuple[str, str], bytes] = {}
        for key in keep:
            data = self.packed.get(key)
            if data is None and key in self:
                data = _pack(dict.__getitem__(self, key))
            if data is not None:
                out[key] = data
        return out


@dataclass
class CompileCache:
    parse: PackedParseCache = field(default_factory=PackedParseCache)
    fragments: dict[str, bytes] = field(default_factory=dict)
    stat: dict[str, StatEntry] = field(default_factory=dict)
    loaded: tuple[int, int, int] = (0, 0, 0)
    """(parse, fragments, stat) entry counts as read: a save is skipped if nothing changed."""

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
        except Exception as exc:  # any damage means "no cache"
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
        cache = cls(PackedParseCache(body["parse"]), body["fragments"], body["stat"])
        cache.loaded = cache._counts()
        return cache

    def _counts(self) -> tuple[int, int, int]:
        return (len(self.parse.packed), len(self.fragments), hash(frozenset(self.stat.items())))

    def save(self, directory: Path, parse_keys: set[tuple[str, str]],
             fragment_keys: set[str] | None = None) -> bool:
        """Keep the entries this compile used and write atomically, unless nothing changed.

        Returns whether a file was written; raises ``OSError`` (callers warn, go on).
        """
        packed = self.parse.pack(parse_keys)
        fragments = (self.fragments if fragment_keys is None
                     else {k: v for k, v in self.fragments.items() if k in fragment_keys})
        if (packed.keys() == self.parse.packed.keys() and fragments.keys() == self.fragments.keys()
                and self.parse.added == 0 and self._counts() == self.loaded
                and (directory / CACHE_FILE).is_file()):
            return False
        body = {"parse": packed, "fragments": fragments, "stat": self.stat}
        write_pickles(directory / CACHE_FILE, (_stamp(), body))
        return True


def write_pickles(path: Path, frames: Sequence[object]) -> None:
    """Pickle ``frames`` one after another into ``path``, atomically (temp file in the
    same directory, fsync, rename); raises ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for frame in frames:
                pickle.dump(frame, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        self._pending: dict[str, bytes] = {}
        self._blobs: dict[str, str] = {}
        self._root = str(tree.root)

    def files(self) -> list[str]:
        return self.tree.files()

    def refused(self) -> list[Refused]:
        return self.tree.refused()

    def read(self, path: str) -> bytes:
        data = self._pending.pop(path, None)
        if data is None:
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
        self._pending.clear()
        live = set(self._blobs)
        for path in [p for p in self.index if p not in live]:
            del self.index[path]
