"""The bot's git adapter: one branch per proposal, built from the remote's main.

Commits are made with plumbing (a private index, ``commit-tree``, ``push sha:ref``), so
the checkout the bot runs in is never switched or modified. A branch the bot pushed
carries only commits with the ``Modelpin-Bot: 1`` trailer by the bot's identity; if
anyone else committed to it, the bot leaves it alone and says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

BOT_NAME = "modelpin-bot"
BOT_EMAIL = "modelpin-bot@users.noreply.github.com"
BOT_TRAILER = "Modelpin-Bot: 1"

BranchStatus = Literal["created", "updated", "unchanged", "foreign", "no-change"]


class GitAdapterError(Exception):
    """A git operation the bot needs failed (fetch, push...)."""


@dataclass(frozen=True)
class BranchResult:
    """What happened to the proposal branch.

    ``created``/``updated``: pushed a new commit. ``unchanged``: the remote branch already
    has exactly this change. ``foreign``: the branch has commits not made by the bot and
    was left alone (``foreign_commits`` lists them). ``no-change``: main already has it.
    """

    status: BranchStatus
    branch: str
    commit: str | None
    base: str
    foreign_commits: tuple[str, ...] = ()


def commit_message(subject: str, body: str, trailers: Mapping[str, str]) -> str:
    """A structured message: subject, body, then ``Key: value`` trailers (bot marker last)."""
    lines = [subject.strip(), ""]
    if body.strip():
        lines += [body.strip(), ""]
    lines += [f"{k}: {v}" for k, v in trailers.items()]
    lines.append(BOT_TRAILER)
    return "\n".join(lines) + "\n"


class ProposalGit:
    """Builds and pushes proposal branches for the repository at ``repo_path``."""

    def __init__(
        self,
        repo_path: Path,
        *,
        remote: str = "origin",
        main: str = "main",
        author_name: str = BOT_NAME,
        author_email: str = BOT_EMAIL,
    ) -> None:
        self.repo = git.Repo(repo_path)
        self.remote = remote
        self.main = main
        self.author_name = author_name
        self.author_email = author_email

    def fetch_main(self) -> str:
        """Fetch the remote's main; its commit (the base every proposal is built on)."""
        base = self._fetch(self.main)
        if base is None:
            raise GitAdapterError(f"remote {self.remote} has no branch {self.main}")
        return base

    def read(self, commit: str, path: str) -> str:
        """``path`` as ``commit`` has it (the remote main's text, not the checkout's)."""
        try:
            data = self.repo.git.show(f"{commit}:{path}", strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise GitAdapterError(f"{path} is not in {self.remote}/{self.main}: {exc}") from exc
        return str(data)

    def branch_text(self, branch: str, path: str) -> str | None:
        """``path`` on the remote's ``branch``, or None (no branch, or no such file)."""
        tip = self._fetch(branch)
        if tip is None:
            return None
        try:
            return str(self.repo.git.show(f"{tip}:{path}", strip_newline_in_stdout=False))
        except git.GitCommandError:
            return None

    def propose(
        self, branch: str, files: Mapping[str, str], message: str, *, base: str | None = None
    ) -> BranchResult:
        """Put ``files`` (repo-relative path -> new text) on ``branch`` over the remote main.

        ``base`` is the main commit the edit was built from (default: fetch it now); the
        branch is built on that commit, so a main that moved since cannot be reverted.
        """
        g = self.repo.git
        if base is None:
            base = self.fetch_main()
        tree = self._tree_with(base, files)
        if tree == g.rev_parse(f"{base}^{{tree}}"):
            return BranchResult("no-change", branch, None, base)

        existing = self._fetch(branch)
        if existing is not None:
            foreign = self._foreign_commits(base, existing)
            if foreign:
                return BranchResult("foreign", branch, existing, base, foreign)
            if self._has_files(existing, files):
                return BranchResult("unchanged", branch, existing, base)

        commit = self._commit(tree, base, message)
        lease = f"--force-with-lease=refs/heads/{branch}:{existing or ''}"
        try:
            g.push(self.remote, lease, f"{commit}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise GitAdapterError(f"push of {branch} to {self.remote} failed: {exc}") from exc
        return BranchResult("updated" if existing else "created", branch, commit, base)

    # --- plumbing ----------------------------------------------------------------------

    def _fetch(self, branch: str) -> str | None:
        """Fetch ``branch`` from the remote; its commit, or None if it does not exist."""
        g = self.repo.git
        try:
            listed = str(g.ls_remote("--heads", self.remote, f"refs/heads/{branch}"))
        except git.GitCommandError as exc:
            raise GitAdapterError(f"cannot reach remote {self.remote}: {exc}") from exc
        if not listed.strip():
            return None
        try:
            g.fetch(self.remote, f"+refs/heads/{branch}:refs/modelpin/remote/{branch}")
        except git.GitCommandError as exc:
            raise GitAdapterError(f"cannot fetch {branch} from {self.remote}: {exc}") from exc
        return str(g.rev_parse(f"refs/modelpin/remote/{branch}"))

    def _tree_with(self, base: str, files: Mapping[str, str]) -> str:
        g = self.repo.git
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            g.read_tree(base, env=env)
            for path, text in files.items():
                blob = self._blob(text)
                g.update_index("--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            return str(g.write_tree(env=env))

    def _blob(self, text: str) -> str:
        with tempfile.NamedTemporaryFile("wb", delete=False) as fh:
            fh.write(text.encode("utf-8"))
        try:
            return str(self.repo.git.hash_object("-w", fh.name))
        finally:
            os.unlink(fh.name)

    def _has_files(self, commit: str, files: Mapping[str, str]) -> bool:
        for path, text in files.items():
            try:
                current = self.repo.git.show(f"{commit}:{path}", strip_newline_in_stdout=False)
            except git.GitCommandError:
                return False
            if current != text:
                return False
        return True

    def _foreign_commits(self, base: str, tip: str) -> tuple[str, ...]:
        """Commits on the branch (not on main) that the bot did not make."""
        g = self.repo.git
        out = g.log("--format=%H%x00%ae%x00%B%x1e", f"{base}..{tip}")
        foreign = []
        for entry in out.split("\x1e"):
            if not entry.strip():
                continue
            sha, email, body = entry.strip("\n").split("\x00", 2)
            if email != self.author_email or BOT_TRAILER not in body.splitlines():
                foreign.append(sha)
        return tuple(foreign)

    def _commit(self, tree: str, parent: str, message: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": self.author_name,
            "GIT_AUTHOR_EMAIL": self.author_email,
            "GIT_COMMITTER_NAME": self.author_name,
            "GIT_COMMITTER_EMAIL": self.author_email,
        }
        with tempfile.NamedTemporaryFile("w", delete=False, encoding="utf-8") as fh:
            fh.write(message)
        try:
            return str(self.repo.git.commit_tree(tree, "-p", parent, "-F", fh.name, env=env))
        finally:
            os.unlink(fh.name)
