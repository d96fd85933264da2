"""Who may sign what: ``policies/evaluators.yaml``, ``policies/approvers.yaml``, contacts.

Keys are written as the base64 of the 32 raw bytes of an Ed25519 public key (what
``modelpin keygen`` prints). A key's id is the lowercase hex sha256 of those bytes, as
for the routing table's keys. A key listed twice is an error: a threshold counts
distinct keys, and a duplicate would only pretend to raise it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from modelpin.model.base import StrictModel, field_error, rule_error

KEY_HINT = ("write the base64 of the 32 raw bytes of an Ed25519 public key, "
            "as `modelpin keygen` prints it")


def raw_key(text: str) -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key; ``ValueError`` with the cause."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"public key {_short(text)} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


def keyid_of_b64(text: str) -> str:
    """Key id of a base64 public key: hex sha256 of the raw bytes."""
    return hashlib.sha256(raw_key(text)).hexdigest()


def _short(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:21] + "...")


def _check_key(value: str) -> str:
    try:
        raw_key(value)
    except ValueError as exc:
        raise field_error(str(exc), KEY_HINT) from None
    return value


PublicKeyB64 = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_check_key),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9+/]{43}=$",
                    "description": "base64 of a raw 32-byte Ed25519 public key"}),
]

Name = Annotated[str, Field(strict=True, min_length=1, max_length=200,
                            pattern=r"^[^\s\x00-\x1f\x7f]+$")]
"""A person or system: no whitespace or control characters (it is signed and shown)."""


Email = Annotated[str, Field(strict=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")]
"""Who signs an approval: an e-mail address (it is signed, shown and matched exactly)."""


class NamedKey(StrictModel):
    """A public key and who holds it."""

    name: Name
    public_key: PublicKeyB64

    @property
    def keyid(self) -> str:
        return keyid_of_b64(self.public_key)


class SignOffKey(NamedKey):
    """An approver's or a tenant contact's key; ``name`` is the e-mail that approvals
    carry in ``by``."""

    name: Email


def duplicate_key_error(keys: Sequence[NamedKey], field: str) -> Any:
    """The rule error for the second listing of a key or of a name, or None."""
    seen_keys: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for i, key in enumerate(keys):
        first = seen_keys.setdefault(key.public_key, i)
        if first != i:
            return rule_error(f"{field}[{i}] repeats the public key of {field}[{first}]",
                              field, i, "public_key",
                              hint="each key is listed once; a threshold counts distinct keys")
        first = seen_names.setdefault(key.name, i)
        if first != i:
            return rule_error(f"{field}[{i}] repeats the name of {field}[{first}]",
                              field, i, "name", hint="give each key holder a distinct name")
    return None


class Evaluators(StrictModel):
    """``policies/evaluators.yaml``: who may sign BETS evidence, and how many must.

    Evidence counts when at least ``threshold`` distinct listed keys signed it. With no
    keys listed, unsigned evidence counts as long as it is unchanged from the base.
    """

    threshold: int = Field(default=1, ge=1, strict=True)
    keys: list[NamedKey] = Field(default=[], max_length=256)

    @model_validator(mode="after")
    def _rules(self) -> Evaluators:
        problem = duplicate_key_error(self.keys, "keys")
        if problem is not None:
            raise problem
        if self.keys and self.threshold > len(self.keys):
            raise rule_error(f"threshold {self.threshold} exceeds the {len(self.keys)} key(s)",
                             "threshold", hint="list more keys or lower the threshold")
        return self

    @property
    def keyids(self) -> dict[str, NamedKey]:
        return {k.keyid: k for k in self.keys}


class Approvers(StrictModel):
    """``policies/approvers.yaml``: platform approvers for manual-approval groups.

    A manual step needs one approval signed by a key listed here and one by a key of the
    tenant's ``contacts``. With no keys listed, unsigned approvals count (and ``plan``
    marks them unauthenticated).
    """

    keys: list[SignOffKey] = Field(default=[], max_length=256)

    @model_validator(mode="after")
    def _rules(self) -> Approvers:
        problem = duplicate_key_error(self.keys, "keys")
        if problem is not None:
            raise problem
        return self

    @property
    def keyids(self) -> dict[str, NamedKey]:
        return {k.keyid: k for k in self.keys}


Role = Literal["approver", "contact"]


@dataclass(frozen=True)
class ApprovalVerdict:
    """Who signed one recorded approval, judged against a trust list (of the base).

    ``signed``: the signature verifies under ``keyid``, a key holding ``roles`` (a
    platform approver, a tenant contact, or both: such a key still fills one role).
    ``unauthenticated``: no approver keys are configured; the entry counts unsigned.
    ``refused``: it counts for nothing; ``reason`` says why.
    """

    state: Literal["signed", "unauthenticated", "refused"]
    keyid: str = ""
    roles: frozenset[Role] = frozenset()
    reason: str = ""
