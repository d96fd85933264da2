"""Rules from the base, the runner's clock and history (SPEC 2.1 rules 1, 2, 5-7, 9):
pull requests on real git repositories, each trying one way round ``modelpin check``.
"""

from __future__ import annotations

import pytest

from tests.gate.harness import (
    FRESH,
    YOUNG,
    Gate,
    PullRequest,
    Row,
    canary,
    rolled_back,
    row_id,
    shadow,
)

FUTURE = "2031-01-01T00:00:00Z"


def advance(tid: str, percent: float, since: str = FRESH) -> object:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout(tid, {**pr.rollout(tid), "percent": percent, "since": since})
        pr.write()

    return edit


def _young_advance_dated(date: str) -> object:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout("std-young", canary(25, FRESH))
        pr.write()
        pr.commit("std-young: 25", date=date)

    return edit


BLOCKED = [
    Row("skipped-step", advance("std-a", 50), code="MP101", file="tenants/std-a.yaml",
        needle="percent:"),
    Row("jump-to-100", advance("std-a", 100), code="MP101", file="tenants/std-a.yaml",
        needle="percent:"),
    Row("clock/head-commit-dated-2031", _young_advance_dated(FUTURE), code="MP106",
        file="tenants/std-young.yaml", needle="percent:"),
    Row("clock/now-omitted-future-commit-date", _young_advance_dated(FUTURE), now=None,
        clock="2026-03-25T12:00:00Z", code="MP106", file="tenants/std-young.yaml",
        needle="percent:"),
]


def _start_shadow(pr: PullRequest) -> None:
    pr.set_rollout("std-p", shadow(FRESH))
    pr.write()


def _first_canary(pr: PullRequest) -> None:
    pr.set_rollout("std-s", canary(5, FRESH))
    pr.write()


def _rollback(pr: PullRequest) -> None:
    pr.set_rollout("std-young", rolled_back())
    pr.write()


def _tighten_policy(pr: PullRequest) -> None:
    pr.spec.groups["standard"]["soak"] = "48h"
    pr.write()


SAFE = [
    Row("advance-after-soak", advance("std-a", 25)),
    Row("start-shadow", _start_shadow),
    Row("first-canary-after-shadow", _first_canary),
    Row("rollback", _rollback),
    Row("policy-only-tightening", _tighten_policy),
    Row("advance-with-old-commit-date", advance("std-a", 25), head_date=YOUNG),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


@pytest.mark.parametrize("row", SAFE, ids=row_id)
def test_safe_variant_passes(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_the_harness_fails_on_a_wrong_expectation(gate: Gate) -> None:
    """The harness's assertions can fail: a wrong line, code or exit code is caught."""
    with pytest.raises(AssertionError, match="expected on line"):
        gate.blocked(Row("wrong-line", advance("std-a", 50), code="MP101",
                         file="tenants/std-a.yaml", needle="since:"))
    with pytest.raises(AssertionError, match="no MP106"):
        gate.blocked(Row("wrong-code", advance("std-a", 50), code="MP106",
                         file="tenants/std-a.yaml"))
    with pytest.raises(AssertionError, match="exit 0"):
        gate.blocked(Row("safe", advance("std-a", 25), code="MP101"))
    with pytest.raises(AssertionError, match="exit 1"):
        gate.allowed(Row("unsafe", advance("std-a", 50)))
