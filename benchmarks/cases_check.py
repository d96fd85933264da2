"""Case 4: ``modelpin check --base`` on a pull request changing 100 tenants, and explain.

The fleet is cloned (hard links, no copy of objects), 100 tenants get allowed
transitions (a pinned alias starts a shadow, a canary pauses; new evidence is signed with
the fleet's evaluator key, trusted as of the base) and are committed at ``NOW``; check
compares that head with the generated base commit. Its baseline is
``modelpin validate`` of the same tree in the same process: check reads two commits and
judges every change, so it may cost a few validates but no more. The pull request is
acceptable, so check must exit 0: any other exit code fails the case loudly
(``CheckFailed``) instead of timing a refusal.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from benchmarks.cases_validate import validate_in_process
from benchmarks.fleetgen import NOW, Fleet, change_tenants, commit_all, git
from benchmarks.measure import (
    Row,
    command_available,
    median_time,
    quiet,
    row,
    run_command,
    tool,
    unavailable,
)

CHANGED = 100
EXPECTED_EXIT = 0


class CheckFailed(RuntimeError):
    """``check`` did not accept the benchmark pull request: the timing would be a lie."""


def expect_accepted(code: int, repo: Path, base: str) -> int:
    if code != EXPECTED_EXIT:
        raise CheckFailed(
            f"modelpin check --base {base} --repo {repo} --now {NOW} exited {code}, "
            f"expected {EXPECTED_EXIT}: the benchmark pull request must pass the gate "
            "(re-run it by hand to see the diagnostics)")
    return code


def prepare(fleet_root: Path, fleet: Fleet, work: Path, changed: int = CHANGED) -> tuple[str, str]:
    """A clone of ``fleet_root`` with ``changed`` tenants edited and committed: (base, id)."""
    shutil.rmtree(work, ignore_errors=True)
    git(fleet_root.parent, "clone", "-q", "--local", str(fleet_root), str(work))
    base = git(work, "rev-parse", "HEAD")
    ids = change_tenants(fleet, work, changed)
    commit_all(work, f"benchmark: {len(ids)} tenant changes", date=NOW)
    return base, ids[0] if ids else fleet.tenants[0].id


def check_in_process(repo: Path, base: str) -> int:
    from modelpin.cli import main

    with quiet():
        return main(["check", "--base", base, "--repo", str(repo), "--now", NOW])


def explain_in_process(repo: Path, tenant: str) -> int:
    from modelpin.cli import main

    with quiet():
        return main(["explain", tenant, "--repo", str(repo), "--now", NOW])


def check_cases(fleet_root: Path, fleet: Fleet, work: Path, tenants: int,
                repeats: int) -> list[Row]:
    check_metric = f"check --base, {CHANGED} tenants changed, vs validate ({tenants:,} tenants)"
    explain_metric = f"explain one tenant ({tenants:,} tenants, subprocess)"
    rows: list[Row] = []
    base, tenant = prepare(fleet_root, fleet, work)
    if not command_available("check"):
        rows.append(unavailable("4 check", check_metric, "<= 2.5x", "no 'modelpin check'"))
    else:
        # warm-up (imports of the rollout engine), and the gate must accept the PR
        expect_accepted(check_in_process(work, base), work, base)
        check_runs, validate_runs = [], []
        for _ in range(repeats):
            validate_runs.append(median_time(lambda: validate_in_process(work), 1)[0])
            check_runs.append(median_time(
                lambda: expect_accepted(check_in_process(work, base), work, base), 1)[0])
        rows.append(row("4 check", check_metric, statistics.median(check_runs),
                        statistics.median(validate_runs), target="<= 2.5x",
                        baseline_name="validate", runs=repeats,
                        note=f"check exit {EXPECTED_EXIT} asserted"))
    if not command_available("explain"):
        rows.append(unavailable("4 check", explain_metric, "< 1 s", "no 'modelpin explain'"))
    else:
        try:
            argv = [tool("modelpin"), "explain", tenant, "--repo", str(work), "--now", NOW]
            value, _runs = median_time(lambda: run_command(argv), repeats)
            rows.append(row("4 check", explain_metric, value, None, target="< 1 s",
                            runs=repeats, note=f"tenant {tenant}"))
        except RuntimeError as exc:
            rows.append(unavailable("4 check", explain_metric, "< 1 s", str(exc)))
    return rows
