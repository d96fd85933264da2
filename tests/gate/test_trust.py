"""PR scenarios round signed evidence and signed, dual, append-only approvals (SPEC 2.1
rules 3 and 4), each on a real git repository judged by ``modelpin check``.

The base fleet here trusts one evaluator key (``EVAL``) and one platform approver key
(``APPROVER``); its evidence is signed by ``EVAL``; tenant ``man`` (group ``gated``:
manual approval, no shadow or soak time) lists ``CONTACT`` as its contact and has served
its shadow of V. ``ROGUE`` is a key nobody trusts in the base.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import rfc8785

from modelpin import approvals, attestation, signing
from tests.fleetkit import FleetSpec, evidence, tenant
from tests.gate.harness import (
    EVIDENCE_AT,
    FRESH,
    JUDGE,
    OLD,
    Gate,
    PullRequest,
    Row,
    V,
    base_fleet,
    canary,
    row_id,
    shadow,
)

EVAL, ROGUE, APPROVER, CONTACT, OTHER = (signing.generate_private_key() for _ in range(5))


def pem(key: Any) -> bytes:
    return signing.private_key_pem(key)


def pub(key: Any) -> str:
    return signing.public_key_b64(key.public_key())


GATED = {"after": ["early"], "ladder": [5, 25, 100], "soak": "0h", "approval": "manual",
         "shadow": "0h", "bets": {"min_pass_rate": 0.9, "min_cases": 50}}
AT = "2026-03-25T11:00:00Z"
"""An approval given during the PR (after the base commit, before NOW)."""


def signed_base() -> FleetSpec:
    spec = base_fleet()
    spec.evaluators = {"threshold": 1, "keys": [{"name": "bets-ci", "public_key": pub(EVAL)}]}
    spec.approvers = {"keys": [{"name": "oncall@platform.example", "public_key": pub(APPROVER)}]}
    spec.evidence_key = pem(EVAL)
    spec.groups["gated"] = copy.deepcopy(GATED)
    spec.add(tenant("man", group="gated", rollout=shadow(OLD),
                    contacts=[{"name": "ops@man.example", "public_key": pub(CONTACT)}]))
    spec.evidence.append(evidence("man", run_at=EVIDENCE_AT))
    return spec


def at_canary_5() -> FleetSpec:
    """``man`` already at canary 5, with its two approvals for 5 recorded."""
    spec = signed_base()
    spec.tenants["man"]["aliases"]["primary"]["rollout"] = canary(
        5, OLD, approvals=[approval(APPROVER, "oncall@platform.example", 5, "2026-03-23T00:00:00Z"),
                           approval(CONTACT, "ops@man.example", 5, "2026-03-23T00:00:00Z")])
    return spec


def approval(key: Any, by: str, percent: float, at: str = AT, tenant_id: str = "man",
             candidate: str = V) -> dict[str, Any]:
    when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    sig = approvals.sign(key, tenant_id, "primary", candidate, percent, by, when)
    return {"percent": percent, "by": by, "at": at, "sig": sig}


BOTH = [approval(APPROVER, "oncall@platform.example", 5), approval(CONTACT, "ops@man.example", 5)]


def enter_5(entries: list[dict[str, Any]]) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout("man", canary(5, FRESH, approvals=entries))
        pr.write()
    return edit


def advance_25(entries: list[dict[str, Any]]) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout("man", canary(25, FRESH, approvals=entries))
        pr.write()
    return edit


def ev_file(tid: str, signed: bool = True) -> str:
    return f"evidence/{tid}/primary/{V}.{'dsse.json' if signed else 'json'}"


def first_canary(tid: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        pr.set_rollout(tid, canary(5, FRESH))
    return edit


def with_evidence(tid: str, key: Any | None, *, write: Callable[[PullRequest], None]
                  = lambda pr: None, **fields: Any) -> Callable[[PullRequest], None]:
    """Replace ``tid``'s evidence: signed by ``key`` (None: unsigned JSON), then move
    ``tid`` into canary 5."""
    def edit(pr: PullRequest) -> None:
        first_canary(tid)(pr)
        pr.write()
        result = {**evidence(tid, run_at=EVIDENCE_AT), **fields}
        for signed in (True, False):
            if pr.path(ev_file(tid, signed)).exists():
                pr.delete(ev_file(tid, signed))
        if key is None:
            pr.write_text(ev_file(tid, signed=False), json.dumps(result, indent=2) + "\n")
        else:
            pr.path(ev_file(tid)).parent.mkdir(parents=True, exist_ok=True)
            pr.path(ev_file(tid)).write_bytes(sign_raw(result, key))
        write(pr)
    return edit


def sign_raw(result: dict[str, Any], key: Any) -> bytes:
    """Sign ``result`` as an evaluator's own tool might, even when it breaks a field rule
    (``attestation.sign`` refuses those): the statement is built by hand."""
    statement = {
        "_type": attestation.STATEMENT_TYPE,
        "subject": [{"name": attestation.subject_name(result["tenant"], result["alias"],
                                                       result["baseline"], result["candidate"]),
                     "digest": {"sha256": attestation.predicate_digest(result)}}],
        "predicateType": attestation.PREDICATE_TYPE,
        "predicate": result,
    }
    envelope = signing.sign(rfc8785.dumps(statement), [key], attestation.PAYLOAD_TYPE)
    return attestation.dump(envelope)


def tampered(pr: PullRequest) -> None:
    """Raise std-s's case and pass counts inside the signed envelope, keeping the statement
    consistent (subject digest updated), without a new signature."""
    first_canary("std-s")(pr)
    pr.write()
    path = pr.path(ev_file("std-s"))
    doc = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["passed"] = 650
    statement["predicate"]["cases"] = 650
    statement["subject"][0]["digest"]["sha256"] = attestation.predicate_digest(
        statement["predicate"])
    doc["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()
    path.write_text(json.dumps(doc, indent=2) + "\n")


def weak_rewritten(pr: PullRequest) -> None:
    """std-weak's failing evidence re-written as passing, signed by nobody trusted."""
    pr.set_rollout("std-weak", canary(25, FRESH))
    pr.write()
    result = evidence("std-weak", run_at=EVIDENCE_AT)
    pr.path(ev_file("std-weak")).write_bytes(attestation.sign(result, [ROGUE]))


def key_added_in_pr(pr: PullRequest) -> None:
    with_evidence("std-s", ROGUE)(pr)
    pr.edit_yaml("policies/evaluators.yaml", lambda d: d["keys"].append(
        {"name": "rogue", "public_key": pub(ROGUE)}))


def threshold_two(pr: PullRequest) -> None:
    pr.publish(lambda p: p.edit_yaml("policies/evaluators.yaml", lambda d: d.update(
        threshold=2, keys=[*d["keys"], {"name": "second", "public_key": pub(OTHER)}])))
    first_canary("std-s")(pr)
    pr.write()
    pr.edit_yaml("policies/evaluators.yaml", lambda d: d.update(
        threshold=2, keys=[*d["keys"], {"name": "second", "public_key": pub(OTHER)}]))


def contact_added_in_pr(pr: PullRequest) -> None:
    pr.spec.tenants["man"]["contacts"].append({"name": "new@man.example",
                                               "public_key": pub(OTHER)})
    enter_5([BOTH[0], approval(OTHER, "new@man.example", 5)])(pr)


def same_key_both_roles() -> FleetSpec:
    spec = signed_base()
    spec.tenants["man"]["contacts"].append({"name": "oncall@platform.example",
                                            "public_key": pub(APPROVER)})
    return spec


def suite_version(value: Any) -> Callable[[PullRequest], None]:
    return with_evidence("std-s", EVAL, suite={"id": "std-s-suite", "version": value})


ENVELOPE = "payload"  # signed results sit base64-encoded in the envelope's payload line

BLOCKED = [
    Row("evidence/tampered-after-signing", tampered, code="MP130", file=ev_file("std-s"),
        needle="signatures", message="does not verify", base=signed_base),
    Row("evidence/rewritten-by-untrusted-key", weak_rewritten, code="MP130",
        file=ev_file("std-weak"), needle="signatures", base=signed_base),
    Row("evidence/added-unsigned", with_evidence("std-s", None), code="MP130",
        file=ev_file("std-s", signed=False), message="unsigned", base=signed_base),
    Row("evidence/unsigned-changed-without-keys",
        with_evidence("std-s", None, passed=599), code="MP130",
        file=ev_file("std-s", signed=False), message="new or changed", base=base_fleet),
    Row("evidence/untrusted-key", with_evidence("std-s", ROGUE), code="MP130",
        file=ev_file("std-s"), needle="signatures", message="unknown key id",
        base=signed_base),
    Row("evidence/key-added-in-same-pr", key_added_in_pr, code="MP130",
        file=ev_file("std-s"), needle="signatures", base=signed_base),
    Row("evidence/below-threshold", threshold_two, code="MP130", file=ev_file("std-s"),
        needle="signatures", message="2 required", base=signed_base),
    Row("judge/is-the-candidate", with_evidence("std-s", EVAL, judge=V), code="MP116",
        file=ev_file("std-s"), needle=ENVELOPE, base=signed_base),
    Row("judge/is-the-pin", with_evidence("std-s", EVAL, judge="gpt-5-2026-01-10"),
        code="MP116", file=ev_file("std-s"), needle=ENVELOPE, base=signed_base),
    Row("judge/candidate-upper-case", with_evidence("std-s", None, judge="GPT-5-2026-03-14"),
        code="MP012", file=ev_file("std-s", signed=False), needle='"judge"', base=base_fleet),
    Row("judge/candidate-with-provider-prefix",
        with_evidence("std-s", None, judge="openai/gpt-5-2026-03-14"), code="MP012",
        file=ev_file("std-s", signed=False), needle='"judge"', base=base_fleet),
    Row("judge/candidate-trailing-space",
        with_evidence("std-s", None, judge="gpt-5-2026-03-14 "), code="MP012",
        file=ev_file("std-s", signed=False), needle='"judge"', base=base_fleet),
    Row("judge/not-a-fleet-model", with_evidence("std-s", EVAL, judge="gpt-9-2027-01-01"),
        code="MP131", file=ev_file("std-s"), needle=ENVELOPE, base=signed_base),
    Row("judge/embedding-model",
        with_evidence("std-s", EVAL, judge="emb-4-2026-02-01"), code="MP131",
        file=ev_file("std-s"), needle=ENVELOPE, message="chat", base=signed_base),
    Row("evidence/suite-version-string", suite_version("7"), code="MP012",
        file=ev_file("std-s"), needle=ENVELOPE, message="suite.version", base=signed_base),
    Row("evidence/suite-version-bool", suite_version(True), code="MP012",
        file=ev_file("std-s"), needle=ENVELOPE, message="suite.version", base=signed_base),
    Row("approval/forged-signature",
        enter_5([BOTH[0], {**BOTH[1], "sig": BOTH[0]["sig"]}]), code="MP132",
        file="tenants/man.yaml", message="does not verify", base=signed_base),
    Row("approval/single", enter_5(BOTH[:1]), code="MP109", file="tenants/man.yaml",
        message="a tenant contact", base=signed_base),
    Row("approval/unsigned-while-keys-configured",
        enter_5([BOTH[0], {k: v for k, v in BOTH[1].items() if k != "sig"}]), code="MP132",
        file="tenants/man.yaml", message="unsigned", base=signed_base),
    Row("approval/in-the-future",
        enter_5([BOTH[0], approval(CONTACT, "ops@man.example", 5, "2026-03-26T00:00:00Z")]),
        code="MP132", file="tenants/man.yaml", message="in the future", base=signed_base),
    Row("approval/backdated-before-base",
        enter_5([BOTH[0], approval(CONTACT, "ops@man.example", 5, "2026-03-20T00:00:00Z")]),
        code="MP132", file="tenants/man.yaml", message="before the base commit",
        base=signed_base),
    Row("approval/for-another-step",
        enter_5([BOTH[0], approval(CONTACT, "ops@man.example", 25)]), code="MP132",
        file="tenants/man.yaml", message="not for the step", base=signed_base),
    Row("approval/replayed-from-another-tenant",
        enter_5([BOTH[0], approval(CONTACT, "ops@man.example", 5, tenant_id="cons")]),
        code="MP132", file="tenants/man.yaml", message="does not verify", base=signed_base),
    Row("approval/replayed-for-another-candidate",
        enter_5([BOTH[0], approval(CONTACT, "ops@man.example", 5,
                                   candidate="gpt-5-2026-01-10")]),
        code="MP132", file="tenants/man.yaml", message="does not verify", base=signed_base),
    Row("approval/same-key-twice",
        enter_5([BOTH[0], approval(APPROVER, "oncall@platform.example", 5,
                                   "2026-03-25T11:30:00Z")]),
        code="MP109", file="tenants/man.yaml", message="a tenant contact", base=signed_base),
    Row("approval/one-key-both-roles",
        enter_5([BOTH[0], approval(APPROVER, "oncall@platform.example", 5,
                                   "2026-03-25T11:30:00Z")]),
        code="MP109", file="tenants/man.yaml", message="two distinct keys",
        base=same_key_both_roles),
    Row("approval/key-added-in-same-pr", contact_added_in_pr, code="MP132",
        file="tenants/man.yaml", message="does not verify", base=signed_base),
    Row("approval/by-misattributed",
        enter_5([BOTH[0], approval(CONTACT, "someone@man.example", 5)]), code="MP132",
        file="tenants/man.yaml", message="signed by the key of ops@man.example",
        base=signed_base),
    Row("approval/removed-in-flight",
        advance_25([approval(CONTACT, "ops@man.example", 25),
                    approval(APPROVER, "oncall@platform.example", 25)]),
        code="MP102", file="tenants/man.yaml", message="append-only", base=at_canary_5),
    Row("approval/edited-in-flight",
        lambda pr: advance_25([
            {**approval(APPROVER, "oncall@platform.example", 5, "2026-03-23T00:00:00Z"),
             "at": "2026-03-23T01:00:00Z"},
            approval(CONTACT, "ops@man.example", 5, "2026-03-23T00:00:00Z"),
            approval(APPROVER, "oncall@platform.example", 25),
            approval(CONTACT, "ops@man.example", 25)])(pr),
        code="MP102", file="tenants/man.yaml", message="append-only", base=at_canary_5),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


def roll_back_man(pr: PullRequest) -> None:
    """A rollback is never blocked: not by approvals (none for it), not by evidence."""
    pr.set_rollout("man", {**canary(5, OLD), "stage": "rolled-back", "since": FRESH,
                           "reason": "regression"})
    pr.write()
    pr.delete(ev_file("man"))


def no_evidence_for_std_s() -> FleetSpec:
    spec = signed_base()
    spec.evidence = [e for e in spec.evidence if e["tenant"] != "std-s"]
    return spec


ALLOWED = [
    Row("safe/evidence-added-by-trusted-evaluator", with_evidence("std-s", EVAL),
        base=no_evidence_for_std_s),
    Row("safe/evidence-re-run-by-trusted-evaluator",
        with_evidence("std-s", EVAL, run_at="2026-03-25T09:00:00Z", passed=598),
        base=signed_base),
    Row("safe/signed-dual-approvals", enter_5(BOTH), base=signed_base),
    Row("safe/advance-with-recorded-and-new-approvals",
        advance_25([approval(APPROVER, "oncall@platform.example", 5, "2026-03-23T00:00:00Z"),
                    approval(CONTACT, "ops@man.example", 5, "2026-03-23T00:00:00Z"),
                    approval(APPROVER, "oncall@platform.example", 25),
                    approval(CONTACT, "ops@man.example", 25)]), base=at_canary_5),
    Row("safe/unsigned-unchanged-evidence-without-keys", first_canary("std-s"),
        base=base_fleet),
    Row("safe/rollback-needs-no-evidence-or-approval", roll_back_man, base=at_canary_5),
]


@pytest.mark.parametrize("row", ALLOWED, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_plan_marks_unsigned_evidence_unauthenticated(gate: Gate) -> None:
    pr = gate.pull_request(base_fleet())
    first_canary("std-s")(pr)
    pr.write()
    pr.commit()
    outcome = pr.plan(fmt="markdown")
    assert outcome.exit_code == 0, outcome.explain()
    assert "std-s/primary: evidence is UNAUTHENTICATED" in outcome.stdout


def test_plan_does_not_mark_signed_evidence(gate: Gate) -> None:
    pr = gate.pull_request(signed_base())
    first_canary("std-s")(pr)
    pr.write()
    pr.commit()
    outcome = pr.plan(fmt="markdown")
    assert outcome.exit_code == 0, outcome.explain()
    assert "UNAUTHENTICATED" not in outcome.stdout


def test_judge_is_a_real_fleet_model_for_the_signed_base() -> None:
    assert JUDGE in signed_base().models
