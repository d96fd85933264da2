from pathlib import Path

from modelpin.cli import main
from tests.fleetkit import NOW, FleetSpec


def test_minimal_fleet_is_valid(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = FleetSpec().write(tmp_path)
    assert main(["validate", "--repo", str(root), "--now", NOW]) == 0
    assert "valid: 8 files, 1 tenants, 1 aliases: 0 error(s), 0 warning(s)" in capsys.readouterr().out
