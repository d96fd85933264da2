"""``modelpin explain TENANT [ALIAS]``: state, evidence, next transitions with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelpin.cli import main
from tests.fleetkit import evidence, tenant
from tests.rollout.builders import V, canary, scenario

NOW = "2026-03-25T12:00:00Z"


def _repo(tmp_path: Path) -> Path:
    spec = scenario(canary(5, "2026-03-24T05:00:00Z", approvals=[
        {"percent": 5, "by": "jane@acme.example", "at": "2026-03-24T04:00:00Z"}]),
        group="conservative")
    spec.add(tenant("s1", pin=V))
    spec.evidence[:] = [evidence("t1", cases=510, passed=480, run_at="2026-03-24T00:00:00Z")]
    return spec.write(tmp_path / "repo")


def test_explain_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path)
    assert main(["explain", "t1", "--repo", str(repo), "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "tenant t1 (group conservative) at 2026-03-25T12:00:00Z" in out
    assert "primary: canary 5 of gpt-5-2026-03-14" in out
    assert "since 2026-03-24T05:00:00Z (31h ago)" in out
    assert "evidence: 480/510 passed (0.941)" in out
    assert "does not pass" in out
    assert "[blocked] advance -> canary 25 of gpt-5-2026-03-14" in out
    assert "MP106 soak 31h of 72h" in out
    assert "MP107 evidence pass rate 0.941 < 0.98" in out
    assert "MP109 group conservative needs two approvals by different people for 25%" in out
    assert "[allowed] pause -> paused 5 of gpt-5-2026-03-14" in out
    assert "[allowed] rollback -> rolled-back gpt-5-2026-03-14" in out


def test_explain_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path)
    assert main(["explain", "t1", "primary", "--repo", str(repo), "--now", NOW,
                 "--format", "json"]) == 0
    [alias] = json.loads(capsys.readouterr().out)["aliases"]
    assert alias["state"] == {"stage": "canary", "pin": "gpt-5-2026-01-10", "candidate": V,
                              "percent": 5, "since": "2026-03-24T05:00:00Z",
                              "clock_from": "2026-03-24T05:00:00Z"}
    assert alias["evidence"]["passes"] is False
    allowed = {t["kind"]: t["allowed"] for t in alias["transitions"]}
    assert allowed == {"advance": False, "pause": True, "rollback": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "t11"], "unknown tenant 't11'"),
        (["explain", "t1", "nope"], "tenant t1 has no alias 'nope'"),
    ],
)
def test_unknown_names_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    repo = _repo(tmp_path)
    assert main([*args, "--repo", str(repo), "--now", NOW]) == 2
    assert message in capsys.readouterr().err
