"""The benchmark fleet generator writes fleets that ``modelpin validate`` accepts.

The benchmarks themselves never run here; this keeps their input honest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import fleetgen
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
    again = fleetgen.generate(50, seed=3)  # deterministic for a seed
    assert [fleetgen.tenant_yaml(t) for t in again.tenants] == [
        fleetgen.tenant_yaml(t) for t in fleet.tenants
    ]
