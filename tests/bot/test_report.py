"""Rendered PR text: snapshots for the bodies, explicit checks for the logic in them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from modelpin.bot.decisions import decide
from modelpin.bot.report import body, marker, parse_marker, title
from modelpin.bot.telemetry import JsonFileTelemetry

from .conftest import TELEMETRY

PLAN = "```\nacme-legal/primary-reasoning: canary 5% -> canary 25%\n```"


def _proposal(case, signals_policy, rollout, next_step):
    rollout = type(rollout)(**{**rollout.__dict__, "since": datetime(2026, 3, 20, 10, tzinfo=UTC)})
    telemetry = JsonFileTelemetry.from_path(TELEMETRY / f"{case}.json").observe(
        rollout.tenant, rollout.alias
    )
    return decide(rollout, signals_policy, telemetry, next_step_allowed=True, next_step=next_step)


def test_advance_body(signals_policy, rollout, next_step, snapshot) -> None:
    p = _proposal("clean", signals_policy, rollout, next_step)
    assert title(p) == (
        "modelpin: advance acme-legal/primary-reasoning to canary 25% (gpt-5-2026-03-14)"
    )
    rendered = body(p, PLAN, ["BETS: evidence/acme-legal/primary-reasoning/gpt-5-2026-03-14.json"])
    assert rendered == snapshot


def test_rollback_body_is_an_incident_report(signals_policy, rollout, next_step, snapshot):
    p = _proposal("regression", signals_policy, rollout, next_step)
    assert title(p) == "modelpin: roll back acme-legal/primary-reasoning from gpt-5-2026-03-14"
    rendered = body(p, "rollback plan")
    assert rendered.startswith("## Incident report")
    breached = rendered.split("### Breached signals")[1].split("### Cohorts")[0]
    assert "tool_call_failure_rate | 0.045 | 0.01 |" in breached
    assert "semantic_similarity" not in breached
    assert "lookup\\_clause: clause\\_id missing" in rendered  # escaped: renders as is
    assert "canary 2000 samples, stable 8000 samples (minimum 200)" in rendered
    assert rendered == snapshot


def test_marker_round_trips_the_verdict(signals_policy, rollout, next_step) -> None:
    p = _proposal("coercion-3pct", signals_policy, rollout, next_step)
    data = parse_marker(body(p, "plan"))
    assert data == parse_marker(marker(p))
    assert data is not None
    assert data["proposal"] == "rollback"
    coercion = next(s for s in data["signals"] if s["signal"] == "coercion_rate")
    assert coercion["result"] == "fail"
    assert coercion["canary"] == {"value": 0.03, "samples": 5000}
    assert coercion["limit"] == 0.02


def test_marker_cannot_be_closed_by_data(signals_policy, rollout, next_step) -> None:
    p = _proposal("clean", signals_policy, rollout, next_step)
    evil = type(p)(**{**p.__dict__, "reasons": ("--> <script>",)})
    text = marker(evil)
    assert text.count("-->") == 1 and text.endswith("-->")
    assert parse_marker(text)["reasons"] == ["--> <script>"]  # type: ignore[index]


def test_telemetry_text_cannot_write_markdown_into_the_pr(signals_policy, rollout, next_step):
    """Sample failures and evidence lines come from outside (a telemetry record, a file):
    no HTML, mention, cross-reference, emoji or table break reaches the body."""
    from dataclasses import replace

    p = _proposal("regression", signals_policy, rollout, next_step)
    attack = "<img src=x onerror=alert(1)> @acme/security #1 :white_check_mark: | cell"
    p = replace(p, failures=({"kind": "invalid-args`**x**", "detail": attack, "ref": "@root"},))
    rendered = body(p, "plan", [f"BETS: {attack}"])
    failures = rendered.split("### Sample failures")[1].split("## All signals")[0]
    assert "<img" not in rendered
    assert "@acme" not in rendered and "@root" not in rendered  # a word joiner after @
    assert "#1 " not in rendered and ":white_check_mark:" not in rendered
    assert re.search(r"(?<!\\)\| cell", failures) is None and "\\| cell" in failures
    assert "**x**" not in failures
    assert parse_marker(rendered) is not None  # the machine-readable verdict survives
