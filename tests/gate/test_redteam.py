"""Red-team rows: a second, adversarial reading of the gate (SPEC 2.1).

Each row is one attack a PR author could try; the blocked rows document holes that were
found and fixed (and stay as regression tests) or boundaries that already held.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from modelpin.bot import yaml_edit
from tests.fleetkit import FleetSpec, evidence, tenant
from tests.gate.harness import (
    EVIDENCE_AT,
    FRESH,
    NOW,
    Gate,
    PullRequest,
    Row,
    V,
    canary,
    rolled_back,
    row_id,
    shadow,
)
from tests.gate.test_rules import W, retired_base, rolled_back_then_acknowledged, rules_base, t


def tag_named_like_the_base(pr: PullRequest) -> None:
    """A commit that drops the standard soak, tagged ``main``: git resolves a tag before
    a branch of the same name, so ``--base main`` would judge by the attacker's rules."""
    pr.spec.groups["standard"]["soak"] = "0h"
    pr.write()
    pr.commit("soak 0h", date="2026-03-25T10:10:00Z")
    pr.git("tag", "main")
    pr.set_rollout("std-young", canary(25, FRESH))
    pr.write()


def remote_named_branch(pr: PullRequest) -> None:
    """A local branch ``origin/main`` shadows the remote-tracking ref CI passes."""
    pr.git("update-ref", "refs/remotes/origin/main", "main")
    pr.spec.groups["standard"]["soak"] = "0h"
    pr.write()
    pr.commit("soak 0h", date="2026-03-25T10:10:00Z")
    pr.git("branch", "origin/main")
    pr.set_rollout("std-young", canary(25, FRESH))
    pr.write()


def odd_since(value: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.edit_yaml(t("std-a"), lambda d: d["aliases"]["primary"]["rollout"].update(
            since=value))
    return edit


def raw_since(text: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        path = pr.path(t("std-a"))
        lines = path.read_text().splitlines()
        out = [f"      since: {text}" if ln.strip().startswith("since:") else ln for ln in lines]
        path.write_text("\n".join(out) + "\n")
    return edit


def laughs(pr: PullRequest) -> None:
    lines = ["tools:", "  boom:", "    type: object", "    properties:"]
    lines.append("      a0: &a0 {type: string}")
    for i in range(1, 40):
        prev = f"*a{i-1}"
        lines.append(f"      a{i}: &a{i} {{type: object, properties: {{x: {prev}, y: {prev}}}}}")
    path = pr.path(t("std-p"))
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


def group_value(key: str, value: Any) -> Callable[[PullRequest], None]:
    return lambda pr: pr.edit_yaml("policies/rollout-groups.yaml", lambda d: d.update({key: value}))


def huge_suite_version(pr: PullRequest) -> None:
    path = pr.path(t("std-p"))
    path.write_text(path.read_text().replace("version: 1", "version: " + "9" * 5000))


def move_rolled_back_tenant(pr: PullRequest) -> None:
    """ear-s rolled back from V and acknowledged (on record, upstream of standard); the
    PR moves it out of group early: the record would stop blocking V for standard."""
    rolled_back_then_acknowledged("ear-s")(pr)
    pr.tenant("ear-s")["group"] = "conservative"
    pr.write()


def delete_rolled_back_tenant(pr: PullRequest) -> None:
    """The same record, lifted by offboarding the tenant (file and evidence deleted)."""
    rolled_back_then_acknowledged("ear-s")(pr)
    pr.spec.tenants.pop("ear-s")
    pr.spec.evidence = [e for e in pr.spec.evidence if e["tenant"] != "ear-s"]
    pr.delete(t("ear-s"))
    pr.delete("evidence/ear-s")


def move_after_clearing(pr: PullRequest) -> None:
    """The safe way: a human clears the record on main first, then the tenant moves."""
    rolled_back_then_acknowledged("ear-s")(pr)

    def clear(p: PullRequest) -> None:
        p.tenant("ear-s")["aliases"]["primary"]["cleared_rollbacks"] = [V]
        p.write()

    pr.publish(clear, "ear-s: clear the rollback record", date="2026-03-25T09:30:00Z")
    pr.tenant("ear-s")["group"] = "conservative"
    pr.write()


def spelled_rollback(spelling: str, anchor: bool = False) -> Callable[[PullRequest], None]:
    """Published: std-a rolls back from V with the stage spelled so that no changed line
    holds the text ``rolled-back`` (a YAML escape, or an alias of an anchor published
    earlier), then acknowledges; the PR starts V again. The record must be found all the
    same (SPEC 2.1 rule 7)."""
    def edit(pr: PullRequest) -> None:
        def write(p: PullRequest) -> None:
            p.write()
            path = p.path(t("std-a"))
            text = path.read_text().replace("stage: rolled-back", spelling)
            if anchor:
                text = text.replace("id: rolled-back", "id: &stage rolled-back")
            path.write_text(text)

        def suite(p: PullRequest) -> None:
            p.tenant("std-a")["bets_suite"]["id"] = "rolled-back"
            write(p)

        def roll(p: PullRequest) -> None:
            p.set_rollout("std-a", rolled_back("2026-03-25T08:00:00Z"))
            write(p)

        def ack(p: PullRequest) -> None:
            p.set_rollout("std-a", None)
            write(p)

        if anchor:
            pr.publish(suite, "std-a: suite", date="2026-03-25T07:00:00Z")
        pr.publish(roll, "std-a: roll back", date="2026-03-25T08:00:00Z")
        pr.publish(ack, "std-a: acknowledge", date="2026-03-25T09:00:00Z")
        pr.set_rollout("std-a", shadow(FRESH))
        write(pr)

    return edit


def rollback_merged_with_a_merge_commit(pr: PullRequest) -> None:
    """GitHub's "merge commit" style: the rollback and its acknowledgement reach main as
    merge commits (the rolled-back line is in the first-parent diff of a merge only)."""
    for name, rollout, date in (("roll", rolled_back("2026-03-25T08:00:00Z"), "08"),
                                ("ack", None, "09")):
        pr.git("checkout", "-q", "-b", name, "main")
        pr.set_rollout("std-a", rollout)
        pr.write()
        pr.commit(f"std-a: {name}", date=f"2026-03-25T{date}:00:00Z")
        pr.git("checkout", "-q", "main")
        pr.git("merge", "-q", "--no-ff", "-m", f"merge {name}", name,
               date=f"2026-03-25T{date}:30:00Z")
    pr.base_commit = pr.git("rev-parse", "HEAD")
    pr.git("checkout", "-q", "-B", pr.branch)
    pr.set_rollout("std-a", shadow(FRESH))
    pr.write()


def emptied_upstream(pr: PullRequest) -> None:
    """Every pioneer moves to group early (nothing in flight, so the move itself is a
    setting change) and, in the same change, an early tenant takes W, which no pioneer
    has cleared, into canary: an empty upstream group would clear W vacuously."""
    pr.tenant("p1")["group"] = "early"
    pr.set_rollout("ear-w", {**pr.rollout("ear-w"), "stage": "canary", "percent": 10,
                             "since": FRESH})
    pr.write()


def early_w_base() -> FleetSpec:
    spec = rules_base()
    spec.add(tenant("ear-w", group="early", rollout=shadow(candidate=W)))
    spec.evidence.append(evidence("ear-w", candidate=W, run_at=EVIDENCE_AT))
    return spec


def bot_edit(tid: str, apply: Callable[[str], str]) -> Callable[[PullRequest], None]:
    """The bot's own YAML edit (``bot.yaml_edit``) of one tenant file, as its PR does."""
    def edit(pr: PullRequest) -> None:
        path = pr.path(t(tid))
        path.write_text(apply(path.read_text()))

    return edit


BOT_NOW = datetime(2026, 3, 25, 11, 55, tzinfo=UTC)


def bot_rollback(tid: str) -> Callable[[PullRequest], None]:
    return bot_edit(tid, lambda text: yaml_edit.apply_rollback(
        text, "primary", "tool_call_failure_rate 3.1x baseline", BOT_NOW))


def bot_pause(tid: str) -> Callable[[PullRequest], None]:
    return bot_edit(tid, lambda text: yaml_edit.apply_pause(
        text, "primary", "p95 latency above the threshold", BOT_NOW))


BLOCKED = [
    Row("refs/tag-named-like-the-base-branch", tag_named_like_the_base, exit_code=2,
        message="ambiguous"),
    Row("refs/branch-named-like-the-remote-base", remote_named_branch, exit_code=2,
        message="ambiguous", extra=("--base", "origin/main")),
    Row("huge/since-year-1-east-of-utc", odd_since("0001-01-01T00:30:00+14:00"),
        code="MP012", file=t("std-a"), needle="since:"),
    Row("huge/since-naive", raw_since("2026-03-25 11:00:00"), code="MP012", file=t("std-a"),
        needle="since:", message="no UTC offset"),
    Row("huge/since-date-only", raw_since("2026-03-25"), code="MP012", file=t("std-a"),
        needle="since:"),
    Row("huge/yaml-alias-bomb", laughs, code="MP005", file=t("std-p"), needle="tools:"),
    Row("huge/sunset-warning-days", group_value("sunset_warning_days", 10**15),
        code="MP012", file="policies/rollout-groups.yaml", needle="sunset_warning_days:"),
    Row("huge/suite-version-5000-digits", huge_suite_version, code="MP012", file=t("std-p"),
        needle="version:"),
    Row("record/rollback-spelled-with-a-yaml-escape",
        spelled_rollback('stage: "rolled\\x2dback"'), code="MP124", file=t("std-a"),
        needle="candidate:"),
    Row("record/rollback-spelled-with-a-yaml-alias",
        spelled_rollback("stage: *stage", anchor=True), code="MP124", file=t("std-a"),
        needle="candidate:"),
    Row("record/rollback-published-by-merge-commits", rollback_merged_with_a_merge_commit,
        code="MP124", file=t("std-a"), needle="candidate:"),
    Row("upstream/emptied-upstream-group-in-the-same-change", emptied_upstream,
        code="MP108", file=t("ear-w"), needle="stage:", base=early_w_base),
    Row("huge/since-leap-second", raw_since("2026-03-25T10:59:60Z"), code="MP012",
        file=t("std-a"), needle="since:"),
    Row("record/moved-to-another-group-after-acknowledging",
        move_rolled_back_tenant, code="MP124", file=t("ear-s"), needle="group:",
        base=rules_base),
    Row("record/upstream-tenant-deleted-after-acknowledging",
        delete_rolled_back_tenant, code="MP124", file=t("ear-s"), base=rules_base),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


ALLOWED = [
    Row("rule9/bot-rollback-pr-while-a-pin-and-a-candidate-retired", bot_rollback("std-young"),
        base=retired_base),
    Row("rule9/bot-rollback-of-a-retired-candidate", bot_rollback("std-r"), base=retired_base),
    Row("rule9/bot-pause-of-a-retired-candidate", bot_pause("std-r"), base=retired_base),
    Row("rule9/rollbacks-pauses-and-an-acknowledgement-in-one-pr",
        lambda pr: (bot_rollback("std-young")(pr), bot_pause("std-a")(pr),
                    bot_rollback("std-s")(pr), bot_rollback("std-r")(pr)),
        base=retired_base),
    Row("record/moved-after-a-human-cleared-it", move_after_clearing, base=rules_base),
]


@pytest.mark.parametrize("row", ALLOWED, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_plan_on_a_huge_sunset_window_is_a_located_error(gate: Gate) -> None:
    """Was a hole: ``plan`` added ``sunset_warning_days`` to today and died with an
    OverflowError traceback; the policy model now bounds it (100 years)."""
    pr = gate.pull_request()
    group_value("sunset_warning_days", 10**15)(pr)
    pr.commit()
    outcome = pr.plan()
    assert outcome.exit_code == 1, outcome.explain()
    assert "Traceback" not in outcome.stderr
    assert "not a valid fleet" in outcome.stderr, outcome.explain()


def _merged_advance_with_a_backdated_since(gate: Gate, merged_at: str) -> PullRequest:
    """A quiet repository (main's last commit three days old). PR 1 advances std-a
    5 -> 25 and writes ``since`` = the base commit's time (allowed: not earlier than the
    base); it merges at ``merged_at``. PR 2 then advances 25 -> 50."""
    pr = gate.pull_request()
    pr.publish(lambda p: None, "quiet", date="2026-03-22T10:00:00Z")
    pr.set_rollout("std-a", canary(25, "2026-03-22T10:00:00Z"))
    pr.write()
    pr.commit("std-a: 25, since = the base commit's time", date=merged_at)
    first = pr.check(now=merged_at)
    assert first.exit_code == 0, first.explain()  # backdating to the base is not refused...
    pr.git("checkout", "-q", "main")
    pr.git("merge", "-q", "--no-ff", "-m", "merge PR 1", pr.branch, date=merged_at)
    pr.git("checkout", "-q", "-B", pr.branch)
    pr.set_rollout("std-a", canary(50, NOW))
    pr.write()
    pr.commit("std-a: 50", date=NOW)
    return pr


def test_clock_backdated_since_on_a_quiet_repository(gate: Gate) -> None:
    """Was a hole (row ``clock/backdated-since-on-a-quiet-repository``): ...but the soak
    of 25 counted from that since, three days before the merge, so PR 2 went 25 -> 50
    four minutes after PR 1 merged. The clock now starts when the stage was published on
    main's first-parent history (``load.history.stages_published``)."""
    pr = _merged_advance_with_a_backdated_since(gate, "2026-03-25T11:56:00Z")
    outcome = pr.check()
    assert outcome.exit_code == 1, outcome.explain()
    [found] = outcome.find("MP106", t("std-a"))
    assert found["line"] == pr.line_of(t("std-a"), "percent:")
    assert found["hint"] == "wait until 2026-03-26T11:56:00Z", found  # 24h after the merge


def test_clock_soak_served_from_the_merge_passes(gate: Gate) -> None:
    """The safe variant: PR 2 judged a day after PR 1 merged: its soak is served."""
    pr = _merged_advance_with_a_backdated_since(gate, "2026-03-25T11:56:00Z")
    outcome = pr.check(now="2026-03-26T12:00:00Z")
    assert outcome.exit_code == 0, outcome.explain()
