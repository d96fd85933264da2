"""The bot's git adapter: one branch per proposal, built from the remote's main.

Commits are made with plumbing (a private index, ``commit-tree``, ``push sha:ref``), so
the checkout the bot runs in is never switched or modified. A branch the bot pushed
carries only commits with the ``Modelpin-Bot: 1`` trailer by the bot's identity; if
anyone else committed to it, the bot leaves it alone and says so.

With a :class:`~modelpin.bot.git_auth.GitToken` (the GitHub client's token or App), every
command that talks to an HTTPS remote on GitHub's host sends that token
(:mod:`modelpin.bot.git_auth`: in the git process's environment only); other remotes use
their own credentials.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

from .git_auth import REFUSED, GitToken, TokenUnavailable, auth_env, config_url

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
        token: GitToken | None = None,
    ) -> None:
        self.repo = git.Repo(repo_path)
        self.remote = remote
        self.main = main
        self.author_name = author_name
        self.author_email = author_email
        self.token = token
        self._urls: tuple[str, ...] | None = None

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
        self._remote_git(f"push of {branch} to {self.remote} failed", "push", self.remote,
                         lease, f"{commit}:refs/heads/{branch}")
        return BranchResult("updated" if existing else "created", branch, commit, base)

    # --- plumbing ----------------------------------------------------------------------

    def _fetch(self, branch: str) -> str | None:
        """Fetch ``branch`` from the remote; its commit, or None if it does not exist."""
        listed = self._remote_git(f"cannot reach remote {self.remote}", "ls-remote",
                                  "--heads", self.remote, f"refs/heads/{branch}")
        if not listed.strip():
            return None
        self._remote_git(f"cannot fetch {branch} from {self.remote}", "fetch", self.remote,
                         f"+refs/heads/{branch}:refs/modelpin/remote/{branch}")
        return str(self.repo.git.rev_parse(f"refs/modelpin/remote/{branch}"))

    def _remote_git(self, failure: str, command: str, *args: str) -> str:
        """Run a git command that talks to the remote, with the token when it applies; a
        refused App token is replaced once (revoked early), like the REST client does."""
        for attempt in (1, 2):
            env = self._auth_env()
            try:
                return str(getattr(self.repo.git, command.replace("-", "_"))(*args, env=env))
            except git.GitCommandError as exc:
                refused = env is not None and REFUSED.search(str(exc.stderr)) is not None
                if refused and attempt == 1 and self.token and self.token.invalidate:
                    self.token.invalidate()
                    continue
                hint = (f" (the remote refused the GitHub token sent as {self.token.host} "
                        "credentials: it may lack `contents: write` on the repository, or "
                        "have expired)" if refused and self.token else "")
                raise GitAdapterError(f"{failure}{hint}: {exc}") from exc
        raise AssertionError("unreachable")

    def _auth_env(self) -> dict[str, str] | None:
        """The git environment carrying the token, or None (no token, or a remote it is
        not for: used as before)."""
        if self.token is None:
            return None
        if self._urls is None:
            self._urls = tuple(u for u in (config_url(url, self.token.host)
                                           for url in self._remote_urls()) if u)
        if not self._urls:
            return None
        try:
            return auth_env(self._urls, self.token.token())
        except (TokenUnavailable, ValueError) as exc:  # e.g. the App's exchange failed
            raise GitAdapterError(f"no GitHub token for {self.remote}: {exc}") from None

    def _remote_urls(self) -> list[str]:
        """Every URL git may use for the remote (fetch and push URLs; ``insteadOf``
        applied); a remote given as a URL is its own."""
        urls: list[str] = []
        for extra in ((), ("--push",)):
            try:
                out = self.repo.git.remote("get-url", "--all", *extra, self.remote)
            except git.GitCommandError:
                return [self.remote]
            urls += str(out).split()
        return urls

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
