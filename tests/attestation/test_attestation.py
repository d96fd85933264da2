"""Signed evidence: DSSE over an in-toto Statement v1, verified against trusted keys."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import attestation, signing
from modelpin.attestation import MalformedError, PredicateError, UntrustedError
from modelpin.model.evidence import EvidenceSource
from modelpin.model.trust import Evaluators

RESULT: dict[str, Any] = {
    "tenant": "acme-legal", "alias": "primary-reasoning",
    "baseline": "gpt-5-2026-01-10", "candidate": "gpt-5-2026-03-14",
    "suite": {"id": "acme-contracts", "version": 7},
    "judge": "claude-4-20260201", "run_at": "2026-03-19T22:00:00Z",
    "cases": 512, "passed": 507,
    "failures": [{"case": "c-0012", "kind": "tool-call-schema", "detail": "..."}],
}


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def trusted(*keys: Ed25519PrivateKey) -> dict[str, Any]:
    return {signing.keyid_of(k.public_key()): k.public_key() for k in keys}


def envelope_doc(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    assert isinstance(doc, dict)
    return doc


def repack(doc: dict[str, Any], statement: dict[str, Any]) -> None:
    doc["payload"] = base64.b64encode(rfc8785.dumps(statement)).decode()


def statement_of(data: bytes) -> dict[str, Any]:
    out = json.loads(base64.b64decode(envelope_doc(data)["payload"]))
    assert isinstance(out, dict)
    return out


def test_sign_then_verify_returns_the_result() -> None:
    k = key()
    data = attestation.sign(RESULT, [k])
    evidence = attestation.verify(data, trusted(k), 1)
    assert (evidence.tenant, evidence.candidate, evidence.cases) == (
        "acme-legal", "gpt-5-2026-03-14", 512)


def test_statement_is_in_toto_v1_with_named_subject_and_predicate_digest() -> None:
    data = attestation.sign(RESULT, [key()])
    doc = envelope_doc(data)
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    st = statement_of(data)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == attestation.PREDICATE_TYPE
    assert st["subject"] == [{
        "name": "modelpin:acme-legal/primary-reasoning/gpt-5-2026-01-10..gpt-5-2026-03-14",
        "digest": {"sha256": hashlib.sha256(rfc8785.dumps(RESULT)).hexdigest()},
    }]
    assert st["predicate"] == RESULT


def test_signature_is_over_the_dsse_pae_of_the_payload() -> None:
    k = key()
    doc = envelope_doc(attestation.sign(RESULT, [k]))
    payload = base64.b64decode(doc["payload"])
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    k.public_key().verify(sig, signing.pae("application/vnd.in-toto+json", payload))
    assert doc["signatures"][0]["keyid"] == hashlib.sha256(
        signing.raw_public_bytes(k.public_key())).hexdigest()


def test_tampered_predicate_is_refused() -> None:
    k = key()
    data = attestation.sign(RESULT, [k])
    doc = envelope_doc(data)
    st = statement_of(data)
    st["predicate"]["passed"] = 512
    st["subject"][0]["digest"]["sha256"] = attestation.predicate_digest(st["predicate"])
    repack(doc, st)
    with pytest.raises(UntrustedError, match="does not verify"):
        attestation.verify(json.dumps(doc).encode(), trusted(k), 1)


def test_subject_not_matching_predicate_is_refused_even_when_signed() -> None:
    k = key()
    st = attestation.statement(RESULT)
    st["subject"][0]["name"] = "modelpin:other/primary-reasoning/gpt-5-2026-01-10..gpt-5-2026-03-14"
    env = signing.sign(rfc8785.dumps(st), [k], attestation.PAYLOAD_TYPE)
    with pytest.raises(MalformedError, match="subject name"):
        attestation.verify(attestation.dump(env), trusted(k), 1)


def test_subject_digest_must_be_the_predicate_digest() -> None:
    k = key()
    st = attestation.statement(RESULT)
    st["subject"][0]["digest"] = {"sha256": "00" * 32}
    env = signing.sign(rfc8785.dumps(st), [k], attestation.PAYLOAD_TYPE)
    with pytest.raises(MalformedError, match="digest"):
        attestation.verify(attestation.dump(env), trusted(k), 1)


def test_wrong_key_is_refused() -> None:
    data = attestation.sign(RESULT, [key()])
    with pytest.raises(UntrustedError, match="unknown key id"):
        attestation.verify(data, trusted(key()), 1)


def test_signature_relabelled_with_a_trusted_key_id_is_refused() -> None:
    good, evil = key(), key()
    doc = envelope_doc(attestation.sign(RESULT, [evil]))
    doc["signatures"][0]["keyid"] = signing.keyid_of(good.public_key())
    with pytest.raises(UntrustedError, match="does not verify"):
        attestation.verify(json.dumps(doc).encode(), trusted(good), 1)


def test_threshold_counts_distinct_keys() -> None:
    a, b = key(), key()
    one = attestation.sign(RESULT, [a])
    with pytest.raises(UntrustedError, match="1 valid signature"):
        attestation.verify(one, trusted(a, b), 2)
    both = attestation.sign(RESULT, [a, b])
    assert attestation.verify(both, trusted(a, b), 2).passed == 507


def test_duplicated_signature_does_not_reach_a_threshold_of_two() -> None:
    a, b = key(), key()
    doc = envelope_doc(attestation.sign(RESULT, [a]))
    doc["signatures"] = doc["signatures"] * 2
    with pytest.raises(UntrustedError, match="1 valid signature"):
        attestation.verify(json.dumps(doc).encode(), trusted(a, b), 2)


def test_signing_twice_with_one_key_signs_once() -> None:
    a = key()
    doc = envelope_doc(attestation.sign(RESULT, [a, a]))
    assert len(doc["signatures"]) == 1


def test_too_many_signatures_are_refused_before_checking() -> None:
    a = key()
    doc = envelope_doc(attestation.sign(RESULT, [a]))
    doc["signatures"] = doc["signatures"] * (attestation.MAX_SIGNATURES + 1)
    with pytest.raises(MalformedError, match="at most"):
        attestation.verify(json.dumps(doc).encode(), trusted(a), 1)


def test_other_payload_type_is_refused() -> None:
    a = key()
    env = signing.sign(rfc8785.dumps(attestation.statement(RESULT)), [a],
                       "application/vnd.modelpin.routing-table+json")
    with pytest.raises(MalformedError, match="payloadType"):
        attestation.verify(attestation.dump(env), trusted(a), 1)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("suite", {"id": "acme-contracts", "version": "7"}, ("suite", "version")),
        ("suite", {"id": "acme-contracts", "version": True}, ("suite", "version")),
        ("cases", 512.0, ("cases",)),
        ("judge", "GPT-5-2026-03-14", ("judge",)),
        ("judge", "openai/gpt-5-2026-03-14", ("judge",)),
        ("judge", "claude-4-20260201 ", ("judge",)),
        ("run_at", 1773957600, ("run_at",)),
        ("run_at", "2026-03-19 22:00", ("run_at",)),
        ("passed", 600, ("passed",)),
        ("extra", 1, ("extra",)),
    ],
)
def test_malformed_results_are_refused_with_the_field(
    field: str, value: Any, where: tuple[str, ...]
) -> None:
    result = {**RESULT, field: value}
    with pytest.raises(PredicateError) as info:
        attestation.sign(result, [key()])
    assert info.value.where == where


def test_missing_field_is_refused() -> None:
    result = {k: v for k, v in RESULT.items() if k != "judge"}
    with pytest.raises(PredicateError, match="judge"):
        attestation.sign(result, [key()])


def test_not_json_is_malformed() -> None:
    with pytest.raises(MalformedError, match="not a DSSE envelope"):
        attestation.read(b"{not json")


def _source(data: bytes | None, raw: bytes) -> EvidenceSource:
    return EvidenceSource("evidence/t/a/c.dsse.json", hashlib.sha256(raw).hexdigest(), data)


def _evaluators(*keys: Ed25519PrivateKey, threshold: int = 1) -> Evaluators:
    return Evaluators(threshold=threshold, keys=[
        {"name": f"ci-{i}", "public_key": signing.public_key_b64(k.public_key())}
        for i, k in enumerate(keys)])


def test_authenticate_signed_by_the_base_keys() -> None:
    a = key()
    data = attestation.sign(RESULT, [a])
    auth = attestation.authenticate(_source(data, data), _evaluators(a), None)
    assert auth.state == "signed"
    assert auth.keyids == frozenset({signing.keyid_of(a.public_key())})


def test_authenticate_refuses_a_key_the_base_does_not_list() -> None:
    a, newcomer = key(), key()
    data = attestation.sign(RESULT, [newcomer])
    auth = attestation.authenticate(_source(data, data), _evaluators(a), None)
    assert auth.state == "refused"
    assert "unknown key id" in auth.reason


def test_authenticate_signed_without_any_configured_keys_is_refused() -> None:
    data = attestation.sign(RESULT, [key()])
    auth = attestation.authenticate(_source(data, data), None, None)
    assert auth.state == "refused"
    assert "no evaluator keys" in auth.reason


def test_unsigned_counts_only_unchanged_and_without_keys() -> None:
    raw = json.dumps(RESULT).encode()
    same = _source(None, raw)
    assert attestation.authenticate(same, None, same).state == "unauthenticated"
    assert attestation.authenticate(same, Evaluators(), same).state == "unauthenticated"
    assert attestation.authenticate(same, None, None).state == "refused"
    changed = _source(None, raw + b" ")
    assert attestation.authenticate(changed, None, same).state == "refused"
    assert attestation.authenticate(same, _evaluators(key()), same).state == "refused"
