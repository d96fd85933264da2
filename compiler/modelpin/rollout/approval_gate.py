"""The manual-approval gate (SPEC 2.1 rule 4): two sign-offs per step, append-only.

A step of a manual-approval group is entered only with two approvals of that step: one
signed by a platform approver key and one by a key of the tenant's contacts, by two
distinct keys (a key listed in both roles fills one). Who signed what was judged earlier,
against the base's trust lists (``modelpin.approvals``), into ``Fleet.approval_verdicts``;
this gate counts. With no approver keys configured, unsigned approvals count: then two
approvals by different people are needed, one of them a tenant contact when the tenant
lists contacts (``plan`` marks them unauthenticated).

``new_approvals_gate`` judges the approvals a change adds: each is for the step being
entered (or, in a change that enters none, the next step), dated between the base commit
and now, and not refused by the trust lists. Removing or editing a recorded approval is
judged by the change classifier (approvals are append-only while in flight).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelpin.model.fleet import Fleet
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Approval, Contact, format_time
from modelpin.model.trust import ApprovalVerdict
from modelpin.rollout.reason import ModelPath, Reason
from modelpin.rollout.state import format_percent

_UNJUDGED = ApprovalVerdict("unauthenticated", reason="approval built in code, not read")


def _verdict(fleet: Fleet | None, tenant_id: str, alias: str, index: int) -> ApprovalVerdict:
    if fleet is None:
        return _UNJUDGED
    found = fleet.approval_verdicts.get((tenant_id, alias, index))
    if found is not None:
        return found
    if fleet.approval_verdicts or fleet.evidence_sources:
        return ApprovalVerdict("refused", reason="approval was never judged against a trust list")
    return _UNJUDGED


def approval_gate(
    group_name: str,
    group: RolloutGroup,
    approvals: Sequence[Approval],
    percent: float,
    now: datetime,
    path: ModelPath,
    *,
    fleet: Fleet | None = None,
    tenant_id: str = "",
    alias: str = "",
    contacts: Sequence[Contact] = (),
    signed: bool = False,
) -> list[Reason]:
    """Manual groups: two approvals of the step entered (see the module docstring).

    ``approvals`` are the rollout's entries (head), ``fleet`` the fleet whose
    ``approval_verdicts`` judged them, ``contacts`` the tenant's base contacts, ``signed``
    whether the base configures approver keys (then only signed approvals count).
    """
    if group.approval != "manual":
        return []
    step = format_percent(percent)
    approver: set[str] = set()
    contact: set[str] = set()
    people: set[str] = set()
    refused: list[str] = []
    for i, a in enumerate(approvals):
        if a.percent != percent or a.at > now:
            continue
        v = _verdict(fleet, tenant_id, alias, i)
        if v.state == "refused":
            refused.append(v.reason)
            continue
        if v.state == "unauthenticated":
            if not signed:
                people.add(a.by)
            continue
        if "approver" in v.roles:
            approver.add(v.keyid)
        if "contact" in v.roles:
            contact.add(v.keyid)
    hint = f"`modelpin approve TENANT ALIAS --percent {step} --key FILE`"
    if refused:
        hint = f"not counted: {refused[0]}; " + hint
    if not signed:
        names = {c.name for c in contacts}
        ok = len(people) >= 2 and (not names or (people & names and people - names))
        if ok:
            return []
        need = "two approvals by different people" + (
            ", one of them a tenant contact" if names else "")
        return [Reason("MP109", f"group {group_name} needs {need} for {step}%: "
                       f"{len(people)} recorded", path, hint=hint)]
    if any(a != c for a in approver for c in contact):
        return []
    missing = []
    if not approver:
        missing.append("a platform approver (policies/approvers.yaml)")
    if not contact:
        missing.append("a tenant contact")
    if approver and contact:
        missing.append("two distinct keys (one key signed both roles)")
    return [Reason("MP109", f"group {group_name} needs signed approvals for {step}% by "
                   f"{' and '.join(missing)}: "
                   f"{len(approver)} approver, {len(contact)} contact signature(s) count",
                   path, hint=hint)]


def new_approvals_gate(
    before: Sequence[Approval],
    after: Sequence[Approval],
    *,
    steps: Sequence[float],
    not_before: datetime,
    now: datetime,
    fleet: Fleet | None,
    tenant_id: str,
    alias: str,
    path: ModelPath,
) -> list[Reason]:
    """Every approval the change adds: for an allowed step (``steps``: the step entered,
    or the next one), dated within [base commit, now], not refused by the trust lists.
    ``path`` is the rollout's path; reasons point at the offending entry."""
    recorded = list(before)
    out: list[Reason] = []
    allowed = ", ".join(f"{format_percent(s)}%" for s in steps) or "none"
    for i, a in enumerate(after):
        if a in recorded:
            recorded.remove(a)
            continue
        where = (*path, "approvals", i)
        who = f"approval by {a.by} for {format_percent(a.percent)}%"
        if a.percent not in steps:
            out.append(Reason("MP132", f"{who} is not for the step this change may enter "
                              f"({allowed})", (*where, "percent"),
                              hint="approve the step being entered, in the change entering "
                              "it or just before"))
        if a.at > now:
            out.append(Reason("MP132", f"{who} is dated {format_time(a.at)}, in the future",
                              (*where, "at")))
        elif a.at < not_before:
            out.append(Reason("MP132", f"{who} is dated {format_time(a.at)}, before the base "
                              f"commit ({format_time(not_before)})", (*where, "at"),
                              hint="an approval added by a change is given after its base"))
        v = _verdict(fleet, tenant_id, alias, i)
        if v.state == "refused":
            out.append(Reason("MP132", v.reason, (*where, "sig"),
                              hint="sign it with your key: `modelpin approve`"))
    seen: dict[str, int] = {}
    for i, a in enumerate(after):
        v = _verdict(fleet, tenant_id, alias, i)
        if v.state != "signed":
            continue
        first = seen.setdefault(f"{a.percent}:{v.keyid}", i)
        if first != i and after[i] not in before:
            out.append(Reason("MP132", f"approval by {a.by} for {format_percent(a.percent)}% "
                              f"is signed by the same key as approvals[{first}]",
                              (*path, "approvals", i, "sig"),
                              hint="the second approval is by another person's key"))
    return out
