"""Renames are pin changes (issue 11, a case SPEC 2.1 does not decide; the safe answer is in
docs/trust-boundary.md "Renames").

The attack: an alias (or a tenant) is matched by name, so a change that removes alias
``primary`` pinned to A and adds ``primary2`` pinned to V moves the alias's callers to V
with no rollout; removing ``primary`` in one PR and re-adding it on V in the next does
the same without even renaming. The answer: a new alias that takes over another's
traffic keeps a pin it had. It "takes over" when it is an alias the tenant had before
(the same name in the base's first-parent history: a re-add), or when the same change
removes an alias of the same kind from the tenant (a rename). Its pin must then be the
removed alias's pin or a pin the name had before, unless the tenant has
``override_allowed`` in the base; everything else about it is judged as an onboarding
(SPEC 2.1 rule 7). A renamed *tenant* is a new tenant (routers serve by tenant id, so
its callers must change): rule 7 limits its pins. Every removed or added alias and
tenant is listed (rule 2).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fleetkit import FleetSpec, evidence, promoted, tenant
from tests.gate.harness import (
    EVIDENCE_AT,
    FRESH,
    A,
    Gate,
    PullRequest,
    Row,
    V,
    base_fleet,
    row_id,
    shadow,
)
from tests.gate.test_rules import W, rolled_back_then_acknowledged, rules_base, t

EMB = "emb-4-2026-02-01"


def two_alias_base() -> FleetSpec:
    """``base_fleet`` plus std-two (standard, ``primary`` pinned to A and an embedding
    alias ``embedder``) and std-over (standard, ``override_allowed``)."""
    spec = base_fleet()
    doc = tenant("std-two")
    doc["aliases"]["embedder"] = {"kind": "embedding", "pin": EMB}
    spec.add(doc)
    spec.add(tenant("std-over", override_allowed=True))
    return spec


def _drop_evidence(pr: PullRequest, tid: str, alias: str | None = None) -> None:
    pr.spec.evidence = [e for e in pr.spec.evidence
                        if e["tenant"] != tid or (alias is not None and e["alias"] != alias)]


def rename(tid: str, old: str, new: str, pin: str, **extra: Any):  # type: ignore[no-untyped-def]
    def edit(pr: PullRequest) -> None:
        aliases = pr.tenant(tid)["aliases"]
        entry = aliases.pop(old)
        aliases[new] = {"kind": entry["kind"], "pin": pin, **extra}
        _drop_evidence(pr, tid, old)
        pr.write()
    return edit


def published_removal(tid: str, alias: str):  # type: ignore[no-untyped-def]
    """On main: ``alias`` of ``tid`` removed (as a PR would have, judged or not)."""
    def change(p: PullRequest) -> None:
        p.tenant(tid)["aliases"].pop(alias)
        _drop_evidence(p, tid, alias)
        p.write()
    return change


def readd_alias(tid: str, alias: str, pin: str, kind: str = "chat"):  # type: ignore[no-untyped-def]
    def edit(pr: PullRequest) -> None:
        pr.publish(published_removal(tid, alias), f"{tid}: drop {alias}",
                   date="2026-03-25T09:00:00Z")
        pr.tenant(tid)["aliases"][alias] = {"kind": kind, "pin": pin}
        pr.write()
    return edit


def readd_tenant(tid: str, pin: str, **extra: Any):  # type: ignore[no-untyped-def]
    def edit(pr: PullRequest) -> None:
        def offboard(p: PullRequest) -> None:
            p.spec.tenants.pop(tid)
            _drop_evidence(p, tid)
            p.write()
        pr.publish(offboard, f"offboard {tid}", date="2026-03-25T09:00:00Z")
        pr.spec.add(tenant(tid, pin=pin, **extra))
        pr.write()
    return edit


def rename_tenant(old: str, new: str, pin: str, **extra: Any):  # type: ignore[no-untyped-def]
    def edit(pr: PullRequest) -> None:
        doc = pr.spec.tenants.pop(old)
        _drop_evidence(pr, old)
        doc = {**doc, "id": new, **extra}
        doc["aliases"] = {"primary": {"kind": "chat", "pin": pin}}
        pr.spec.add(doc)
        pr.write()
    return edit


def rename_rolled_back(pr: PullRequest) -> None:
    """std-a rolled back from V (on record); the PR renames its alias and starts V again
    under the new name: the record must follow."""
    rolled_back_then_acknowledged("std-a")(pr)
    aliases = pr.tenant("std-a")["aliases"]
    aliases.pop("primary")
    _drop_evidence(pr, "std-a", "primary")
    aliases["main"] = {"kind": "chat", "pin": A, "rollout": shadow(FRESH)}
    pr.spec.evidence.append(evidence("std-a", alias="main", run_at=EVIDENCE_AT))
    pr.write()


def two_alias_base_with_new_embedder() -> FleetSpec:
    spec = two_alias_base()
    spec.models["emb-4-2026-03-01"] = {"provider": "openai", "kind": "embedding",
                                       "released": "2026-03-01"}
    return spec


def promoted_rename(pr: PullRequest) -> None:
    rename_tenant("std-p", "std-p2", V)(pr)
    promoted(pr.tenant("std-p2"))
    pr.write()


def beside(pr: PullRequest) -> None:
    pr.tenant("std-p")["aliases"]["primary2"] = {"kind": "chat", "pin": V}
    pr.write()


BLOCKED = [
    Row("rename/alias-renamed-with-another-pin", rename("std-p", "primary", "primary2", V),
        code="MP105", file=t("std-p"), needle=V, message="replaces alias primary"),
    Row("rename/alias-renamed-to-a-promotion-record",
        rename("std-p", "primary", "primary2", V, pinned_at=FRESH, promoted_from=A),
        code="MP121", file=t("std-p"), needle="promoted_from"),
    Row("rename/alias-renamed-while-in-flight", rename("std-a", "primary", "primary2", V),
        code="MP112", file=t("std-a"), needle="primary:", side="base"),
    Row("rename/alias-renamed-to-an-uncleared-version",
        rename("std-p", "primary", "primary2", W), code="MP122", file=t("std-p"),
        needle=W, base=rules_base),
    Row("rename/alias-renamed-and-its-rolled-back-version-restarted", rename_rolled_back,
        code="MP124", file=t("std-a"), needle="primary:", side="base", base=rules_base),
    Row("readd/alias-removed-then-re-added-with-another-pin",
        readd_alias("std-two", "primary", V), code="MP105", file=t("std-two"), needle=V,
        message="existed before", base=two_alias_base),
    Row("readd/embedding-alias-re-added-with-another-pin",
        readd_alias("std-two", "embedder", "emb-4-2026-03-01", kind="embedding"),
        code="MP105", file=t("std-two"), needle="emb-4-2026-03-01",
        base=two_alias_base_with_new_embedder),
    Row("readd/tenant-offboarded-then-re-added-with-another-pin", readd_tenant("std-p", V),
        code="MP105", file=t("std-p"), needle=V, message="existed before"),
    Row("readd/tenant-re-added-granting-itself-override",
        readd_tenant("std-p", V, override_allowed=True), code="MP105", file=t("std-p"),
        needle=V),
    Row("rename/tenant-renamed-to-an-uncleared-version",
        rename_tenant("std-p", "std-p2", W), code="MP122", file=t("std-p2"), needle=W,
        base=rules_base),
    Row("rename/tenant-renamed-with-a-promotion-record", promoted_rename,
        code="MP121", file=t("std-p2"), needle="promoted_from"),
]


def _add_summarizer(pr: PullRequest) -> None:
    """Removes the embedding alias and adds a chat alias: not a rename (other kind)."""
    aliases = pr.tenant("std-two")["aliases"]
    aliases.pop("embedder")
    aliases["summarizer"] = {"kind": "chat", "pin": V}
    pr.write()


SAFE = [
    Row("rename/alias-renamed-keeping-its-pin", rename("std-p", "primary", "primary2", A)),
    Row("rename/override-tenant-renames-onto-a-cleared-version",
        rename("std-over", "primary", "primary2", V), base=two_alias_base),
    Row("rename/new-alias-of-another-kind-beside-a-removed-one", _add_summarizer,
        base=two_alias_base),
    Row("readd/alias-re-added-with-its-old-pin", readd_alias("std-two", "primary", A),
        base=two_alias_base),
    Row("readd/tenant-re-added-with-its-old-pin", readd_tenant("std-p", A)),
    Row("rename/new-alias-beside-the-old-one-on-a-cleared-version", beside),
]


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


@pytest.mark.parametrize("row", SAFE, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_removed_and_added_aliases_and_tenants_are_listed(gate: Gate) -> None:
    def edit(pr: PullRequest) -> None:
        rename("std-p", "primary", "primary2", A)(pr)
        rename_tenant("cons", "cons2", A)(pr)

    _, outcome = gate.run(Row("listed", edit))
    assert outcome.exit_code == 0, outcome.explain()
    messages = [c["message"] for c in
                outcome.document["summary"]["shown"]["changes"]]  # type: ignore[index]
    assert (f"tenant std-p: alias primary removed (pinned {A}): routers stop serving it"
            in messages), messages
    assert f"tenant std-p: alias primary2 added (pinned {A})" in messages
    assert (f"tenant cons removed (primary pinned {A}): routers stop serving it"
            in messages), messages
    assert f"tenant cons2 added (primary pinned {A})" in messages

