"""pydantic errors -> diagnostics at the YAML position of the offending value.

pydantic reports a ``loc`` path; the document resolves it to a line and column (the
key itself for an unknown key, the nearest parent for a missing one). Unknown keys get
a "did you mean" from the fields the model accepts at that place.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from modelpin.diagnostics import Diagnostic, error
from modelpin.load.document import Document, did_you_mean

_CODE_BY_TYPE = {
    "extra_forbidden": "MP010",
    "missing": "MP011",
    "floating_version": "MP014",
}


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
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
            if len(loc) > 1:
                message += f" in {'.'.join(str(p) for p in loc[:-1])}"
        elif kind == "missing":
            line, col = doc.position(loc[:-1], key=True)
            message = f"missing required key '{loc[-1]}'"
            if len(loc) > 1:
                message += f" in {'.'.join(str(p) for p in loc[:-1])}"
        else:
            line, col = doc.position(loc)
            msg = str(err["msg"])
            for prefix in ("Value error, ", "Assertion failed, "):
                if msg.startswith(prefix):
                    msg = msg[len(prefix):]
            if kind.endswith("_type") or kind.endswith("_parsing") or kind in (
                "literal_error", "enum"
            ):
                msg = f"{msg}, got {_describe_input(err.get('input'))}"
            message = f"{where}: {msg}" if loc else msg
        out.append(error(code, message, doc.path, line, col, hint))
    return out
