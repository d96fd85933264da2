"""``--format json`` and ``--format github`` of ``modelpin validate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.load.corpus import BASE, NOW, cases

from modelpin.cli import main

BY_NAME = {c.name: c for c in cases()}


def _run(root: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> tuple[int, str, str]:
    code = main(["validate", "--repo", str(root), "--now", NOW, "--format", fmt])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_format_is_one_machine_readable_document(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two faults in two files, plus a warning: all in one document, sorted by file.
    root = BY_NAME["unknown-group"].materialize(tmp_path / "repo")
    sunset = BY_NAME["sunset-warning"]
    for src in sunset.overlay_files():
        (root / src.relative_to(sunset.folder)).write_bytes(src.read_bytes())
    code, out, err = _run(root, capsys, "json")
    assert code == 1
    assert err == ""
    doc = json.loads(out)  # stdout is exactly one JSON document
    assert doc["summary"] == {"aliases": 5, "evidence": 2, "files": 21, "models": 6,
                              "tenants": 4, "valid": False}
    diags = doc["diagnostics"]
    assert [d["file"] for d in diags] == ["model_versions/gpt-5-2026-01-10.yaml",
                                          "tenants/beta-support.yaml"]
    warning, error = diags
    assert set(error) == {"file", "line", "col", "code", "severity", "message", "hint"}
    assert error == {"file": "tenants/beta-support.yaml", "line": 2, "col": 8,
                     "code": "MP020", "severity": "error",
                     "message": "unknown rollout group 'standrad'",
                     "hint": "did you mean 'standard'?"}
    assert warning["severity"] == "warning" and warning["code"] == "MP032"


def test_json_format_of_a_valid_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(BASE, capsys, "json")
    assert code == 0
    assert json.loads(out) == {
        "diagnostics": [],
        "summary": {"aliases": 5, "evidence": 2, "files": 21, "models": 6, "tenants": 4,
                    "valid": True},
    }


def test_github_format_escapes_properties_and_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The message carries ':' and ',' (escaped in properties only) and the title a code.
    root = BY_NAME["group-cycle"].materialize(tmp_path / "repo")
    code, out, err = _run(root, capsys, "github")
    assert code == 1
    assert out.splitlines() == [
        "::error file=policies/rollout-groups.yaml,line=27,col=12,"
        "title=MP026 rollout groups form a cycle::rollout groups form a cycle: conservative "
        "-> pioneers -> early -> standard -> conservative (hint: remove one 'after' edge of "
        "the cycle)"
    ]
    assert err.startswith("invalid:")  # the summary goes to stderr, annotations to stdout
