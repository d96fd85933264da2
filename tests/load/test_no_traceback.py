"""No input makes the loader raise: mutated config files and random bytes only ever
yield diagnostics, each with a real position in a file of the tree.

Mutations are line edits a hurried user makes (delete, duplicate, swap, re-indent,
insert junk) plus raw byte damage. ``modelpin validate`` must exit 0 or 1, never 2 and
never with a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.load.corpus import BASE, NOW

from modelpin.cli import main
from modelpin.diagnostics import render_github, render_text
from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree

FILES = sorted(
    str(p.relative_to(BASE)) for p in BASE.rglob("*") if p.is_file() and p.suffix in
    (".yaml", ".json") and not p.name.startswith("signals")
)
JUNK = st.sampled_from(["", " ", "\t", ":", "- ", "&a ", "*a", "!!str ", "{", "}", "[", "]",
                        ",", "'", '"', "#", "? ", "|", ">", "---", "\\", "%", "@", "é",
                        "\x00", "\r", "\x85", "\u2028", "\ufeff", "0x", "2026-02-30", "~",
                        "<<: *a", "null", "yes", "1e999"])
SCALARS = st.sampled_from(["2026-02-30", "2026-13-01T00:00:00Z", "0x_", "0b", "1_0", ".nan",
                           "-.inf", "1e999", "~", "[", "{a: 1}", "*x", "&x y", "!!binary x",
                           "-", "? x", "0o9", "12:61:00", "'unterminated", "2026-03-20T25:00:00Z",
                           "99999999999999999999999", "true", "Off", "", "[1, 2]", "{}"])
NOW_DT = datetime(2026, 3, 25, 12, tzinfo=UTC)


@st.composite
def mutated_file(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(FILES))
    lines = (BASE / path).read_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent",
                                   "insert", "replace-char", "value"]))
        if not lines:
            lines = [draw(JUNK) + "\n"]
            continue
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "value":
            key, sep, _ = lines[i].partition(": ")
            lines[i] = f"{key}{sep or ': '}{draw(SCALARS)}\n"
        else:
            at = draw(st.integers(0, len(lines[i])))
            cut = at + (1 if op == "replace-char" else 0)
            lines[i] = lines[i][:at] + draw(JUNK) + lines[i][cut:]
    raw = "".join(lines).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()) and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return path, raw


RANDOM = st.tuples(st.sampled_from(FILES), st.binary(max_size=200))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "repo"
    shutil.copytree(BASE, root)
    return root


@contextlib.contextmanager
def _replaced(root: Path, path: str, raw: bytes) -> Iterator[None]:
    target = root / path
    original = target.read_bytes()
    target.write_bytes(raw)
    try:
        yield
    finally:
        target.write_bytes(original)


def _check_loader(root: Path, path: str, raw: bytes) -> None:
    result = load_fleet(DirectoryTree(root), NOW_DT)  # must not raise
    files = set(DirectoryTree(root).files())
    lines = raw.decode("utf-8", errors="replace").splitlines()
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1, d
        assert d.file in files, d
        if d.file == path and d.code != "MP001":
            assert d.line <= len(lines) + 1, (d, len(lines))
    render_text(result.diagnostics, result.source_lines)
    render_github(result.diagnostics)
    assert (result.fleet is None) == any(d.severity == "error" for d in result.diagnostics)


def _check_cli(root: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["validate", "--repo", str(root), "--now", NOW, "--format", "json"])
    assert code in (0, 1)
    doc = json.loads(out.getvalue())
    errors = [d for d in doc["diagnostics"] if d["severity"] == "error"]
    assert (code == 1) == bool(errors)
    files = set(DirectoryTree(root).files())
    for d in errors:
        assert d["line"] >= 1 and d["col"] >= 1 and d["file"] in files, d


SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(case=mutated_file())
def test_mutated_yaml_never_raises(tree: Path, case: tuple[str, bytes]) -> None:
    path, raw = case
    with _replaced(tree, path, raw):
        _check_loader(tree, path, raw)
        _check_cli(tree)


@SETTINGS
@given(case=RANDOM)
def test_random_bytes_never_raise(tree: Path, case: tuple[str, bytes]) -> None:
    path, raw = case
    with _replaced(tree, path, raw):
        _check_loader(tree, path, raw)
        _check_cli(tree)


@st.composite
def odd_value(draw: st.DrawFn) -> tuple[str, bytes]:
    """One value of a valid file replaced by a scalar that YAML resolves oddly."""
    path = draw(st.sampled_from(FILES))
    lines = (BASE / path).read_text().splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    key, sep, _ = lines[i].rstrip("\n").partition(": ")
    lines[i] = f"{key}{sep or ': '}{draw(SCALARS)}\n"
    return path, "".join(lines).encode()


@SETTINGS
@given(case=odd_value())
def test_odd_scalars_never_raise(tree: Path, case: tuple[str, bytes]) -> None:
    path, raw = case
    with _replaced(tree, path, raw):
        _check_loader(tree, path, raw)
        _check_cli(tree)
