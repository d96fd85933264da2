"""Shared fixtures. Fleets are built per test with ``tests.fleetkit``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleetkit import FleetSpec


@pytest.fixture
def fleet_spec() -> FleetSpec:
    return FleetSpec()


@pytest.fixture
def write_fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    def _write(spec: FleetSpec) -> Path:
        return spec.write(tmp_path / "repo")

    return _write
