"""One soak clock (SPEC 2.1 rule 5): ``explain``, the bot and ``check`` count a stage's
soak and shadow from the same instant, the later of its ``since`` and the commit that
published the stage on main (``transitions.clock_start`` over ``FleetContext.entered``).

The attack this closes: on a quiet repository an author writes ``since`` as old as the
days-old base commit. ``check`` counted from the publication, explain and the bot from
``since``: the bot proposed an advance ``check`` then refused, and ``explain`` told a
human the soak had been served. Each test asks all three at the same instants around
the boundary (one second before, at it) and requires one answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fleetkit import cohort, telemetry
from tests.gate.harness import Gate, PullRequest, canary, run_cli, shadow

SINCE = "2026-03-25T10:00:00Z"
"""Written by the author: as old as the base commit (the earliest check accepts)."""
PUBLISHED = "2026-03-26T09:00:00Z"
"""When the stage reached main (a day later: the PR waited for review)."""
PR_SINCE = "2026-03-26T11:00:00Z"

BEFORE = "2026-03-27T08:59:59Z"
"""One second before 24h after the publication (but 47h after ``since``)."""
AT = "2026-03-27T09:00:00Z"
"""24h after the publication: the soak (or shadow) is served."""


def _quiet_repository(gate: Gate, *, stage: str) -> PullRequest:
    """std-p enters ``stage`` of V on main a day after the base, with an old since; the
    PR takes the next step (canary 25 from canary 5, canary 5 from shadow)."""
    pr = gate.pull_request()

    def enter(p: PullRequest) -> None:
        p.set_rollout("std-p", canary(5, SINCE) if stage == "canary" else shadow(SINCE))
        p.write()

    pr.publish(enter, f"std-p: {stage}", date=PUBLISHED)
    pr.set_rollout("std-p", canary(25 if stage == "canary" else 5, PR_SINCE))
    pr.write()
    pr.commit(date=PR_SINCE)
    return pr


def _check(pr: PullRequest, now: str) -> tuple[bool, list[str]]:
    out = pr.check(now=now)
    assert out.exit_code in (0, 1), out.explain()
    return out.exit_code == 0, [d["code"] for d in out.errors()]


def _explain(pr: PullRequest, now: str, kind: str) -> tuple[bool, list[str], dict[str, str]]:
    out = run_cli(["explain", "std-p", "primary", "--repo", str(pr.root), "--rev", "main",
                   "--now", now, "--format", "json"])
    assert out.exit_code == 0, out.explain()
    [alias] = json.loads(out.stdout)["aliases"]
    [option] = [t for t in alias["transitions"] if t["kind"] == kind]
    return option["allowed"], [r["code"] for r in option["reasons"]], alias["state"]


def _bot(pr: PullRequest, tmp_path: Path, now: str) -> str:
    """``modelpin bot --dry-run`` on main's work tree, with healthy telemetry."""
    file = tmp_path / "telemetry.json"
    big = {"requests": 2_000_000, "tool_calls": 800_000, "tool_call_failures": 8_000,
           "tasks": 400_000, "tasks_completed": 380_000, "coercions": 4_000,
           "downstream_errors": 6_000}  # enough samples for every signal to conclude
    file.write_text(json.dumps(telemetry(cohort("std-p", "primary", "canary", **big),
                                         cohort("std-p", "primary", "stable", **big))))
    pr.git("checkout", "-q", "main")
    try:
        out = run_cli(["bot", "--repo", str(pr.root), "--telemetry", str(file), "--now", now,
                       "--dry-run", "--tenant", "std-p"])
    finally:
        pr.git("checkout", "-q", pr.branch)
    assert out.exit_code == 0, out.explain()
    return out.stdout


@pytest.mark.parametrize(("stage", "kind", "code"), [("canary", "advance", "MP106"),
                                                     ("shadow", "first-canary", "MP106")])
def test_explain_and_check_agree_at_the_boundary(gate: Gate, stage: str, kind: str,
                                                 code: str) -> None:
    pr = _quiet_repository(gate, stage=stage)
    for now, allowed in ((BEFORE, False), (AT, True)):
        passed, errors = _check(pr, now)
        shown_allowed, reasons, state = _explain(pr, now, kind)
        assert passed is allowed and shown_allowed is allowed, (now, errors, reasons)
        assert (code in errors) is (not allowed) and (code in reasons) is (not allowed)
        assert state["since"] == SINCE and state["clock_from"] == PUBLISHED


def test_the_bot_proposes_the_advance_only_when_check_would_pass_it(
        gate: Gate, tmp_path: Path) -> None:
    pr = _quiet_repository(gate, stage="canary")
    before = _bot(pr, tmp_path, BEFORE)
    assert "ADVANCE" not in before, before
    assert "soak 23h" in before, before  # held, and says why: the soak from publication
    assert _check(pr, BEFORE)[0] is False
    at = _bot(pr, tmp_path, AT)
    assert "ADVANCE   std-p/primary (canary 5) -> canary 25" in at, at
    assert _check(pr, AT)[0] is True


def test_explain_text_names_the_publication_as_the_clock_start(gate: Gate) -> None:
    pr = _quiet_repository(gate, stage="canary")
    out = run_cli(["explain", "std-p", "primary", "--repo", str(pr.root), "--rev", "main",
                   "--now", BEFORE])
    assert out.exit_code == 0, out.explain()
    assert f"since {SINCE} (46h59m ago)" in out.stdout
    assert (f"published on main {PUBLISHED} (23h59m ago): soak and shadow count from here"
            in out.stdout), out.stdout
    assert "MP106 soak 23h59m of 24h" in out.stdout


def test_a_stage_since_the_first_commit_counts_from_since(gate: Gate) -> None:
    """The repository's first commit imports a fleet whose stages were entered before:
    std-a's canary 5 (since 36h ago, in the first commit) may advance for all three."""
    pr = gate.pull_request()
    pr.set_rollout("std-a", canary(25, "2026-03-25T11:00:00Z"))
    pr.write()
    pr.commit()
    out = pr.check()
    assert out.exit_code == 0, out.explain()
    explained = run_cli(["explain", "std-a", "primary", "--repo", str(pr.root), "--rev", "main",
                         "--now", "2026-03-25T12:00:00Z", "--format", "json"])
    [alias] = json.loads(explained.stdout)["aliases"]
    assert alias["state"]["clock_from"] == alias["state"]["since"]
    assert [t["allowed"] for t in alias["transitions"] if t["kind"] == "advance"] == [True]
