"""Where config files come from: a directory on disk, or a commit in a git repository.

Both list repo-relative POSIX paths under the config folders and read their bytes. A
git tree is read straight from the object database (no checkout), so ``check`` can
compare two commits of a repository whatever is in its work tree.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

CONFIG_DIRS = ("policies", "model_versions", "tenants", "evidence", "bets")
COMMITTED_CACHE = ".modelpin/cache"
"""Where modelpin once kept its caches, inside the work tree. Nothing reads it any more;
a commit that carries files there is refused (a planted pickle must never look like a
cache to anyone, SPEC 2.1 rule 8)."""


class TreeError(Exception):
    """The tree cannot be read at all (missing directory, unknown revision)."""


@dataclass(frozen=True, order=True)
class Refused:
    """An entry of a config folder that is not a regular file: never read, never followed.

    ``what`` names the kind ("a symbolic link", "a submodule", "a FIFO", ...). The target
    of a link is deliberately not kept: a link to ``/proc/self/environ`` must not make
    the gate print it.
    """

    path: str
    what: str


class SourceTree(Protocol):
    label: str

    def files(self) -> list[str]:
        """Repo-relative POSIX paths of every regular file under the config folders, sorted."""
        ...

    def refused(self) -> list[Refused]:
        """Entries under the config folders that are not regular files (sorted)."""
        ...

    def read(self, path: str) -> bytes: ...


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _walk(directory: str, rel: str, found: list[str], refused: list[Refused]) -> None:
    """Every entry, hidden ones included (the layout rejects them by name): regular files
    are listed, directories entered (never through a link), anything else refused."""
    with os.scandir(directory) as entries:
        for entry in entries:
            path = f"{rel}/{entry.name}"
            if entry.is_symlink():
                refused.append(Refused(path, "a symbolic link"))
            elif entry.is_dir(follow_symlinks=False):
                _walk(entry.path, path, found, refused)
            elif entry.is_file(follow_symlinks=False):
                found.append(path)
            else:
                refused.append(Refused(path, _kind_of(entry.stat(follow_symlinks=False).st_mode)))


@dataclass
class DirectoryTree:
    """The config folders of a directory. Only regular files are listed and read:
    symlinks (to files, to folders, dangling), FIFOs, sockets and devices are
    ``refused()``, never followed, and ``read`` opens with ``O_NOFOLLOW`` and checks
    the opened file is regular, so a file swapped for a link after the walk is not read
    either."""

    root: Path
    label: str = ""
    _listing: list[str] | None = field(init=False, default=None, repr=False)
    _refused: list[Refused] = field(init=False, default_factory=list, repr=False)

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
            refused: list[Refused] = []
            root = str(self.root)
            for top in CONFIG_DIRS:
                try:
                    mode = os.lstat(os.path.join(root, top)).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(mode):
                    _walk(os.path.join(root, top), top, found, refused)
                else:
                    refused.append(Refused(top, _kind_of(mode)))
            found.sort()
            refused.sort()
            self._listing = found
            self._refused = refused
        return list(self._listing)

    def refused(self) -> list[Refused]:
        self.files()
        return list(self._refused)

    def read(self, path: str) -> bytes:
        fd = os.open(os.path.join(self.root, path), os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{path} is no longer a regular file")
            with os.fdopen(fd, "rb") as fh:
                fd = -1
                return fh.read()
        finally:
            if fd >= 0:
                os.close(fd)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
"""A FIFO put in place of a file after the walk must not block the open."""

GIT_MODES = {"120000": "a symbolic link", "160000": "a submodule"}


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
    _refused: list[Refused] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.repo = Path(self.repo)
        if not self.label:
            self.label = self.rev
        self._refuse_ambiguous_name()
        out = self._git("rev-parse", "--verify", "--quiet", f"{self.rev}^{{commit}}")
        if not out.strip():
            raise TreeError(f"unknown git revision {self.rev!r} in {self.repo}")
        self.commit = out.strip()
        stamp = self._git("show", "-s", "--format=%ct", self.commit).strip()
        self.commit_time = datetime.fromtimestamp(int(stamp), tz=UTC)
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", self.commit, "--", *CONFIG_DIRS,
                            COMMITTED_CACHE)
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha = meta.split()
            if path == COMMITTED_CACHE or path.startswith(COMMITTED_CACHE + "/"):
                self._refused.append(Refused(path, "a committed modelpin cache"))
            elif kind == "blob" and mode in ("100644", "100755"):
                self._blobs[path] = sha
            else:
                self._refused.append(Refused(path, GIT_MODES.get(mode, f"a git {kind}")))
        self._refused.sort()

    def _refuse_ambiguous_name(self) -> None:
        """A short ref name that several refs answer to (a tag ``main`` beside the branch
        ``main``, a branch ``origin/main`` beside the remote-tracking ref) is refused:
        git would pick the tag, so whoever can push a tag would choose the base the gate
        judges by (SPEC 2.1 rule 1)."""
        name = self.rev
        for mark in "^~:@":
            name = name.split(mark, 1)[0]
        if not name or name.startswith("refs/") or name.startswith("-"):
            return
        spelled = [f"refs/{name}", f"refs/tags/{name}", f"refs/heads/{name}",
                   f"refs/remotes/{name}", f"refs/remotes/{name}/HEAD"]
        listing = self._git("for-each-ref", "--format=%(refname) %(objectname) %(*objectname)",
                            *spelled)
        commits: dict[str, str] = {}
        for line in listing.splitlines():
            ref, _, objects = line.partition(" ")
            if ref in spelled:
                peeled = objects.split()
                commits[ref] = peeled[-1] if peeled else ""
        if len(set(commits.values())) > 1:
            raise TreeError(
                f"revision {name!r} is ambiguous: {', '.join(sorted(commits))} point to "
                "different commits; name the ref in full (e.g. refs/heads/main or "
                "refs/remotes/origin/main)")

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

    def refused(self) -> list[Refused]:
        return list(self._refused)

    def blob_id(self, path: str) -> str:
        return self._blobs[path]

    def read(self, path: str) -> bytes:
        if self._data is None:
            self._data = dict(self._read_all())
        return self._data[path]

    def read_some(self, paths: list[str]) -> dict[str, bytes]:
        """The bytes of ``paths`` only (one ``git cat-file`` process), unless the whole
        tree has been read already: for a few files when every other one came from a
        cache."""
        if self._data is not None:
            return {p: self._data[p] for p in paths}
        return dict(self._read_all(sorted(set(paths))))

    def _read_all(self, only: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """All blobs (or those of ``only``) through one ``git cat-file --batch`` process."""
        paths = sorted(self._blobs) if only is None else only
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
