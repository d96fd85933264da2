"""More variants of issue 11's red-team classes, where the other files have one or two:
time zones on the clock rows, the evidence-age rule loosened in the change that needs it,
a rename that tries to skip the shadow, a re-add that carries a forged promotion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fleetkit import evidence
from tests.gate.harness import (
    FRESH,
    A,
    Gate,
    PullRequest,
    Row,
    V,
    canary,
    row_id,
    shadow,
)
from tests.gate.test_rename import readd_tenant, rename
from tests.gate.test_rules import first_canary, go, step, steps, t


def _with_since(tid: str, since: str, percent: float = 25):  # type: ignore[no-untyped-def]
    return steps(step(tid, percent, since))


def _max_age_90d(pr: PullRequest) -> None:
    text = pr.path("policies/rollout-groups.yaml").read_text()
    pr.write_text("policies/rollout-groups.yaml", text.replace("evidence_max_age: 30d",
                                                               "evidence_max_age: 90d"))


def stale_evidence(pr: PullRequest) -> None:
    def old(p: PullRequest) -> None:
        p.spec.evidence = [e for e in p.spec.evidence if e["tenant"] != "std-s"]
        p.spec.evidence.append(evidence("std-s", run_at="2026-02-13T12:00:00Z"))
        p.write()

    pr.publish(old, "std-s: old evidence", date="2026-03-25T09:00:00Z")
    first_canary("std-s")(pr)
    pr.write()
    _max_age_90d(pr)


def renamed_into_canary(pr: PullRequest) -> None:
    rename("std-p", "primary", "primary2", A, rollout=canary(5, FRESH))(pr)


def renamed_with_shadow(pr: PullRequest) -> None:
    rename("std-p", "primary", "primary2", A, rollout=shadow(FRESH))(pr)


def readded_with_record(pr: PullRequest) -> None:
    readd_tenant("std-p", V)(pr)
    alias: dict[str, Any] = pr.tenant("std-p")["aliases"]["primary"]
    alias.update(pinned_at=FRESH, promoted_from=A)
    pr.write()


BLOCKED = [
    Row("clock/since-in-the-future-through-a-utc-offset",
        _with_since("std-a", "2026-03-25T11:30:00-05:00"), code="MP103", file=t("std-a"),
        needle="since:"),
    Row("clock/since-backdated-through-a-utc-offset",
        _with_since("std-a", "2026-03-25T12:30:00+03:00"), code="MP103", file=t("std-a"),
        needle="since:"),
    Row("clock/shadow-entered-in-the-future-through-an-offset",
        steps(go("std-p", shadow("2026-03-25T08:00:00-06:00"))), code="MP103",
        file=t("std-p"), needle="since:"),
    Row("policy/evidence-max-age-raised-for-stale-evidence", stale_evidence, code="MP114",
        file=t("std-s"), needle="stage:"),
    Row("rename/alias-renamed-straight-into-canary", renamed_into_canary, code="MP117",
        file=t("std-p"), needle="stage:"),
    Row("readd/tenant-re-added-with-a-forged-promotion", readded_with_record, code="MP105",
        file=t("std-p"), needle=V),
    Row("readd/tenant-re-added-with-a-forged-promotion-record-field",
        readded_with_record, code="MP121", file=t("std-p"), needle="promoted_from"),
]

SAFE = [
    Row("rename/alias-renamed-keeping-its-pin-and-starting-a-shadow", renamed_with_shadow),
    Row("clock/since-with-an-offset-in-range",
        _with_since("std-a", "2026-03-25T13:30:00+02:00")),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


@pytest.mark.parametrize("row", SAFE, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)
