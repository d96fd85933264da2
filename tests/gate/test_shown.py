"""Every change is shown (SPEC 2.1 rule 2): check and plan list rule, evidence and tenant
setting changes, with their effect on each rollout in flight."""

from __future__ import annotations

import json

from tests.fleetkit import evidence
from tests.gate.harness import EVIDENCE_AT, Gate, PullRequest, Row


def _ladder(pr: PullRequest) -> None:
    pr.spec.groups["standard"]["ladder"] = [5, 100]
    pr.write()


def _soak(pr: PullRequest) -> None:
    pr.spec.groups["standard"]["soak"] = "1h"
    pr.write()


def _settings_and_evidence(pr: PullRequest) -> None:
    pr.tenant("std-p")["workload"] = "tool-agent"
    pr.spec.evidence = [e for e in pr.spec.evidence if e["tenant"] != "std-s"]
    pr.spec.evidence.append(evidence("std-s", passed=590, run_at=EVIDENCE_AT))
    pr.write()


def test_plan_lists_a_ladder_change_and_the_next_step_it_makes(gate: Gate) -> None:
    pr, outcome = gate.run(Row("ladder", _ladder))
    assert outcome.exit_code == 0, outcome.explain()
    shown = outcome.document["summary"]["shown"]  # type: ignore[index]
    assert {"file": "policies/rollout-groups.yaml",
            "message": "groups.standard.ladder: [5, 25, 50, 100] -> [5, 100]"} \
        in shown["changes"]
    effects = {e["tenant"]: e["message"] for e in shown["effects"]}
    assert effects["std-a"] == ("std-a/primary: next step becomes canary 100 of "
                                "gpt-5-2026-03-14, was canary 25 of gpt-5-2026-03-14")
    plan = pr.plan(fmt="json")
    doc = json.loads(plan.stdout)
    assert doc["rule_changes"]["effects"] == shown["effects"]
    markdown = pr.plan(fmt="markdown").stdout
    assert "### Effect on rollouts in flight" in markdown
    assert "std-a/primary: next step becomes canary 100" in markdown


def test_a_lowered_soak_is_shown_with_what_it_unblocks(gate: Gate) -> None:
    pr, outcome = gate.run(Row("soak", _soak))
    assert outcome.exit_code == 0, outcome.explain()
    effects = {e["tenant"]: e["message"]
               for e in outcome.document["summary"]["shown"]["effects"]}  # type: ignore[index]
    assert effects["std-young"].startswith(
        "std-young/primary: advance to canary 25 of gpt-5-2026-03-14 now allowed, was "
        "blocked: soak 4h of 24h")
    text = pr.check(fmt="text")
    assert "changed: policies/rollout-groups.yaml: groups.standard.soak: 1d -> 1h" in text.stdout
    assert "effect: std-young/primary: advance" in text.stdout


def test_tenant_settings_and_evidence_changes_are_listed(gate: Gate) -> None:
    _, outcome = gate.run(Row("settings", _settings_and_evidence))
    messages = [c["message"] for c in
                outcome.document["summary"]["shown"]["changes"]]  # type: ignore[index]
    assert "tenant std-p: workload: chat -> tool-agent" in messages
    assert any(m.startswith("evidence for std-s/primary -> gpt-5-2026-03-14 changed")
               for m in messages), messages


def test_evidence_changed_alone_shows_its_effect_on_the_rollout(gate: Gate) -> None:
    """A trusted evaluator's re-run for std-weak (500/600 -> 600/600), and nothing else:
    the listing says the evidence changed and what it unblocks (SPEC 2.1 rule 2)."""
    from tests.gate.test_trust import EVAL, ev_file, sign_raw, signed_base

    pr = gate.pull_request(signed_base())
    rerun = evidence("std-weak", run_at="2026-03-25T09:00:00Z")
    pr.path(ev_file("std-weak")).write_bytes(sign_raw(rerun, EVAL))
    pr.commit()
    outcome = pr.check()
    assert outcome.exit_code == 0, outcome.explain()
    effects = {e["tenant"]: e["message"]
               for e in outcome.document["summary"]["shown"]["effects"]}  # type: ignore[index]
    assert effects["std-weak"].startswith(
        "std-weak/primary: advance to canary 25 of gpt-5-2026-03-14 now allowed, was "
        "blocked: evidence pass rate"), effects
    assert set(effects) == {"std-weak"}, effects
