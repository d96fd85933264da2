"""pydantic errors -> diagnostics at the YAML position of the offending value.

pydantic reports a ``loc`` path; the document resolves it to a line and column (the
key itself for an unknown key, the nearest parent for a missing one). Unknown keys get
a "did you mean" from the fields the model accepts at that place.
"""

from __future__ import annotations

import types
import typing
from datetime import date
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from modelpin.diagnostics import Diagnostic, error
from modelpin.load.document import Document, did_you_mean

_CODE_BY_TYPE = {
    "extra_forbidden": "MP010",
    "missing": "MP011",
    "floating_version": "MP014",
}


_OWN_MESSAGES = frozenset({"value_error", "assertion_error", "floating_version"})
"""Error types whose message already names the offending value."""


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated / Optional down to the interesting type."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (a mapping inside the document)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = next(
                (f for name, f in current.model_fields.items() if (f.alias or name) == part),
                None,
            )
            if info is None:
                return []
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _describe_input(value: Any) -> str:
    # Dates and times as they are written in YAML, not as Python reprs.
    text = repr(value.isoformat()) if isinstance(value, date) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_prefix(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def diagnostics_for(
    doc: Document, exc: ValidationError, model: type[BaseModel]
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        code = _CODE_BY_TYPE.get(kind, "MP012")
        where = ".".join(str(p) for p in loc) or "document"
        hint: str | None = None
        if kind == "extra_forbidden":
            line, col = doc.position(loc, key=True)
            name = str(loc[-1])
            allowed = fields_at(model, loc[:-1])
            hint = did_you_mean(name, allowed) or (
                f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else None
            )
            message = f"unknown key '{name}'"
            if name == "<<":
                hint = "YAML merge keys ('<<: *anchor') are not supported; write the keys out"
            if len(loc) > 1:
                message += f" in {'.'.join(str(p) for p in loc[:-1])}"
        elif kind == "missing":
            line, col = doc.position(loc[:-1], key=True)
            message = f"missing required key '{loc[-1]}'"
            if len(loc) > 1:
                message += f" in {'.'.join(str(p) for p in loc[:-1])}"
        elif kind == "rule":
            # A rule across fields (a model validator): point at the value that breaks it.
            at = tuple(err.get("ctx", {}).get("at", ()))
            line, col = doc.position((*loc, *at))
            message = f"{where}: {err['msg']}" if loc else str(err["msg"])
        elif loc and loc[-1] == "[key]":
            # A mapping key that breaks its rule (e.g. an alias name that is not an id).
            line, col = doc.position(loc[:-1], key=True)
            msg = _strip_prefix(str(err["msg"]))
            parent = ".".join(str(p) for p in loc[:-2])
            message = f"{parent}: key {msg}" if parent else f"key {msg}"
        else:
            line, col = doc.position(loc)
            msg = _strip_prefix(str(err["msg"]))
            if kind not in _OWN_MESSAGES:
                msg = f"{msg}, got {_describe_input(err.get('input'))}"
            message = f"{where}: {msg}" if loc else msg
        ctx_hint = (err.get("ctx") or {}).get("hint")
        if hint is None and isinstance(ctx_hint, str):
            hint = ctx_hint
        out.append(error(code, message, doc.path, line, col, hint))
    return out
