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

Where and how (SPEC 2.1 rule 8): the cache lives outside the work tree, in
``$XDG_CACHE_HOME/modelpin/<repo id>`` (default ``~/.cache``; see ``cache_root``), never
in the repository, so a commit cannot plant one. It is JSON (``load/plain.py``), never a
pickle: every model is rebuilt by validating plain data again. Its header carries
``code_version()``, a hash of modelpin's own source files: any change to a rule, a
model or the loader starts an empty cache. Anything unexpected when reading it (other
version, truncated, corrupt, unreadable) means an empty cache and, for real damage, a
warning: a cache never makes a command fail. It is written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from modelpin import __version__
from modelpin.diagnostics import Diagnostic
from modelpin.load import plain
from modelpin.load.document import Document
from modelpin.load.fleet import ParseCache
from modelpin.load.layout import model_for
from modelpin.load.tree import DirectoryTree, Refused, blob_id_of

CACHE_FILE = "compile-cache.json"
CACHE_FORMAT = 4
RACY_NS = 2_000_000_000
StatEntry = tuple[int, int, int, int, str]
StatSig = tuple[int, int, int, int]
"""(mtime_ns, ctime_ns, size, inode), as git's index keeps them."""
CACHE_ENV = "XDG_CACHE_HOME"


@functools.cache
def code_version() -> str:
    """sha256 over modelpin's own source files (path and bytes): a cache written by
    other code, even an uncommitted edit of one rule, is never read."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_root(repo: Path) -> Path:
    """``$XDG_CACHE_HOME/modelpin/<repo id>`` (``~/.cache`` when unset or relative, as
    the XDG spec says): one folder per repository, named by its resolved path."""
    base = os.environ.get(CACHE_ENV, "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    resolved = str(Path(repo).resolve())
    name = re.sub(r"[^a-z0-9._-]+", "-", Path(resolved).name.lower()).strip("-.") or "repo"
    return root / "modelpin" / f"{name[:40]}-{hashlib.sha256(resolved.encode()).hexdigest()[:16]}"


def stamp() -> dict[str, Any]:
    """What must match for a cache to be read: our format and the code that wrote it."""
    return {
        "magic": "modelpin-cache",
        "format": CACHE_FORMAT,
        "modelpin": __version__,
        "code": code_version(),
        "pydantic": pydantic.VERSION,
        "python": list(sys.version_info[:2]),
    }


Entry = tuple[Document, pydantic.BaseModel | None, list[Diagnostic]]
PlainEntry = list[Any]


def _diag_plain(d: Diagnostic) -> list[Any]:
    return [d.file, d.line, d.col, d.code, d.severity, d.message, d.hint]


def _diag_value(item: list[Any]) -> Diagnostic:
    file, line, col, code, severity, message, hint = item
    return Diagnostic(file, line, col, code, severity, message, hint)


def _pack(entry: Entry) -> PlainEntry:
    """An entry as plain data: the validated value is rebuilt from the document's data
    on unpacking (validation is a pure function of the data, and the model class is the
    one the layout gives the path). The data is kept as its own JSON text
    (``plain.encode_text``): written by the C encoder, and decoded by the C decoder
    only for the entries a run uses."""
    doc, value, own = entry
    return [doc.text, plain.encode_text(doc.data), [_diag_plain(d) for d in doc.diagnostics],
            [_diag_plain(d) for d in own], value is not None]


def _unpack(path: str, item: PlainEntry) -> Entry:
    text, raw, doc_diagnostics, own, valid = item
    if not isinstance(raw, str):
        raise ValueError("cache entry data is not JSON text")
    data = plain.decode_text(raw)
    model = model_for(path)
    value = model.model_validate(data) if valid and model is not None else None
    return (Document(path, text, data, [_diag_value(d) for d in doc_diagnostics]), value,
            [_diag_value(d) for d in own])


def persisted(path: str) -> bool:
    """Whether the parse of ``path`` is written to disk. JSON files (signed evidence)
    are not: ``document.parse_json`` reads one faster than its entry would decode."""
    return not path.endswith(".json")


def _key(path: str, blob: str) -> str:
    return f"{blob}:{path}"


class PackedParseCache(ParseCache):
    """A ``ParseCache`` whose persisted entries stay plain data until the loader asks
    (an entry is validated into its model only when used)."""

    def __init__(self, packed: dict[str, PlainEntry] | None = None) -> None:
        super().__init__()
        self.packed: dict[str, PlainEntry] = packed or {}
        self.added = 0

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key)
        if value is None:
            data = self.packed.get(_key(*key))
            if data is None:
                return default
            try:
                value = _unpack(key[0], data)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError):
                # A damaged or tampered entry (pydantic refuses what is not a valid
                # model): a miss, so the file is read and parsed again.
                del self.packed[_key(*key)]
                return default
            dict.__setitem__(self, key, value)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        if persisted(key[0]) and _key(*key) not in self.packed:
            self.added += 1
        dict.__setitem__(self, key, value)

    def pack(self, keep: set[tuple[str, str]]) -> dict[str, PlainEntry]:
        """The entries of ``keep`` that are ``persisted``, as plain data."""
        out: dict[str, PlainEntry] = {}
        for key in keep:
            if not persisted(key[0]):
                continue
            name = _key(*key)
            data = self.packed.get(name)
            if data is None and key in self:
                data = _pack(dict.__getitem__(self, key))
            if data is not None:
                out[name] = data
        return out


@dataclass
class CompileCache:
    parse: PackedParseCache = field(default_factory=PackedParseCache)
    fragments: dict[str, bytes] = field(default_factory=dict)
    stat: dict[str, StatEntry] = field(default_factory=dict)
    loaded: tuple[int, int] = (0, 0)
    """(parse, fragments) entry counts as read: a save is skipped if nothing changed."""
    stat_loaded: dict[str, StatEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, warn: Callable[[str], None]) -> CompileCache:
        path = directory / CACHE_FILE
        try:
            with open(path, "rb") as fh:
                doc = plain.loads_raw(fh.read())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, RecursionError) as exc:  # damage means "no cache"
            warn(f"ignoring the compile cache {path}: {type(exc).__name__}: {exc}")
            return cls()
        if not isinstance(doc, dict) or doc.get("stamp") != stamp():
            return cls()  # another version wrote it: silently start over
        try:
            parse = {str(k): list(v) for k, v in doc["parse"].items()}
            fragments = {str(k): v.encode("utf-8") for k, v in doc["fragments"].items()}
            stat = {str(k): (int(a), int(b), int(c), int(d), str(e))
                    for k, (a, b, c, d, e) in doc["stat"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            warn(f"ignoring the compile cache {path}: unexpected content")
            return cls()
        cache = cls(PackedParseCache(parse), fragments, stat)
        cache.loaded = cache._counts()
        cache.stat_loaded = dict(stat)
        return cache

    def _counts(self) -> tuple[int, int]:
        return (len(self.parse.packed), len(self.fragments))

    def save(self, directory: Path, parse_keys: set[tuple[str, str]],
             fragment_keys: set[str] | None = None) -> bool:
        """Keep the entries this run used and write atomically, unless nothing changed.

        Returns whether a file was written; raises ``OSError`` (callers warn, go on).
        """
        packed = self.parse.pack(parse_keys)
        fragments = (self.fragments if fragment_keys is None
                     else {k: v for k, v in self.fragments.items() if k in fragment_keys})
        if (packed.keys() == self.parse.packed.keys() and fragments.keys() == self.fragments.keys()
                and self.parse.added == 0 and self._counts() == self.loaded
                and self.stat == self.stat_loaded and (directory / CACHE_FILE).is_file()):
            return False
        doc = {"stamp": stamp(), "parse": packed,
               "fragments": {k: v.decode("utf-8") for k, v in fragments.items()},
               "stat": self.stat}
        plain.write_atomically(directory / CACHE_FILE, plain.dumps(doc))
        return True


class StatIndexedTree:
    """A ``DirectoryTree`` that knows each file's blob id, reading only changed files.

    ``blob_id(path)`` trusts the stat index when the file's (mtime, ctime, size, inode)
    are those recorded; otherwise it reads and hashes the file and keeps the bytes for
    the ``read`` that follows. The index is updated in place (``stat`` of the cache).
    ``stats`` are signatures already taken (``snapshot.signature_digest``), at or after
    ``taken_at``: each is used once, in place of a second ``stat`` of the file.
    """

    def __init__(self, tree: DirectoryTree, stat_index: dict[str, StatEntry],
                 stats: dict[str, StatSig] | None = None, taken_at: int = 0) -> None:
        self.tree = tree
        self.label = tree.label
        self.index = stat_index
        self._stats = dict(stats or {})
        self._taken_at = taken_at
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
        taken = self._stats.pop(path, None)
        if taken is not None:
            looked_at, sig = self._taken_at, taken
        else:
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
            if max(sig[0], sig[1]) < looked_at - RACY_NS and len(data) == sig[2]:
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
