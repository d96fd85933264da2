"""``modelpin bets run`` against the local provider: each misbehaviour is caught as its
failure kind, a clean candidate passes, a self-judging judge is refused, evidence is
signed and verifiable, the report shows expected vs got."""

from __future__ import annotations

import json
import time

import pytest

from modelpin import attestation, signing
from tests.bets.conftest import Bets
from tests.bets.fleet import JUDGE, PIN, write_fleet
from tests.fleetkit import suite_digest

CLEAN = "gpt-5-2026-03-14"


def _kinds(bets: Bets, tenant: str) -> set[str]:
    return {f["kind"] for f in bets.target(tenant)["failures"]}


def test_a_clean_candidate_passes_every_case(bets: Bets) -> None:
    code, out, err = bets.run("--all", "--candidate", CLEAN, "--key", str(bets.key_file))
    assert code == 0, err
    for tenant in ("t-extract", "t-tools", "t-labels"):
        target = bets.target(tenant)
        assert (target["cases"], target["passed"], target["failures"]) == (4, 4, [])
    assert "3 evidence file(s)" in out


@pytest.mark.parametrize(("candidate", "tenant", "kind"), [
    ("gpt-5-fenced-2026-03-15", "t-extract", "format"),
    ("gpt-5-renamed-2026-03-16", "t-tools", "tool-call-schema"),
    ("gpt-5-shift-2026-03-18", "t-labels", "judge-below-threshold"),
], ids=["fenced-json", "renamed-argument", "shifted-labels"])
def test_a_misbehaving_candidate_fails_as_its_kind(bets: Bets, candidate: str, tenant: str,
                                                   kind: str) -> None:
    code, _out, err = bets.run("--all", "--candidate", candidate, "--unsigned")
    assert code == 0, err
    target = bets.target(tenant)
    assert target["passed"] == 0
    assert {f["kind"] for f in target["failures"]} == {kind}
    others = [t for t in bets.results()["targets"] if t["tenant"] != tenant]
    assert all(t["passed"] == t["cases"] == 4 for t in others)


def test_a_refusing_candidate_fails_every_case_as_refusal(bets: Bets) -> None:
    code, _out, err = bets.run("--all", "--candidate", "gpt-5-refuser-2026-03-17",
                               "--unsigned")
    assert code == 0, err
    for tenant in ("t-extract", "t-tools", "t-labels"):
        assert _kinds(bets, tenant) == {"refusal"}
        assert bets.target(tenant)["passed"] == 0


def test_fenced_failure_detail_and_report_show_expected_and_got(bets: Bets) -> None:
    bets.run("--tenant", "t-extract", "--candidate", "gpt-5-fenced-2026-03-15", "--unsigned")
    failure = bets.target("t-extract")["failures"][0]
    assert failure["detail"].startswith("answer is not JSON (starts with '```json")
    assert failure["pin"] == "passed"
    report = (bets.root / "out" / "report.md").read_text()
    assert "**format** (4)" in report
    assert "| x-000 | answer is not JSON" in report
    assert "```json" in report


def test_the_judge_may_not_be_the_candidate(bets: Bets) -> None:
    code, _out, err = bets.run("--all", "--candidate", JUDGE, "--unsigned")
    assert code == 1
    assert "refusing to run" in err and "is the candidate" in err
    assert bets.server.stats()["requests"] == 0
    assert not (bets.root / "out").exists()


def test_the_judge_may_not_be_the_pin(bets: Bets) -> None:
    write_fleet(bets.root, bets.server.base_url, judge=PIN)
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1
    assert "is the pin" in err
    assert bets.server.stats()["requests"] == 0


def test_evidence_is_a_signed_envelope_the_gate_verifies(bets: Bets) -> None:
    code, _out, err = bets.run("--tenant", "t-tools", "--candidate",
                               "gpt-5-renamed-2026-03-16", "--key", str(bets.key_file),
                               "--now", "2026-03-20T10:00:00Z")
    assert code == 0, err
    path = bets.root / "out/evidence/t-tools/primary/gpt-5-renamed-2026-03-16.dsse.json"
    trusted = {signing.keyid_of(bets.public_key): bets.public_key}
    evidence = attestation.verify(path.read_bytes(), trusted, 1)
    assert (evidence.tenant, evidence.alias, evidence.baseline, evidence.candidate) == (
        "t-tools", "primary", PIN, "gpt-5-renamed-2026-03-16")
    assert (evidence.suite.id, evidence.suite.version, evidence.judge) == ("tools", 3, JUDGE)
    assert (evidence.cases, evidence.passed) == (4, 0)
    assert evidence.run_at.isoformat() == "2026-03-20T10:00:00+00:00"
    assert [f.case for f in evidence.failures] == ["t-000", "t-001", "t-002", "t-003"]
    assert "clauseId" in evidence.failures[0].detail or "clause_id" in \
        evidence.failures[0].detail
    # Bound to the suite's bytes as run: `sha256sum suite.yaml cases.jsonl | sha256sum`.
    assert evidence.suite_sha256 == suite_digest(
        {name: (bets.root / "bets/tools" / name).read_bytes()
         for name in ("suite.yaml", "cases.jsonl")})
    assert bets.target("t-tools")["suite_sha256"] == evidence.suite_sha256


def test_a_suite_changed_during_the_run_writes_no_evidence(bets: Bets) -> None:
    """The digest is taken when the suite is loaded; if the files differ once the run is
    over, the evidence could not say which cases it ran: refused, nothing written."""
    from modelpin.bets.plan import Target
    from modelpin.cli.bets_command import _same_suites
    from modelpin.cli.common import CommandError
    from modelpin.model.bets import Suite

    folder = bets.root / "bets/tools"
    files = {name: (folder / name).read_bytes() for name in ("suite.yaml", "cases.jsonl")}
    suite = Suite.model_validate({"id": "tools", "version": 3, "workload": "tool-agent",
                                  "judge": JUDGE, "judge_threshold": 0.8})
    target = Target("t-tools", "primary", PIN, CLEAN, suite, suite_digest(files))
    _same_suites(bets.root, [target])  # unchanged: passes
    (folder / "cases.jsonl").write_bytes(files["cases.jsonl"].splitlines(keepends=True)[0])
    with pytest.raises(CommandError, match="changed during the run"):
        _same_suites(bets.root, [target])


def test_retries_honour_retry_after_in_seconds_and_as_an_http_date(bets: Bets) -> None:
    start = time.monotonic()
    code, _out, err = bets.run("--tenant", "t-labels", "--candidate", "gpt-5-flaky-2026-03-19",
                              "--unsigned")
    elapsed = time.monotonic() - start
    assert code == 0, err
    assert bets.target("t-labels")["passed"] == 4
    stats = bets.server.stats()
    assert stats["statuses"]["429"] == 4 and stats["statuses"]["503"] == 4
    # Each flaky request waited "Retry-After: 1", then an HTTP-date about a second away.
    assert elapsed >= 1.0
    calls = bets.results()["calls"]["providers"]["fake"]
    assert calls["retries"] == 8


def test_an_unretried_error_is_a_failure_of_kind_error(bets: Bets) -> None:
    bets.server.personas.pop("gpt-5-2026-03-14")  # the provider answers 404 model_not_found
    code, _out, _err = bets.run("--tenant", "t-tools", "--candidate", CLEAN, "--unsigned")
    assert code == 0
    failures = bets.target("t-tools")["failures"]
    assert {f["kind"] for f in failures} == {"error"}
    assert "HTTP 404 model_not_found" in failures[0]["detail"]
    assert bets.server.stats()["statuses"]["404"] == 4  # a 404 is not retried


def test_a_rerun_pays_nothing_twice(bets: Bets) -> None:
    bets.run("--all", "--candidate", CLEAN, "--unsigned", "--now", "2026-03-20T10:00:00Z")
    first = bets.server.stats()["answered"]
    evidence = bets.root / "out/evidence/t-extract/primary/gpt-5-2026-03-14.json"
    before = evidence.read_bytes()
    code, out, _err = bets.run("--all", "--candidate", CLEAN, "--unsigned",
                               "--now", "2026-03-20T10:00:00Z")
    assert code == 0
    assert bets.server.stats()["answered"] == first
    assert "calls: 0 made" in out
    assert evidence.read_bytes() == before


def test_suite_requirement_by_failure_kind_fails_the_run(bets: Bets) -> None:
    suite = bets.root / "bets/tools/suite.yaml"
    suite.write_text(suite.read_text() + "required_pass_rate: {tool-call-schema: 1.0}\n")
    code, out, _err = bets.run("--tenant", "t-tools", "--candidate",
                               "gpt-5-renamed-2026-03-16", "--unsigned")
    assert code == 1
    assert "unmet: tool-call-schema: 0.000 < 1" in out
    assert bets.target("t-tools")["unmet_requirements"] == ["tool-call-schema: 0.000 < 1"]


def test_results_file_records_calls_and_skips(bets: Bets) -> None:
    tenant = bets.root / "tenants/t-labels.yaml"
    tenant.write_text(tenant.read_text().replace("version: 3", "version: 2"))
    code, _out, err = bets.run("--all", "--candidate", CLEAN, "--unsigned")
    assert code == 1  # one target could not run
    assert "t-labels/primary not run: suite 'labels' is at version 3, the tenant names 2" in err
    document = bets.results()
    assert [s["tenant"] for s in document["skipped"]] == ["t-labels"]
    assert document["calls"]["paid"] == json.loads(
        json.dumps(bets.server.stats()))["answered"]
