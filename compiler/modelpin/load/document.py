"""One config file: bytes -> plain Python data, with positions recoverable on demand.

The happy path composes the YAML with the C parser and converts nodes to plain data in
one pass that also rejects duplicate keys and caps alias expansion ("billion laughs").
Positions are not kept: when a later stage needs the line and column of a value, the
file's text is composed again and the path walked (dagster's source_position idea, paid
only on the error path). Keys are always taken as their literal text, so YAML 1.1's
``no:``/``on:`` never turn into booleans.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelpin.diagnostics import Diagnostic, error

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the C loader ships with PyYAML wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1 << 20
"""Config files are small; a larger one is a mistake or an attack."""
MAX_NODES = 200_000
"""Nodes visited while converting one file, aliases expanded. A 1 MiB file of distinct
nodes stays far below; a file that expands past it is an alias bomb."""
MAX_DEPTH = 64
MAX_SAFE_NUMBER = 2**53 - 1
"""Numbers are I-JSON interoperable (RFC 7493): finite, and no larger in magnitude than
the largest integer an IEEE double holds exactly. 10^400, 1e30, .nan and .inf are
errors at their position: they could not be published or read the same everywhere."""

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

_constructor = yaml.constructor.SafeConstructor()


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


@dataclass
class Document:
    """A parsed file. ``data`` is None when the file could not be read or parsed."""

    path: str
    text: str | None
    data: Any = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _root: yaml.Node | None = field(default=None, repr=False)

    @property
    def lines(self) -> Sequence[str] | None:
        return None if self.text is None else self.text.splitlines()

    def _node(self) -> yaml.Node | None:
        if self._root is None and self.text is not None:
            try:
                self._root = yaml.compose(self.text, Loader=_Loader)
            except (yaml.YAMLError, RecursionError):
                return None
        return self._root

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at ``path`` (or of its key, with ``key``).

        A path that does not exist resolves to the nearest existing parent: the key of a
        missing field points at the mapping that lacks it.
        """
        if self.path.endswith(".jsonl"):
            from modelpin.load.jsonl import jsonl_position  # a line is a line: see there

            return jsonl_position(self.text or "", path, key=key)
        node = self._node()
        if node is None:
            return 1, 1
        mark = node_mark(node, path, key=key)
        return mark.line + 1, mark.column + 1


def node_mark(node: yaml.Node, path: tuple[str | int, ...], *, key: bool = False) -> Any:
    """The start mark of the value at ``path`` under ``node`` (of its key with ``key``),
    or of the nearest existing parent when the path goes missing: positions survive
    validation for a missing field."""
    mark = node.start_mark
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    mark = k.start_mark if (last and key) else v.start_mark
                    node = v
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return mark


def _offset_position(text: bytes, offset: int) -> tuple[int, int]:
    before = text[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def _text_position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, col) of character ``index``, counting YAML's line breaks."""
    before = text[:index]
    lines = before.splitlines(keepends=True)
    if not lines or lines[-1].endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
        return len(lines) + 1, 1
    return len(lines), len(lines[-1]) + 1


def parse(path: str, raw: bytes, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Parse a YAML (or JSON) file; every fault becomes a diagnostic, never an exception."""
    if len(raw) > max_bytes:
        return Document(
            path,
            None,
            diagnostics=[
                error(
                    "MP001",
                    f"file is {len(raw):,} bytes, the limit is {max_bytes:,}",
                    path,
                    hint="config files are small; split it or remove generated content",
                )
            ],
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _offset_position(raw, exc.start)
        return Document(
            path,
            None,
            diagnostics=[
                error(
                    "MP002",
                    f"byte 0x{raw[exc.start]:02x} is not valid UTF-8",
                    path,
                    line,
                    col,
                    hint="save the file as UTF-8",
                )
            ],
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    doc = Document(path, text)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        doc.diagnostics.append(_syntax_error(path, exc))
        return doc
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (control characters): point at it.
        line, col = _text_position(text, exc.position)
        doc.diagnostics.append(
            error("MP003", f"character U+{exc.character:04X} is not allowed in YAML",
                  path, line, col, hint="remove the control character")
            if isinstance(exc.character, int)
            else error("MP003", f"syntax error: {exc.reason}", path, line, col)
        )
        return doc
    except (yaml.YAMLError, RecursionError) as exc:
        doc.diagnostics.append(error("MP003", f"syntax error: {exc}", path))
        return doc
    if root is None:
        doc.diagnostics.append(
            error("MP006", "file is empty", path, hint="a config file is a YAML mapping")
        )
        return doc
    if not isinstance(root, yaml.MappingNode):
        line, col = root.start_mark.line + 1, root.start_mark.column + 1
        doc.diagnostics.append(
            error("MP006", "document is not a mapping", path, line, col,
                  hint="a config file is a mapping of keys to values, e.g. 'id: ...'")
        )
        return doc
    converter = _Converter(path, doc.diagnostics)
    try:
        doc.data = converter.value(root, 0)
    except _Abort as abort:
        diagnostic = abort.diagnostic
        if diagnostic.code == "MP005":
            diagnostic = _blame_expansion(path, root, diagnostic)
        doc.diagnostics.append(diagnostic)
        doc.data = None
    doc._root = None
    if doc.diagnostics:
        doc._root = root
        if any(d.severity == "error" for d in doc.diagnostics):
            doc.data = None
    return doc


_PLAIN_JSON_BYTES = re.compile(rb"[^\x20-\x5b\x5d-\x7e\n\r]")
"""Anything but printable ASCII (backslash excluded: no escapes), LF and CR."""
MAX_PLAIN_KEY = 1000
"""libyaml refuses a simple key longer than 1024 characters; JSON has no such limit."""


class _NotPlain(Exception):
    """JSON the fast path leaves to the YAML parser."""


def _plain_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs) or any(not k or len(k) > MAX_PLAIN_KEY for k in out):
        raise _NotPlain  # duplicate keys (MP004 with a position), odd keys
    return out


def _plain_int(text: str) -> int:
    number = int(text)
    if not -MAX_SAFE_NUMBER <= number <= MAX_SAFE_NUMBER:
        raise _NotPlain  # MP012 with a position
    return number


def _not_plain(_text: str) -> Any:
    raise _NotPlain  # floats, NaN, Infinity: YAML 1.1 reads some of them as strings


def _within_limits(data: Any) -> bool:
    """The converter's node budget and depth limit, counted the same way."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > MAX_DEPTH:
            return False
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return True


def parse_json(path: str, raw: bytes, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """A ``.json`` file: exactly what ``parse`` builds, through the C JSON decoder when
    that provably gives the same data.

    JSON is YAML, and for a JSON object in printable ASCII without a backslash (no
    escapes, no tabs, no YAML line-break characters inside strings), with distinct keys,
    only integers in the I-JSON range, keys of at most ``MAX_PLAIN_KEY`` characters and
    within the node and depth limits, both readers yield the same mapping of strings,
    integers, booleans and nulls: quoted scalars are strings in YAML, and ``true``,
    ``false``, ``null`` and decimal integers resolve as in JSON. Signed evidence
    (base64 and hex) is always such a file. Anything else, including every file with a
    fault to report, goes to ``parse``, so diagnostics are the YAML parser's."""
    if len(raw) <= max_bytes and _PLAIN_JSON_BYTES.search(raw) is None:
        text = raw.decode("ascii")
        try:
            data = json.loads(text, object_pairs_hook=_plain_pairs, parse_int=_plain_int,
                              parse_float=_not_plain, parse_constant=_not_plain)
        except (_NotPlain, ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and _within_limits(data):
            return Document(path, text, data)
    return parse(path, raw, max_bytes=max_bytes)


def _syntax_error(path: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    """PyYAML's problem at its mark; where the construct began when that is elsewhere."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"syntax error: {exc.problem or exc.context or 'cannot parse'}"
    if exc.problem and exc.context:
        message += f" ({exc.context}"
        start = exc.context_mark
        if start is not None and (start.line, start.column) != (mark.line if mark else -1,
                                                                mark.column if mark else -1):
            message += f" started at {start.line + 1}:{start.column + 1}"
        message += ")"
    return error("MP003", message, path, line, col,
                 hint="check indentation, quoting and that there is a single document")


def _blame_expansion(path: str, root: yaml.MappingNode, found: Diagnostic) -> Diagnostic:
    """Point an alias bomb at the top-level key whose value blows the node budget.

    Error path only: counts nodes again, top-level entry by entry, with the same budget
    (so at most ``MAX_NODES`` visits), and names the entry where it runs out.
    """
    budget = MAX_NODES - 1
    for key_node, value_node in root.value:
        stack: list[yaml.Node] = [value_node]
        while stack:
            node = stack.pop()
            budget -= 1
            if budget < 0:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                return error("MP005", f"the value of '{key_node.value}' expands to more than "
                             f"{MAX_NODES:,} nodes", path, line, col, found.hint)
            if isinstance(node, yaml.MappingNode):
                stack.extend(v for _k, v in node.value)  # keys are not counted
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
    return found


class _Converter:
    """Nodes -> plain data, with duplicate-key and expansion checks."""

    __slots__ = ("budget", "diagnostics", "path")

    def __init__(self, path: str, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.diagnostics = diagnostics
        self.budget = MAX_NODES

    def _at(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def value(self, node: yaml.Node, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            line, col = self._at(node)
            raise _Abort(
                error("MP005", f"the document expands to more than {MAX_NODES:,} nodes",
                      self.path, line, col,
                      hint="anchors and aliases ('&a', '*a') expand too far; write values out")
            )
        if depth > MAX_DEPTH:
            line, col = self._at(node)
            raise _Abort(error("MP012", f"nesting deeper than {MAX_DEPTH} levels",
                               self.path, line, col))
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, tag)
        if tag == _MAP:
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    line, col = self._at(key_node)
                    raise _Abort(error("MP012", "a key must be a plain scalar", self.path,
                                       line, col))
                key = key_node.value
                if key in result:
                    line, col = self._at(key_node)
                    self.diagnostics.append(
                        error("MP004", f"duplicate key '{key}'", self.path, line, col,
                              hint="a key may appear once in a mapping; remove one")
                    )
                result[key] = self.value(value_node, depth + 1)
            return result
        if tag == _SEQ:
            return [self.value(item, depth + 1) for item in node.value]
        line, col = self._at(node)
        raise _Abort(error("MP012", f"unsupported YAML tag {tag}", self.path, line, col,
                           hint="use plain YAML values: mappings, lists, strings, numbers"))

    def _interoperable(self, node: yaml.ScalarNode, number: Any) -> Any:
        if isinstance(number, int | float) and not (-MAX_SAFE_NUMBER <= number <= MAX_SAFE_NUMBER):
            line, col = self._at(node)
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise _Abort(error("MP012", f"number {shown} is out of range: numbers are finite "
                               f"and at most {MAX_SAFE_NUMBER:,} in magnitude", self.path,
                               line, col, hint="I-JSON (RFC 7493): every reader must see the "
                               "same number; quote it if it is text"))
        return number

    def _scalar(self, node: yaml.ScalarNode, tag: str) -> Any:
        if tag == _STR:
            return node.value
        try:
            if tag == _INT:
                try:
                    number: Any = int(node.value)
                except ValueError:
                    number = _constructor.construct_yaml_int(node)
                return self._interoperable(node, number)
            if tag == _BOOL:
                return node.value.lower() in ("true", "yes", "on", "y")
            if tag == _NULL:
                return None
            if tag == _FLOAT:
                return self._interoperable(node, _constructor.construct_yaml_float(node))
            if tag == _TIMESTAMP:
                return _constructor.construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            # Matches the resolver's pattern but is no value: 2026-02-30, 0x_.
            line, col = self._at(node)
            raise _Abort(error("MP012", f"{node.value!r} is not a valid "
                               f"{tag.rsplit(':', 1)[-1]}: {exc}", self.path, line, col,
                               hint="quote it to keep it as text")) from None
        line, col = self._at(node)
        raise _Abort(error("MP012", f"unsupported YAML tag {tag}", self.path, line, col,
                           hint="use plain YAML values: mappings, lists, strings, numbers"))


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
