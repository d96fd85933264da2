"""A shallow clone is not judged (SPEC 2.1 rules 5-7 read the published history).

The attack: CI checks out with ``actions/checkout``'s default ``fetch-depth: 1``. The
rollback on record, the pins before the base pin and the commit that published a stage
are then simply not there, and what is missing would read as "never happened". Each
row is a real ``git clone --depth 1 file://...`` of a pull request that a full clone
refuses: ``check`` and ``plan`` must refuse the clone itself (exit 2, with the
``fetch-depth: 0`` hint), never pass the change. (Before the refusal both rows exited 0
on a clone of depth 2: the rollback and the publication were cut off.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gate.harness import (
    NOW,
    Gate,
    PullRequest,
    canary,
    run_cli,
    shadow,
)
from tests.gate.test_rules import rolled_back_then_acknowledged


def _unrelated(pr: PullRequest) -> None:
    """One more commit on main (a README edit): history before it is what a clone of
    depth 2 cuts off."""
    pr.publish(lambda p: p.write_text("README.md", "the fleet\n"), "docs",
               date="2026-03-25T11:31:00Z")


def _restart_rolled_back(pr: PullRequest) -> None:
    """std-a rolled back from V on main, acknowledged; the PR starts V again."""
    rolled_back_then_acknowledged("std-a")(pr)
    _unrelated(pr)
    pr.set_rollout("std-a", shadow("2026-03-25T11:40:00Z"))
    pr.write()


def _advance_after_a_quiet_base(pr: PullRequest) -> None:
    """std-s entered canary 5 on main 30 minutes ago with a ``since`` three days old; the
    soak counted from publication is not served."""
    def enter(p: PullRequest) -> None:
        p.set_rollout("std-s", canary(5, "2026-03-22T11:00:00Z"))
        p.write()

    pr.publish(enter, "std-s: canary 5", date="2026-03-25T11:30:00Z")
    _unrelated(pr)
    pr.set_rollout("std-s", canary(25, "2026-03-25T11:40:00Z"))
    pr.write()


ATTACKS: list[tuple[str, Callable[[PullRequest], None], str]] = [
    ("rollback-on-record", _restart_rolled_back, "MP124"),
    ("soak-from-publication", _advance_after_a_quiet_base, "MP106"),
]


def _shallow_clone(pr: PullRequest, dest: Path, depth: int = 1) -> Path:
    subprocess.run(["git", "clone", "-q", f"--depth={depth}", "--no-single-branch",
                    f"file://{pr.root}", str(dest)], check=True, capture_output=True)
    return dest


def _run(command: str, repo: Path, base: str = "origin/main", head: str = "origin/pr"
         ) -> tuple[int, str, str]:
    out = run_cli([command, "--repo", str(repo), "--base", base, "--head", head,
                   "--now", NOW] + (["--format", "json"] if command == "check" else []))
    return out.exit_code, out.stdout, out.stderr


@pytest.mark.parametrize(("edit", "code"), [(e, c) for _, e, c in ATTACKS],
                         ids=[i for i, _, _ in ATTACKS])
def test_a_shallow_clone_is_refused_where_a_full_clone_blocks(
        gate: Gate, tmp_path: Path, edit: Callable[[PullRequest], None], code: str) -> None:
    pr = gate.pull_request()
    edit(pr)
    pr.commit()
    full = pr.check()
    assert full.exit_code == 1 and full.find(code), full.explain()

    # Depth 2: the PR's commit and main's tip, so the head still descends from the base;
    # everything before main's tip (the rollback, the publication) is cut off.
    clone = _shallow_clone(pr, tmp_path / "shallow", depth=2)
    for command in ("check", "plan"):
        exit_code, stdout, stderr = _run(command, clone)
        assert exit_code == 2, (command, stdout, stderr)
        assert "shallow clone" in stderr and "fetch-depth: 0" in stderr, stderr
        assert "Traceback" not in stderr


def test_a_clone_of_depth_1_is_refused_as_shallow(gate: Gate, tmp_path: Path) -> None:
    """Not as "does not descend" (the parents are missing): the hint names the cause."""
    pr = gate.pull_request()
    _restart_rolled_back(pr)
    pr.commit()
    clone = _shallow_clone(pr, tmp_path / "shallow", depth=1)
    exit_code, _, stderr = _run("check", clone)
    assert exit_code == 2 and "shallow clone" in stderr, stderr


def test_the_same_clone_unshallowed_is_judged(gate: Gate, tmp_path: Path) -> None:
    pr = gate.pull_request()
    _restart_rolled_back(pr)
    pr.commit()
    clone = _shallow_clone(pr, tmp_path / "shallow")
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--unshallow"], check=True,
                   capture_output=True)
    exit_code, stdout, _ = _run("check", clone)
    assert exit_code == 1 and '"MP124"' in stdout, stdout
