"""PR scenarios round the BETS suite rules (SPEC 2.1 rules 2 and 3; docs/trust-boundary.md
"BETS suites"), each on a real git repository judged by ``modelpin check``.

Evidence names the suite it ran by id and version. Without these rules a pull request
could weaken a suite (delete its hard cases, lower its judge threshold) under an unchanged
version, and later evidence produced by the weakened suite would look as good as evidence
from the real one. The base here holds suites for std-a, std-s, std-young and std-p (v1,
named by those tenants' ``bets_suite``) and an unreferenced suite ``spare`` at v3; its
evidence is signed by a trusted evaluator key (``EVAL``).

Rows marked ``held on main`` were already refused before the suite rules (the loader
never reads a symlink or a file outside the layout); they stay here as the variants of
"change a suite file the loader would read".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from modelpin import signing
from tests.fleetkit import FleetSpec, evidence, suite, suite_digest, suite_files
from tests.gate.harness import (
    FRESH,
    Gate,
    PullRequest,
    Row,
    V,
    base_fleet,
    canary,
    row_id,
)

EVAL = signing.generate_private_key()
SUITED = ("std-a", "std-s", "std-young", "std-p")
RUN_AT = "2026-03-25T09:00:00Z"
"""When the PR's new evidence ran (before NOW, fresh)."""
ENVELOPE = "payload"  # signed results sit base64-encoded in the envelope's payload line


def sid(tid: str) -> str:
    return f"{tid}-suite"


def suite_file(tid: str, name: str = "suite.yaml") -> str:
    return f"bets/{sid(tid)}/{name}"


def ev_file(tid: str) -> str:
    return f"evidence/{tid}/primary/{V}.dsse.json"


def digest_of(doc: dict[str, Any]) -> str:
    return suite_digest(suite_files(doc))


def suite_base(*, bound: bool = False) -> FleetSpec:
    """The base: suites in bets/, signed evidence. ``bound``: the evidence records the
    suites' digests (as ``bets run`` now writes it); else it is evidence of older runs."""
    spec = base_fleet()
    public = signing.public_key_b64(EVAL.public_key())
    spec.evaluators = {"threshold": 1, "keys": [{"name": "bets-ci", "public_key": public}]}
    spec.evidence_key = signing.private_key_pem(EVAL)
    spec.suites = {sid(t): suite(sid(t)) for t in SUITED}
    spec.suites["spare"] = suite("spare", version=3)
    if bound:
        for ev in spec.evidence:
            if ev["suite"]["id"] in spec.suites:
                ev["suite_sha256"] = digest_of(spec.suites[ev["suite"]["id"]])
    return spec


def bound_base() -> FleetSpec:
    return suite_base(bound=True)


def weakened(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without its last two (the hard) cases."""
    out = copy.deepcopy(doc)
    out["cases"] = out["cases"][:-2]
    return out


def edit_suite(tid: str, change: Callable[[dict[str, Any]], None]) -> Callable[[PullRequest], None]:
    """Edit a suite's documents (``tid``'s suite, or the suite named ``tid``) and write the PR."""
    def edit(pr: PullRequest) -> None:
        suites = _suites(pr)
        change(suites[tid if tid in suites else sid(tid)])
        pr.write()
    return edit


def new_evidence(tid: str, *, advance: bool = True, **fields: Any) -> Callable[[PullRequest], None]:
    """A fresh signed run for ``tid`` (trusted key) with ``fields``; with ``advance``
    ``tid`` enters canary 5 in the same PR (the transition that uses it)."""
    def edit(pr: PullRequest) -> None:
        pr.spec.evidence = [e for e in pr.spec.evidence if e["tenant"] != tid]
        pr.spec.evidence.append({**evidence(tid, run_at=RUN_AT), **fields})
        if advance:
            pr.set_rollout(tid, canary(5, FRESH))
        pr.write()
    return edit


def then(*edits: Callable[[PullRequest], None]) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        for step in edits:
            step(pr)
    return edit


def rewrite_cases(tid: str, render: Callable[[list[dict[str, Any]]], str]
                  ) -> Callable[[PullRequest], None]:
    """Write ``cases.jsonl`` of ``tid``'s suite as ``render`` spells the same cases."""
    def edit(pr: PullRequest) -> None:
        assert pr.spec.suites is not None
        pr.write_text(suite_file(tid, "cases.jsonl"), render(pr.spec.suites[sid(tid)]["cases"]))
    return edit


def bump(tid: str, version: int = 2, *, tenant_too: bool = True) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        assert pr.spec.suites is not None
        pr.spec.suites[sid(tid)]["suite"]["version"] = version
        if tenant_too:
            pr.spec.tenants[tid]["bets_suite"]["version"] = version
        pr.write()
    return edit


def published(*edits: Callable[[PullRequest], None]) -> Callable[[PullRequest], None]:
    """``edits`` merged on main first (an earlier PR); the PR branch restarts from it."""
    def edit(pr: PullRequest) -> None:
        pr.publish(then(*edits))
    return edit


def remove_suite(tid: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        suites = _suites(pr)
        del suites[tid if tid in suites else sid(tid)]
        pr.write()
    return edit


def rename_suite(tid: str) -> Callable[[PullRequest], None]:
    """``bets/<sid>`` -> ``bets/<sid>2`` (same cases), and the tenant pointed at it."""
    def edit(pr: PullRequest) -> None:
        assert pr.spec.suites is not None
        doc = pr.spec.suites.pop(sid(tid))
        doc["suite"]["id"] = sid(tid) + "2"
        pr.spec.suites[sid(tid) + "2"] = doc
        pr.spec.tenants[tid]["bets_suite"]["id"] = sid(tid) + "2"
        pr.write()
    return edit


def advance_std_a(pr: PullRequest) -> None:
    """std-a canary 5 -> 25 (soak served) on the evidence already in the base."""
    pr.set_rollout("std-a", canary(25, FRESH))
    pr.write()


def add_suite(suite_id: str) -> Callable[[PullRequest], None]:
    def edit(pr: PullRequest) -> None:
        assert pr.spec.suites is not None
        pr.spec.suites[suite_id] = suite(suite_id)
        pr.write()
    return edit


def _suites(pr: PullRequest) -> dict[str, dict[str, Any]]:
    assert pr.spec.suites is not None
    return pr.spec.suites


def _weak_cases(pr: PullRequest) -> str:
    assert pr.spec.suites is not None
    return "".join(json.dumps(c) + "\n" for c in pr.spec.suites[sid("std-a")]["cases"][:1])


def symlinked_cases(pr: PullRequest) -> None:
    weak = pr.root / "weak-cases.jsonl"
    weak.write_text(_weak_cases(pr))
    pr.symlink(suite_file("std-a", "cases.jsonl"), str(weak))


def case_variant_cases(pr: PullRequest) -> None:
    pr.write_text(suite_file("std-a", "Cases.jsonl"), _weak_cases(pr))


def case_variant_folder(pr: PullRequest) -> None:
    assert pr.spec.suites is not None
    for name, data in suite_files(weakened(pr.spec.suites[sid("std-a")])).items():
        pr.write_text(f"bets/STD-A-SUITE/{name}", data.decode())


def _drop_last(doc: dict[str, Any]) -> None:
    doc["cases"].pop()


def _edit_golden(doc: dict[str, Any]) -> None:
    doc["cases"][0]["golden"] = "anything at all"


def _reverse(doc: dict[str, Any]) -> None:
    doc["cases"].reverse()


def _lower_threshold(doc: dict[str, Any]) -> None:
    doc["suite"]["judge_threshold"] = 0.1


def _other_judge(doc: dict[str, Any]) -> None:
    doc["suite"]["judge"] = "gpt-5-2026-01-10"


def _lower_version(doc: dict[str, Any]) -> None:
    doc["suite"]["version"] = 2
    doc["cases"].pop()


def _weaken_and_bump(doc: dict[str, Any]) -> None:
    doc["cases"] = doc["cases"][:-2]
    doc["suite"]["version"] = 2


VERSION = "version:"
BLOCKED = [
    # --- a suite's bytes change under the same version (MP126 at its `version:`) ---
    Row("suite/case-edited-same-version", edit_suite("std-a", _edit_golden), code="MP126",
        file=suite_file("std-a"), needle=VERSION, message="keeps version 1", base=suite_base),
    Row("suite/case-deleted-same-version", edit_suite("std-a", _drop_last), code="MP126",
        file=suite_file("std-a"), needle=VERSION, message="cases.jsonl", base=suite_base),
    Row("suite/cases-reordered-same-version", edit_suite("std-a", _reverse), code="MP126",
        file=suite_file("std-a"), needle=VERSION, base=suite_base),
    Row("suite/cases-relaid-same-version",
        rewrite_cases("std-a", lambda cases: "".join(
            json.dumps(c, separators=(",", ":")) + "\n" for c in cases)),
        code="MP126", file=suite_file("std-a"), needle=VERSION, base=suite_base),
    Row("suite/threshold-lowered-same-version", edit_suite("std-a", _lower_threshold),
        code="MP126", file=suite_file("std-a"), needle=VERSION, message="suite.yaml",
        base=suite_base),
    Row("suite/judge-changed-same-version", edit_suite("std-s", _other_judge), code="MP126",
        file=suite_file("std-s"), needle=VERSION, base=suite_base),
    Row("suite/comment-only-same-version",
        lambda pr: pr.write_text(suite_file("std-a"),
                                 pr.path(suite_file("std-a")).read_text() + "# reviewed\n"),
        code="MP126", file=suite_file("std-a"), needle=VERSION, base=suite_base),
    Row("suite/version-lowered-with-content", edit_suite("spare", _lower_version),
        code="MP126", file="bets/spare/suite.yaml", needle=VERSION, message="lowers it from 3",
        base=suite_base),
    Row("suite/cases-weakened-then-evidence-same-pr",
        then(edit_suite("std-a", _drop_last),
             new_evidence("std-s", suite_sha256="0" * 64)),
        code="MP126", file=suite_file("std-a"), needle=VERSION, base=bound_base),
    # --- a suite named by a tenant removed or renamed (MP127 at the base's file) ---
    Row("suite/removed-while-named", remove_suite("std-p"), code="MP127",
        file=suite_file("std-p"), needle="id:", side="base", base=suite_base),
    Row("suite/renamed-tenant-repointed", rename_suite("std-a"), code="MP127",
        file=suite_file("std-a"), needle="id:", side="base", base=suite_base),
    # --- evidence not bound to the content the base holds (MP133 at the evidence) ---
    Row("suite/evidence-run-on-weakened-cases",
        lambda pr: new_evidence("std-s", suite_sha256=digest_of(
            weakened(_suites(pr)[sid("std-s")])))(pr),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, message="other cases",
        base=bound_base),
    Row("suite/evidence-without-digest", new_evidence("std-s"), code="MP133",
        file=ev_file("std-s"), needle=ENVELOPE, message="no suite_sha256", base=suite_base),
    Row("suite/evidence-without-digest-no-transition", new_evidence("std-s", advance=False),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, base=suite_base),
    # Bump and weaken in separate PRs: the bump (same cases, v2, tenant at v2) is merged
    # first; the evidence of the next PR says v2 but ran the old v1 bytes, or a weakened
    # v2 that was never merged.
    Row("suite/bumped-then-evidence-of-old-content",
        then(published(bump("std-s")),
             lambda pr: new_evidence("std-s", suite={"id": sid("std-s"), "version": 2},
                                     suite_sha256=digest_of(suite(sid("std-s"))))(pr)),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, message="other cases",
        base=suite_base),
    Row("suite/bumped-then-evidence-of-unmerged-weak-v2",
        then(published(bump("std-s")),
             lambda pr: new_evidence("std-s", suite={"id": sid("std-s"), "version": 2},
                                     suite_sha256=digest_of(weakened(
                                         _suites(pr)[sid("std-s")])))(pr)),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, base=suite_base),
    Row("suite/bumped-then-old-version-evidence",
        then(published(bump("std-s")),
             new_evidence("std-s", suite_sha256=digest_of(suite(sid("std-s"))))),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, message="holds std-s-suite v2",
        base=suite_base),
    Row("suite/weakened-bumped-and-used-in-one-pr",
        then(edit_suite("std-s", _weaken_and_bump),
             lambda pr: pr.spec.tenants["std-s"]["bets_suite"].update(version=2),
             lambda pr: new_evidence("std-s", suite={"id": sid("std-s"), "version": 2},
                                     suite_sha256=digest_of(_suites(pr)[sid("std-s")]))(pr)),
        code="MP133", file=ev_file("std-s"), needle=ENVELOPE, message="holds std-s-suite v1",
        base=bound_base),
    Row("suite/evidence-for-suite-added-in-pr-wrong-digest",
        then(add_suite(sid("std-weak")),
             new_evidence("std-weak", advance=False, suite_sha256="1" * 64)),
        code="MP133", file=ev_file("std-weak"), needle=ENVELOPE, base=suite_base),
    # --- a suite file through a path the loader would not read as the suite (held on main) ---
    Row("suite/cases-replaced-by-symlink", symlinked_cases, code="MP009",
        file=suite_file("std-a", "cases.jsonl"), base=suite_base),
    Row("suite/case-variant-cases-file", case_variant_cases, code="MP007",
        file=suite_file("std-a", "Cases.jsonl"), base=suite_base),
    Row("suite/case-variant-suite-folder", case_variant_folder, code="MP013",
        file="bets/STD-A-SUITE/suite.yaml", base=suite_base),
]

HELD_ON_MAIN = {"suite/cases-replaced-by-symlink", "suite/case-variant-cases-file",
                "suite/case-variant-suite-folder"}


@pytest.mark.parametrize("row", BLOCKED, ids=row_id)
def test_blocked(gate: Gate, row: Row) -> None:
    gate.blocked(row)


ALLOWED = [
    Row("suite/changed-with-version-bump", then(edit_suite("std-a", _weaken_and_bump)),
        base=suite_base),
    Row("suite/bump-only", bump("std-a", tenant_too=False), base=suite_base),
    Row("suite/evidence-bound-to-held-suite",
        lambda pr: new_evidence("std-s", suite_sha256=digest_of(_suites(pr)[sid("std-s")]))(pr),
        base=suite_base),
    Row("suite/older-evidence-in-base-still-counts", advance_std_a, base=suite_base),
    Row("suite/bound-evidence-in-base-counts", advance_std_a, base=bound_base),
    Row("suite/unreferenced-suite-removed", remove_suite("spare"), base=suite_base),
    Row("suite/suite-added", add_suite("extra"), base=suite_base),
    Row("suite/evidence-for-suite-not-in-repo", new_evidence("std-weak", advance=False,
                                                             passed=590),
        base=suite_base),
]


@pytest.mark.parametrize("row", ALLOWED, ids=row_id)
def test_allowed(gate: Gate, row: Row) -> None:
    gate.allowed(row)


def test_digest_matches_sha256sum_recipe(gate: Gate) -> None:
    """The digest documented for users (``sha256sum suite.yaml cases.jsonl | sha256sum``)
    is what ``bets run`` records and ``check`` compares: run the real tools."""
    import subprocess

    from modelpin.load.suite_digest import folder_sha256

    pr = gate.pull_request(suite_base())
    folder = pr.root / "bets" / sid("std-a")
    listing = subprocess.run(["sha256sum", "suite.yaml", "cases.jsonl"], cwd=folder,
                             capture_output=True, check=True).stdout
    whole = subprocess.run(["sha256sum"], input=listing, capture_output=True,
                           check=True).stdout.split()[0].decode()
    assert folder_sha256(folder) == whole == digest_of(suite(sid("std-a")))
    assert folder_sha256(folder) != digest_of(weakened(suite(sid("std-a"))))


def _reshape(doc: dict[str, Any]) -> None:
    """v2: c-003 deleted, c-009 added, c-000 edited, the judge threshold lowered."""
    doc["suite"]["version"] = 2
    doc["suite"]["judge_threshold"] = 0.5
    doc["cases"][0]["golden"] = "a looser answer"
    doc["cases"].pop()
    doc["cases"].append({"id": "c-009", "messages": [{"role": "user", "content": "easy"}],
                         "golden": "easy"})


def test_every_suite_file_change_is_listed_by_check_and_plan(gate: Gate) -> None:
    """Every suite file added, removed or edited is listed (SPEC 2.1 rule 2), with what
    changed in it: suite.yaml fields, case ids removed/added/edited."""
    pr = gate.pull_request(suite_base())
    then(edit_suite("std-a", _reshape), remove_suite("spare"), add_suite("extra"))(pr)
    pr.commit()
    outcome = pr.check()
    assert outcome.exit_code == 0, outcome.explain()
    assert outcome.document is not None
    listed = {(c["file"], c["message"]) for c in outcome.document["summary"]["shown"]["changes"]}
    expected = {
        (suite_file("std-a"), "BETS suite std-a-suite: version: 1 -> 2"),
        (suite_file("std-a"), "BETS suite std-a-suite: judge_threshold: 0.8 -> 0.5"),
        (suite_file("std-a", "cases.jsonl"), "BETS suite std-a-suite: cases.jsonl: 4 -> 4 "
         "cases; removed c-003; added c-009; edited c-000"),
        ("bets/spare/suite.yaml", "BETS suite spare v3 removed"),
        ("bets/spare/cases.jsonl", "BETS suite spare v3 removed"),
        ("bets/extra/suite.yaml", "BETS suite extra added at version 1"),
        ("bets/extra/cases.jsonl", "BETS suite extra added with 4 cases"),
    }
    assert expected <= listed, sorted(listed)
    text = pr.check(fmt="text")
    assert f"changed: {suite_file('std-a', 'cases.jsonl')}: BETS suite std-a-suite: " \
        "cases.jsonl: 4 -> 4 cases; removed c-003" in text.stdout, text.explain()
    plan = pr.plan(fmt="markdown")
    assert "bets/spare/cases.jsonl" in plan.stdout, plan.explain()
    assert "removed c-003; added c-009" in plan.stdout, plan.explain()


def test_reordered_cases_are_listed_as_reordered(gate: Gate) -> None:
    pr = gate.pull_request(suite_base())
    edit_suite("std-a", _reverse)(pr)
    pr.commit()
    messages = [c["message"] for c in pr.check().document["summary"]["shown"]["changes"]]  # type: ignore[index]
    assert "BETS suite std-a-suite: cases.jsonl: 4 -> 4 cases; reordered" in messages


def test_effect_of_a_suite_edit_on_rollouts_in_flight(gate: Gate) -> None:
    """A suite edited under its version changes what the bound evidence of std-a proves:
    check lists the effect on std-a's next step (and refuses the edit, MP126)."""
    pr = gate.pull_request(bound_base())
    edit_suite("std-a", _drop_last)(pr)
    pr.commit()
    outcome = pr.check()
    assert outcome.find("MP126", suite_file("std-a")), outcome.explain()
    effects = outcome.document["summary"]["shown"]["effects"]  # type: ignore[index]
    assert any(e["tenant"] == "std-a" and "now blocked" in e["message"]
               and "other cases" in e["message"] for e in effects), effects


@pytest.mark.parametrize("bound", [False, True], ids=["older-run", "bound"])
def test_plan_and_explain_mark_evidence_of_older_runs(gate: Gate, bound: bool) -> None:
    """Evidence without suite_sha256 still counts (it ages out), but plan and explain say
    its suite content was not recorded; bound evidence carries no such mark."""
    from tests.gate.harness import NOW, run_cli

    pr = gate.pull_request(suite_base(bound=bound))
    advance_std_a(pr)
    pr.commit()
    plan = pr.plan(fmt="markdown")
    assert plan.exit_code == 0, plan.explain()
    marked = "std-a/primary: evidence records no suite\\_sha256" in plan.stdout
    assert marked is not bound, plan.explain()
    explain = run_cli(["explain", "std-a", "--repo", str(pr.root), "--rev", "pr", "--now", NOW,
                       "--no-cache"])
    assert explain.exit_code == 0, explain.explain()
    assert ("suite content not recorded" in explain.stdout) is not bound, explain.explain()
