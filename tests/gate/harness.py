"""Pull-request scenarios on real git repositories, judged by ``modelpin check``.

One scenario is one way round the gate (or one safe change that must pass). A
``PullRequest`` is a real git repository in tmp: ``main`` holds the base fleet (one
commit, dated ``BASE_DATE``), branch ``pr`` holds the head. A ``Row`` says what the PR
does (``edit``: write, delete or symlink files, edit YAML, commit once or several times,
with any commit date) and what ``check`` must answer: the exit code and a diagnostic with
the expected code at the expected file and line. ``run`` goes through the CLI entry point
(``modelpin.cli.main``) exactly as CI does, with ``--format json`` and an explicit
``--now`` (or, with ``now=None``, the runner's clock pinned to ``clock``).

Usage (see tests/gate/test_rules.py)::

    ROWS = [Row("lowered-soak", lambda pr: ..., code="MP106",
                file="tenants/std-young.yaml", needle="percent:")]

    @pytest.mark.parametrize("row", ROWS, ids=row_id)
    def test_blocked(gate: Gate, row: Row) -> None:
        gate.blocked(row)

``gate.allowed(row)`` asserts a safe variant passes (exit 0, no error diagnostics).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import yaml

from modelpin.cli import main
from tests.fleetkit import FleetSpec, evidence, git, promoted, tenant

A = "gpt-5-2026-01-10"
V = "gpt-5-2026-03-14"
JUDGE = "claude-4-20260201"

BASE_DATE = "2026-03-25T10:00:00Z"
"""The base commit's date (main)."""
HEAD_DATE = "2026-03-25T11:00:00Z"
"""The default date of the PR's commits."""
NOW = "2026-03-25T12:00:00Z"
"""The runner's clock (``--now``) unless a row says otherwise."""

OLD = "2026-03-24T00:00:00Z"
"""A ``since`` 36 hours before NOW: a 24h soak or shadow has been served."""
YOUNG = "2026-03-25T08:00:00Z"
"""A ``since`` 4 hours before NOW: no soak or shadow of 24h has been served."""
FRESH = "2026-03-25T10:30:00Z"
"""A ``since`` for a stage entered by the PR (after the base commit, before NOW)."""
EVIDENCE_AT = "2026-03-24T12:00:00Z"


def shadow(since: str = OLD, candidate: str = V, **extra: Any) -> dict[str, Any]:
    return {"candidate": candidate, "stage": "shadow", "since": since, **extra}


def canary(percent: float, since: str = OLD, candidate: str = V, **extra: Any) -> dict[str, Any]:
    return {"candidate": candidate, "stage": "canary", "percent": percent, "since": since,
            **extra}


def paused(percent: float, since: str = OLD, reason: str = "latency spike") -> dict[str, Any]:
    return {"candidate": V, "stage": "paused", "percent": percent, "since": since,
            "reason": reason}


def rolled_back(since: str = FRESH, reason: str = "regression",
                candidate: str = V) -> dict[str, Any]:
    return {"candidate": candidate, "stage": "rolled-back", "since": since, "reason": reason}


def base_fleet() -> FleetSpec:
    """The default base: V cleared upstream, standard tenants at every stage.

    * ``p1`` (pioneers) and ``e1`` (early) have promoted V (A -> V);
    * ``std-a``: standard canary 5 of V, soak served (may advance to 25);
    * ``std-young``: standard canary 5 of V, entered 4h ago (soak not served);
    * ``std-s``: standard shadow of V, shadow served (may enter canary 5);
    * ``std-new``: standard shadow of V, entered 4h ago (shadow not served);
    * ``std-p``: standard pinned to A (may start a shadow of V);
    * ``std-weak``: standard canary 5 of V whose evidence fails (500 of 600 passed);
    * ``cons``: conservative, pinned to A, workload classification;
    * ``frozen``: standard canary 5 of V, frozen.

    Every in-flight or startable tenant has unsigned BETS evidence for V (no evaluator
    keys are configured, so unchanged unsigned evidence counts: SPEC 2.1 rule 3).
    """
    spec = FleetSpec(tenants={})
    spec.add(promoted(tenant("p1", group="pioneers", pin=V)))
    spec.add(promoted(tenant("e1", group="early", pin=V)))
    spec.add(tenant("std-a", rollout=canary(5)))
    spec.add(tenant("std-young", rollout=canary(5, YOUNG)))
    spec.add(tenant("std-s", rollout=shadow()))
    spec.add(tenant("std-new", rollout=shadow(YOUNG)))
    spec.add(tenant("std-p"))
    spec.add(tenant("std-weak", rollout=canary(5)))
    spec.add(tenant("cons", group="conservative", workload="classification"))
    spec.add(tenant("frozen", rollout=canary(5), freeze=True))
    for tid in ("std-a", "std-young", "std-s", "std-new", "std-p", "cons", "frozen"):
        spec.evidence.append(evidence(tid, run_at=EVIDENCE_AT))
    spec.evidence.append(evidence("std-weak", passed=500, run_at=EVIDENCE_AT))
    return spec


@dataclass(frozen=True)
class Outcome:
    """What one ``modelpin`` run printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def document(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    @property
    def diagnostics(self) -> list[dict[str, Any]]:
        doc = self.document
        return list(doc.get("diagnostics", [])) if doc else []

    def errors(self) -> list[dict[str, Any]]:
        return [d for d in self.diagnostics if d["severity"] == "error"]

    def find(self, code: str, file: str | None = None) -> list[dict[str, Any]]:
        return [d for d in self.diagnostics
                if d["code"] == code and (file is None or d["file"] == file)]

    def explain(self) -> str:
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_cli(argv: list[str], *, clock: str | None = None) -> Outcome:
    """``modelpin ARGV`` through the CLI entry point; ``clock`` pins the runner's clock."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if clock is not None:
            fixed = datetime.fromisoformat(clock.replace("Z", "+00:00"))
            stack.enter_context(mock.patch("modelpin.cli.common.system_now", lambda: fixed))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        code = main(argv)
    return Outcome(code, out.getvalue(), err.getvalue())


class PullRequest:
    """A real git repository: ``main`` has the base fleet, branch ``pr`` the change.

    ``spec`` starts as a copy of the base ``FleetSpec``: edit it and call ``write()``, or
    edit files directly (``write_text``, ``edit_yaml``, ``delete``, ``symlink``). Commit
    with ``commit(date=...)``; ``Gate.run`` commits whatever is left uncommitted.
    """

    def __init__(self, root: Path, base: FleetSpec, *, base_date: str = BASE_DATE,
                 branch: str = "pr") -> None:
        self.root = root
        self.branch = branch
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "-b", "main")
        base.write(root)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "base", date=base_date)
        self.base_commit = git(root, "rev-parse", "HEAD")
        git(root, "checkout", "-q", "-b", branch)
        self.spec = copy.deepcopy(base)

    # --- edits -------------------------------------------------------------------
    def write(self) -> None:
        """Rewrite the config folders from ``spec`` (unchanged files stay byte-equal)."""
        self.spec.write(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write_text(self, rel: str, text: str) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def read_yaml(self, rel: str) -> Any:
        return yaml.safe_load(self.path(rel).read_text())

    def write_yaml(self, rel: str, doc: Any) -> None:
        self.write_text(rel, yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))

    def edit_yaml(self, rel: str, change: Callable[[Any], Any]) -> None:
        """Load ``rel``, let ``change`` mutate it (or return a replacement), write it."""
        doc = self.read_yaml(rel)
        result = change(doc)
        self.write_yaml(rel, doc if result is None else result)

    def tenant(self, tid: str) -> dict[str, Any]:
        """The head tenant document in ``spec`` (edit, then ``write()``)."""
        return self.spec.tenants[tid]

    def rollout(self, tid: str, alias: str = "primary") -> dict[str, Any]:
        return dict(self.spec.tenants[tid]["aliases"][alias]["rollout"])

    def set_rollout(self, tid: str, rollout: dict[str, Any] | None,
                    alias: str = "primary") -> None:
        entry = self.spec.tenants[tid]["aliases"][alias]
        if rollout is None:
            entry.pop("rollout", None)
        else:
            entry["rollout"] = rollout

    def delete(self, rel: str) -> None:
        target = self.path(rel)
        if target.is_dir() and not target.is_symlink():
            import shutil

            shutil.rmtree(target)
        else:
            target.unlink()

    def symlink(self, rel: str, target: str) -> None:
        link = self.path(rel)
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    # --- git ---------------------------------------------------------------------
    def git(self, *args: str, date: str | None = None) -> str:
        return git(self.root, *args, date=date)

    def dirty(self) -> bool:
        return bool(self.git("status", "--porcelain"))

    def commit(self, message: str = "head", date: str = HEAD_DATE, *,
               allow_empty: bool = False) -> str:
        self.git("add", "-A")
        args = ["commit", "-q", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args, date=date)
        return self.git("rev-parse", "HEAD")

    def publish(self, change: Callable[[PullRequest], None], message: str = "published",
                date: str = BASE_DATE) -> str:
        """Commit ``change`` on ``main`` (the published, first-parent history) and restart
        the PR branch from it; returns the new base commit."""
        self.git("checkout", "-q", "main")
        change(self)
        self.commit(message, date=date, allow_empty=True)
        self.base_commit = self.git("rev-parse", "HEAD")
        self.git("checkout", "-q", "-B", self.branch)
        return self.base_commit

    def show(self, rev: str, rel: str) -> str:
        proc = subprocess.run(["git", "-C", str(self.root), "show", f"{rev}:{rel}"],
                              capture_output=True, text=True, check=True)
        return proc.stdout

    def line_of(self, rel: str, needle: str, rev: str | None = None) -> int:
        """1-based line of the first line of ``rel`` (at ``rev``, default the PR head)
        containing ``needle``."""
        text = self.show(rev or self.branch, rel)
        for number, line in enumerate(text.splitlines(), 1):
            if needle in line:
                return number
        raise AssertionError(f"{needle!r} not in {rel} at {rev or self.branch}:\n{text}")

    # --- commands ----------------------------------------------------------------
    def run(self, command: str, *extra: str, now: str | None = NOW, clock: str | None = None,
            base: str = "main", head: str | None = None, fmt: str = "json") -> Outcome:
        argv = [command, "--repo", str(self.root), "--base", base,
                "--head", head or self.branch, "--format", fmt, *extra]
        if now is not None:
            argv += ["--now", now]
        return run_cli(argv, clock=clock)

    def check(self, *extra: str, **kwargs: Any) -> Outcome:
        return self.run("check", *extra, **kwargs)

    def plan(self, *extra: str, **kwargs: Any) -> Outcome:
        return self.run("plan", *extra, **kwargs)


@dataclass(frozen=True)
class Row:
    """One scenario: what the PR does and what ``check`` must answer.

    ``code``/``file``/``needle``: a diagnostic with this code must point at ``file`` on
    the first line containing ``needle`` (in the head, or in the base with
    ``side="base"``, e.g. a deleted alias). ``message``: a substring of that diagnostic's
    message (or of stderr when ``exit_code`` is 2). ``now=None`` omits ``--now`` and pins
    the runner's clock to ``clock`` instead.
    """

    id: str
    edit: Callable[[PullRequest], None]
    code: str | None = None
    file: str | None = None
    needle: str | None = None
    side: Literal["head", "base"] = "head"
    message: str | None = None
    exit_code: int = 1
    now: str | None = NOW
    clock: str | None = None
    head_date: str = HEAD_DATE
    base: Callable[[], FleetSpec] = base_fleet
    extra: tuple[str, ...] = field(default=())


def row_id(row: Row) -> str:
    return row.id


class Gate:
    """Runs rows in fresh repositories under ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._count = 0

    def pull_request(self, base: FleetSpec | None = None, **kwargs: Any) -> PullRequest:
        self._count += 1
        return PullRequest(self.tmp / f"repo{self._count}", base or base_fleet(), **kwargs)

    def run(self, row: Row) -> tuple[PullRequest, Outcome]:
        pr = self.pull_request(row.base())
        row.edit(pr)
        if pr.dirty() or pr.git("rev-parse", "HEAD") == pr.base_commit:
            pr.commit(date=row.head_date, allow_empty=True)
        return pr, pr.check(*row.extra, now=row.now, clock=row.clock)

    def blocked(self, row: Row) -> Outcome:
        """Run ``row`` and assert its exit code and its diagnostic's code, file and line."""
        pr, outcome = self.run(row)
        assert outcome.exit_code == row.exit_code, outcome.explain()
        if row.exit_code == 2:
            assert outcome.document is None or not outcome.errors(), outcome.explain()
            if row.message:
                assert row.message in outcome.stderr, outcome.explain()
            return outcome
        assert row.code is not None, "a blocked row names the diagnostic code it expects"
        found = outcome.find(row.code, row.file)
        assert found, f"no {row.code} at {row.file}\n{outcome.explain()}"
        if row.needle is not None:
            assert row.file is not None
            rev = "main" if row.side == "base" else pr.branch
            line = pr.line_of(row.file, row.needle, rev)
            assert any(d["line"] == line for d in found), (
                f"{row.code} at {row.file} expected on line {line}: "
                f"{[(d['line'], d['message']) for d in found]}\n{outcome.explain()}")
        if row.message is not None:
            assert any(row.message in d["message"] for d in found), outcome.explain()
        return outcome

    def allowed(self, row: Row) -> Outcome:
        """Run a safe variant and assert it passes: exit 0 and no error diagnostic."""
        _, outcome = self.run(row)
        assert outcome.exit_code == 0, outcome.explain()
        assert not outcome.errors(), outcome.explain()
        return outcome


