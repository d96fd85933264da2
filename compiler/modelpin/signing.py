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


MAX_SIGNATURES = 64
"""An envelope with more signatures is refused before any is checked: a real one
carries one per signing key, and every extra one would cost a verification."""

def _b64decode(text: str) -> bytes:
    """Strict base64: the standard alphabet with padding, or the URL-safe alphabet with
    or without padding (DSSE allows both), and only the one canonical spelling of the
    bytes (no whitespace, no junk, no stray bits in the last character)."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeError("invalid base64: non-ASCII character") from None
    try:
        if b"-" in raw or b"_" in raw:
            if b"+" in raw or b"/" in raw:
                raise EnvelopeError("invalid base64: mixes the standard and URL-safe alphabets")
            unpadded = raw.rstrip(b"=")
            data = base64.urlsafe_b64decode(unpadded + b"=" * (-len(unpadded) % 4))
            canonical = base64.urlsafe_b64encode(data)
            if raw != canonical and raw != canonical.rstrip(b"="):
                raise EnvelopeError("invalid base64: not the canonical encoding of its bytes")
            return data
        # strict_mode: the alphabet, the padding and nothing after it (in C, fast on MBs).
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"invalid base64: {exc}") from None
    # strict_mode has checked the alphabet and the padding; what is left is the length
    # and the unused bits of the last group: re-encode that group only (cheap on MBs).
    tail = len(data) % 3 or 3
    if len(raw) != 4 * ((len(data) + 2) // 3) or (
        data and base64.b64encode(data[-tail:]) != raw[-4:]
    ):
        raise EnvelopeError("invalid base64: not the canonical encoding of its bytes")
    return data


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise EnvelopeError(f"duplicate key {k!r} in the envelope")
            seen.add(k)
    return doc


def parse_envelope(data: bytes, *, max_signatures: int = MAX_SIGNATURES) -> Envelope:
    """Strictly parse envelope bytes; raises ``EnvelopeError`` on any deviation.

    Strict UTF-8 JSON (never UTF-16/32, which ``json.loads(bytes)`` would guess), no
    duplicate keys, no unknown fields, bounded nesting, at most ``max_signatures``
    signatures (counted before parsing: each needs its own ``{``), strict base64.
    ``keyid`` is optional (DSSE): a signature without one is tried against every
    trusted key.
    """
    # Every signature is a JSON object, and a '{' can occur nowhere else in a valid
    # envelope but inside strings: a cheap upper bound on the signature count that
    # refuses a signature flood before json.loads spends time on it.
    if data.count(b"{") > max_signatures + 1:
        raise EnvelopeError(f"envelope carries more than {max_signatures} signatures")
    try:
        # Decode as UTF-8 ourselves: json.loads(bytes) would accept UTF-16 and UTF-32,
        # and decodes with 'surrogatepass', ~20x slower on a multi-megabyte envelope.
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys)
    except RecursionError:
        raise EnvelopeError("envelope is nested too deeply") from None
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
    if len(sigs) > max_signatures:
        raise EnvelopeError(f"envelope carries {len(sigs)} signatures, at most "
                            f"{max_signatures} are accepted")
    parsed: list[Signature] = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
            raise EnvelopeError(f"signature {i} has no 'sig' string")
        if set(s) - {"keyid", "sig"}:
            raise EnvelopeError(f"signature {i} has unknown fields: "
                                f"{', '.join(sorted(set(s) - {'keyid', 'sig'}))}")
        keyid = s.get("keyid", "")
        if not isinstance(keyid, str):
            raise EnvelopeError(f"signature {i} has a non-string 'keyid'")
        parsed.append(Signature(keyid, _b64decode(s["sig"])))
    return Envelope(payload_type, _b64decode(payload), tuple(parsed))


def distinct_keys(trusted: Mapping[str, Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """``trusted`` re-keyed by each key's own id (sha256 of the raw key): one entry per
    distinct key. A mapping that names a key by another id is misuse (``ValueError``):
    ``{"a": K, "b": K}`` must never count as two keys."""
    out: dict[str, Ed25519PublicKey] = {}
    for given, key in trusted.items():
        keyid = keyid_of(key)
        if given != keyid:
            raise ValueError(f"key id {given[:16]}… is not the sha256 of its key ({keyid[:16]}…)")
        out[keyid] = key
    return out


def verified_signers(
    envelope: Envelope,
    trusted: Mapping[str, Ed25519PublicKey],
    threshold: int = 1,
    payload_type: str = PAYLOAD_TYPE,
) -> tuple[str, ...]:
    """The ids of ``threshold`` distinct trusted keys that signed the envelope.

    ``trusted`` maps key id -> public key, and every id must be the key's own
    (``distinct_keys``). Signatures are deduplicated, a key counts once, verification
    stops as soon as the threshold is met, and a signature that names an unknown key
    costs nothing. A signature without a key id is tried against the trusted keys that
    have not signed yet. Raises ``SignatureError`` naming what was wrong.
    """
    if threshold < 1:
        raise SignatureError("threshold must be at least 1")
    if envelope.payload_type != payload_type:
        raise SignatureError(
            f"payloadType is {envelope.payload_type!r}, expected {payload_type!r}"
        )
    if not envelope.signatures:
        raise SignatureError("envelope carries no signature")
    keys = distinct_keys(trusted)
    message = pae(envelope.payload_type, envelope.payload)
    good: list[str] = []
    unknown: list[str] = []
    bad: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for s in envelope.signatures:
        if (s.keyid, s.sig) in seen:
            continue
        seen.add((s.keyid, s.sig))
        if s.keyid:
            key = keys.get(s.keyid)
            if key is None:
                unknown.append(s.keyid)
                continue
            candidates = [] if s.keyid in good else [(s.keyid, key)]
        else:
            candidates = [(k, v) for k, v in keys.items() if k not in good]
        if len(s.sig) != 64:  # never an Ed25519 signature: no need to try it
            bad.append(s.keyid or "<no keyid>")
            continue
        for keyid, key in candidates:
            try:
                key.verify(s.sig, message)
            except InvalidSignature:
                continue
            good.append(keyid)
            break
        else:
            if candidates:
                bad.append(s.keyid or "<no keyid>")
        if len(good) >= threshold:
            return tuple(good)
    parts = [f"{len(good)} valid signature(s) from trusted keys, {threshold} required"]
    if bad:
        parts.append("signature does not verify for key " + ", ".join(k[:16] for k in bad))
    if unknown:
        parts.append("unknown key id " + ", ".join(k[:16] for k in unknown[:5])
                     + (f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    raise SignatureError("; ".join(parts))


def verify(
    envelope: Envelope,
    trusted: Mapping[str, Ed25519PublicKey],
    threshold: int = 1,
    payload_type: str = PAYLOAD_TYPE,
) -> bytes:
    """Return the payload bytes if at least ``threshold`` distinct trusted keys signed
    them (see ``verified_signers``); ``SignatureError`` otherwise."""
    verified_signers(envelope, trusted, threshold, payload_type)
    return envelope.payload
