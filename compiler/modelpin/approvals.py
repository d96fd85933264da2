"""Signed sign-offs for manual-approval steps (SPEC 2.1 rule 4).

An approval entry in a tenant file (``{percent, by, at, sig}``) is signed over a
canonical statement of (tenant, alias, candidate, percent, by, at): the RFC 8785 JSON
below, wrapped in DSSE's pre-authentication encoding with the payload type
``application/vnd.modelpin.approval+json``. The statement is rebuilt from the entry and
the rollout it sits in, so an entry copied to another tenant, alias, candidate or step,
or edited in any field, no longer verifies. ``sig`` is the base64 Ed25519 signature.

``verdicts`` judges every recorded approval of a fleet against a trust list (the
base's ``policies/approvers.yaml`` and each tenant's base ``contacts``): which key
signed it, and which roles that key holds. Counting them for a step is the gate's job
(``modelpin.rollout.gates.approval_gate``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from modelpin import signing
from modelpin.model.fleet import ApprovalKey, Fleet
from modelpin.model.tenant import Approval, Tenant, format_time
from modelpin.model.trust import ApprovalVerdict, Approvers, Role

PAYLOAD_TYPE = "application/vnd.modelpin.approval+json"
STATEMENT_TYPE = "https://modelpin.dev/approval/v1"


def statement(tenant: str, alias: str, candidate: str, percent: float, by: str,
              at: datetime) -> bytes:
    """The canonical bytes an approval signs."""
    return rfc8785.dumps({
        "_type": STATEMENT_TYPE, "tenant": tenant, "alias": alias, "candidate": candidate,
        "percent": percent, "by": by, "at": format_time(at),
    })


def sign(key: Ed25519PrivateKey, tenant: str, alias: str, candidate: str, percent: float,
         by: str, at: datetime) -> str:
    """The ``sig`` of an approval entry: base64 Ed25519 over PAE(type, statement)."""
    message = signing.pae(PAYLOAD_TYPE, statement(tenant, alias, candidate, percent, by, at))
    return base64.b64encode(key.sign(message)).decode("ascii")


@dataclass(frozen=True)
class SignOffKey:
    keyid: str
    key: Ed25519PublicKey
    name: str
    roles: frozenset[Role]


def sign_off_keys(approvers: Approvers | None, tenant: Tenant | None) -> list[SignOffKey]:
    """Every key that may sign an approval for ``tenant``, with its roles."""
    found: dict[str, SignOffKey] = {}
    entries: list[tuple[Role, str, str]] = []
    entries += [("approver", k.name, k.public_key) for k in (approvers.keys if approvers else [])]
    entries += [("contact", c.name, c.public_key) for c in (tenant.contacts if tenant else [])]
    for role, name, b64 in entries:
        key = signing.load_public_key_b64(b64)
        keyid = signing.keyid_of(key)
        prior = found.get(keyid)
        if prior is None:
            found[keyid] = SignOffKey(keyid, key, name, frozenset({role}))
        else:
            found[keyid] = SignOffKey(keyid, key, prior.name, prior.roles | {role})
    return list(found.values())


def verdict(approval: Approval, tenant: str, alias: str, candidate: str,
            keys: list[SignOffKey], *, keys_configured: bool) -> ApprovalVerdict:
    """Who signed ``approval`` (of ``candidate`` in ``tenant``/``alias``) among ``keys``."""
    if not keys_configured:
        return ApprovalVerdict("unauthenticated",
                               reason="no approver keys are configured: unsigned approvals count")
    if approval.sig is None:
        return ApprovalVerdict("refused", reason=f"approval by {approval.by} is unsigned, and "
                               "policies/approvers.yaml lists approver keys")
    try:
        sig = base64.b64decode(approval.sig, validate=True)
    except (binascii.Error, ValueError):
        return ApprovalVerdict("refused", reason=f"approval by {approval.by}: 'sig' is not base64")
    message = signing.pae(PAYLOAD_TYPE, statement(tenant, alias, candidate, approval.percent,
                                                  approval.by, approval.at))
    for key in keys:
        try:
            key.key.verify(sig, message)
        except InvalidSignature:
            continue
        if key.name != approval.by:
            return ApprovalVerdict("refused", key.keyid, key.roles,
                                   f"approval says by {approval.by} but is signed by the key "
                                   f"of {key.name}")
        return ApprovalVerdict("signed", key.keyid, key.roles)
    return ApprovalVerdict(
        "refused",
        reason=f"approval by {approval.by} for {approval.percent:g}% does not verify under any "
        "approver or contact key of the base: forged, edited, copied from another tenant, "
        "alias, candidate or step, or signed by a key added in this change")


def verdicts(head: Fleet, base: Fleet) -> dict[ApprovalKey, ApprovalVerdict]:
    """Every approval recorded in ``head``, judged by ``base``'s approvers and contacts."""
    out: dict[ApprovalKey, ApprovalVerdict] = {}
    approvers = base.approvers
    configured = bool(approvers and approvers.keys)
    cache: dict[str, list[SignOffKey]] = {}
    for tenant_id, tenant in head.tenants.items():
        for alias_name, alias in tenant.aliases.items():
            rollout = alias.rollout
            if rollout is None or not rollout.approvals:
                continue
            keys = cache.get(tenant_id)
            if keys is None:
                keys = cache[tenant_id] = sign_off_keys(approvers, base.tenants.get(tenant_id))
            for i, approval in enumerate(rollout.approvals):
                out[(tenant_id, alias_name, i)] = verdict(
                    approval, tenant_id, alias_name, rollout.candidate, keys,
                    keys_configured=configured)
    return out


def by_key(verdicts_: Mapping[ApprovalKey, ApprovalVerdict]) -> dict[str, list[ApprovalKey]]:
    """Key id -> the approvals it signed (helps spotting one key signing twice)."""
    out: dict[str, list[ApprovalKey]] = {}
    for where, v in verdicts_.items():
        if v.keyid:
            out.setdefault(v.keyid, []).append(where)
    return out
