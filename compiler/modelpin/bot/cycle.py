"""One bot cycle: every rollout in flight -> a proposal, its edited file and its plan.

:func:`~.evaluate.evaluate_fleet` gives the proposals (the engine's answer, telemetry,
decisions); here each is turned into an edit of the tenant file *as the remote's main
has it* (``read_text`` reads that commit, never the checkout: a stale checkout must not
revert what landed on main), judged by the same code as ``modelpin check``
(``judge_tenant``) against the fleet with the edit applied. A proposal the gate would
refuse is never published, it is reported. Each rollout is handled on its own: an
error on one becomes that candidate's ``error`` and the next is still built.

An unchanged proposal changes nothing: when the proposal branch already carries the
same edit made at an earlier time (``previous_text``), that edit and its ``since``
are kept, so the branch is not rewritten and the PR body not edited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from modelpin.model.fleet import Fleet
from modelpin.model.signals import SignalsPolicy
from modelpin.model.tenant import Tenant
from modelpin.rollout.change import judge_tenant
from modelpin.rollout.plan import build_plan, render_markdown
from modelpin.rollout.reason import Reason
from modelpin.rollout.transitions import FleetContext

from .decisions import Looks, Proposal, RolloutRef
from .evaluate import evaluate_fleet
from .telemetry import TelemetrySource
from .yaml_edit import apply_advance, apply_pause, apply_promotion, apply_rollback

ReadText = Callable[[str], str]
"""Repo-relative path -> the file's text at the commit proposals are built on."""
PreviousText = Callable[[str, str], "str | None"]
"""(branch, path) -> the file's text on an existing proposal branch, or None."""


@dataclass(frozen=True)
class Candidate:
    """A proposal ready to publish (or to print), or the error that stopped it."""

    rollout: RolloutRef
    proposal: Proposal | None
    path: str
    """Tenant file, relative to the repository root."""
    old_text: str = ""
    new_text: str = ""
    plan_markdown: str = ""
    check_reasons: tuple[Reason, ...] = ()
    """Why ``modelpin check`` would refuse the edit; empty when it passes."""
    evidence: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    """Refused telemetry or errors for this rollout (the exit status reports them)."""

    @property
    def changes_file(self) -> bool:
        return self.new_text != self.old_text


@dataclass(frozen=True)
class Cycle:
    candidates: tuple[Candidate, ...]
    general: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.general) or any(c.problems for c in self.candidates)


def edit_for(proposal: Proposal, text: str, alias: str, now: datetime) -> str:
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


def _since_on(text: str, alias: str) -> datetime | None:
    try:
        data: Any = yaml.safe_load(text)
        since = data["aliases"][alias]["rollout"]["since"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    if isinstance(since, str):  # a quoted time keeps its quotes through the edit
        try:
            since = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=UTC)
    return None


def stable_edit(
    proposal: Proposal, text: str, alias: str, now: datetime, previous: str | None
) -> tuple[str, datetime]:
    """The edit, reusing the ``since`` of an identical earlier edit (and that time)."""
    new = edit_for(proposal, text, alias, now)
    if previous is None or new in (text, previous):
        return new, now
    earlier = _since_on(previous, alias)
    if earlier is None or earlier > now:
        return new, now
    again = edit_for(proposal, text, alias, earlier)
    return (again, earlier) if again == previous else (new, now)


def _with_tenant(fleet: Fleet, tenant: Tenant) -> Fleet:
    tenants = dict(fleet.tenants)
    tenants[tenant.id] = tenant
    return dataclasses.replace(fleet, tenants=tenants)


def run_cycle(
    read_text: ReadText,
    ctx: FleetContext,
    signals: SignalsPolicy,
    source: TelemetrySource,
    now: datetime,
    *,
    only: Sequence[str] = (),
    previous_text: PreviousText | None = None,
    looks: Looks = "sequential",
) -> Cycle:
    """Judge every rollout in flight (or those of the tenants in ``only``)."""
    fleet = ctx.fleet
    result = evaluate_fleet(ctx, signals, source, now, only=only, looks=looks)
    out: list[Candidate] = []
    for evaluation in result.evaluations:
        ref, proposal = evaluation.ref, evaluation.proposal
        path = fleet.tenant_path(ref.tenant)
        if proposal is None:
            out.append(Candidate(ref, None, path, problems=evaluation.problems))
            continue
        try:
            out.append(_candidate(ctx, proposal, path, read_text, previous_text, now,
                                  evaluation.problems))
        except Exception as exc:  # isolate: this rollout is reported, the next is built
            out.append(Candidate(ref, proposal, path,
                                 problems=(*evaluation.problems, f"edit: {exc}")))
    return Cycle(tuple(out), result.general)


def candidate_for(
    ctx: FleetContext, proposal: Proposal, read_text: ReadText, now: datetime
) -> Candidate:
    """One proposal made ready to publish, exactly as ``run_cycle`` makes them (the
    guard uses it to reopen the rollback PR of a trip from the trip alone)."""
    path = ctx.fleet.tenant_path(proposal.rollout.tenant)
    return _candidate(ctx, proposal, path, read_text, None, now, ())


def _candidate(
    ctx: FleetContext,
    proposal: Proposal,
    path: str,
    read_text: ReadText,
    previous_text: PreviousText | None,
    now: datetime,
    problems: tuple[str, ...],
) -> Candidate:
    ref = proposal.rollout
    old_text = read_text(path)
    previous = None
    if previous_text is not None and proposal.kind in ("advance", "rollback", "pause"):
        previous = previous_text(proposal.branch, path)
    new_text, when = stable_edit(proposal, old_text, ref.alias, now, previous)
    plan_md = ""
    reasons: tuple[Reason, ...] = ()
    if new_text != old_text:
        plan_md, reasons = judge_edit(ctx, ref.tenant, new_text, when)
    evidence = ctx.fleet.evidence.get((ref.tenant, ref.alias, ref.candidate))
    ev_lines: tuple[str, ...] = ()
    if evidence is not None:
        ev_lines = (
            f"BETS {evidence.suite.id} v{evidence.suite.version}: {evidence.passed}/"
            f"{evidence.cases} passed, judge {evidence.judge}, run at "
            f"{evidence.run_at:%Y-%m-%dT%H:%M:%SZ}",
        )
    return Candidate(ref, proposal, path, old_text, new_text, plan_md, reasons, ev_lines,
                     problems)


def judge_edit(
    ctx: FleetContext, tenant_id: str, new_text: str, now: datetime
) -> tuple[str, tuple[Reason, ...]]:
    """The plan of the edit and the reasons ``check`` would give against it."""
    try:
        tenant = Tenant.model_validate(yaml.safe_load(new_text))
    except (yaml.YAMLError, ValueError) as exc:
        return "", (Reason("MP100", f"the edited tenant file does not validate: {exc}", ()),)
    head = FleetContext.build(_with_tenant(ctx.fleet, tenant), ctx.records)
    changes = judge_tenant(ctx, head, tenant_id, base_time=now, now=now)
    plan = build_plan(ctx, head, changes, now=now, base_label="main", head_label="proposal")
    reasons = tuple(r for c in changes for r in c.reasons)
    return render_markdown(plan), reasons
