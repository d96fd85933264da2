"""One bot cycle: every rollout in flight -> a proposal, its edited file and its plan.

The engine decides what is allowed (``allowed_transitions``), ``decisions.decide``
combines that with the telemetry verdicts, and every proposal is then judged by the
same code as ``modelpin check`` (``judge_tenant``) against the fleet with the edit
applied: a proposal the gate would refuse is never published, it is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from modelpin.bot.decisions import NextStep, Proposal, RolloutRef, decide
from modelpin.bot.telemetry import TelemetrySource
from modelpin.bot.yaml_edit import apply_advance, apply_pause, apply_promotion, apply_rollback
from modelpin.model.fleet import Fleet
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant
from modelpin.rollout.change import judge_tenant
from modelpin.rollout.plan import build_plan, render_markdown
from modelpin.rollout.reason import Reason
from modelpin.rollout.transitions import FleetContext, allowed_transitions

_STEP_KINDS = ("first-canary", "advance", "promote")


@dataclass(frozen=True)
class Candidate:
    """A proposal ready to publish (or to print, in a dry run)."""

    proposal: Proposal
    path: str
    """Tenant file, relative to the repository root."""
    old_text: str
    new_text: str
    plan_markdown: str
    check_reasons: tuple[Reason, ...]
    """Why ``modelpin check`` would refuse the edit; empty when it passes."""
    evidence: tuple[str, ...] = ()

    @property
    def changes_file(self) -> bool:
        return self.new_text != self.old_text


def _edit(proposal: Proposal, text: str, alias: str, now: datetime) -> str:
    breached = ", ".join(v.signal for v in proposal.breached)
    reason = f"{breached} regressed against stable" if breached else proposal.kind
    if proposal.kind == "advance" and proposal.next_step is not None:
        if proposal.next_step.kind == "promote":
            return apply_promotion(text, alias)
        assert proposal.next_step.percent is not None
        return apply_advance(text, alias, proposal.next_step.percent, now)
    if proposal.kind == "rollback":
        return apply_rollback(text, alias, f"modelpin-bot: {reason}", now)
    if proposal.kind == "pause":
        return apply_pause(text, alias, f"modelpin-bot: {reason}", now)
    return text


def _with_tenant(fleet: Fleet, tenant: Tenant) -> Fleet:
    tenants = dict(fleet.tenants)
    tenants[tenant.id] = tenant
    return dataclasses.replace(fleet, tenants=tenants)


def run_cycle(
    repo: Path,
    ctx: FleetContext,
    signals: SignalsPolicy,
    source: TelemetrySource,
    now: datetime,
    *,
    only: Sequence[str] = (),
) -> list[Candidate]:
    """Judge every rollout in flight (or those of the tenants in ``only``)."""
    fleet = ctx.fleet
    out: list[Candidate] = []
    for tenant_id in sorted(only or fleet.tenants):
        tenant = fleet.tenants[tenant_id]
        group = fleet.policy.groups[tenant.group]
        for alias_name, alias in sorted(tenant.aliases.items()):
            rollout = alias.rollout
            if rollout is None or rollout.stage == "rolled-back":
                continue
            options = allowed_transitions(ctx, tenant_id, alias_name, now)
            step = next((o for o in options if o.kind in _STEP_KINDS), None)
            next_step: NextStep | None = None
            if step is not None:
                next_step = (
                    NextStep("promote") if step.kind == "promote"
                    else NextStep("canary", step.target.percent)
                )
            ref = RolloutRef(
                tenant=tenant_id, alias=alias_name, pin=alias.pin,
                candidate=rollout.candidate, stage=rollout.stage, percent=rollout.percent,
                since=rollout.since, group=tenant.group,
                manual_approval=group.approval == "manual",
            )
            proposal = decide(
                ref, signals, source.observe(tenant_id, alias_name),
                next_step_allowed=bool(step and step.allowed),
                next_step=next_step,
                blocked_reasons=[r.message for r in step.reasons] if step else [],
            )
            path = fleet.tenant_path(tenant_id)
            old_text = (repo / path).read_text(encoding="utf-8")
            new_text = _edit(proposal, old_text, alias_name, now)
            plan_md = ""
            reasons: tuple[Reason, ...] = ()
            if new_text != old_text:
                plan_md, reasons = _judge(ctx, tenant_id, new_text, now)
            evidence = fleet.evidence.get((tenant_id, alias_name, rollout.candidate))
            ev_lines: tuple[str, ...] = ()
            if evidence is not None:
                ev_lines = (
                    f"BETS {evidence.suite.id} v{evidence.suite.version}: {evidence.passed}/"
                    f"{evidence.cases} passed, judge {evidence.judge}, run at "
                    f"{evidence.run_at:%Y-%m-%dT%H:%M:%SZ}",
                )
            out.append(Candidate(proposal, path, old_text, new_text, plan_md, reasons, ev_lines))
    return out


def _judge(
    ctx: FleetContext, tenant_id: str, new_text: str, now: datetime
) -> tuple[str, tuple[Reason, ...]]:
    """The plan of the edit and the reasons ``check`` would give against it."""
    try:
        tenant = Tenant.model_validate(yaml.safe_load(new_text))
    except (yaml.YAMLError, ValueError) as exc:
        return "", (Reason("MP100", f"the edited tenant file does not validate: {exc}", ()),)
    head = FleetContext.build(_with_tenant(ctx.fleet, tenant))
    changes = judge_tenant(ctx, head, tenant_id, base_time=now, now=now)
    plan = build_plan(ctx, head, changes, now=now, base_label="main", head_label="proposal")
    reasons = tuple(r for c in changes for r in c.reasons)
    return render_markdown(plan), reasons
