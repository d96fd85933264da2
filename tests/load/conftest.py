"""Loader tests build their own fleets: the example fleet at the repository root is out
of reach (a test that forgets ``--repo`` fails instead of validating the example)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_example_fleet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("modelpin.cli.common.example_fleet_dir", lambda: None)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
