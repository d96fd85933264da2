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


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ``$XDG_CACHE_HOME``: modelpin's caches live outside the
    repository (SPEC 2.1 rule 8), and tests must neither share nor touch the user's."""
    home = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home
