"""DSSE envelopes signed with Ed25519: the one place that signs and verifies.

The wire format is in ``docs/routing-table.md``. Both the compiler (``compile``,
``verify``) and the router library use this module, so it depends on nothing else in
modelpin. Verification never trusts the envelope's claims: a signature counts only if
its key id names a trusted key *and* the signature verifies under that key over the PAE
of the exact payload bytes; each trusted key counts once towards the threshold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PAYLOAD_TYPE = "application/vnd.modelpin.routing-table+json"


class SigningError(Exception):
    """Base of every fault this module reports."""


class EnvelopeError(SigningError):
    """The envelope bytes are not a well-formed DSSE envelope."""


class SignatureError(SigningError):
    """The envelope is well formed but not signed as required."""


class KeyFileError(SigningError):
    """A key could not be read (bad PEM, wrong algorithm, bad base64)."""


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding of DSSE v1: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid_of(key: Ed25519PublicKey) -> str:
    """Key id: lowercase hex sha256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public_bytes(key)).decode("ascii")


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    """A public key as written in ``policies/artifact.yaml``: base64 of 32 raw bytes."""
    try:
        raw = _b64decode(text.strip())
    except EnvelopeError as exc:
        raise KeyFileError(f"public key is not base64: {exc}") from None
    if len(raw) != 32:
        raise KeyFileError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key file: PEM (SubjectPublicKeyInfo) or the base64 of the raw bytes."""
    text = data.decode("ascii", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"cannot read PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError("the public key is not an Ed25519 key")
        return key
    return load_public_key_b64(text)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """A PKCS#8 PEM private key (what ``modelpin keygen`` writes)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot read PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("the private key is not an Ed25519 key")
    return key


def sign(
    payload: bytes,
    keys: Iterable[Ed25519PrivateKey],
    payload_type: str = PAYLOAD_TYPE,
) -> Envelope:
    message = pae(payload_type, payload)
    sigs = tuple(Signature(keyid_of(k.public_key()), k.sign(message)) for k in keys)
    if not sigs:
        raise SigningError("no signing key given")
    return Envelope(payload_type, payload, sigs)


def dump_envelope(envelope: Envelope) -> bytes:
    """Envelope JSON, deterministic (sorted keys, compact), newline-terminated."""
    doc = {
        "payload": base64.b64encode(envelope.payload).decode("ascii"),
        "payloadType": envelope.payload_type,
        "signatures": [
            {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
            for s in envelope.signatures
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def _b64decode(text: str) -> bytes:
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"invalid base64: {exc}") from None


def parse_envelope(data: bytes) -> Envelope:
    """Strictly parse envelope bytes; raises ``EnvelopeError`` on any deviation."""
    try:
        # Decode as UTF-8 ourselves: json.loads(bytes) decodes with 'surrogatepass',
        # which is ~20x slower on a multi-megabyte envelope (and JSON is UTF-8 anyway).
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"envelope is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("envelope is not a JSON object")
    unknown = set(doc) - {"payload", "payloadType", "signatures"}
    if unknown:
        raise EnvelopeError(f"envelope has unknown fields: {', '.join(sorted(unknown))}")
    payload_type = doc.get("payloadType")
    payload = doc.get("payload")
    sigs = doc.get("signatures")
    if not isinstance(payload_type, str):
        raise EnvelopeError("envelope field 'payloadType' is missing or not a string")
    if not isinstance(payload, str):
        raise EnvelopeError("envelope field 'payload' is missing or not a string")
    if not isinstance(sigs, list):
        raise EnvelopeError("envelope field 'signatures' is missing or not a list")
    parsed: list[Signature] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
            raise EnvelopeError(f"signature {i} has no 'sig' string")
        keyid = s.get("keyid", "")
        if not isinstance(keyid, str):
            raise EnvelopeError(f"signature {i} has a non-string 'keyid'")
        parsed.append(Signature(keyid, _b64decode(s["sig"])))
    return Envelope(payload_type, _b64decode(payload), tuple(parsed))


def verify(
    envelope: Envelope,
    trusted: Mapping[str, Ed25519PublicKey],
    threshold: int = 1,
    payload_type: str = PAYLOAD_TYPE,
) -> bytes:
    """Return the payload bytes if at least ``threshold`` distinct trusted keys signed them.

    ``trusted`` maps key id -> public key. Raises ``SignatureError`` otherwise, naming
    what was wrong (payload type, unknown key ids, bad signatures, threshold).
    """
    if threshold < 1:
        raise SignatureError("threshold must be at least 1")
    if envelope.payload_type != payload_type:
        raise SignatureError(
            f"payloadType is {envelope.payload_type!r}, expected {payload_type!r}"
        )
    if not envelope.signatures:
        raise SignatureError("envelope carries no signature")
    message = pae(envelope.payload_type, envelope.payload)
    good: set[str] = set()
    unknown: list[str] = []
    bad: list[str] = []
    for s in envelope.signatures:
        key = trusted.get(s.keyid)
        if key is None:
            unknown.append(s.keyid or "<empty>")
            continue
        try:
            key.verify(s.sig, message)
        except InvalidSignature:
            bad.append(s.keyid)
            continue
        good.add(s.keyid)
    if len(good) >= threshold:
        return envelope.payload
    parts = [f"{len(good)} valid signature(s) from trusted keys, {threshold} required"]
    if bad:
        parts.append("signature does not verify for key " + ", ".join(k[:16] for k in bad))
    if unknown:
        parts.append("unknown key id " + ", ".join(k[:16] for k in unknown))
    raise SignatureError("; ".join(parts))
