"""Where config files come from: a directory on disk, or a commit in a git repository.

Both list repo-relative POSIX paths under the config folders and read their bytes. A
git tree is read straight from the object database (no checkout), so ``check`` can
compare two commits of a repository whatever is in its work tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

CONFIG_DIRS = ("policies", "model_versions", "tenants", "evidence", "bets")


class TreeError(Exception):
    """The tree cannot be read at all (missing directory, unknown revision)."""


class SourceTree(Protocol):
    label: str

    def files(self) -> list[str]:
        """Repo-relative POSIX paths of every file under the config folders, sorted."""
        ...

    def read(self, path: str) -> bytes: ...


def _walk(directory: str, rel: str, found: list[str]) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, f"{rel}/{entry.name}", found)
            elif entry.is_file():
                found.append(f"{rel}/{entry.name}")


@dataclass
class DirectoryTree:
    root: Path
    label: str = ""
    _listing: list[str] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.label:
            self.label = str(self.root)
        if not self.root.is_dir():
            raise TreeError(f"{self.root} is not a directory")

    def files(self) -> list[str]:
        """Listed once per tree (a scandir walk, relative paths built as strings)."""
        if self._listing is None:
            found: list[str] = []
            root = str(self.root)
            for top in CONFIG_DIRS:
                if os.path.isdir(os.path.join(root, top)):
                    _walk(os.path.join(root, top), top, found)
            found.sort()
            self._listing = found
        return list(self._listing)

    def read(self, path: str) -> bytes:
        with open(os.path.join(self.root, path), "rb") as fh:
            return fh.read()


@dataclass
class GitTree:
    """The config folders of one commit, read with ``git ls-tree`` and ``git cat-file``."""

    repo: Path
    rev: str
    label: str = ""
    commit: str = field(init=False, default="")
    commit_time: datetime = field(init=False, default=datetime.min.replace(tzinfo=UTC))
    _blobs: dict[str, str] = field(init=False, default_factory=dict, repr=False)
    _data: dict[str, bytes] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.repo = Path(self.repo)
        if not self.label:
            self.label = self.rev
        out = self._git("rev-parse", "--verify", "--quiet", f"{self.rev}^{{commit}}")
        if not out.strip():
            raise TreeError(f"unknown git revision {self.rev!r} in {self.repo}")
        self.commit = out.strip()
        stamp = self._git("show", "-s", "--format=%ct", self.commit).strip()
        self.commit_time = datetime.fromtimestamp(int(stamp), tz=UTC)
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", self.commit, "--", *CONFIG_DIRS)
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob":
                self._blobs[path] = sha

    def _git(self, *args: str) -> str:
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), *args],
                capture_output=True,
                check=False,
            )
        except FileNotFoundError:
            raise TreeError("git is not installed") from None
        if proc.returncode != 0 and args[0] != "rev-parse":
            raise TreeError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode("utf-8", errors="replace")

    def files(self) -> list[str]:
        return sorted(self._blobs)

    def blob_id(self, path: str) -> str:
        return self._blobs[path]

    def read(self, path: str) -> bytes:
        if self._data is None:
            self._data = dict(self._read_all())
        return self._data[path]

    def _read_all(self) -> Iterator[tuple[str, bytes]]:
        """All blobs through one ``git cat-file --batch`` process."""
        paths = sorted(self._blobs)
        request = "".join(f"{self._blobs[p]}\n" for p in paths).encode()
        proc = subprocess.run(
            ["git", "-C", str(self.repo), "cat-file", "--batch"],
            input=request,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise TreeError(f"git cat-file failed: {proc.stderr.decode(errors='replace')}")
        out = proc.stdout
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            _sha, _kind, size = out[pos:header_end].split()
            start = header_end + 1
            end = start + int(size)
            yield path, out[start:end]
            pos = end + 1


def blob_id_of(data: bytes) -> str:
    """The git blob id of ``data``: a content hash shared with git's object store."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
