"""PR title and body of a proposal: summary, signals table, evidence, plan, marker.

Rendering is pure and deterministic (same proposal -> same bytes), so a second bot
run finds the body unchanged and PATCHes nothing. The hidden marker carries the
machine-readable verdict; :func:`parse_marker` reads it back. Every text that comes
from telemetry or the fleet (reasons quoting values, sample failures, evidence lines)
goes through ``rollout.plan.escape_markdown``: a record cannot write HTML, a mention or
a markdown construct into the PR.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from modelpin.rollout.plan import escape_markdown as e

from .decisions import Proposal, SignalVerdict

MARKER_RE = re.compile(r"<!-- modelpin-bot: (\{.*?\}) -->", re.DOTALL)
_ICON = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "inconclusive"}


def title(proposal: Proposal) -> str:
    r = proposal.rollout
    where = f"{r.tenant}/{r.alias}"
    if proposal.kind == "advance" and proposal.next_step is not None:
        return f"modelpin: advance {where} to {proposal.next_step.describe()} ({r.candidate})"
    if proposal.kind == "rollback":
        return f"modelpin: roll back {where} from {r.candidate}"
    if proposal.kind == "pause":
        return f"modelpin: pause {where} at {_pct(r.percent)} ({r.candidate})"
    return f"modelpin: {proposal.kind} {where} ({r.candidate})"


def body(proposal: Proposal, plan_markdown: str, evidence: Sequence[str] = ()) -> str:
    """The PR body; for a rollback, the incident report."""
    if proposal.kind == "rollback":
        return _incident(proposal, plan_markdown, evidence)
    r = proposal.rollout
    parts = [
        "## Summary",
        "",
        f"**{proposal.kind}** `{r.tenant}` / `{r.alias}`: candidate `{r.candidate}` "
        f"(pin `{r.pin}`), now {r.stage} {_pct(r.percent)}.",
        "",
        *[f"- {e(reason)}" for reason in proposal.reasons],
        "",
        "## Signals",
        "",
        _table(proposal.verdicts),
        "",
        *_evidence(proposal, evidence),
        *_plan(plan_markdown),
        *_footer(proposal),
    ]
    return "\n".join(parts)


def issue_key(proposal: Proposal) -> str:
    """What an escalation issue is deduplicated by: the rollout and its candidate."""
    r = proposal.rollout
    return f"<!-- modelpin-bot-issue: {r.tenant}/{r.alias}/{r.candidate} -->"


def issue_title(proposal: Proposal) -> str:
    r = proposal.rollout
    signals = ", ".join(v.signal for v in proposal.breached)
    return f"modelpin: {r.tenant}/{r.alias} canary {r.candidate} needs a human ({signals})"


def issue_body(proposal: Proposal, evidence: Sequence[str] = ()) -> str:
    """The incident report of an ``escalate``: same report, no change proposed."""
    return _incident(proposal, "", evidence, escalate=True) + issue_key(proposal) + "\n"


def _incident(
    proposal: Proposal, plan_markdown: str, evidence: Sequence[str], *, escalate: bool = False
) -> str:
    r = proposal.rollout
    breached = proposal.breached
    action = (
        "The policy asks a human to decide: nothing was changed. Roll back with a PR "
        "setting `stage: rolled-back`, or close this issue to keep the canary."
        if escalate else
        f"This PR rolls it back: new sessions go to the pin `{r.pin}` at once."
    )
    parts = [
        "## Incident report",
        "",
        f"The canary of `{r.candidate}` for `{r.tenant}` / `{r.alias}` regressed at "
        f"{_pct(r.percent)} of traffic ({r.stage} since {_time(r)}). {action}",
        "",
        "### Breached signals",
        "",
        "| signal | canary | stable | threshold | bound | reason |",
        "|---|---|---|---|---|---|",
        *[
            f"| {v.signal} | {_val(v.canary.value)} | {_val(v.stable.value)} | "
            f"{_threshold(v)} | {_bound(v)} | {e(v.reason)} |"
            for v in breached
        ],
        "",
        "### Cohorts",
        "",
        *[
            f"- {v.signal}: shadow {v.canary.samples} comparisons with stable "
            f"(minimum {v.min_samples})"
            if proposal.rollout.stage == "shadow" else
            f"- {v.signal}: canary {v.canary.samples} samples, stable {v.stable.samples} "
            f"samples (minimum {v.min_samples})"
            for v in breached
        ],
        "",
        "### Sample failures",
        "",
        *(
            [
                f"- {_code(str(f['kind']))}"
                f"{' (' + e(str(f['ref'])) + ')' if f.get('ref') else ''}: "
                f"{e(str(f['detail']))}"
                for f in proposal.failures
            ]
            or ["- none reported by the telemetry source"]
        ),
        "",
        "## All signals",
        "",
        _table(proposal.verdicts),
        "",
        *_evidence(proposal, evidence),
        *([] if escalate else _plan(plan_markdown)),
        *_footer(proposal),
    ]
    return "\n".join(parts)


def _code(text: str) -> str:
    """A code span for a plain word (a failure kind); anything else escaped."""
    return f"`{text}`" if re.fullmatch(r"[A-Za-z0-9._: -]{1,100}", text) else e(text)


def _table(verdicts: Sequence[SignalVerdict]) -> str:
    rows = [
        "| signal | canary | stable | samples (canary / stable) | regression | bound | "
        "threshold | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        rows.append(
            f"| {v.signal} | {_val(v.canary.value)} | {_val(v.stable.value)} | "
            f"{v.canary.samples} / {v.stable.samples} | {_val(v.regression)} | {_bound(v)} | "
            f"{_threshold(v)} | {_ICON[v.result]} |"
        )
    return "\n".join(rows)


def _evidence(proposal: Proposal, evidence: Sequence[str]) -> list[str]:
    lines = ["## Evidence", "",
             f"- telemetry: {e(proposal.source)}, window {e(proposal.window)}"]
    lines += [f"- {e(item)}" for item in evidence]
    return [*lines, ""]


def _plan(plan_markdown: str) -> list[str]:
    return ["## Plan", "", plan_markdown.strip() or "_no plan given_", ""]


def _footer(proposal: Proposal) -> list[str]:
    return [
        "_Opened by modelpin-bot. The bot never merges: CI runs `modelpin check` on this "
        "change like any other._",
        "",
        marker(proposal),
        "",
    ]


def marker(proposal: Proposal) -> str:
    """``<!-- modelpin-bot: {json} -->``; ``<``/``>`` escaped so it cannot end early."""
    text = json.dumps(proposal.to_json(), sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- modelpin-bot: {text} -->"


def parse_marker(markdown: str) -> dict[str, Any] | None:
    m = MARKER_RE.search(markdown)
    return json.loads(m.group(1)) if m else None


def _val(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _bound(v: SignalVerdict) -> str:
    if v.interval is None:
        return "n/a"
    method = f", {v.method}" if v.method else ""
    return f"{v.interval[0]:.4g} .. {v.interval[1]:.4g} ({v.confidence:.0%}{method})"


def _threshold(v: SignalVerdict) -> str:
    text = f"worse by <= {v.threshold:g}"
    if v.limit is not None:
        op = "<=" if v.direction == "lower_is_better" else ">="
        text += f"; canary {op} {v.limit:g}"
    return text


def _pct(p: float | None) -> str:
    return "?%" if p is None else f"{p:g}%"


def _time(r: Any) -> str:
    return r.since.strftime("%Y-%m-%dT%H:%M:%SZ") if r.since else "unknown"
