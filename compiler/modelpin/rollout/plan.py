"""The pull-request plan: what a change does to the fleet, rendered for a PR comment.

``build_plan`` gathers judged changes, the blast radius by group and the warnings a
reviewer should see (model sunsets, inconclusive evidence); ``render_markdown`` and
``plan_json`` present it. Pure: positions come from a ``locate`` function the caller
supplies (the CLI maps model paths to file:line:col).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelpin.diagnostics import escape_controls
from modelpin.rollout import gates
from modelpin.rollout.change import Change
from modelpin.rollout.reason import Reason
from modelpin.rollout.shown import ShownChanges
from modelpin.rollout.state import AliasState
from modelpin.rollout.transitions import FleetContext

Locate = Callable[[str, Reason], str]
"""(tenant, reason) -> ``file:line:col`` of the field the reason is about."""

DETAILS_AFTER = 20
"""Lists longer than this are collapsed into a ``<details>`` block."""


@dataclass(frozen=True)
class PlanWarning:
    code: str
    message: str
    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupImpact:
    group: str
    tenants: tuple[str, ...]
    aliases: int
    group_size: int


@dataclass(frozen=True)
class Plan:
    base: str
    head: str
    now: datetime
    changes: tuple[Change, ...]
    impact: tuple[GroupImpact, ...]
    warnings: tuple[PlanWarning, ...] = field(default=())
    shown: ShownChanges | None = None
    """Changes to rules, evidence and tenant settings, and their effect (2.1 rule 2)."""

    @property
    def violations(self) -> list[tuple[Change, Reason]]:
        return [(c, r) for c in self.changes for r in c.reasons]

    @property
    def invariant_violations(self) -> int:
        return len(self.shown.violations) if self.shown else 0


def build_plan(
    base: FleetContext,
    head: FleetContext,
    changes: Sequence[Change],
    *,
    now: datetime,
    base_label: str,
    head_label: str,
    shown: ShownChanges | None = None,
) -> Plan:
    groups: dict[str, tuple[set[str], int]] = {}
    for change in changes:
        tenant = head.fleet.tenants.get(change.tenant) or base.fleet.tenants[change.tenant]
        tenants, aliases = groups.get(tenant.group, (set(), 0))
        tenants.add(change.tenant)
        groups[tenant.group] = (tenants, aliases + (change.alias is not None))
    impact = tuple(
        GroupImpact(g, tuple(sorted(t)), n, head.index.tenants_per_group.get(g, 0))
        for g, (t, n) in sorted(groups.items(), key=lambda kv: _order(head, kv[0]))
    )
    warnings = _inconclusive(head, changes, now) + _sunsets(head, now)
    return Plan(base_label, head_label, now, tuple(changes), impact, tuple(warnings), shown)


def _order(ctx: FleetContext, group: str) -> tuple[int, str]:
    order = ctx.graph.topological_order()
    return (order.index(group) if group in order else len(order), group)


def _inconclusive(
    head: FleetContext, changes: Sequence[Change], now: datetime
) -> list[PlanWarning]:
    out = []
    for change in changes:
        after = change.after
        if after is None or change.alias is None or not after.in_flight or not after.candidate:
            continue
        tenant = head.fleet.tenants[change.tenant]
        check = gates.evidence_gate(
            head.fleet,
            tenant,
            change.alias,
            after.pin,
            after.candidate,
            head.fleet.policy.groups[tenant.group],
            now,
            (),
        )
        auth = check.authenticity
        if check.evidence is not None and auth is not None and auth.state == "unauthenticated":
            out.append(PlanWarning(
                "MP130", f"{change.tenant}/{change.alias}: evidence is UNAUTHENTICATED "
                "(unsigned; no evaluator keys in policies/evaluators.yaml)", (change.tenant,)))
        if check.evidence is not None and check.unbound:
            out.append(PlanWarning(
                "MP133", f"{change.tenant}/{change.alias}: evidence records no suite_sha256 "
                f"(a run from before content binding): suite {check.evidence.suite.id} "
                f"v{check.evidence.suite.version} cannot be checked against what it ran; it "
                "counts until evidence_max_age retires it", (change.tenant,)))
        rollout = tenant.aliases[change.alias].rollout
        if rollout is not None and any(
            head.fleet.approval_verdicts.get((change.tenant, change.alias, i)) is not None
            and head.fleet.approval_verdicts[(change.tenant, change.alias, i)].state
            == "unauthenticated" for i in range(len(rollout.approvals))
        ):
            out.append(PlanWarning(
                "MP132", f"{change.tenant}/{change.alias}: approvals are UNAUTHENTICATED "
                "(unsigned; no approver keys in policies/approvers.yaml)", (change.tenant,)))
        for reason in check.reasons:
            if reason.code == "MP120":
                out.append(
                    PlanWarning(
                        "MP120",
                        f"{change.tenant}/{change.alias}: {reason.message}",
                        (change.tenant,),
                    )
                )
    return out


def _sunsets(head: FleetContext, now: datetime) -> list[PlanWarning]:
    """Pins and candidates retiring within ``sunset_warning_days``, naming every tenant."""
    horizon = now.date() + timedelta(days=head.fleet.policy.sunset_warning_days)
    soon = {
        mid: m.retires_on
        for mid, m in head.fleet.models.items()
        if m.retires_on is not None and m.retires_on <= horizon
    }
    if not soon:
        return []
    users: dict[str, set[str]] = {mid: set() for mid in soon}
    for tid, tenant in head.fleet.tenants.items():
        for alias in tenant.aliases.values():
            state = AliasState.of(alias)
            for version in (state.pin, state.candidate):
                if version in users:
                    users[version].add(tid)
    out = []
    for mid in sorted(soon):
        if users[mid]:
            days = (soon[mid] - now.date()).days
            out.append(
                PlanWarning(
                    "MP032",
                    f"{mid} retires on {soon[mid]} (in {days} days), used by "
                    f"{len(users[mid])} tenant(s)",
                    tuple(sorted(users[mid])),
                )
            )
    return out


_MARKDOWN_ACTIVE = frozenset("\\`*_[]|~")
"""ASCII punctuation that can open a markdown construct inside a line (code spans,
emphasis, links and images, table cells, strikethrough): escaped with a backslash.
(Parentheses and ``!`` only act after a ``]``, which is escaped.)"""
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
"""HTML is never passed through: no tag, comment (a forged ``<!-- modelpin-plan -->``
marker), ``<details>`` or autolink can come from a value."""
_WORD_JOINER = "\u2060"
_NOTIFIERS = re.compile(r"(@|#)(?=[A-Za-z0-9])|(:)(?=[A-Za-z0-9_+-]*[A-Za-z][A-Za-z0-9_+-]*:)")
"""``@name`` (a mention that notifies), ``#12`` (a cross-reference) and ``:name:`` (an
emoji such as a forged :white_check_mark:): GitHub finds these in the rendered text, after
backslash escapes are gone, so an invisible word joiner is put after the sigil."""
_SAFE_CODE = re.compile(r"[A-Za-z0-9 ._/:+=,~^@-]*")


def escape_markdown(text: str) -> str:
    """``text`` (any value a file can hold) as inert markdown: one line, no HTML, no
    markdown construct, no mention, no cell break; it renders as the literal text. The one
    escaping function of every markdown modelpin writes (plan comments, bot PR bodies)."""
    one_line = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    out = _NOTIFIERS.sub(lambda m: (m.group(1) or m.group(2)) + _WORD_JOINER,
                         escape_controls(one_line))
    return "".join(_ENTITIES.get(c) or ("\\" + c if c in _MARKDOWN_ACTIVE else c) for c in out)


def _code(text: str) -> str:
    """``text`` as a code span when it holds only plain characters (a path, a ref, a
    location), else escaped text: inside a code span no escape works."""
    if _SAFE_CODE.fullmatch(text) and text:
        return f"`{text}`"
    return escape_markdown(text)


def _collapse(summary: str, body: list[str], *, always: bool = False) -> list[str]:
    if not always and len(body) <= DETAILS_AFTER:
        return body
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"]


def render_markdown(plan: Plan, locate: Locate | None = None) -> str:
    """A GitHub comment: verdict, changes, blast radius, violations, warnings.

    Every value that comes from the fleet (a file name, a message quoting a value) goes
    through ``escape_markdown`` (or ``_code``): a file cannot write markdown or HTML into
    the comment."""
    e = escape_markdown
    violations = plan.violations
    tenants = {c.tenant for c in plan.changes}
    count = len(violations) + plan.invariant_violations
    verdict = f":x: {count} violation(s)" if count else ":white_check_mark: all allowed"
    out = [
        f"## modelpin plan: {_code(plan.base)} → {_code(plan.head)}",
        "",
        f"**{len(plan.changes)} change(s) in {len(tenants)} tenant(s)** — {verdict}",
        "",
    ]
    if not plan.changes:
        out += ["No tenant or alias changes.", ""]
    else:
        rows = [
            "| Tenant | Alias | From | To | Transition | Verdict |",
            "|---|---|---|---|---|---|",
        ]
        for c in plan.changes:
            before = c.before.label() if c.before else "—"
            after = c.after.label() if c.after else "(removed)"
            verdict_cell = "allowed" if c.allowed else ", ".join(r.code for r in c.reasons)
            rows.append(
                f"| {e(c.tenant)} | {e(c.alias or '(tenant)')} | {e(before)} | {e(after)} | "
                f"{e(c.kind or '—')} | {'✅' if c.allowed else '❌'} {e(verdict_cell)} |"
            )
        out += ["### Changes", "", *_collapse(f"{len(plan.changes)} changes", rows), ""]
        out += [
            "### Blast radius",
            "",
            "| Group | Tenants | Aliases | Tenants affected |",
            "|---|---|---|---|",
        ]
        for g in plan.impact:
            names = ", ".join(g.tenants[:DETAILS_AFTER])
            if len(g.tenants) > DETAILS_AFTER:
                names += f", … ({len(g.tenants) - DETAILS_AFTER} more)"
            out.append(f"| {e(g.group)} | {len(g.tenants)} of {g.group_size} | {g.aliases} | "
                       f"{e(names)} |")
        out.append("")
    shown = plan.shown
    if shown is not None and (shown.shown or shown.effects):
        listed = [f"- {_code(c.file)} {e(c.message)}" for c in shown.shown]
        out += ["### Rules, evidence and settings changed", "",
                *_collapse(f"{len(listed)} changes", listed), ""]
        if shown.effects:
            effects = [f"- {e(item.message)}" for item in shown.effects]
            out += ["### Effect on rollouts in flight", "",
                    *_collapse(f"{len(effects)} rollouts affected", effects), ""]
    if violations or plan.invariant_violations:
        lines = []
        for item in shown.violations if shown else ():
            lines.append(f"- {_code(item.file)} **{e(item.code)}** {e(item.message)}")
        for change, reason in violations:
            where = f"{_code(locate(change.tenant, reason))} " if locate else ""
            subject = change.tenant + (f"/{change.alias}" if change.alias else "")
            lines.append(f"- {where}**{e(reason.code)}** {e(subject)}: {e(reason.message)}")
        out += ["### Violations", "", *_collapse(f"{len(lines)} violations", lines), ""]
    if plan.warnings:
        out += ["### Warnings", ""]
        for w in plan.warnings:
            out.append(f"- **{e(w.code)}** {e(w.message)}")
            if len(w.tenants) > 1:
                out += [
                    "  <details><summary>tenants</summary>",
                    "",
                    "  " + e(", ".join(w.tenants)),
                    "",
                    "  </details>",
                ]
        out.append("")
    return "\n".join(out)


def plan_json(plan: Plan, locate: Locate | None = None) -> dict[str, object]:
    def state(s: AliasState | None) -> dict[str, object] | None:
        if s is None:
            return None
        return {"stage": s.kind, "pin": s.pin, "candidate": s.candidate, "percent": s.percent}

    return {
        "base": plan.base,
        "head": plan.head,
        "now": plan.now.isoformat(),
        "allowed": not plan.violations and not plan.invariant_violations,
        "rule_changes": plan.shown.to_json() if plan.shown else None,
        "invariant_violations": [
            {"file": v.file, "code": v.code, "message": v.message}
            for v in (plan.shown.violations if plan.shown else ())
        ],
        "changes": [
            {
                "tenant": c.tenant,
                "alias": c.alias,
                "from": state(c.before),
                "to": state(c.after),
                "transition": c.kind,
                "allowed": c.allowed,
                "reasons": [
                    {
                        "code": r.code,
                        "message": r.message,
                        "at": locate(c.tenant, r) if locate else None,
                    }
                    for r in c.reasons
                ],
            }
            for c in plan.changes
        ],
        "blast_radius": [
            {
                "group": g.group,
                "tenants": list(g.tenants),
                "aliases": g.aliases,
                "group_size": g.group_size,
            }
            for g in plan.impact
        ],
        "warnings": [
            {"code": w.code, "message": w.message, "tenants": list(w.tenants)}
            for w in plan.warnings
        ],
    }
