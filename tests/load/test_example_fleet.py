"""The shipped example fleet validates; no other test reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.load.corpus import NOW

from modelpin.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_shipped_example_fleet_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert (REPO_ROOT / "policies" / "rollout-groups.yaml").is_file()
    assert main(["validate", "--repo", str(REPO_ROOT)]) == 0
    assert "valid:" in capsys.readouterr().out


def test_tests_cannot_fall_back_to_the_example_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    # Without --repo, in a directory that holds no fleet, validate finds no config at all
    # (the conftest fixture hides the example fleet) rather than silently checking it.
    code = main(["validate", "--now", NOW, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {d["code"] for d in doc["diagnostics"]} == {"MP008"}
    assert doc["summary"]["tenants"] == 0
