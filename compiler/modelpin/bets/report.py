"""What a run leaves behind: evidence predicates, the JSON result file, the PR report.

Pure rendering; the CLI writes the bytes. The evidence predicate is SPEC section 1's BETS
result: failures sorted by case, details clipped, so a resumed run produces the same
bytes as an uninterrupted one. The markdown report fits a pull-request body: per target
a table of failing cases by kind (expected vs got, and what the pin did on the same
case), capped per kind, the rest counted and left to the JSON result file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpin.bets.checks import clip
from modelpin.bets.plan import Skip
from modelpin.bets.runner import TargetResult
from modelpin.model.bets import FAILURE_KINDS
from modelpin.model.tenant import format_time

REPORT_ROWS_PER_KIND = 10
REPORT_MAX_CHARS = 60_000
"""GitHub caps a pull-request body at 65,536 characters."""


def evidence_predicate(result: TargetResult, run_at: datetime) -> dict[str, Any]:
    t = result.target
    return {
        "tenant": t.tenant, "alias": t.alias, "baseline": t.baseline, "candidate": t.candidate,
        "suite": {"id": t.suite.id, "version": t.suite.version},
        "judge": t.suite.judge,
        "run_at": format_time(run_at),
        "cases": result.cases, "passed": result.passed,
        "failures": [{"case": f.case, "kind": f.kind, "detail": clip(f.detail)}
                     for f in result.failures],
    } | ({"suite_sha256": t.suite_sha256} if t.suite_sha256 is not None else {})


def evidence_path(result: TargetResult, signed: bool) -> str:
    t = result.target
    suffix = ".dsse.json" if signed else ".json"
    return f"evidence/{t.tenant}/{t.alias}/{t.candidate}{suffix}"


def result_document(results: list[TargetResult], skipped: list[Skip], run_at: datetime,
                    stats: dict[str, Any], signed: bool) -> dict[str, Any]:
    targets = []
    for r in results:
        t = r.target
        targets.append({
            "tenant": t.tenant, "alias": t.alias, "baseline": t.baseline,
            "candidate": t.candidate, "suite": {"id": t.suite.id, "version": t.suite.version},
            "suite_sha256": t.suite_sha256,
            "judge": t.suite.judge, "cases": r.cases, "passed": r.passed,
            "pass_rate": round(r.passed / r.cases, 6) if r.cases else 0.0,
            "failures_by_kind": {k: v for k, v in r.by_kind().items() if v},
            "pin_failures": r.pin_failures,
            "unmet_requirements": r.unmet_requirements(),
            "evidence": evidence_path(r, signed),
            "failures": [{"case": f.case, "kind": f.kind, "detail": f.detail,
                          "expected": f.expected, "got": f.got, "pin": f.pin}
                         for f in r.failures],
        })
    return {"run_at": format_time(run_at), "targets": targets,
            "skipped": [{"tenant": s.tenant, "alias": s.alias, "reason": s.reason}
                        for s in skipped],
            "calls": stats}


def _cell(text: str, limit: int = 120) -> str:
    return clip(text, limit).replace("|", "\\|") or " "


def markdown_report(results: list[TargetResult], skipped: list[Skip],
                    run_at: datetime) -> str:
    lines = [f"## BETS results ({format_time(run_at)})", ""]
    lines += ["| tenant / alias | pin → candidate | suite | cases | passed | rate | failures |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        t = r.target
        rate = f"{r.passed / r.cases:.1%}" if r.cases else "-"
        kinds = ", ".join(f"{k} {n}" for k, n in r.by_kind().items() if n) or "none"
        lines.append(f"| {t.tenant} / {t.alias} | {t.baseline} → {t.candidate} | "
                     f"{t.suite.id} v{t.suite.version} | {r.cases} | {r.passed} | {rate} | "
                     f"{kinds} |")
    problems = [s for s in skipped if s.problem]
    if problems:
        lines += ["", "**Not run:**", ""]
        lines += [f"- {s.tenant} / {s.alias}: {s.reason}" for s in problems]
    for r in results:
        unmet = r.unmet_requirements()
        if not r.failures and not unmet:
            continue
        t = r.target
        lines += ["", f"### {t.tenant} / {t.alias}: {t.baseline} → {t.candidate}", ""]
        if unmet:
            lines.append(f"Suite requirements not met: {'; '.join(unmet)}")
            lines.append("")
        for kind in FAILURE_KINDS:
            rows = [f for f in r.failures if f.kind == kind]
            if not rows:
                continue
            lines += [f"**{kind}** ({len(rows)})", "",
                      "| case | detail | expected | got | pin |", "|---|---|---|---|---|"]
            for f in rows[:REPORT_ROWS_PER_KIND]:
                lines.append(f"| {_cell(f.case, 60)} | {_cell(f.detail)} | {_cell(f.expected)} "
                             f"| {_cell(f.got)} | {_cell(f.pin, 60)} |")
            if len(rows) > REPORT_ROWS_PER_KIND:
                lines.append(f"| … {len(rows) - REPORT_ROWS_PER_KIND} more in the result file "
                             "| | | | |")
            lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    if len(text) > REPORT_MAX_CHARS:
        cut = text.rfind("\n", 0, REPORT_MAX_CHARS - 200)
        text = text[:cut] + "\n\n… report truncated; every failure is in the result file.\n"
    return text
