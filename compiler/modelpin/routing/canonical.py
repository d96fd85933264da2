"""Canonical JSON (RFC 8785, JCS) of routing-table values, fast where that is provably equal.

``rfc8785.dumps`` is the reference, but it is pure Python: for a 10,000-tenant table it
costs more than the rest of the compile after loading. For the values a routing table
actually holds, ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` (C-accelerated) writes the same bytes:

- strings: both escape ``"``, ``\\``, ``\\b \\f \\n \\r \\t`` by name and every other
  control character below U+0020 as ``\\u00xx`` (lowercase hex), and write everything
  else as UTF-8;
- integers in the JSON-safe range ``|n| <= 2**53 - 1``, ``true``, ``false``, ``null``;
- object keys in ASCII: RFC 8785 sorts keys by UTF-16 code units, Python by code points;
  the two orders differ only for keys outside the BMP, so ASCII keys sort alike;
- floats that are non-integral multiples of 0.01 in ``(0, 100]`` (rollout percents, and
  e.g. a ``minimum: 0.5`` in a tool schema): ``repr`` and ECMAScript's Number-to-String
  both give the shortest round-tripping digits in plain decimal notation there.

Everything else (other floats, integral floats, non-ASCII keys, big integers, non-JSON
types, lone surrogates) goes to ``rfc8785.dumps``, which either writes it canonically or
raises. ``tests/routing/test_canonical.py`` checks byte equality with ``rfc8785.dumps``
by a property test over payload-shaped values, including odd tool schemas.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_INT_LIMIT = 2**53 - 1
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


class CanonicalError(ValueError):
    """The value has no RFC 8785 form (NaN, a huge integer, a non-JSON type, ...)."""


def _is_fast_float(x: float) -> bool:
    if not 0 < x <= 100 or x.is_integer():
        return False
    hundredths = round(x * 100)
    return hundredths / 100 == x


def fast_path_applies(value: Any) -> bool:
    """True if ``json.dumps`` writes ``value`` exactly as RFC 8785 does (see module doc)."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        v = pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if -_INT_LIMIT <= v <= _INT_LIMIT:
                continue
            return False
        if t is dict:
            for k, item in v.items():
                if type(k) is not str or not k.isascii():
                    return False
                push(item)
            continue
        if t is list or t is tuple:
            stack.extend(v)
            continue
        if t is float and _is_fast_float(v):
            continue
        return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``; ``CanonicalError`` if it has none."""
    if fast_path_applies(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference reports it
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalError(str(exc) or type(exc).__name__) from None
