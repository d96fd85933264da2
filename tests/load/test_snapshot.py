"""The fleet snapshot is reused only while nothing it was built from has changed."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.fleetkit import NOW, FleetSpec, tenant

from modelpin.cli import main
from modelpin.load.cache import cache_root
from modelpin.load.snapshot import SNAPSHOT_FILE, load_cached
from modelpin.load.tree import DirectoryTree

WHEN = datetime.fromisoformat(NOW.replace("Z", "+00:00"))


def _age_files(root: Path, seconds: int = 60) -> None:
    """Backdate every file, as a checkout that is not being edited right now is."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def _load(root: Path, now: datetime = WHEN):  # type: ignore[no-untyped-def]
    return load_cached(DirectoryTree(root), now, root / ".cache", lambda message: None)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1"))
    spec.add(tenant("t2", group="early"))
    root = spec.write(tmp_path / "repo")
    _age_files(root)
    return root


def test_unchanged_tree_is_served_from_the_snapshot(root: Path) -> None:
    first = _load(root)
    assert not first.hit and first.result.fleet is not None
    second = _load(root)
    assert second.hit
    assert second.result.fleet == first.result.fleet
    assert second.blobs == first.blobs


def test_an_edited_file_is_noticed(root: Path) -> None:
    _load(root)
    path = root / "tenants" / "t2.yaml"
    path.write_text(path.read_text().replace("group: early", "group: standard"))
    _age_files(root, 30)
    again = _load(root)
    assert not again.hit
    assert again.result.fleet is not None
    assert again.result.fleet.tenants["t2"].group == "standard"


def test_a_hit_is_judged_again_at_its_own_now(root: Path) -> None:
    """The snapshot saves parsing, never a judgement: a model that retires between two
    runs is reported by the second although no file changed."""
    model = root / "model_versions" / "gpt-5-2026-01-10.yaml"
    model.write_text(model.read_text() + "retires_on: 2026-04-01\n")
    _age_files(root)
    first = _load(root)
    assert not any(d.code == "MP030" for d in first.result.diagnostics)
    later = _load(root, WHEN + timedelta(days=30))
    assert later.hit
    assert any(d.code == "MP030" for d in later.result.diagnostics)


def test_a_racy_file_prevents_the_snapshot(root: Path) -> None:
    (root / "tenants" / "t1.yaml").touch()  # modified "now": its stat cannot be trusted
    _load(root)
    assert not (root / ".cache" / SNAPSHOT_FILE).exists()
    assert not _load(root).hit


def test_a_corrupt_snapshot_is_ignored(root: Path) -> None:
    _load(root)
    (root / ".cache" / SNAPSHOT_FILE).write_bytes(b"\x80\x05garbage")
    again = _load(root)
    assert not again.hit and again.result.fleet is not None


def test_explain_answers_from_the_edited_tree(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "t2", "--repo", str(root), "--now", NOW]) == 0
    assert "group early" in capsys.readouterr().out
    assert (cache_root(root) / SNAPSHOT_FILE).exists()
    assert not (root / ".modelpin").exists()
    path = root / "tenants" / "t2.yaml"
    path.write_text(path.read_text().replace("group: early", "group: standard"))
    _age_files(root, 30)
    assert main(["explain", "t2", "--repo", str(root), "--now", NOW]) == 0
    assert "group standard" in capsys.readouterr().out


def test_a_file_edited_while_the_fleet_loads_is_not_hidden(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature is taken before the files are read: an edit that lands during the
    load (after t2 was read) must make the next run load again, not trust the snapshot."""
    import modelpin.load.snapshot as snapshot

    real_load = snapshot.load_fleet
    path = root / "tenants" / "t2.yaml"

    def load_then_edit(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_load(*args, **kwargs)
        path.write_text(path.read_text().replace("group: early", "group: standard"))
        past = time.time() - 30
        os.utime(path, (past, past))
        return result

    monkeypatch.setattr(snapshot, "load_fleet", load_then_edit)
    first = _load(root)
    assert first.result.fleet is not None
    assert first.result.fleet.tenants["t2"].group == "early"  # read before the edit
    monkeypatch.setattr(snapshot, "load_fleet", real_load)
    again = _load(root)
    assert not again.hit
    assert again.result.fleet is not None
    assert again.result.fleet.tenants["t2"].group == "standard"
