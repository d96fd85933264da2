"""Approval signatures: what they bind, and who is found to have signed."""

from __future__ import annotations

from datetime import UTC, datetime

from modelpin import approvals, signing
from modelpin.model.tenant import Approval, Tenant
from modelpin.model.trust import Approvers

AT = datetime(2026, 3, 25, 11, 0, tzinfo=UTC)
APPROVER, CONTACT, OTHER = (signing.generate_private_key() for _ in range(3))


def _tenant(*contacts: tuple[str, object]) -> Tenant:
    return Tenant.model_validate({
        "id": "acme", "group": "g", "workload": "chat",
        "contacts": [{"name": n, "public_key": signing.public_key_b64(k.public_key())}  # type: ignore[attr-defined]
                     for n, k in contacts],
        "aliases": {"primary": {"kind": "chat", "pin": "a-1"}},
    })


APPROVERS = Approvers.model_validate({"keys": [
    {"name": "oncall@platform.example",
     "public_key": signing.public_key_b64(APPROVER.public_key())}]})
TENANT = _tenant(("ops@acme.example", CONTACT))
KEYS = approvals.sign_off_keys(APPROVERS, TENANT)


def _entry(key: object, by: str, percent: float = 5, tenant: str = "acme",
           candidate: str = "v-2", at: datetime = AT) -> Approval:
    sig = approvals.sign(key, tenant, "primary", candidate, percent, by, at)  # type: ignore[arg-type]
    return Approval.model_validate({"percent": percent, "by": by, "at": at, "sig": sig})


def _verdict(entry: Approval, candidate: str = "v-2") -> approvals.ApprovalVerdict:
    return approvals.verdict(entry, "acme", "primary", candidate, KEYS, keys_configured=True)


def test_an_approver_signature_is_found_with_its_role() -> None:
    v = _verdict(_entry(APPROVER, "oncall@platform.example"))
    assert (v.state, v.roles) == ("signed", frozenset({"approver"}))
    assert v.keyid == signing.keyid_of(APPROVER.public_key())


def test_a_contact_signature_is_found_with_its_role() -> None:
    v = _verdict(_entry(CONTACT, "ops@acme.example"))
    assert (v.state, v.roles) == ("signed", frozenset({"contact"}))


def test_the_signature_binds_every_field() -> None:
    good = _entry(CONTACT, "ops@acme.example")
    for changed in (good.model_copy(update={"percent": 25.0}),
                    good.model_copy(update={"at": datetime(2026, 3, 25, 11, 1, tzinfo=UTC)})):
        assert _verdict(changed).state == "refused"
    assert _verdict(good, candidate="v-3").state == "refused"
    other_tenant = _entry(CONTACT, "ops@acme.example", tenant="beta")
    assert _verdict(other_tenant).state == "refused"


def test_unknown_key_is_refused() -> None:
    v = _verdict(_entry(OTHER, "ops@acme.example"))
    assert v.state == "refused"
    assert "does not verify" in v.reason


def test_by_must_be_the_key_holder() -> None:
    v = _verdict(_entry(CONTACT, "oncall@platform.example"))
    assert v.state == "refused"
    assert "signed by the key of ops@acme.example" in v.reason


def test_unsigned_and_garbage_signatures_are_refused() -> None:
    unsigned = Approval.model_validate({"percent": 5, "by": "ops@acme.example", "at": AT})
    assert "unsigned" in _verdict(unsigned).reason
    garbage = unsigned.model_copy(update={"sig": "not base64!"})
    assert "not base64" in _verdict(garbage).reason


def test_without_approver_keys_entries_are_unauthenticated() -> None:
    unsigned = Approval.model_validate({"percent": 5, "by": "ops@acme.example", "at": AT})
    v = approvals.verdict(unsigned, "acme", "primary", "v-2", KEYS, keys_configured=False)
    assert v.state == "unauthenticated"


def test_a_key_in_both_lists_holds_both_roles_once() -> None:
    both = approvals.sign_off_keys(APPROVERS, _tenant(("oncall@platform.example", APPROVER)))
    assert len(both) == 1
    assert both[0].roles == frozenset({"approver", "contact"})
