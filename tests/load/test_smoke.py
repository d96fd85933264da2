from pathlib import Path

from tests.fleetkit import NOW, FleetSpec

from modelpin.cli import main


def test_minimal_fleet_is_valid(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = FleetSpec().write(tmp_path)
    assert main(["validate", "--repo", str(root), "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "valid: 8 files, 1 tenants, 1 aliases: 0 error(s), 0 warning(s)" in out
