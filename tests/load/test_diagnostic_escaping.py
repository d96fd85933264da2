"""No file name or value can forge a GitHub annotation or drive the terminal.

A file name may hold any byte but ``/`` and NUL: newlines, ``::error ...``, ANSI escape
sequences, bidi overrides. Text output shows them as visible escapes on one line; the
github format escapes them per the workflow-command rules (``%0A``, ``%3A``, ...).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.load.corpus import BASE, NOW

from modelpin.cli import main
from modelpin.diagnostics import error, escape_controls, render_github, render_text

FORGED = "x\n::error file=evil.yaml,line=1::forged\r\n::add-mask::y"
ANSI = "\x1b[2J\x1b]0;pwned\x07\x9b31m"


def _commands(output: str) -> list[str]:
    """Lines GitHub's runner would take as workflow commands (it trims leading blanks)."""
    return [line for line in output.splitlines() if line.lstrip().startswith("::")]


def test_text_renderer_keeps_every_diagnostic_on_its_own_lines() -> None:
    d = error("MP009", f"message {FORGED}", f"tenants/{FORGED}.yaml", hint=f"hint {ANSI}")
    out = render_text([d], lambda _path: None)
    assert _commands(out) == []
    assert len(out.splitlines()) == 2  # the headline and the hint, nothing injected
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\r" not in out
    assert "tenants/x\\n::error file=evil.yaml" in out
    assert "\\x1b[2J" in out


def test_text_renderer_escapes_a_line_that_starts_with_a_command() -> None:
    d = error("MP009", "m", "::error file=a::b")
    out = render_text([d], lambda _path: None)
    assert _commands(out) == [] and out.startswith("\\x3a:error")


def test_excerpt_shows_control_characters_without_moving_the_caret() -> None:
    d = error("MP010", "m", "tenants/a.yaml", 1, 6)
    out = render_text([d], lambda _p: ["ab\x1bc\u202ed: 1"])
    excerpt, caret = out.splitlines()[1:3]
    assert "\x1b" not in excerpt and "\u202e" not in excerpt
    assert caret.index("^") == excerpt.index("d:")


def test_github_renderer_escapes_per_the_workflow_command_rules() -> None:
    d = error("MP009", f"message {FORGED} 100%", f"tenants/{FORGED},title=x.yaml", 3, 4,
              hint=ANSI)
    out = render_github([d])
    lines = out.splitlines()
    assert len(lines) == 1 and len(_commands(out)) == 1
    line = lines[0]
    assert line.startswith("::error file=tenants/x%0A%3A%3Aerror file=evil.yaml%2C")
    assert ",line=3,col=4,title=MP009 " in line
    props, _, data = line[len("::error "):].partition("::")
    # the runner splits properties on ",", then key and value on the first "="
    assert [p.split("=", 1)[0] for p in props.split(",")] == ["file", "line", "col", "title"]
    assert "%0D%0A::add-mask::y 100%25" in data
    assert "\x1b" not in line and "\\x1b[2J" in data


def test_escape_controls_covers_c0_c1_del_separators_and_bidi() -> None:
    for ch in ("\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e",
               "\u2066", "\ufeff"):
        assert ch not in escape_controls(f"a{ch}b")
    assert escape_controls("plain-name_1.yaml é") == "plain-name_1.yaml é"


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_a_hostile_file_name_in_the_tree(fmt: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    (root / "tenants" / f"{FORGED}.yaml").write_text("id: x\n")
    (root / "tenants" / f"{ANSI}.yml").write_text("id: x\n")
    code = main(["validate", "--repo", str(root), "--now", NOW, "--format", fmt])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    commands = _commands(out)
    if fmt == "text":
        assert commands == []
    else:
        assert len(commands) >= 2
        for command in commands:
            assert command.startswith("::error file=tenants/")
            props = command[len("::error "):].partition("::")[0]
            assert [p.split("=", 1)[0] for p in props.split(",")] == ["file", "line", "col",
                                                                      "title"]
