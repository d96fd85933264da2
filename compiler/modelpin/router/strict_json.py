"""Signed JSON is read only in its one canonical spelling (RFC 8785), and bounded.

Two parsers that disagree on the same bytes (which of two duplicate keys wins, what
UTF-16 or a ``1E400`` means) are an attack on anyone who verifies with one and acts
with the other. So a signed payload (routing table, root) must be exactly the RFC 8785
bytes of what it decodes to: strict UTF-8, no duplicate keys, sorted keys, no
whitespace, one spelling per number and string. And it must nest at most
``MAX_DEPTH`` levels, checked on the bytes before any recursive code sees them.

The check re-encodes with the C JSON encoder, which writes the same bytes as RFC 8785
for everything but a few number forms, integers beyond 2**53 and keys outside the
Basic Multilingual Plane; when a payload could hold one of those, ``rfc8785.dumps`` (the
reference, slow) decides. Pure: bytes in, a value or ``NotCanonicalError`` out.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import rfc8785

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a signed payload (a routing table
is 6 deep plus its tool schemas)."""

_ASCII_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
).encode
_UTF8_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_STRING = re.compile(rb'"[^"]*"')
# Digits -> "0", what may precede a number (":", ",", "[") -> ":", "-" kept, else " ".
_DIGITS = bytes(
    0x30 if 0x30 <= b <= 0x39 else 0x3A if b in b":,[" else 0x2D if b == 0x2D else 0x20
    for b in range(256)
)
_BIG = (b":" + b"0" * 16, b":-" + b"0" * 16)


def _maybe_big_int(data: bytes) -> bool:
    """True if a number of 16+ digits (perhaps beyond 2**53) may follow a ``:``, ``,`` or
    ``[``. Inside a string the same bytes only send the payload down the exact path."""
    mapped = data.translate(_DIGITS)
    return _BIG[0] in mapped or _BIG[1] in mapped
_ASTRAL = re.compile(rb"[\xf0-\xff]")  # lead byte of a 4-byte UTF-8 sequence
_STRUCTURE = bytes(set(range(256)) - set(b'{}[]":,'))


class NotCanonicalError(ValueError):
    """The bytes are not the canonical JSON of any value, or nest too deeply."""


def _reject_constant(name: str) -> NoReturn:
    raise NotCanonicalError(f"not strict JSON: {name}")


def es6_number(x: float) -> str:
    """ECMAScript's Number-to-String of a finite float: the number form RFC 8785 uses."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    exp = int(exp_text or 0)
    if whole != "0":
        digits, n = (whole + frac), len(whole) + exp
    else:
        stripped = frac.lstrip("0")
        digits, n = stripped, exp - (len(frac) - len(stripped))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    tail = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + tail


def nesting_exceeds(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True if the JSON text ``data`` nests arrays/objects deeper than ``limit``, or its
    brackets do not balance (then it is not JSON either).

    Works on the bytes at C speed, without recursion (``json.loads`` recurses, and a
    host process may have raised the recursion limit far past what its C stack holds):
    drop escaped backslashes and quotes, keep only brackets, quotes, colons and commas,
    drop the strings (a string's own quotes are never adjacent to another string's in
    JSON: a colon or comma separates them, so ``""`` is always one whole string), then
    peel the innermost ``{}``/``[]`` pairs off once per level."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(None, _STRUCTURE).replace(b'""', b"")
    skeleton = _STRING.sub(b"", skeleton).translate(None, b":,")
    for _ in range(limit):
        peeled = skeleton.replace(b"{}", b"").replace(b"[]", b"")
        if peeled == skeleton:
            break
        skeleton = peeled
    return bool(skeleton)


def loads_canonical(data: bytes, what: str = "payload") -> Any:
    """The value ``data`` is the RFC 8785 encoding of; ``NotCanonicalError`` otherwise."""
    if nesting_exceeds(data):
        raise NotCanonicalError(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotCanonicalError(f"{what} is not UTF-8: {exc}") from None
    exact = True  # False once a number's Python form may differ from its RFC 8785 form

    def parse_float(literal: str) -> float:
        nonlocal exact
        value = float(literal)
        if not math.isfinite(value) or es6_number(value) != literal:
            raise NotCanonicalError(f"{what}: the number {literal[:40]} is not in canonical form")
        if repr(value) != literal:
            exact = False
        return value

    try:
        doc = json.loads(text, parse_float=parse_float, parse_constant=_reject_constant)
    except NotCanonicalError:
        raise
    except RecursionError:
        raise NotCanonicalError(f"{what} nests too deeply") from None
    except ValueError as exc:
        raise NotCanonicalError(f"{what} is not JSON: {exc}") from None
    try:
        if exact and not _maybe_big_int(data):
            if data.isascii():
                again = _ASCII_ENCODE(doc).encode("ascii")
            elif _ASTRAL.search(data) is None:  # all in the BMP: key orders agree
                again = _UTF8_ENCODE(doc).encode("utf-8")
            else:
                again = rfc8785.dumps(doc)
        else:
            again = rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError, TypeError) as exc:
        raise NotCanonicalError(f"{what} has no canonical form: {exc}") from None
    except RecursionError:
        raise NotCanonicalError(f"{what} nests too deeply") from None
    if again != data:
        raise NotCanonicalError(
            f"{what} is not canonical JSON (RFC 8785: sorted keys, no whitespace, no "
            "duplicate keys, one spelling per value)"
        )
    return doc
