"""Git repositories for the rollout commands: a base commit, then a head commit."""

from __future__ import annotations

from pathlib import Path

from tests.fleetkit import FleetSpec, commit_all, git, init_repo
from tests.rollout.builders import scenario

BASE_DATE = "2026-03-25T10:00:00Z"
HEAD_DATE = "2026-03-25T12:00:00Z"


def repo_with(tmp_path: Path, base: FleetSpec, head: FleetSpec) -> Path:
    """A repo whose ``main`` has ``base`` (commit ``base``) and then ``head`` (HEAD)."""
    repo = init_repo(tmp_path / "repo")
    base.write(repo)
    commit_all(repo, "base", BASE_DATE)
    head.write(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "head", date=HEAD_DATE)
    return repo


def line_of(repo: Path, path: str, needle: str) -> tuple[int, int]:
    """1-based (line, col) of the value after ``needle`` in ``path``."""
    for number, text in enumerate((repo / path).read_text().splitlines(), 1):
        at = text.find(needle)
        if at >= 0:
            return number, at + len(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")


__all__ = ["repo_with", "scenario"]
