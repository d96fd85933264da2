"""Diagnostics as value objects, collected across a whole run, rendered once.

A ``Diagnostic`` names a file, a 1-based line and column, a stable code and a hint.
Codes never change meaning once released (users grep CI logs and suppress by code):
``MP0xx`` loading and validation, ``MP1xx`` rollout transitions, ``MP2xx`` artifact.
Renderers: ``text`` (source line and caret), ``github`` (Actions workflow commands),
``json`` (one object per run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

CODES: Mapping[str, str] = {
    "MP001": "file too large",
    "MP002": "file is not UTF-8",
    "MP003": "YAML or JSON syntax error",
    "MP004": "duplicate key",
    "MP005": "anchors and aliases expand too far",
    "MP006": "document is not a mapping",
    "MP007": "unexpected file in the config tree",
    "MP008": "required file missing",
    "MP009": "not a regular file",
    "MP010": "unknown key",
    "MP011": "missing key",
    "MP012": "invalid value",
    "MP013": "id does not match the file name",
    "MP014": "floating model version",
    "MP020": "unknown rollout group",
    "MP021": "unknown workload",
    "MP022": "unknown model version",
    "MP023": "alias kind differs from the model version's kind",
    "MP024": "evidence for an unknown tenant, alias or rollout",
    "MP025": "percent is not a step of the group's ladder",
    "MP026": "rollout groups form a cycle",
    "MP027": "duplicate compatibility entry",
    "MP028": "unknown workload in the compatibility matrix",
    "MP030": "pin or candidate on a retired model version",
    "MP031": "pin or candidate on a blocked model version",
    "MP032": "pinned model version retires soon",
    "MP033": "tool schema is not a valid JSON Schema",
    "MP034": "evidence file does not match its path",
    "MP035": "approvals recorded for a group without manual approval",
    "MP036": "deprecated model version",
    "MP040": "signed evidence is not a DSSE in-toto statement of a BETS result",
    "MP041": "evidence given twice (signed and unsigned)",
    "MP060": "BETS suite is missing its suite.yaml or cases.jsonl",
    "MP061": "BETS judge cannot judge",
    "MP062": "tenant names another version of a BETS suite",
    "MP063": "duplicate BETS case id",
    "MP100": "transition not allowed",
    "MP101": "ladder step skipped",
    "MP102": "rollout edited in flight",
    "MP103": "since moved backwards",
    "MP104": "tenant is frozen",
    "MP105": "direct pin change without override",
    "MP106": "soak or shadow time not served",
    "MP107": "evidence gate not met",
    "MP108": "upstream group has not cleared the candidate",
    "MP109": "manual approval missing",
    "MP110": "blast-radius cap exceeded",
    "MP111": "compatibility does not allow the upgrade",
    "MP112": "tenant or alias removed or added",
    "MP113": "candidate not allowed",
    "MP114": "evidence is stale",
    "MP115": "evidence suite does not match the tenant's bets_suite",
    "MP116": "evidence judged by the pin or the candidate",
    "MP117": "rollout must start in shadow",
    "MP120": "evidence inconclusive or missing",
    "MP121": "promotion record (pinned_at, promoted_from) missing or edited",
    "MP122": "onboarding pin not allowed",
    "MP124": "rollback on record",
    "MP125": "policy breaks an invariant",
    "MP126": "BETS suite changed without a new version",
    "MP127": "BETS suite removed or renamed while a tenant names it",
    "MP130": "evidence not signed by trusted evaluators",
    "MP131": "evidence judge is not a usable model version of the fleet",
    "MP132": "approval refused (signature, key, time or step)",
    "MP133": "evidence not bound to the content of its BETS suite (suite_sha256)",
    "MP200": "cannot write the artifact",
    "MP201": "signing key problem",
    "MP202": "signature verification failed",
    "MP203": "artifact expired",
    "MP204": "payload does not match its schema",
    "MP205": "git error",
}


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. Sorted by file, then position, then code."""

    file: str
    line: int
    col: int
    code: str
    severity: Severity = field(compare=False)
    message: str = field(compare=False)
    hint: str | None = field(default=None, compare=False)

    @property
    def title(self) -> str:
        return CODES.get(self.code, self.code)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def error(
    code: str, message: str, file: str, line: int = 1, col: int = 1, hint: str | None = None
) -> Diagnostic:
    return Diagnostic(file, line, col, code, "error", message, hint)


def warning(
    code: str, message: str, file: str, line: int = 1, col: int = 1, hint: str | None = None
) -> Diagnostic:
    return Diagnostic(file, line, col, code, "warning", message, hint)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def count(diagnostics: Iterable[Diagnostic]) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = warnings = 0
    for d in diagnostics:
        if d.severity == "error":
            errors += 1
        else:
            warnings += 1
    return errors, warnings


SourceLines = Callable[[str], Sequence[str] | None]
"""Returns the lines of a file (for the text renderer's excerpt), or None."""


_UNSAFE = frozenset((*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029,
                     *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF))
"""Control characters (C0, DEL, C1), Unicode line/paragraph separators, bidi overrides
and the BOM: none of them may reach a terminal or a CI log from a file name or value."""

_VISIBLE = {c: "\ufffd" for c in _UNSAFE if c != 9}
"""In an excerpt each unsafe character is shown as one replacement character (the caret
below stays aligned)."""

_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_controls(text: str) -> str:
    """``text`` with every unsafe character written as a visible escape (``\\n``,
    ``\\x1b``, ``\\u202e``), so it stays on one line and sends nothing to the terminal."""
    return text.translate(_ESCAPES)


def _line_safe(line: str) -> str:
    """A rendered line never starts (after blanks, as GitHub's runner trims) with ``::``:
    text output read by a CI log cannot become a workflow command."""
    stripped = line.lstrip()
    if stripped.startswith("::"):
        return line[: len(line) - len(stripped)] + "\\x3a" + stripped[1:]
    return line


def render_text(diagnostics: Sequence[Diagnostic], source_lines: SourceLines) -> str:
    """Compiler-style text: ``file:line:col: error[MP010]: message``, excerpt, caret, hint."""
    out: list[str] = []
    for d in sorted(diagnostics):
        out.append(_line_safe(f"{escape_controls(d.file)}:{d.line}:{d.col}: "
                              f"{d.severity}[{d.code}]: {escape_controls(d.message)}"))
        lines = source_lines(d.file)
        if lines is not None and 1 <= d.line <= len(lines):
            text = lines[d.line - 1].rstrip("\r\n").expandtabs(1).translate(_VISIBLE)
            gutter = str(d.line)
            pad = " " * len(gutter)
            out.append(f" {gutter} | {text}")
            out.append(f" {pad} | {' ' * (max(d.col, 1) - 1)}^")
        if d.hint:
            out.append(f"  hint: {escape_controls(d.hint)}")
    return "\n".join(out) + ("\n" if out else "")


def _gh_escape_data(text: str) -> str:
    """GitHub's workflow-command data escaping (``%``, CR, LF), after every other
    control character has been made visible (an ANSI escape in a file name must not
    colour or rewrite the log)."""
    keep = text.translate({c: e for c, e in _ESCAPES.items() if c not in (10, 13)})
    return keep.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_property(text: str) -> str:
    return _gh_escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands: ``::error file=..,line=..,col=..,title=..::msg``."""
    out = []
    for d in sorted(diagnostics):
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        props = (
            f"file={_gh_escape_property(d.file)},line={d.line},col={d.col},"
            f"title={_gh_escape_property(f'{d.code} {d.title}')}"
        )
        out.append(f"::{d.severity} {props}::{_gh_escape_data(message)}")
    return "\n".join(out) + ("\n" if out else "")


def render_json(diagnostics: Sequence[Diagnostic], summary: Mapping[str, object]) -> str:
    doc = {"diagnostics": [d.to_json() for d in sorted(diagnostics)], "summary": summary}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
