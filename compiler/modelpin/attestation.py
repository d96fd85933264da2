"""Signed BETS evidence: a DSSE envelope over an in-toto Statement v1 (SPEC 2.1 rule 3).

Format (``docs/evidence.md``)::

    DSSE envelope   payloadType  application/vnd.in-toto+json
                    payload      RFC 8785 canonical JSON of the Statement
    Statement       _type        https://in-toto.io/Statement/v1
                    subject      [{"name": "modelpin:<tenant>/<alias>/<baseline>..<candidate>",
                                   "digest": {"sha256": <hex sha256 of the canonical predicate>}}]
                    predicateType  https://modelpin.dev/attestation/bets-result/v1
                    predicate    the BETS result (``modelpin.model.evidence.Evidence``)

The DSSE part (PAE, key ids = sha256 of the raw public key, a threshold of distinct keys)
is ``modelpin.signing``'s; this module adds the Statement and its rules. ``verify``
trusts nothing the envelope claims: the subject must name exactly what the predicate
says and carry its digest, and at least ``threshold`` distinct trusted keys must have
signed the exact payload bytes. Pure: bytes and keys in, values or one error kind out.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from modelpin import approvals, signing
from modelpin.model.evidence import Authenticity, Evidence, EvidenceSource
from modelpin.model.fleet import EvidenceKey, Fleet
from modelpin.model.trust import Evaluators
from modelpin.routing.canonical import canonical_bytes

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelpin.dev/attestation/bets-result/v1"
SUBJECT_PREFIX = "modelpin:"
MAX_SIGNATURES = 32
"""More signatures than any sane threshold needs: a bigger envelope is refused before
any signature is checked (bounded verification cost)."""


class AttestationError(Exception):
    """Evidence that cannot be accepted. ``where`` is the path of the offending value
    inside the envelope's predicate (``("suite", "version")``), or ``()`` for the
    envelope or statement as a whole; ``hint`` says what to do."""

    def __init__(self, message: str, where: tuple[str | int, ...] = (),
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.hint = hint


class MalformedError(AttestationError):
    """Not a DSSE envelope over an in-toto Statement v1 of a modelpin BETS result."""


class PredicateError(AttestationError):
    """The statement is well formed but its BETS result breaks a field rule.

    ``problems`` lists every (path in the predicate, message)."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        first_at, first = problems[0]
        super().__init__(first, first_at)
        self.problems = tuple(problems)


class UntrustedError(AttestationError):
    """Well formed, but not signed by ``threshold`` distinct trusted evaluator keys."""


@dataclass(frozen=True)
class Attestation:
    """A parsed (not yet trusted) evidence envelope."""

    evidence: Evidence
    predicate: Mapping[str, Any]
    envelope: signing.Envelope


def subject_name(tenant: str, alias: str, baseline: str, candidate: str) -> str:
    """``modelpin:<tenant>/<alias>/<baseline>..<candidate>``: what the evidence is about."""
    return f"{SUBJECT_PREFIX}{tenant}/{alias}/{baseline}..{candidate}"


def predicate_digest(predicate: Mapping[str, Any]) -> str:
    """Hex sha256 of the RFC 8785 canonical JSON of the predicate (the C-encoder fast path
    where it is provably byte-equal to ``rfc8785.dumps``: ``routing.canonical``)."""
    return hashlib.sha256(canonical_bytes(dict(predicate))).hexdigest()


def validate_result(result: Any) -> Evidence:
    """A BETS result mapping -> ``Evidence``; ``PredicateError`` lists every problem."""
    if not isinstance(result, Mapping):
        raise MalformedError("the BETS result is not a JSON object")
    try:
        return Evidence.model_validate(dict(result))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            at = tuple((err.get("ctx") or {}).get("at", ()))
            where = ".".join(str(p) for p in loc) or "result"
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] not in ("value_error", "rule", "missing", "extra_forbidden"):
                msg = f"{msg}, got {err.get('input')!r}"
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append(((*loc, *at), f"{where}: {msg}"))
        raise PredicateError(problems) from None


def statement(result: Mapping[str, Any]) -> dict[str, Any]:
    """The in-toto Statement v1 of a BETS result (validated first)."""
    e = validate_result(result)
    predicate = json.loads(json.dumps(dict(result)))  # plain JSON values only
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": subject_name(e.tenant, e.alias, e.baseline, e.candidate),
            "digest": {"sha256": predicate_digest(predicate)},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def sign(result: Mapping[str, Any], keys: Sequence[Ed25519PrivateKey]) -> bytes:
    """Sign a BETS result with one or more evaluator keys: the ``.dsse.json`` bytes.

    Raises ``PredicateError``/``MalformedError`` for a malformed result and
    ``signing.SigningError`` when no key is given. A key given twice signs once.
    """
    unique: dict[str, Ed25519PrivateKey] = {}
    for key in keys:
        unique.setdefault(signing.keyid_of(key.public_key()), key)
    payload = rfc8785.dumps(statement(result))
    envelope = signing.sign(payload, unique.values(), PAYLOAD_TYPE)
    return dump(envelope)


def dump(envelope: signing.Envelope) -> bytes:
    """Envelope JSON, one field a line (diagnostics can point at payload or signatures)."""
    doc = {
        "payload": base64.b64encode(envelope.payload).decode("ascii"),
        "payloadType": envelope.payload_type,
        "signatures": [
            {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
            for s in envelope.signatures
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode("ascii") + b"\n"


@functools.lru_cache(maxsize=16384)
def read(data: bytes) -> Attestation:
    """Parse envelope bytes and the Statement inside; nothing is trusted yet.

    Memoised by the bytes: the loader opens every envelope and ``authenticate_fleet``
    verifies it again (twice in ``check``); parsing and the canonical digest are a pure
    function of the bytes, so the second look costs nothing."""
    try:
        envelope = signing.parse_envelope(data)
    except signing.EnvelopeError as exc:
        raise MalformedError(
            f"not a DSSE envelope: {exc}",
            hint="evidence is written by `modelpin attest` or `modelpin bets run`") from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise MalformedError(f"payloadType is {envelope.payload_type!r}, "
                             f"expected {PAYLOAD_TYPE!r}", ("payloadType",))
    if len(envelope.signatures) > MAX_SIGNATURES:
        raise MalformedError(f"envelope carries {len(envelope.signatures)} signatures, "
                             f"at most {MAX_SIGNATURES} are read", ("signatures",))
    try:
        doc = json.loads(envelope.payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError(f"payload is not JSON: {exc}", ("payload",)) from None
    if not isinstance(doc, dict):
        raise MalformedError("payload is not an in-toto Statement (a JSON object)", ("payload",))
    unknown = sorted(set(doc) - {"_type", "subject", "predicateType", "predicate"})
    if unknown:
        raise MalformedError(f"statement has unknown fields: {', '.join(unknown)}", ("payload",))
    if doc.get("_type") != STATEMENT_TYPE:
        raise MalformedError(f"statement _type is {doc.get('_type')!r}, "
                             f"expected {STATEMENT_TYPE!r}", ("payload",))
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise MalformedError(f"predicateType is {doc.get('predicateType')!r}, "
                             f"expected {PREDICATE_TYPE!r}", ("payload",))
    predicate = doc.get("predicate")
    evidence = validate_result(predicate)
    assert isinstance(predicate, dict)
    subjects = doc.get("subject")
    want = subject_name(evidence.tenant, evidence.alias, evidence.baseline, evidence.candidate)
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise MalformedError("statement must have exactly one subject", ("payload",))
    subject = subjects[0]
    if subject.get("name") != want:
        raise MalformedError(f"subject name is {subject.get('name')!r}, the predicate says "
                             f"{want!r}", ("payload",))
    digest = subject.get("digest")
    if not isinstance(digest, dict) or digest.get("sha256") != predicate_digest(predicate):
        raise MalformedError("subject digest is not the sha256 of the canonical predicate",
                             ("payload",))
    return Attestation(evidence, predicate, envelope)


def trusted_keys(evaluators: Evaluators | None) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key of every evaluator key."""
    if evaluators is None:
        return {}
    return {k.keyid: signing.load_public_key_b64(k.public_key) for k in evaluators.keys}


def verify(data: bytes, trusted: Mapping[str, Ed25519PublicKey], threshold: int) -> Evidence:
    """The BETS result of an envelope signed by ``threshold`` distinct ``trusted`` keys.

    ``trusted`` maps key id -> public key (``trusted_keys``). Raises ``MalformedError``,
    ``PredicateError`` or ``UntrustedError`` (all ``AttestationError``).
    """
    return verify_signers(data, trusted, threshold)[0]


def verify_signers(data: bytes, trusted: Mapping[str, Ed25519PublicKey],
                   threshold: int) -> tuple[Evidence, frozenset[str]]:
    """``verify``, also returning the ids of the trusted keys that met the threshold."""
    attestation = read(data)
    if not trusted:
        raise UntrustedError("no evaluator keys are configured to verify signed evidence",
                             ("signatures",),
                             hint="list evaluator keys in policies/evaluators.yaml")
    try:
        # Stops at the threshold: each signature is verified once, by ``signing``.
        good = signing.verified_signers(attestation.envelope, trusted, threshold, PAYLOAD_TYPE)
    except signing.SignatureError as exc:
        raise UntrustedError(f"evidence is not signed by trusted evaluators: {exc}",
                             ("signatures",),
                             hint="sign it with a key of policies/evaluators.yaml "
                             "(as of the base): `modelpin attest`") from None
    return attestation.evidence, frozenset(good)


def authenticate(source: EvidenceSource, evaluators: Evaluators | None,
                 base_source: EvidenceSource | None, *,
                 trusted: Mapping[str, Ed25519PublicKey] | None = None) -> Authenticity:
    """Whether evidence counts, judged by the trust list ``evaluators`` (of the base).

    Signed evidence counts when ``evaluators.threshold`` distinct listed keys signed it.
    Unsigned evidence counts only when no evaluator keys are configured and the file is
    unchanged from the base (``base_source`` has the same bytes): it is then marked
    unauthenticated. Everything else is refused with the reason. ``trusted`` is
    ``trusted_keys(evaluators)`` when the caller already has it.
    """
    keys = evaluators.keys if evaluators is not None else []
    if source.envelope is None:
        if keys:
            return Authenticity(
                "refused", f"evidence {source.path} is unsigned, and policies/evaluators.yaml "
                "lists evaluator keys", hint="sign it: `modelpin attest RESULT.json --key FILE`")
        if base_source is None or base_source.sha256 != source.sha256:
            return Authenticity(
                "refused", f"unsigned evidence {source.path} is new or changed in this change; "
                "unsigned evidence counts only when unchanged from the base",
                hint="configure policies/evaluators.yaml and sign evidence with `modelpin attest`")
        return Authenticity("unauthenticated", "unsigned evidence (no evaluator keys configured)")
    threshold = evaluators.threshold if evaluators is not None else 1
    try:
        if trusted is None:
            trusted = trusted_keys(evaluators)
        _, signers = verify_signers(source.envelope, trusted, threshold)
    except AttestationError as exc:
        return Authenticity("refused", str(exc), hint=exc.hint)
    return Authenticity("signed", f"signed by {len(signers)} of {len(keys)} evaluator key(s)",
                        signers)


class TrustVerdicts(Mapping[EvidenceKey, Authenticity]):
    """Evidence key -> ``authenticate(...)`` against one trust list, each verdict
    computed the first time it is looked up (and remembered).

    A verdict is a pure function of the evidence bytes, the trust list and the base's
    bytes, so computing it when a rule consults it gives every consumer the answer an
    eager pass would have given; evidence nothing consults (``validate`` consults none,
    ``check`` only what a transition or a changed file needs) is simply never verified.
    No verdict is stored anywhere but in this object: there is nothing to forge."""

    def __init__(self, sources: Mapping[EvidenceKey, EvidenceSource],
                 evaluators: Evaluators | None,
                 base_sources: Mapping[EvidenceKey, EvidenceSource]) -> None:
        self._sources = sources
        self._evaluators = evaluators
        self._base_sources = base_sources
        self._verdicts: dict[EvidenceKey, Authenticity] = {}
        self._keys: dict[str, Ed25519PublicKey] | None = None

    def __getitem__(self, key: EvidenceKey) -> Authenticity:
        verdict = self._verdicts.get(key)
        if verdict is None:
            source = self._sources[key]  # KeyError: no such evidence
            if self._keys is None and source.envelope is not None:
                self._keys = trusted_keys(self._evaluators)
            verdict = authenticate(source, self._evaluators, self._base_sources.get(key),
                                   trusted=self._keys)
            self._verdicts[key] = verdict
        return verdict

    def __iter__(self) -> Iterator[EvidenceKey]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, key: object) -> bool:
        return key in self._sources


def authenticate_fleet(head: Fleet, base: Fleet) -> Fleet:
    """``head`` with every evidence file and approval judged by ``base``'s trust lists.

    The loader calls it with ``base = head`` (a tree judged by its own keys); ``check``
    and ``plan`` call it again with the real base, so a key added in the change under
    review signs nothing that counts (SPEC 2.1 rules 1, 3, 4). Evidence signatures are
    verified when a rule looks a verdict up (``TrustVerdicts``), not here.
    """
    trust = TrustVerdicts(head.evidence_sources, base.evaluators, base.evidence_sources)
    return replace(head, evidence_trust=trust,
                   approval_verdicts=approvals.verdicts(head, base))
