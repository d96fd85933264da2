"""``modelpin plan --base REF``: the PR comment, snapshot-tested as rendered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from modelpin.cli import main
from tests.cli.rollout_repo import repo_with
from tests.fleetkit import NOW, FleetSpec, tenant
from tests.rollout.builders import V, canary, paused, scenario, shadow

SINCE = "2026-03-24T00:00:00Z"
FRESH = "2026-03-25T11:00:00Z"


def _pr() -> tuple[FleetSpec, FleetSpec]:
    """An advance, a skipped step, a pause, a new shadow without evidence, a sunset."""
    base, head = scenario(canary(5, SINCE)), scenario(canary(25, FRESH))
    for spec, t2, t3, t4 in (
        (base, canary(5, SINCE), canary(25, SINCE), None),
        (head, canary(50, FRESH), paused(25, FRESH), shadow(FRESH)),
    ):
        spec.add(tenant("t2", rollout=t2))
        spec.add(tenant("t3", rollout=t3))
        spec.add(tenant("t4", rollout=t4))
        spec.add(tenant("e2", group="early", pin=V))
        spec.models["gpt-5-2026-01-10"]["retires_on"] = "2026-05-01"
    return base, head


def test_plan_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       snapshot: SnapshotAssertion) -> None:
    repo = repo_with(tmp_path, *_pr())
    assert main(["plan", "--repo", str(repo), "--base", "HEAD~1", "--now", NOW]) == 0
    assert capsys.readouterr().out == snapshot


def test_plan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repo_with(tmp_path, *_pr())
    assert main(["plan", "--repo", str(repo), "--base", "HEAD~1", "--format", "json",
                 "--now", NOW]) == 0
    doc = json.loads(capsys.readouterr().out)

    assert doc["allowed"] is False
    verdicts = {c["tenant"]: (c["transition"], c["allowed"]) for c in doc["changes"]}
    assert verdicts == {"t1": ("advance", True), "t2": (None, False),
                        "t3": ("pause", True), "t4": ("start-shadow", True)}
    [t2] = [c for c in doc["changes"] if c["tenant"] == "t2"]
    assert [r["code"] for r in t2["reasons"]] == ["MP101"]
    assert t2["reasons"][0]["at"].startswith("tenants/t2.yaml:")
    assert doc["blast_radius"] == [{"group": "standard", "tenants": ["t1", "t2", "t3", "t4"],
                                    "aliases": 4, "group_size": 4}]
    codes = [(w["code"], w["tenants"]) for w in doc["warnings"]]
    assert ("MP120", ["t4"]) in codes
    assert ("MP032", ["t1", "t2", "t3", "t4"]) in codes


def test_plan_long_lists_collapse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = scenario(None), scenario(None)
    for i in range(25):
        base.add(tenant(f"n{i:02d}"))
        head.add(tenant(f"n{i:02d}", rollout=shadow(FRESH)))
    repo = repo_with(tmp_path, base, head)
    assert main(["plan", "--repo", str(repo), "--base", "HEAD~1", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "<details>\n<summary>25 changes</summary>" in out
    assert "| standard | 25 of 26 | 25 |" in out


def test_plan_without_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repo_with(tmp_path, scenario(None), scenario(None))
    assert main(["plan", "--repo", str(repo), "--base", "HEAD~1", "--now", NOW]) == 0
    assert "No tenant or alias changes." in capsys.readouterr().out
