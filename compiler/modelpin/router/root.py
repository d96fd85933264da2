"""The trust root: a signed, versioned, expiring document naming who may sign tables.

A root is a DSSE envelope (payloadType ``application/vnd.modelpin.root+json``) over
canonical JSON::

    {"format": "modelpin.root/v1", "version": 3, "expires_at": "2027-06-01T00:00:00Z",
     "keys": {"<keyid>": {"public_key": "<base64 of the raw 32 bytes>", "owner": "ops"}},
     "roles": {"root":  {"keyids": ["<keyid>", ...], "threshold": 2},
               "table": {"keyids": ["<keyid>", ...], "threshold": 1}},
     "serial_floor": null}

Rules (python-tuf's root chain, ``TrustedMetadataSet.update_root``):

1. Every key id is the sha256 of its raw public key; a role's key ids are distinct
   and declared; its threshold is between 1 and its number of keys.
2. The first root a router is configured with must be signed by its own root role.
3. Root N+1 is accepted only if signed by a threshold of root N's root keys *and* a
   threshold of its own root keys, and its version is exactly N+1. So keys rotate and
   are revoked in-band, and a root signed only by new keys, or an older root served
   again, is refused.
4. Intermediate roots may have expired; the newest one may not (checked by the caller
   with its clock before any table is trusted).
5. ``serial_floor`` (optional): a router that adopts this root lowers its table-serial
   floor to this value if it is higher (recovery from a runaway serial).

Pure: bytes in, a ``Root`` or a ``RootRejected`` subclass out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelpin import signing

from .errors import RootRejected, RootVersionError
from .strict_json import NotCanonicalError, loads_canonical

ROOT_PAYLOAD_TYPE = "application/vnd.modelpin.root+json"
ROOT_FORMAT = "modelpin.root/v1"
MAX_ROOT_BYTES = 1 << 20
MAX_ROOT_KEYS = 256
MAX_ROOT_VERSION = 2**53 - 1
MAX_ROOT_ROTATIONS = 32
"""Roots a router adopts in one refresh at most (the rest on the next refresh)."""

ROLES = ("root", "table")
_TOP = frozenset({"format", "version", "expires_at", "keys", "roles", "serial_floor"})


@dataclass(frozen=True, slots=True)
class Role:
    """Who may sign for a role: key id -> key (distinct keys), and how many must."""

    keys: dict[str, Ed25519PublicKey]
    threshold: int


@dataclass(frozen=True, slots=True)
class Root:
    version: int
    expires_at: str
    expires_ts: float
    root: Role
    table: Role
    serial_floor: int | None
    owners: dict[str, str | None]
    envelope: bytes = field(repr=False)
    """The signed envelope bytes, as persisted and published."""


def _fail(message: str) -> NoReturn:
    raise RootRejected(f"root: {message}")


def _int(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        _fail(f"'{name}' must be an integer from {low} to {high}")
    return value


def _time(value: object, name: str) -> float:
    try:
        if type(value) is not str or len(value) != 20 or not value.endswith("Z"):
            raise ValueError
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        _fail(f"'{name}' must be a UTC time like 2027-01-01T00:00:00Z")


def _public_key(keyid: str, entry: object) -> tuple[Ed25519PublicKey, str | None]:
    if type(entry) is not dict or not {"public_key"} <= entry.keys() <= {"public_key", "owner"}:
        _fail(f"key {keyid[:16]}… must be {{public_key, owner}}")
    text, owner = entry["public_key"], entry.get("owner")
    if owner is not None and (type(owner) is not str or len(owner) > 200):
        _fail(f"key {keyid[:16]}…: 'owner' must be a string (at most 200 characters)")
    try:
        if type(text) is not str:
            raise ValueError
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _fail(f"key {keyid[:16]}…: 'public_key' is not base64")
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        _fail(f"key {keyid[:16]}…: 'public_key' is not the base64 of 32 raw bytes")
    actual = hashlib.sha256(raw).hexdigest()
    if keyid != actual:
        _fail(f"key id {keyid[:16]}… is not the sha256 of its public key ({actual[:16]}…)")
    return Ed25519PublicKey.from_public_bytes(raw), owner


def _role(name: str, value: object, keys: dict[str, Ed25519PublicKey]) -> Role:
    if type(value) is not dict or value.keys() != {"keyids", "threshold"}:
        _fail(f"role '{name}' must be {{keyids, threshold}}")
    keyids = value["keyids"]
    if type(keyids) is not list or not keyids or any(type(k) is not str for k in keyids):
        _fail(f"role '{name}': 'keyids' must be a non-empty list of key ids")
    if len(set(keyids)) != len(keyids):
        _fail(f"role '{name}' lists a key id twice")
    missing = [k for k in keyids if k not in keys]
    if missing:
        _fail(f"role '{name}' names undeclared key {missing[0][:16]}…")
    threshold = _int(value["threshold"], f"roles.{name}.threshold", 1, len(keyids))
    return Role({k: keys[k] for k in keyids}, threshold)


def parse_root(payload: bytes, envelope: bytes) -> Root:
    """The root in ``payload`` (signatures not checked here); ``RootRejected`` if bad."""
    try:
        doc = loads_canonical(payload, "root")
    except NotCanonicalError as exc:
        raise RootRejected(str(exc)) from None
    if type(doc) is not dict or doc.keys() != _TOP:
        _fail(f"must have exactly the fields {', '.join(sorted(_TOP))}")
    if doc["format"] != ROOT_FORMAT:
        _fail(f"'format' is not {ROOT_FORMAT!r}")
    version = _int(doc["version"], "version", 1, MAX_ROOT_VERSION)
    expires_ts = _time(doc["expires_at"], "expires_at")
    floor = doc["serial_floor"]
    if floor is not None:
        floor = _int(floor, "serial_floor", 0, MAX_ROOT_VERSION)
    key_docs = doc["keys"]
    if type(key_docs) is not dict or not 1 <= len(key_docs) <= MAX_ROOT_KEYS:
        _fail(f"'keys' must map 1 to {MAX_ROOT_KEYS} key ids to keys")
    keys: dict[str, Ed25519PublicKey] = {}
    owners: dict[str, str | None] = {}
    for keyid, entry in key_docs.items():
        keys[keyid], owners[keyid] = _public_key(keyid, entry)
    roles = doc["roles"]
    if type(roles) is not dict or roles.keys() != set(ROLES):
        _fail("'roles' must be exactly {root, table}")
    return Root(
        version=version,
        expires_at=doc["expires_at"],
        expires_ts=expires_ts,
        root=_role("root", roles["root"], keys),
        table=_role("table", roles["table"], keys),
        serial_floor=floor,
        owners=owners,
        envelope=envelope,
    )


def _signed_root(data: bytes) -> tuple[signing.Envelope, bytes]:
    if len(data) > MAX_ROOT_BYTES:
        _fail(f"envelope is {len(data)} bytes, the cap is {MAX_ROOT_BYTES}")
    try:
        envelope = signing.parse_envelope(data)
    except signing.EnvelopeError as exc:
        _fail(str(exc))
    if envelope.payload_type != ROOT_PAYLOAD_TYPE:
        _fail(f"payloadType is {envelope.payload_type!r}, expected {ROOT_PAYLOAD_TYPE!r}")
    return envelope, envelope.payload


def _check_signed(envelope: signing.Envelope, role: Role, by: str) -> tuple[str, ...]:
    try:
        return signing.verified_signers(envelope, role.keys, role.threshold, ROOT_PAYLOAD_TYPE)
    except signing.SignatureError as exc:
        _fail(f"not signed by {role.threshold} of the root keys of {by}: {exc}")


def load_trusted_root(data: bytes) -> Root:
    """The root a router is configured with: well formed and signed by itself (rule 2)."""
    envelope, payload = _signed_root(data)
    root = parse_root(payload, data)
    _check_signed(envelope, root.root, f"root version {root.version} itself")
    return root


def verify_next_root(trusted: Root, data: bytes) -> Root:
    """Root ``trusted.version + 1`` from ``data``, checked by rules 1 and 3."""
    envelope, payload = _signed_root(data)
    # The old root's keys first: nothing in an unverified payload is interpreted.
    _check_signed(envelope, trusted.root, f"the trusted root version {trusted.version}")
    root = parse_root(payload, data)
    _check_signed(envelope, root.root, f"root version {root.version} itself")
    if root.version != trusted.version + 1:
        raise RootVersionError(
            f"root: expected version {trusted.version + 1}, got {root.version}"
        )
    return root


def root_payload(
    *,
    version: int,
    expires_at: str,
    keys: dict[str, tuple[str, str | None]],
    roles: dict[str, tuple[list[str], int]],
    serial_floor: int | None = None,
) -> dict[str, Any]:
    """The JSON value of a root (``keys``: key id -> (base64 public key, owner);
    ``roles``: name -> (key ids, threshold)). The caller encodes it with RFC 8785 and
    checks it with ``parse_root`` before signing."""
    return {
        "format": ROOT_FORMAT,
        "version": version,
        "expires_at": expires_at,
        "keys": {k: {"public_key": pub, "owner": owner} if owner is not None
                 else {"public_key": pub} for k, (pub, owner) in keys.items()},
        "roles": {name: {"keyids": ids, "threshold": threshold}
                  for name, (ids, threshold) in roles.items()},
        "serial_floor": serial_floor,
    }
