"""The gates a transition must pass, each a pure check returning blocking reasons.

Every gate takes the values it judges (including ``now``) and returns ``Reason``s with
the numbers in the sentence: "soak 31h of 72h", "evidence pass rate 0.941 < 0.98".
An empty list means the gate is open. The transition engine decides which gates apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelpin.model.evidence import Evidence
from modelpin.model.fleet import Fleet
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Approval, Tenant, format_time
from modelpin.rollout.reason import ModelPath, Reason
from modelpin.rollout.state import format_percent


def format_span(value: timedelta, *, days: bool = False) -> str:
    """Whole hours (``31h``), with minutes when not whole (``1h30m``, ``45m``).

    With ``days``, spans of a day or more read ``31d`` / ``31d4h`` (evidence ages).
    """
    minutes = max(int(value.total_seconds() // 60), 0)
    hours, rest = divmod(minutes, 60)
    if days and hours >= 24:
        d, h = divmod(hours, 24)
        return f"{d}d{h}h" if h else f"{d}d"
    if hours and rest:
        return f"{hours}h{rest}m"
    if rest:
        return f"{rest}m"
    return f"{hours}h"


def clock_gate(
    what: str, since: datetime | None, now: datetime, required: timedelta, path: ModelPath
) -> list[Reason]:
    """``what`` (soak or shadow) held for ``required`` since ``since``; MP106."""
    if required <= timedelta(0):
        return []
    held = timedelta(0) if since is None else now - since
    if held >= required:
        return []
    return [
        Reason(
            "MP106",
            f"{what} {format_span(held)} of {format_span(required)}",
            path,
            hint=f"wait until {format_time(since + required)}" if since else None,
        )
    ]


def frozen_gate(tenant: Tenant, action: str, path: ModelPath) -> list[Reason]:
    if not tenant.freeze:
        return []
    return [
        Reason(
            "MP104",
            f"tenant {tenant.id} is frozen: no {action}; only pause and rollback are allowed",
            path,
        )
    ]


def candidate_gate(
    fleet: Fleet, kind: str, candidate: str, today_: datetime, path: ModelPath
) -> list[Reason]:
    """The candidate resolves, has the alias's kind, and is neither retired nor blocked."""
    model = fleet.models.get(candidate)
    if model is None:
        return [Reason("MP113", f"model version {candidate} is not defined", path)]
    reasons = []
    if model.kind != kind:
        reasons.append(
            Reason("MP113", f"{candidate} is a {model.kind} model, the alias is {kind}", path)
        )
    if model.retired(today_.date()):
        reasons.append(Reason("MP113", f"{candidate} retired on {model.retires_on}", path))
    if model.blocked:
        reasons.append(Reason("MP113", f"{candidate} is blocked: {model.blocked_reason}", path))
    return reasons


def compatibility_gate(
    fleet: Fleet, tenant: Tenant, pin: str, candidate: str, ack: bool, path: ModelPath
) -> list[Reason]:
    """SPEC 1: ``compatible``, or ``needs-prompt-changes`` with ``prompt_changes_ack``."""
    verdict = fleet.compatibility.verdict(pin, candidate, tenant.workload)
    if verdict == "compatible" or (verdict == "needs-prompt-changes" and ack):
        return []
    sentence = f"compatibility {pin} -> {candidate} for workload {tenant.workload} is {verdict}"
    if verdict == "needs-prompt-changes":
        return [Reason("MP111", sentence, path, hint="set prompt_changes_ack: true")]
    return [Reason("MP111", sentence, path)]


def approval_gate(
    group_name: str,
    group: RolloutGroup,
    approvals: Sequence[Approval],
    percent: float,
    now: datetime,
    path: ModelPath,
) -> list[Reason]:
    """Manual groups: an approvals entry for the step entered, recorded no later than now."""
    if group.approval != "manual":
        return []
    if any(a.percent == percent and a.at <= now for a in approvals):
        return []
    return [
        Reason(
            "MP109",
            f"group {group_name} needs a manual approval for {format_percent(percent)}%: "
            "none recorded",
            path,
            hint=f"add {{percent: {format_percent(percent)}, by: <email>, at: <time>}} "
            "to approvals",
        )
    ]


@dataclass(frozen=True)
class EvidenceCheck:
    """The evidence found for a rollout and every rule of SPEC 1 it breaks."""

    evidence: Evidence | None
    reasons: tuple[Reason, ...]

    @property
    def passes(self) -> bool:
        return not self.reasons

    def summary(self) -> str:
        e = self.evidence
        if e is None:
            return "no evidence"
        return (
            f"{e.passed}/{e.cases} passed ({e.pass_rate:.3f}), suite {e.suite.id} "
            f"v{e.suite.version}, judge {e.judge}, run at {format_time(e.run_at)}"
        )


def evidence_gate(
    fleet: Fleet,
    tenant: Tenant,
    alias: str,
    pin: str,
    candidate: str,
    group: RolloutGroup,
    now: datetime,
    path: ModelPath,
) -> EvidenceCheck:
    """SPEC 1: evidence matches tenant, alias, baseline (= pin), candidate and suite;
    enough cases; pass rate at the gate; fresh; judged by neither the pin nor the candidate.
    """
    evidence = fleet.evidence.get((tenant.id, alias, candidate))
    if evidence is None:
        where = fleet.paths.get(
            f"evidence:{tenant.id}/{alias}/{candidate}",
            f"evidence/{tenant.id}/{alias}/{candidate}.json",
        )
        return EvidenceCheck(
            None, (Reason("MP120", f"no BETS evidence for {candidate}: expected {where}", path),)
        )
    reasons: list[Reason] = []
    for field_, want in (
        ("tenant", tenant.id),
        ("alias", alias),
        ("baseline", pin),
        ("candidate", candidate),
    ):
        got = getattr(evidence, field_)
        if got != want:
            reasons.append(Reason("MP107", f"evidence {field_} is {got}, expected {want}", path))
    suite = tenant.bets_suite
    if suite is None:
        reasons.append(
            Reason("MP115", f"tenant {tenant.id} has no bets_suite to match evidence to", path)
        )
    elif evidence.suite != suite:
        reasons.append(
            Reason(
                "MP115",
                f"evidence suite {evidence.suite.id} v{evidence.suite.version} is not the "
                f"tenant's bets_suite {suite.id} v{suite.version}",
                path,
            )
        )
    if evidence.cases < group.bets.min_cases:
        reasons.append(
            Reason(
                "MP120",
                f"evidence has {evidence.cases} cases < min_cases {group.bets.min_cases}",
                path,
            )
        )
    elif evidence.pass_rate < group.bets.min_pass_rate:
        reasons.append(
            Reason(
                "MP107",
                f"evidence pass rate {evidence.pass_rate:.3f} < {group.bets.min_pass_rate:g}",
                path,
            )
        )
    age = now - evidence.run_at
    max_age = fleet.policy.evidence_max_age
    if age > max_age:
        reasons.append(
            Reason(
                "MP114",
                f"evidence is {format_span(age, days=True)} old > evidence_max_age "
                f"{format_span(max_age, days=True)}",
                path,
                hint="re-run the BETS suite",
            )
        )
    elif age < timedelta(0):
        reasons.append(
            Reason("MP114", f"evidence run_at {format_time(evidence.run_at)} is after now", path)
        )
    if evidence.judge in (pin, candidate):
        role = "pin" if evidence.judge == pin else "candidate"
        reasons.append(
            Reason(
                "MP116",
                f"evidence judge {evidence.judge} is the {role}: "
                "a judge evaluating itself proves nothing",
                path,
            )
        )
    return EvidenceCheck(evidence, tuple(reasons))
