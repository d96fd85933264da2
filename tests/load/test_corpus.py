"""Acceptance tests: the valid base fleet, and every bad tree of the corpus, through the CLI.

Each negative case must make ``modelpin validate`` exit 1 (0 for warning-only cases)
with exactly the diagnostics its ``expected.yaml`` lists: the right code, file, line and
column, and nothing else (a fault reported once, not echoed by every reference to it).
The rendered text and GitHub outputs are pinned with syrupy snapshots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.load.corpus import BASE, NOW, Case, cases

from modelpin.cli import main

CASES = cases()


def _validate(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    code = main(["validate", "--repo", str(root), "--now", NOW, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_base_fleet_is_valid_without_any_diagnostic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(capsys, BASE, "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["diagnostics"] == []
    assert doc["summary"]["valid"] is True
    assert doc["summary"]["tenants"] == 4


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    codes = {d["code"] for case in CASES for d in case.diagnostics}
    assert len(codes) >= 25, sorted(codes)


def test_every_case_changes_the_base(tmp_path: Path) -> None:
    for case in CASES:
        assert case.overlay_files() or case.expected.get("delete"), case.name
        for src in case.overlay_files():
            rel = src.relative_to(case.folder)
            base = BASE / rel
            assert not base.is_file() or base.read_bytes() != src.read_bytes(), (case.name, rel)


def _key(d: dict[str, Any]) -> tuple[str, str, int, int, str]:
    return (d["code"], d["file"], d["line"], d["col"], d.get("severity", "error"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_negative_case(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = case.materialize(tmp_path / "repo")
    code, out = _validate(capsys, root, "--format", "json")
    got = json.loads(out)["diagnostics"]
    assert sorted(map(_key, got)) == sorted(map(_key, case.diagnostics)), out
    assert code == case.exit
    for want in case.diagnostics:
        match = next(d for d in got if _key(d) == _key(want))
        assert want.get("message", "") in match["message"]
        assert want.get("hint", "") in (match["hint"] or "")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_negative_case_rendering(case: Case, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], snapshot: Any) -> None:
    root = case.materialize(tmp_path / "repo")
    _, text = _validate(capsys, root)
    _, github = _validate(capsys, root, "--format", "github")
    assert str(root) not in text + github  # paths are repo-relative, snapshots portable
    assert {"text": text, "github": github} == snapshot
