"""The gates a transition must pass, each a pure check returning blocking reasons.

Every gate takes the values it judges (including ``now``) and returns ``Reason``s with
the numbers in the sentence: "soak 31h of 72h", "evidence pass rate 0.941 < 0.98".
An empty list means the gate is open. The transition engine decides which gates apply.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelpin.model.bets import SuiteSource
from modelpin.model.evidence import Authenticity, Evidence
from modelpin.model.fleet import Fleet
from modelpin.model.model_version import ModelVersion
from modelpin.model.policies import RolloutGroup
from modelpin.model.tenant import Tenant, format_time
from modelpin.rollout.approval_gate import approval_gate, new_approvals_gate
from modelpin.rollout.reason import ModelPath, Reason

__all__ = ["EvidenceCheck", "approval_gate", "candidate_gate", "clock_gate", "compatibility_gate",
           "evidence_change_reasons", "evidence_gate", "frozen_gate", "new_approvals_gate",
           "suite_digest_reasons"]


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


@dataclass(frozen=True)
class EvidenceCheck:
    """The evidence found for a rollout and every rule of SPEC 1 it breaks."""

    evidence: Evidence | None
    reasons: tuple[Reason, ...]
    authenticity: Authenticity | None = None
    """How the evidence stands with the trust list (``unauthenticated``: plan marks it)."""
    unbound: bool = False
    """The suite is held in the repository but the evidence records no ``suite_sha256``
    (a run from before content binding: it counts while unchanged; plan marks it)."""

    @property
    def passes(self) -> bool:
        return not self.reasons

    def summary(self) -> str:
        e = self.evidence
        if e is None:
            return "no evidence"
        text = (
            f"{e.passed}/{e.cases} passed ({e.pass_rate:.3f}), suite {e.suite.id} "
            f"v{e.suite.version}, judge {e.judge}, run at {format_time(e.run_at)}"
        )
        auth = self.authenticity
        if auth is not None and auth.state == "signed":
            text += f", {auth.reason}"
        elif auth is not None and auth.state == "unauthenticated":
            text += ", UNAUTHENTICATED (unsigned, no evaluator keys configured)"
        elif auth is not None:
            text += ", NOT COUNTED (signature)"
        if self.unbound:
            text += ", suite content not recorded (no suite_sha256: an older run)"
        return text


def _evidence_file(fleet: Fleet, tenant: str, alias: str, candidate: str) -> str:
    return fleet.paths.get(f"evidence:{tenant}/{alias}/{candidate}",
                           f"evidence/{tenant}/{alias}/{candidate}.dsse.json")


def _at(file: str, field: str) -> ModelPath:
    """Where a predicate field sits: in a signed file, inside the envelope's payload."""
    return ("payload",) if file.endswith(".dsse.json") else (field,)


def authenticity(fleet: Fleet, key: tuple[str, str, str]) -> Authenticity:
    """How the evidence at ``key`` stands with the trust list it was judged by.

    A fleet built in code (no source recorded: tests, library callers) has nothing to
    verify; its evidence counts as unauthenticated. Loaded fleets always carry both.
    """
    auth = fleet.evidence_trust.get(key)
    if auth is not None:
        return auth
    if key in fleet.evidence_sources:
        return Authenticity("refused", "evidence was never judged against a trust list")
    return Authenticity("unauthenticated", "evidence built in code, not read from a file")


def judge_reasons(evidence: Evidence, pin: str, candidate: str,
                  facts: Sequence[Mapping[str, ModelVersion]], today_: datetime,
                  file: str) -> list[Reason]:
    """SPEC 2.1 rule 3: the judge is a chat model version of the fleet (in every fleet of
    ``facts``: base and head), neither retired nor blocked, neither pin nor candidate."""
    judge = evidence.judge
    at = _at(file, "judge")
    if judge in (pin, candidate):
        role = "pin" if judge == pin else "candidate"
        return [Reason("MP116", f"evidence judge {judge} is the {role}: "
                       "a judge evaluating itself proves nothing", at, file=file,
                       hint="judge with another pinned chat model version")]
    for models in facts:
        model = models.get(judge)
        if model is None:
            return [Reason("MP131", f"evidence judge {judge!r} is not a model version of the "
                           "fleet", at, file=file,
                           hint="the judge is named by its exact id in model_versions/")]
        problem = None
        if model.kind != "chat":
            problem = f"is a {model.kind} model, a judge must be a chat model"
        elif model.blocked:
            problem = f"is blocked: {model.blocked_reason}"
        elif model.retired(today_.date()):
            problem = f"retired on {model.retires_on}"
        if problem:
            return [Reason("MP131", f"evidence judge {judge} {problem}", at, file=file)]
    return []


def suite_digest_reasons(evidence: Evidence, suites: Mapping[str, SuiteSource], file: str, *,
                         new: bool) -> list[Reason]:
    """SPEC 2.1 rule 3, bound to content (docs/evidence.md): evidence for a suite the
    repository holds ran that suite's exact bytes (``suite_sha256`` equals the held
    suite's digest at that version). A suite the repository does not hold has nothing to
    bind to. ``new``: evidence the change adds or edits, which must record the digest of
    the version held; evidence already in the base without a digest (older runs) or for
    another version is not refused here (it ages out with ``evidence_max_age``), but a
    digest it records must match. MP133 on the evidence file."""
    held = suites.get(evidence.suite.id)
    if held is None:
        return []
    name = f"{evidence.suite.id} v{evidence.suite.version}"
    at = _at(file, "suite_sha256")
    recorded = evidence.suite_sha256
    hint = ("re-run `modelpin bets run` on the suite as merged (it records suite_sha256); "
            "an own harness records it before `modelpin attest` (docs/evidence.md)")
    if held.version != evidence.suite.version:
        if not new:
            return []
        return [Reason("MP133", f"evidence is for suite {name}; the repository holds "
                       f"{held.id} v{held.version}: what v{evidence.suite.version} contained "
                       "cannot be checked", at, file=file, hint=hint)]
    if recorded is None:
        if not new:
            return []
        return [Reason("MP133", f"evidence records no suite_sha256: it cannot be bound to the "
                       f"content of suite {name}", at, file=file, hint=hint)]
    if recorded != held.sha256:
        return [Reason("MP133", f"evidence ran suite {name} with content {recorded[:12]}, "
                       f"but {name} is {held.sha256[:12]}: it was run on other cases or "
                       "settings", at, file=file, hint=hint)]
    return []


def evidence_gate(
    fleet: Fleet,
    tenant: Tenant,
    alias: str,
    pin: str,
    candidate: str,
    group: RolloutGroup,
    now: datetime,
    path: ModelPath,
    *,
    facts: Fleet | None = None,
) -> EvidenceCheck:
    """SPEC 1 and 2.1 rule 3: evidence matches tenant, alias, baseline (= pin), candidate
    and suite; enough cases; pass rate at the gate; fresh; counted by the trust list it was
    judged with (``attestation.authenticate_fleet``); judged by a usable fleet model that is
    neither the pin nor the candidate.

    ``fleet`` holds the evidence (the head); ``facts`` the rules and model facts to judge
    by (the base; defaults to ``fleet``). Problems of the evidence itself are reported on
    the evidence file (``Reason.file``): its signatures, its subject, its judge, a run in
    the future. What the transition lacks (cases, pass rate, freshness, the tenant's
    suite) is reported on the tenant's rollout.
    """
    rules = facts or fleet
    key = (tenant.id, alias, candidate)
    evidence = fleet.evidence.get(key)
    if evidence is None:
        where = fleet.paths.get(
            f"evidence:{tenant.id}/{alias}/{candidate}",
            f"evidence/{tenant.id}/{alias}/{candidate}.dsse.json",
        )
        return EvidenceCheck(
            None, (Reason("MP120", f"no BETS evidence for {candidate}: expected {where}", path,
                          hint="run `modelpin bets run`, or sign your own result with "
                          "`modelpin attest`"),)
        )
    file = _evidence_file(fleet, tenant.id, alias, candidate)
    reasons: list[Reason] = []
    auth = authenticity(fleet, key)
    if not auth.counts:
        reasons.append(Reason("MP130", auth.reason, ("signatures",) if file.endswith(".dsse.json")
                              else (), hint=auth.hint, file=file))
    for field_, want in (
        ("tenant", tenant.id),
        ("alias", alias),
        ("baseline", pin),
        ("candidate", candidate),
    ):
        got = getattr(evidence, field_)
        if got != want:
            reasons.append(Reason("MP107", f"evidence {field_} is {got}, expected {want}",
                                  _at(file, field_), file=file))
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
    max_age = rules.policy.evidence_max_age
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
            Reason("MP114", f"evidence run_at {format_time(evidence.run_at)} is after now",
                   _at(file, "run_at"), file=file)
        )
    models = [rules.models] if rules is fleet else [rules.models, fleet.models]
    reasons += judge_reasons(evidence, pin, candidate, models, now, file)
    reasons += suite_digest_reasons(evidence, rules.suite_sources, file, new=False)
    unbound = evidence.suite_sha256 is None and evidence.suite.id in rules.suite_sources
    return EvidenceCheck(evidence, tuple(reasons), auth, unbound)


def evidence_change_reasons(
    base: Fleet, head: Fleet, now: datetime, *, skip: Collection[tuple[str, str, str]] = ()
) -> list[tuple[tuple[str, str, str], Reason]]:
    """Every evidence file added or changed by the change and not counted by the base's
    trust list, judged by an unusable judge, or not bound to the content of the suite the
    repository holds (``suite_digest_reasons``): a violation on the evidence file even
    when no rollout uses it yet (SPEC 2.1 rule 3). ``head`` must have been judged by the base
    (``attestation.authenticate_fleet(head, base)``)."""
    out: list[tuple[tuple[str, str, str], Reason]] = []
    for key, source in sorted(head.evidence_sources.items()):
        before = base.evidence_sources.get(key)
        if key in skip or (before is not None and before.sha256 == source.sha256):
            continue
        auth = authenticity(head, key)
        if not auth.counts:
            where: ModelPath = ("signatures",) if source.envelope is not None else ()
            out.append((key, Reason("MP130", auth.reason, where, hint=auth.hint,
                                    file=source.path)))
        evidence = head.evidence[key]
        out += [(key, r) for r in judge_reasons(
            evidence, evidence.baseline, evidence.candidate, [base.models, head.models], now,
            source.path)]
        # The suite as the base holds it; one the change adds, as the head holds it.
        suites = base.suite_sources if evidence.suite.id in base.suite_sources \
            else head.suite_sources
        out += [(key, r) for r in suite_digest_reasons(evidence, suites, source.path,
                                                        new=True)]
    return out
