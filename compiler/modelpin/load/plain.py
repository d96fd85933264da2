"""Loaded config data as JSON text and back, exactly: the only format caches are written in.

Caches hold what the loader built from a repository's files. They are never pickled
(unpickling runs code, and a repository can plant bytes where a cache is looked for):
they are JSON, read by ``json.loads``, and every model is rebuilt from plain data by
validating it again. YAML yields a few values JSON has no type for (dates, timestamps,
non-finite floats are JSON-representable through Python's extension); they are tagged
as one-key objects ``{"$date": ...}`` / ``{"$datetime": ...}``. A mapping of the data
whose keys start with ``$`` is wrapped as ``{"$map": [[key, value], ...]}`` so no user
mapping can pass for a tag.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

_DATE, _DATETIME, _MAP = "$date", "$datetime", "$map"


def encode(value: Any) -> Any:
    """``value`` (YAML/JSON data) as JSON-ready data with the tags above."""
    if isinstance(value, dict):
        if any(isinstance(k, str) and k.startswith("$") for k in value):
            return {_MAP: [[k, encode(v)] for k, v in value.items()]}
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, date):
        return {_DATE: value.isoformat()}
    return value


def encode_text(value: Any) -> str:
    """``dumps(encode(value))`` as text, in one pass of the C encoder where that is exact.

    Dates are tagged by the encoder's ``default``; the tags are counted. A ``"$``
    sequence in the output is either a tag or the start of a string of the data that
    begins with ``$`` (an escaped quote before a ``$`` only adds to the count). So when
    the count of ``"$`` equals the count of tags, no key of the data starts with ``$``
    and no mapping needs wrapping: the output is exactly what ``encode`` would give.
    Otherwise the data is encoded by ``encode``. ASCII-only output: a lone surrogate
    (which YAML escapes can produce) stays encodable."""
    tags = 0

    def tag(obj: Any) -> Any:
        nonlocal tags
        if isinstance(obj, datetime):
            tags += 1
            return {_DATETIME: obj.isoformat()}
        if isinstance(obj, date):
            tags += 1
            return {_DATE: obj.isoformat()}
        raise TypeError(f"{type(obj).__name__} is not plain data")

    text = json.dumps(value, default=tag, separators=(",", ":"))
    if text.count('"$') != tags:
        text = json.dumps(encode(value), separators=(",", ":"))
    return text


def decode_text(text: str) -> Any:
    """The data ``encode_text`` wrote, tags decoded. Raises ``ValueError``."""
    return json.loads(text, object_hook=_hook)


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _DATETIME in obj:
            return datetime.fromisoformat(obj[_DATETIME])
        if _DATE in obj:
            return date.fromisoformat(obj[_DATE])
        if _MAP in obj:
            return {k: v for k, v in obj[_MAP]}
    return obj


def decode(value: Any) -> Any:
    """The data ``encode`` tagged, tags decoded (for entries read with ``loads_raw``)."""
    if isinstance(value, dict):
        if len(value) == 1:
            tagged = _hook(value)
            if tagged is not value:
                return decode(tagged) if isinstance(tagged, dict) else tagged
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def loads_raw(data: bytes) -> Any:
    """JSON as written, tags left in place: entries stay ready to be written again and
    are decoded (``decode``) only when used."""
    return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact JSON of already-``encode``d data (NaN and infinities kept, as YAML has them)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(data: bytes) -> Any:
    """The data ``dumps`` wrote, tags decoded. Raises ``ValueError`` on anything else."""
    return json.loads(data, object_hook=_hook)


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` via a temp file in the same directory, fsync and rename;
    raises ``OSError``. The directory is created private (0700): it is the user's."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
