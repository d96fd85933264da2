"""JSON with the traps closed, for data from outside (telemetry files, server answers).

UTF-8 only; finite numbers (``1e400`` and ``NaN`` refused); integers of at most 30
digits (a 5000-digit number is refused before Python's own digit limit raises a bare
``ValueError``); nesting at most ``MAX_JSON_DEPTH`` deep (a ``RecursionError`` of the
parser is caught too). Errors are :class:`UnsafeJson` with ``file:line:col`` when known.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 32


class UnsafeJson(ValueError):
    """The bytes are not JSON the bot accepts; the message says where and why."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise ValueError(f"a {len(text)}-digit number is out of range for a counter")
    return int(text)


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json(data: bytes, where: str) -> Any:
    """Parse ``data`` (named ``where`` in errors) or raise :class:`UnsafeJson`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeJson(f"{where}: not UTF-8 (byte {exc.start}): {exc.reason}") from None
    try:
        raw = json.loads(
            text, parse_float=_finite_float, parse_int=_int, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise UnsafeJson(f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise UnsafeJson(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:
        raise UnsafeJson(f"{where}: {exc}") from None
    if _depth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise UnsafeJson(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return raw
