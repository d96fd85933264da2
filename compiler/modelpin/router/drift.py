"""Shadow drift: how a shadow answer's tool calls differ from the stable answer's.

Pure: two lists of tool calls in, counts per (tool, kind) out. Kinds:

- ``tool-changed``: the first tool chosen differs (counted under the stable answer's
  tool; ``(none)`` when the stable answer called no tool);
- ``call-missing`` / ``call-extra``: a call of that tool the stable answer made and the
  shadow did not, or the other way round (calls are paired per tool, in order);
- ``field-missing`` / ``field-extra``: an argument field (at any depth) present on one
  side only, for a paired call;
- ``type-changed``: the same field with another JSON type (``integer`` and ``number``
  are one type: ``1`` and ``1.0`` are the same value to a tool).

Arguments may be given parsed or as JSON text (the wire form); text that is not JSON is
compared as a string. Values are not compared: wording differs between models, shape
must not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

KINDS: Final = (
    "tool-changed", "call-missing", "call-extra", "field-missing", "field-extra", "type-changed"
)
NO_TOOL: Final = "(none)"
_MAX_DEPTH = 32

ToolCall = tuple[str, Any]
"""(tool name, arguments)."""


def _parsed(arguments: Any) -> Any:
    if isinstance(arguments, (str, bytes)):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _shape(stable: Any, shadow: Any, add: Any, depth: int = 0) -> None:
    ts, tw = _type(stable), _type(shadow)
    if ts != tw:
        add("type-changed")
        return
    if depth >= _MAX_DEPTH:
        return
    if ts == "object":
        for _key in stable.keys() - shadow.keys():
            add("field-missing")
        for _key in shadow.keys() - stable.keys():
            add("field-extra")
        for key in stable.keys() & shadow.keys():
            _shape(stable[key], shadow[key], add, depth + 1)
    elif ts == "array":
        for a, b in zip(stable, shadow, strict=False):
            _shape(a, b, add, depth + 1)


def compare(stable: Sequence[ToolCall], shadow: Sequence[ToolCall]) -> dict[tuple[str, str], int]:
    """(tool, kind) -> how many differences of that kind; empty when the shapes agree."""
    out: dict[tuple[str, str], int] = {}

    def bump(tool: str, kind: str) -> None:
        out[(tool, kind)] = out.get((tool, kind), 0) + 1

    first_stable = stable[0][0] if stable else NO_TOOL
    first_shadow = shadow[0][0] if shadow else NO_TOOL
    if first_stable != first_shadow:
        bump(first_stable, "tool-changed")
    by_tool_stable = _group(stable)
    by_tool_shadow = _group(shadow)
    for tool in sorted(by_tool_stable.keys() | by_tool_shadow.keys()):
        a = by_tool_stable.get(tool, [])
        b = by_tool_shadow.get(tool, [])
        for _ in range(len(a) - len(b)):
            bump(tool, "call-missing")
        for _ in range(len(b) - len(a)):
            bump(tool, "call-extra")
        for x, y in zip(a, b, strict=False):
            _shape(_parsed(x), _parsed(y), lambda kind, t=tool: bump(t, kind))
    return out


def _group(calls: Iterable[ToolCall]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for name, arguments in calls:
        groups.setdefault(name, []).append(arguments)
    return groups
