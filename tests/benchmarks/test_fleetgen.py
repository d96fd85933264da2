"""The benchmark fleet generator writes fleets that ``modelpin validate`` accepts.

The benchmarks themselves never run here; this keeps their input honest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import cases_check, fleetgen
from modelpin import attestation
from modelpin.cli import main


def test_generated_fleet_validates_and_covers_every_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleetgen.generate(50, seed=3)
    root = fleetgen.write(fleet, tmp_path / "fleet")

    code = main(["validate", "--repo", str(root), "--now", fleetgen.NOW, "--format", "json"])

    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["diagnostics"]
    assert out["diagnostics"] == []  # no warnings either
    assert out["summary"]["tenants"] == 50
    counts = fleet.stage_counts()
    assert all(counts[stage] > 0 for stage in fleetgen.STAGES), counts
    for group, spec in fleetgen.GROUPS.items():
        assert {(group, step) for step in spec["ladder"]} <= fleet.canary_steps(), group
    assert any(t.tools for t in fleet.tenants)
    in_flight = counts["shadow"] + counts["canary"] + counts["paused"]
    assert len(list((root / "evidence").rglob("*.json"))) == in_flight
    signed = list((root / "evidence").rglob("*.dsse.json"))
    assert len(signed) == in_flight  # every piece of evidence is a signed envelope
    public = fleetgen.signing.public_key_b64(fleetgen.evaluator_key(3).public_key())
    assert public in (root / "policies" / "evaluators.yaml").read_text(encoding="utf-8")
    assert public != fleetgen.signing.public_key_b64(fleetgen.evaluator_key(4).public_key())
    key = fleetgen.evaluator_key(3).public_key()
    evidence = attestation.verify(signed[0].read_bytes(),
                                  {fleetgen.signing.keyid_of(key): key}, 1)
    assert evidence.tenant == signed[0].parts[-3]
    again = fleetgen.generate(50, seed=3)  # deterministic for a seed
    assert [fleetgen.tenant_yaml(t) for t in again.tenants] == [
        fleetgen.tenant_yaml(t) for t in fleet.tenants
    ]


def _bench_pr(tmp_path: Path) -> tuple[fleetgen.Fleet, Path, str]:
    fleet = fleetgen.generate(40, seed=5)
    origin = fleetgen.write(fleet, tmp_path / "origin")
    fleetgen.commit_all(origin, "fleet")
    base, _tenant = cases_check.prepare(origin, fleet, tmp_path / "pr", changed=5)
    return fleet, tmp_path / "pr", base


def test_the_benchmark_pull_request_passes_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet, pr, base = _bench_pr(tmp_path)
    changed = fleetgen.git(pr, "diff", "--name-only", f"{base}..HEAD").splitlines()
    assert any(p.endswith(".dsse.json") for p in changed), changed  # new signed evidence
    assert 1 <= sum(p.startswith("tenants/") for p in changed) <= 5, changed

    code = main(["check", "--base", base, "--repo", str(pr), "--now", fleetgen.NOW])

    assert code == 0, capsys.readouterr().out
    assert cases_check.expect_accepted(code, pr, base) == 0


def test_the_check_case_fails_loudly_when_the_gate_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet, pr, base = _bench_pr(tmp_path)
    # the same change signed by a key the base does not trust: the gate must refuse it
    stranger = fleetgen.evaluator_key(fleet.seed + 1)
    for t in fleet.tenants:
        for rel, blob in fleetgen.signed_evidence(t, stranger):
            if (pr / rel).exists():
                (pr / rel).write_bytes(blob)
    fleetgen.commit_all(pr, "re-signed by an untrusted key", date=fleetgen.NOW)

    code = main(["check", "--base", base, "--repo", str(pr), "--now", fleetgen.NOW])

    assert code == 1, capsys.readouterr().out
    with pytest.raises(cases_check.CheckFailed, match="exited 1, expected 0"):
        cases_check.expect_accepted(code, pr, base)
