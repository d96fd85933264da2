"""``explain``'s remembered rollback history is exactly what reading git gives.

``history_cache.remembered_rollback_history`` keys the rollbacks seen in a commit's
first-parent history by commit id and extends an ancestor's answer with the commits
after it. On a real repository with rollbacks, acknowledgements, a merged side branch
and a branch switch, every answer equals ``history.rollback_history`` read from git;
a damaged file, a cache of other code or a git failure is never an answer.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from tests.fleetkit import FleetSpec, commit_all, git, init_repo, tenant

from modelpin.load import history_cache
from modelpin.load.history import rollback_history
from modelpin.load.history_cache import HISTORY_FILE, remembered_rollback_history

V = "gpt-5-2026-03-14"


def _rolled_back(tid: str) -> dict[str, object]:
    return tenant(tid, rollout={"candidate": V, "stage": "rolled-back",
                                "since": "2026-03-20T00:00:00Z", "reason": "regression"})


def _history(tmp_path: Path) -> tuple[Path, list[str]]:
    spec = FleetSpec()
    spec.tenants = {t: tenant(t) for t in ("a", "b", "c")}
    repo = spec.write(tmp_path / "repo")
    init_repo(repo)
    commits = [commit_all(repo, "fleet")]
    spec.add(_rolled_back("a")).write(repo)
    commits.append(commit_all(repo, "roll back a"))
    spec.add(tenant("a", cleared_rollbacks=[V])).write(repo)
    commits.append(commit_all(repo, "acknowledge a"))
    git(repo, "checkout", "-q", "-b", "side")
    spec.add(_rolled_back("b")).write(repo)
    commit_all(repo, "roll back b on a side branch")
    spec.add(tenant("b")).write(repo)
    commit_all(repo, "acknowledge b on the side branch")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    commits.append(git(repo, "rev-parse", "HEAD"))
    spec.add(_rolled_back("c")).write(repo)
    commits.append(commit_all(repo, "roll back c"))
    return repo, commits


def test_every_answer_equals_reading_git(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    repo, commits = _history(tmp_path)
    cache = tmp_path / "cache"
    scanned: list[str] = []
    real = history_cache.scan_rollbacks

    def counting(repo_: Path, rev: str, folder: str = "tenants") -> object:
        scanned.append(rev)
        return real(repo_, rev, folder)

    monkeypatch.setattr(history_cache, "scan_rollbacks", counting)
    expected = {c: rollback_history(repo, c) for c in commits}
    assert expected[commits[-1]][("c", "primary")] == {V: False}
    assert ("a", "primary") in expected[commits[-1]]
    for commit in commits:  # each one extends the one before
        assert remembered_rollback_history(repo, commit, cache) == expected[commit]
    assert scanned[0] == commits[0]
    assert scanned[1:] == [f"{a}..{b}" for a, b in itertools.pairwise(commits)]
    scanned.clear()
    for commit in reversed(commits):  # remembered: no git log at all
        assert remembered_rollback_history(repo, commit, cache) == expected[commit]
    assert remembered_rollback_history(repo, "HEAD", cache) == expected[commits[-1]]
    assert scanned == []


def test_a_branch_elsewhere_is_read_from_git(tmp_path: Path) -> None:
    repo, commits = _history(tmp_path)
    cache = tmp_path / "cache"
    assert remembered_rollback_history(repo, commits[-1], cache) == rollback_history(
        repo, commits[-1])
    git(repo, "checkout", "-q", "-b", "other", commits[0])
    FleetSpec(tenants={t: _rolled_back(t) for t in ("a", "b")}).write(repo)
    other = commit_all(repo, "roll back a and b elsewhere")
    assert remembered_rollback_history(repo, other, cache) == rollback_history(repo, other)
    assert set(rollback_history(repo, other)) == {("a", "primary"), ("b", "primary")}


@pytest.mark.parametrize("damage", ["garbage", "other-code", "wrong-shape"])
def test_a_damaged_file_is_never_an_answer(tmp_path: Path, damage: str) -> None:
    repo, commits = _history(tmp_path)
    cache = tmp_path / "cache"
    head = commits[-1]
    remembered_rollback_history(repo, head, cache)
    path = cache / HISTORY_FILE
    doc = json.loads(path.read_bytes())
    if damage == "garbage":
        path.write_bytes(b"\x00not json")
    elif damage == "other-code":
        doc["stamp"]["code"] = "0" * 64
        doc["commits"][head] = []  # would say: no rollbacks at all
        path.write_text(json.dumps(doc))
    else:
        doc["commits"][head] = [["c", "primary", V, "yes"]]
        path.write_text(json.dumps(doc))
    assert remembered_rollback_history(repo, head, cache) == rollback_history(repo, head)


def test_git_failure_is_not_remembered(tmp_path: Path) -> None:
    repo, _ = _history(tmp_path)
    cache = tmp_path / "cache"
    assert remembered_rollback_history(repo, "no-such-rev", cache) == {}
    assert not (cache / HISTORY_FILE).exists()
    assert remembered_rollback_history(tmp_path / "not-a-repo", "HEAD", cache) == {}
    assert not (cache / HISTORY_FILE).exists()
