"""One changed value of a rule file, and the diff that finds them (``shown``, suites).

Pure: two values in (pydantic models, mappings, lists), ``Shown`` lines out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from modelpin.rollout.reason import ModelPath


@dataclass(frozen=True)
class Shown:
    """One changed value: ``file`` and the ``path`` inside it, and a sentence."""

    file: str
    path: ModelPath
    message: str
    code: str = "MP125"
    hint: str | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _diff(before: Any, after: Any, path: ModelPath = ()) -> Iterator[tuple[ModelPath, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted({*before, *after}):
            yield from _diff(before.get(key, _ABSENT), after.get(key, _ABSENT), (*path, key))
        return
    if before != after:
        yield path, before, after


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _fmt(value: Any) -> str:
    if value is _ABSENT or value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return _cut("[" + ", ".join(_fmt(v) for v in value) + "]")
    return _cut(str(value))


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def lines(file: str, before: Any, after: Any, prefix: ModelPath = ()) -> list[Shown]:
    out = []
    for path, old, new in _diff(_plain(before), _plain(after)):
        where = ".".join(str(p) for p in path) or "(file)"
        if old is _ABSENT:
            text = f"{where} added: {_fmt(new)}"
        elif new is _ABSENT:
            text = f"{where} removed (was {_fmt(old)})"
        else:
            text = f"{where}: {_fmt(old)} -> {_fmt(new)}"
        out.append(Shown(file, (*prefix, *path), text))
    return out
