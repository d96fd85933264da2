"""Which (tenant, alias) pairs a run judges, against which candidate, with which suite.

Pure: takes the validated fleet, returns targets and the reasons others were skipped.
Without ``candidate``: every chat alias with a rollout in flight (not rolled back) is run
against its rollout's candidate. With ``candidate`` V: every chat alias whose pin is not V
is run against V (a provider shipped V; evidence comes before the shadow PR); with
``affected_only`` (``--all``), only aliases whose pin is a model of V's provider. Embedding
aliases are not judged by BETS (no chat answer to compare). The judge is the suite's,
and must be a chat model version of the fleet, not retired or blocked, and neither the
pin nor the candidate: a judge evaluating itself proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from modelpin.model.bets import Suite
from modelpin.model.fleet import Fleet


@dataclass(frozen=True)
class Target:
    tenant: str
    alias: str
    baseline: str
    candidate: str
    suite: Suite
    suite_sha256: str | None = None
    """The digest of the suite's files as loaded (``load.suite_digest``): the evidence
    records it, so it binds to the content run, not only the suite's name and version."""

    @property
    def label(self) -> str:
        return f"{self.tenant}/{self.alias}"


@dataclass(frozen=True)
class Skip:
    tenant: str
    alias: str
    reason: str
    problem: bool = True
    """False for aliases that simply have nothing to run (no rollout in flight)."""


class JudgeRefused(Exception):
    """The suite's judge may not judge this pair."""


def judge_problem(fleet: Fleet, judge: str, baseline: str, candidate: str,
                  today: date) -> str | None:
    """Why ``judge`` may not judge ``baseline`` vs ``candidate``, or None."""
    if judge in (baseline, candidate):
        role = "pin" if judge == baseline else "candidate"
        return (f"the judge {judge} is the {role}: a judge evaluating itself proves nothing")
    model = fleet.models.get(judge)
    if model is None:
        return f"the judge {judge} is not a model version of the fleet"
    if model.kind != "chat":
        return f"the judge {judge} is a {model.kind} model"
    if model.blocked:
        return f"the judge {judge} is blocked"
    if model.retired(today):
        return f"the judge {judge} retired on {model.retires_on}"
    return None


def plan_targets(fleet: Fleet, tenants: list[str], candidate: str | None,
                 today: date, *, affected_only: bool = False) -> tuple[list[Target], list[Skip]]:
    targets: list[Target] = []
    skipped: list[Skip] = []
    for tid in tenants:
        tenant = fleet.tenants[tid]
        for name, alias in sorted(tenant.aliases.items()):
            if alias.kind != "chat":
                continue
            if candidate is not None:
                if alias.pin == candidate:
                    skipped.append(Skip(tid, name, f"already pinned to {candidate}", False))
                    continue
                pin_model, new_model = fleet.models.get(alias.pin), fleet.models.get(candidate)
                if affected_only and pin_model is not None and new_model is not None \
                        and pin_model.provider != new_model.provider:
                    skipped.append(Skip(tid, name, f"pin {alias.pin} is not a "
                                        f"{new_model.provider} model", False))
                    continue
                versus = candidate
            else:
                rollout = alias.rollout
                if rollout is None or rollout.stage == "rolled-back":
                    skipped.append(Skip(tid, name, "no rollout in flight", False))
                    continue
                versus = rollout.candidate
            ref = tenant.bets_suite
            if ref is None:
                skipped.append(Skip(tid, name, "the tenant names no bets_suite"))
                continue
            suite = fleet.suites.get(ref.id)
            if suite is None:
                skipped.append(Skip(tid, name, f"suite '{ref.id}' is not in bets/"))
                continue
            if suite.version != ref.version:
                skipped.append(Skip(tid, name, f"suite '{ref.id}' is at version "
                                    f"{suite.version}, the tenant names {ref.version}"))
                continue
            problem = judge_problem(fleet, suite.judge, alias.pin, versus, today)
            if problem is not None:
                raise JudgeRefused(f"{tid}/{name}: {problem} (suite '{suite.id}')")
            model = fleet.models.get(versus)
            if model is None:
                skipped.append(Skip(tid, name, f"candidate {versus} is not a model version"))
                continue
            if model.kind != alias.kind:
                skipped.append(Skip(tid, name, f"candidate {versus} is a {model.kind} model"))
                continue
            source = fleet.suite_sources.get(suite.id)
            targets.append(Target(tid, name, alias.pin, versus, suite,
                                  source.sha256 if source is not None else None))
    return targets, skipped
