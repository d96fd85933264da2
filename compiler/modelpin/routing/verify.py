"""Envelope bytes -> a verified payload summary, or one ``VerifyError`` saying what is wrong.

Pure: the caller supplies the envelope bytes, the trusted keys, the threshold, the JSON
Schema of the payload and ``now``. The order is the one a router follows: parse the
envelope, check the signatures over the exact payload bytes, and only then look inside
the payload (schema, times). Nothing in an unverified payload is ever interpreted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelpin import signing


class VerifyError(Exception):
    """The envelope is rejected; the message says why (one line, for a user)."""


@dataclass(frozen=True)
class RouteRow:
    tenant: str
    alias: str
    mode: str
    paused: bool
    stable: str
    candidate: str | None
    percent: float


@dataclass(frozen=True)
class VerifiedTable:
    payload: bytes
    document: dict[str, Any]
    keyids: tuple[str, ...]
    """Trusted key ids whose signature verified."""

    @property
    def serial(self) -> int:
        return int(self.document["serial"])

    @property
    def commit(self) -> str:
        return str(self.document["source"]["commit"])

    def rows(self) -> list[RouteRow]:
        out = []
        for tid, tenant in self.document["tenants"].items():
            for name, a in tenant["aliases"].items():
                out.append(RouteRow(tid, name, a["mode"], a["paused"], a["stable"],
                                    a["candidate"], a["percent"]))
        return out

    def counts(self) -> dict[str, int]:
        """tenants, aliases, and aliases per mode (a paused canary counts as ``paused``)."""
        rows = self.rows()
        modes = Counter("paused" if r.paused else r.mode for r in rows)
        return {"tenants": len(self.document["tenants"]), "aliases": len(rows), **modes}


def _valid(sig: signing.Signature, trusted: Mapping[str, Ed25519PublicKey],
           payload: bytes) -> bool:
    key = trusted.get(sig.keyid)
    if key is None:
        return False
    try:
        key.verify(sig.sig, signing.pae(signing.PAYLOAD_TYPE, payload))
    except InvalidSignature:
        return False
    return True


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def verify_envelope(
    data: bytes,
    trusted: Mapping[str, Ed25519PublicKey],
    threshold: int,
    schema: Mapping[str, Any],
    now: datetime,
) -> VerifiedTable:
    """Verify ``data`` (a DSSE envelope) completely; ``VerifyError`` on any failure."""
    try:
        envelope = signing.parse_envelope(data)
    except signing.EnvelopeError as exc:
        raise VerifyError(f"not a valid DSSE envelope: {exc}") from None
    if not trusted:
        raise VerifyError("no trusted public keys to verify against")
    try:
        payload = signing.verify(envelope, trusted, threshold)
    except signing.SignatureError as exc:
        raise VerifyError(f"signature check failed: {exc}") from None
    good = tuple(sorted({s.keyid for s in envelope.signatures if _valid(s, trusted, payload)}))
    try:
        document = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerifyError(f"payload is not JSON: {exc}") from None
    validator = jsonschema.Draft202012Validator(schema)
    problem = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
        raise VerifyError(f"payload does not match the routing-table schema at {where}: "
                          f"{problem.message}")
    issued = _time(document["issued_at"])
    expires = _time(document["expires_at"])
    if expires < issued:
        raise VerifyError(f"payload expires ({document['expires_at']}) before it was issued "
                          f"({document['issued_at']})")
    if now >= expires:
        raise VerifyError(f"the table expired at {document['expires_at']} "
                          f"(now is {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})")
    return VerifiedTable(payload, document, good)
