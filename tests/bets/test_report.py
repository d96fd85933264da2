"""The PR report stays a readable pull-request body however many cases fail."""

from __future__ import annotations

from datetime import UTC, datetime

from modelpin.bets.plan import Skip, Target
from modelpin.bets.report import (
    REPORT_MAX_CHARS,
    REPORT_ROWS_PER_KIND,
    evidence_predicate,
    markdown_report,
)
from modelpin.bets.runner import CaseFailure, TargetResult
from modelpin.model.bets import Suite

SUITE = Suite(id="s", version=2, workload="chat", judge="judge-2026-01-01",
              judge_threshold=0.8, required_pass_rate={"format": 0.99})
RUN_AT = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)


def _result(tenant: str, failures: int, detail: str = "bad | pipe") -> TargetResult:
    target = Target(tenant, "primary", "pin-2026-01-01", "cand-2026-02-01", SUITE)
    result = TargetResult(target, cases=100, passed=100 - failures)
    result.failures = [CaseFailure(f"c-{i:03d}", "format", detail, "JSON", "```json", "passed")
                       for i in range(failures)]
    return result


def test_rows_per_kind_are_capped_and_pipes_escaped() -> None:
    text = markdown_report([_result("t1", 25)], [Skip("t2", "primary", "suite missing")],
                           RUN_AT)
    assert text.count("| c-0") == REPORT_ROWS_PER_KIND
    assert f"… {25 - REPORT_ROWS_PER_KIND} more in the result file" in text
    assert "bad \\| pipe" in text
    assert "Suite requirements not met: format: 0.750 < 0.99" in text
    assert "- t2 / primary: suite missing" in text
    assert "| t1 / primary | pin-2026-01-01 → cand-2026-02-01 | s v2 | 100 | 75 | 75.0% | " \
        "format 25 |" in text


def test_a_huge_report_is_cut_to_fit_a_pull_request_body() -> None:
    results = [_result(f"tenant-{i:03d}", 10, detail="x" * 400) for i in range(200)]
    text = markdown_report(results, [], RUN_AT)
    assert len(text) <= REPORT_MAX_CHARS
    assert text.endswith("report truncated; every failure is in the result file.\n")


def test_the_evidence_predicate_is_the_spec_result_with_clipped_details() -> None:
    predicate = evidence_predicate(_result("t1", 2, detail="y" * 1000), RUN_AT)
    assert predicate["run_at"] == "2026-03-20T10:00:00Z"
    assert (predicate["cases"], predicate["passed"]) == (100, 98)
    assert predicate["suite"] == {"id": "s", "version": 2}
    assert len(predicate["failures"][0]["detail"]) == 300
    assert set(predicate["failures"][0]) == {"case", "kind", "detail"}
