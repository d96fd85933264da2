"""BETS results: the predicate of signed evidence (SPEC 1, 2.1 rule 3).

Evidence lives at ``evidence/<tenant>/<alias>/<candidate>.dsse.json`` (a DSSE envelope
over an in-toto Statement, see ``modelpin.attestation``) or, unsigned, at
``<candidate>.json``. Every field is typed strictly: a suite version written as ``"7"``
or ``true``, a count written as ``512.0``, a judge with a trailing space are errors, never
coerced into a match. Times are RFC 3339 strings with an offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelpin.model.base import Identifier, StrictModel, Timestamp, rule_error
from modelpin.model.tenant import BetsSuiteRef

SHA256_PATTERN = r"^[0-9a-f]{64}$"
StrictId = Annotated[Identifier, Field(strict=True)]
"""An id that must be written as a string (no number or boolean coerced into one)."""


class EvidenceFailure(StrictModel):
    case: str = Field(strict=True, min_length=1)
    kind: str = Field(strict=True, min_length=1)
    detail: str = Field(default="", strict=True)


class Evidence(StrictModel):
    """One BETS result: ``passed`` of ``cases`` of suite ``suite``, judged by ``judge``."""

    tenant: StrictId
    alias: StrictId
    baseline: StrictId
    candidate: StrictId
    suite: BetsSuiteRef
    judge: StrictId
    suite_sha256: str | None = Field(default=None, strict=True, pattern=SHA256_PATTERN)
    """The digest of the suite's bytes the run read (``SuiteSource.sha256``): evidence
    binds to the suite's content, not only its name and version. Absent in evidence of
    older runs; the gate requires it on new evidence for a suite the repository holds."""
    run_at: Timestamp
    cases: int = Field(ge=0, strict=True)
    passed: int = Field(ge=0, strict=True)
    failures: list[EvidenceFailure] = Field(default=[], max_length=10_000)

    @model_validator(mode="after")
    def _counts(self) -> Evidence:
        if self.passed > self.cases:
            raise rule_error(f"'passed' ({self.passed}) exceeds 'cases' ({self.cases})", "passed")
        if self.baseline == self.candidate:
            raise rule_error("'candidate' equals 'baseline'", "candidate")
        return self

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


AuthState = Literal["signed", "unauthenticated", "refused"]


@dataclass(frozen=True)
class EvidenceSource:
    """Where one piece of evidence came from, and the bytes its authenticity rests on.

    ``envelope`` holds the DSSE file's bytes (None for unsigned ``.json`` evidence);
    ``sha256`` is the hash of the file's bytes, so "unchanged from the base" is a compare.
    """

    path: str
    sha256: str
    envelope: bytes | None


@dataclass(frozen=True)
class Authenticity:
    """Whether evidence may count, judged against a set of trusted evaluator keys.

    ``signed``: a DSSE envelope with signatures of at least ``threshold`` distinct trusted
    keys (``keyids``). ``unauthenticated``: unsigned JSON that counts because no evaluator
    keys are configured and it is unchanged from the base (``plan`` marks it).
    ``refused``: it does not count; ``reason`` says why and ``hint`` what to do.
    """

    state: AuthState
    reason: str = ""
    keyids: frozenset[str] = frozenset()
    hint: str | None = None

    @property
    def counts(self) -> bool:
        return self.state != "refused"


class EnvelopeSignature(StrictModel):
    keyid: str = Field(default="", strict=True, max_length=128)
    sig: str = Field(strict=True, max_length=200)


class EvidenceEnvelope(StrictModel):
    """The shape of ``<candidate>.dsse.json``: a DSSE envelope. What is inside (the
    in-toto Statement and its BETS result) is read by ``modelpin.attestation``."""

    payload: str = Field(strict=True, min_length=1)
    payloadType: str = Field(strict=True)  # the DSSE field name
    signatures: list[EnvelopeSignature] = Field(max_length=32)
