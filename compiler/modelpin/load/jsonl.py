"""JSON Lines files (``bets/<suite>/cases.jsonl``): one JSON object per line.

The file becomes a ``Document`` whose data is ``{"cases": [object, ...]}``, so the
pydantic model and the loader's diagnostics work as for every other file. A line
number is a line of the file: ``jsonl_position`` maps a validation path
``("cases", i, ...)`` to the i-th object's line, and to the column of the value inside
it. Whitespace-only lines carry nothing and are allowed (an editor's trailing newline);
everything else on a line must be one JSON object. Duplicate keys, ``NaN`` and
``Infinity`` are errors, as duplicate keys are in YAML.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from modelpin.diagnostics import error
from modelpin.load.document import Document, node_mark

MAX_JSONL_BYTES = 16 << 20
"""A suite of a few thousand captured exchanges fits; a larger file is a mistake."""


class _LineError(Exception):
    def __init__(self, message: str, col: int, hint: str | None = None) -> None:
        self.message = message
        self.col = col
        self.hint = hint


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _LineError(f"duplicate key '{key}'", 1, "a key may appear once in an object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _LineError(f"{name} is not a JSON number", 1, "write a finite number")


def content_lines(text: str) -> list[int]:
    """0-based indexes of the lines that hold an object (not whitespace only)."""
    return [i for i, line in enumerate(text.split("\n")) if line.strip()]


def parse_line(line: str) -> Any:
    """One line -> its JSON value; ``_LineError`` (with a 1-based column) otherwise."""
    try:
        return json.loads(line, object_pairs_hook=_pairs, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise _LineError(f"syntax error: {exc.msg}", exc.colno,
                         "each line of a .jsonl file is one JSON object") from None
    except RecursionError:
        raise _LineError("nesting too deep", 1) from None


def parse_jsonl(path: str, raw: bytes, *, max_bytes: int = MAX_JSONL_BYTES) -> Document:
    """Parse a JSON Lines file; every fault becomes a diagnostic, never an exception."""
    if len(raw) > max_bytes:
        return Document(path, None, diagnostics=[error(
            "MP001", f"file is {len(raw):,} bytes, the limit is {max_bytes:,}", path,
            hint="split the suite, or sample it with 'modelpin bets capture --sample N'")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start]
        line_no = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return Document(path, None, diagnostics=[error(
            "MP002", f"byte 0x{raw[exc.start]:02x} is not valid UTF-8", path, line_no, col,
            hint="save the file as UTF-8")])
    doc = Document(path, text)
    lines = text.split("\n")
    objects: list[Any] = []
    for index in content_lines(text):
        line = lines[index].rstrip("\r")
        try:
            value = parse_line(line)
        except _LineError as exc:
            doc.diagnostics.append(error("MP003", exc.message, path, index + 1, exc.col,
                                         exc.hint))
            continue
        if not isinstance(value, dict):
            doc.diagnostics.append(error("MP006", "line is not a JSON object", path, index + 1,
                                         len(line) - len(line.lstrip()) + 1,
                                         hint="each line of a .jsonl file is one JSON object"))
            continue
        objects.append(value)
    if not objects and not doc.diagnostics:
        doc.diagnostics.append(error("MP006", "file holds no case", path,
                                     hint="a .jsonl file holds one JSON object per line"))
    doc.data = None if doc.diagnostics else {"cases": objects}
    return doc


def jsonl_position(text: str, path: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int]:
    """1-based (line, col) of the value at ``("cases", i, ...)`` in a JSON Lines text."""
    if len(path) < 2 or path[0] != "cases" or not isinstance(path[1], int):
        return 1, 1
    indexes = content_lines(text)
    if not 0 <= path[1] < len(indexes):
        return 1, 1
    line_no = indexes[path[1]]
    line = text.split("\n")[line_no].rstrip("\r")
    col = _column(line, path[2:], key=key)
    return line_no + 1, col


def _column(line: str, rest: tuple[str | int, ...], *, key: bool) -> int:
    """Column of ``rest`` inside one JSON object (a JSON text is YAML flow, with marks)."""
    try:
        node = yaml.compose(line, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return 1
    if node is None:
        return 1
    return int(node_mark(node, rest, key=key).column) + 1

