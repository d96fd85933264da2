"""Coercions: the few repairs a tenant may allow on a tool call before it is judged.

The one registry of coercion names (the tenant model and the routing table import
``COERCIONS`` from here). A coercion is tried only inside ``check_tool_call``, only on a
call that is invalid as it came, only if the tenant lists it, and the call counts as
coerced only when the repaired arguments then satisfy the contract; the result carries
the repaired arguments and the names applied, the router logs and counts each one. A
cohort whose coercion rate passes 2% is failing (``policies/signals.yaml``): coercion
hides a regression from the tool, never from the rollout.

- ``strip-json-fences``: the arguments arrived as text, JSON inside markdown code fences
  (three backticks, optionally ``json``); the fences are removed and the JSON parsed.
- ``number-as-string``: a string holding a plain decimal number (``"42"``, ``"-1.5"``)
  where the contract wants a number (an integer: digits only).
- ``boolean-as-string``: ``"true"`` or ``"false"`` where the contract wants a boolean.

Pure functions; no I/O.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

STRIP_JSON_FENCES: Final = "strip-json-fences"
NUMBER_AS_STRING: Final = "number-as-string"
BOOLEAN_AS_STRING: Final = "boolean-as-string"

#: name -> what it repairs (README and the tenant schema show these).
COERCIONS: Final[dict[str, str]] = {
    STRIP_JSON_FENCES: "JSON arguments wrapped in markdown code fences: the fences are removed",
    NUMBER_AS_STRING: 'a number sent as a string ("42") where the contract wants a number',
    BOOLEAN_AS_STRING: '"true"/"false" sent as a string where the contract wants a boolean',
}
COERCION_NAMES: Final = tuple(COERCIONS)

_FENCED = re.compile(r"\A\s*```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)\r?\n?[ \t]*```\s*\Z", re.S)
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?")
_MAX_ROUNDS = 3


class SchemaError:
    """What coercion needs to know about one validation error (a jsonschema error)."""

    __slots__ = ("expected", "instance", "path")

    def __init__(self, path: tuple[str | int, ...], expected: tuple[str, ...], instance: Any):
        self.path = path
        self.expected = expected
        self.instance = instance


def unfence(text: str) -> Any:
    """The JSON inside markdown code fences, or raise ``ValueError``."""
    m = _FENCED.match(text)
    if m is None:
        raise ValueError("not JSON in markdown code fences")
    return json.loads(m.group(1))


def _fix_scalar(value: Any, expected: tuple[str, ...], allowed: frozenset[str]) -> tuple[
    Any, str | None
]:
    if type(value) is not str:
        return value, None
    if NUMBER_AS_STRING in allowed:
        if "integer" in expected and _INTEGER.fullmatch(value):
            return int(value), NUMBER_AS_STRING
        if "number" in expected and _NUMBER.fullmatch(value):
            number = float(value)
            return (int(value) if _INTEGER.fullmatch(value) else number), NUMBER_AS_STRING
    if BOOLEAN_AS_STRING in allowed and "boolean" in expected and value in ("true", "false"):
        return value == "true", BOOLEAN_AS_STRING
    return value, None


def coerce(
    arguments: Any,
    allowed: Iterable[str],
    type_errors: Callable[[Any], list[SchemaError]],
) -> tuple[Any, tuple[str, ...]]:
    """Repair ``arguments`` with the ``allowed`` coercions.

    ``type_errors(args)`` lists the contract's type errors of ``args``. Returns the
    repaired arguments (a copy; the input is never mutated) and the coercions applied,
    in order, each once; ``()`` when nothing applied.
    """
    allowed_set = frozenset(allowed)
    applied: list[str] = []
    if isinstance(arguments, str) and STRIP_JSON_FENCES in allowed_set:
        try:
            arguments = unfence(arguments)
        except ValueError:
            return arguments, ()
        applied.append(STRIP_JSON_FENCES)
    if not allowed_set & {NUMBER_AS_STRING, BOOLEAN_AS_STRING}:
        return arguments, tuple(applied)
    copied = False
    for _ in range(_MAX_ROUNDS):
        changed = False
        for err in type_errors(arguments):
            new, name = _fix_scalar(err.instance, err.expected, allowed_set)
            if name is None:
                continue
            if not copied:
                arguments = copy.deepcopy(arguments)
                copied = True
            arguments = _replace(arguments, err.path, new)
            changed = True
            if name not in applied:
                applied.append(name)
        if not changed:
            break
    return arguments, tuple(applied)


def _replace(root: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return root
