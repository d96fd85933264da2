"""One file's faults that a tree on disk cannot carry well: size, bombs, odd scalars."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.load.corpus import BASE, NOW

from modelpin.cli import main
from modelpin.load.document import MAX_FILE_BYTES, parse


def _codes(raw: bytes) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.col) for d in parse("t.yaml", raw).diagnostics]


def test_file_over_the_size_cap_is_mp001(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    path = root / "tenants" / "nimbus-dev.yaml"
    body = path.read_bytes()
    path.write_bytes(body + b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    code = main(["validate", "--repo", str(root), "--now", NOW, "--format", "json"])
    got = json.loads(capsys.readouterr().out)["diagnostics"]
    assert code == 1
    assert [(d["code"], d["file"], d["line"], d["col"]) for d in got] == [
        ("MP001", "tenants/nimbus-dev.yaml", 1, 1)
    ]
    assert f"{MAX_FILE_BYTES:,}" in got[0]["message"]


def test_file_at_the_size_cap_is_read() -> None:
    raw = b"id: x\n" + b"#" * (MAX_FILE_BYTES - 7) + b"\n"
    assert len(raw) == MAX_FILE_BYTES
    doc = parse("t.yaml", raw)
    assert doc.diagnostics == [] and doc.data == {"id": "x"}


def test_billion_laughs_is_refused_as_mp005() -> None:
    # Ten levels of ten-fold aliases: 10**10 nodes if expanded; refused after the budget.
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    doc = parse("t.yaml", ("\n".join(lines) + "\n").encode())
    assert doc.data is None
    [d] = doc.diagnostics
    assert (d.code, d.line, d.col) == ("MP005", 6, 1)  # a5 is where the budget runs out
    assert "'a5'" in d.message


def test_shared_aliases_within_the_budget_are_fine() -> None:
    doc = parse("t.yaml", b"base: &b {kind: chat}\nx: *b\ny: *b\n")
    assert doc.diagnostics == []
    assert doc.data == {"base": {"kind": "chat"}, "x": {"kind": "chat"}, "y": {"kind": "chat"}}


def test_deep_nesting_is_refused() -> None:
    raw = ("a: " + "[" * 100 + "]" * 100 + "\n").encode()
    [(code, line, _col)] = _codes(raw)
    assert (code, line) == ("MP012", 1)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"released: 2026-02-30\n", ("MP012", 1, 11)),
    (b"at: 2026-13-01T00:00:00Z\n", ("MP012", 1, 5)),
    (b"n: 0x_\n", ("MP012", 1, 4)),
    (b"a: 1\n  b: 2\n", ("MP003", 2, 4)),
    (b"\xef\xbb\xbfid: x\n\xff\n", ("MP002", 2, 1)),
    (b"id: caf\xc3\xa9\nx: \xc3\x28\n", ("MP002", 2, 4)),
])
def test_bad_bytes_and_scalars_become_diagnostics(raw: bytes,
                                                  expected: tuple[str, int, int]) -> None:
    assert _codes(raw) == [expected]


def test_yaml_11_booleans_never_become_keys() -> None:
    doc = parse("t.yaml", b"no: 1\non: 2\nyes: true\n")
    assert doc.data == {"no": 1, "on": 2, "yes": True}


def test_position_of_missing_path_falls_back_to_nearest_parent() -> None:
    doc = parse("t.yaml", b"a:\n  b:\n    c: 1\n")
    assert doc.position(("a", "b", "c")) == (3, 8)
    assert doc.position(("a", "b", "c"), key=True) == (3, 5)
    assert doc.position(("a", "b", "zzz")) == (3, 5)
    assert doc.position(("a", "b", 0)) == (3, 5)


def test_control_characters_are_pointed_at_and_not_echoed() -> None:
    from modelpin.diagnostics import render_text

    doc = parse("t.yaml", b"id: x\r\nname: a\x07b\n")
    [d] = doc.diagnostics
    assert (d.code, d.line, d.col) == ("MP003", 2, 8)
    text = render_text(doc.diagnostics, lambda _: doc.lines)
    assert "\x07" not in text and "a\ufffdb" in text
