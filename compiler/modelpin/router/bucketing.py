"""Deterministic, language-neutral bucketing (``docs/routing-table.md``, "Bucketing").

::

    key    = salt + ":" + session_id                     (UTF-8 bytes)
    h      = sha256(key)
    bucket = (uint32_big_endian(h[0:4]) * 10000) >> 32   (0 .. 9999)
    canary = bucket < basis_points(percent)

``basis_points(percent)`` is ``round(percent * 100)``; a percent is a multiple of 0.01,
so the product is within float error of an integer and the rounding mode never
matters (the router rejects a table whose percent is not on the 0.01 grid). Because a
session is canary iff its bucket is below the threshold, raising the percent only
moves sessions from stable to canary, never back. Vectors another implementation can
replay are in ``bucketing-vectors.json`` beside this module.
"""

from __future__ import annotations

import hashlib

BASIS_POINTS = 10_000
SEPARATOR = ":"

_sha256 = hashlib.sha256


def bucket(salt: str, session_id: str) -> int:
    """The session's bucket in ``0 .. 9999`` for a route with ``salt``."""
    digest = _sha256((salt + SEPARATOR + session_id).encode("utf-8")).digest()
    return (int.from_bytes(digest[:4], "big") * BASIS_POINTS) >> 32


def basis_points(percent: float) -> int:
    """A percent (0.01 resolution) as basis points of 10,000."""
    return round(percent * 100)


def on_grid(percent: float) -> bool:
    """True if ``percent`` is a multiple of 0.01 (up to float representation error)."""
    return abs(percent * 100 - round(percent * 100)) < 1e-6


def in_canary(salt: str, session_id: str, percent: float) -> bool:
    return bucket(salt, session_id) < basis_points(percent)
