"""Shared building blocks of the config models: the strict base model and field types.

Every config model forbids unknown keys and is immutable once validated. Field types
carry their rule and a message a user can act on; the loader maps pydantic's error
location back to the YAML node, so messages here never repeat file or line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)
_DURATION_RE = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class StrictModel(BaseModel):
    """Unknown keys are errors; validated values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


IDS_ONLY: dict[str, Any] = {"additionalProperties": False}
"""JSON Schema of a mapping keyed by ids: pydantic emits ``patternProperties`` for the
key rule, which alone lets any other key through."""


def rule_error(message: str, *at: str | int, hint: str | None = None) -> PydanticCustomError:
    """A rule across fields, broken at the value ``at`` (a path below the model).

    Raised from a model validator, so the diagnostic points at the value that breaks the
    rule rather than at the whole mapping (the loader reads ``ctx["at"]``; a missing
    value falls back to its nearest existing parent). ``hint`` becomes the diagnostic's
    hint.
    """
    ctx: dict[str, Any] = {"message": message, "at": at}
    if hint is not None:
        ctx["hint"] = hint
    return PydanticCustomError("rule", "{message}", ctx)


def field_error(message: str, hint: str) -> PydanticCustomError:
    """A field's own rule broken, with a hint (raise it from a field validator)."""
    return PydanticCustomError("value_error", "{message}", {"message": message, "hint": hint})


def is_hundredths(value: float) -> bool:
    """Whether ``value`` is a whole number of 0.01 (0.07 and 0.29 are, despite floats)."""
    scaled = value * 100
    return abs(scaled - round(scaled)) < 1e-6


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid id: lowercase letters, digits, '.', '_', '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return value


Identifier = Annotated[
    str,
    AfterValidator(_check_id),
    WithJsonSchema({"type": "string", "pattern": ID_PATTERN}),
]


MAX_DURATION = timedelta(days=3650)
"""No duration of a policy is longer than ten years: a larger one is a typo, and every
time computed from it (``since + soak``, ``issued_at + ttl``) must stay a valid date."""
EARLIEST_YEAR, LATEST_YEAR = 1970, 8999
"""Every date and time of a config file lies in these years (UTC): with durations of at
most ``MAX_DURATION`` added, every computed time is still representable."""


def parse_duration(value: Any) -> timedelta:
    """``<n>m``, ``<n>h`` or ``<n>d`` up to ``MAX_DURATION``; already-parsed timedeltas
    pass through (within the same bound)."""
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m:
            seconds = int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            if seconds > MAX_DURATION.total_seconds():
                raise ValueError(f"{value.strip()!r} is longer than the limit of "
                                 f"{MAX_DURATION.days}d")
            return timedelta(seconds=seconds)
    if isinstance(value, timedelta):
        if not timedelta(0) <= value <= MAX_DURATION:
            raise ValueError(f"a duration lies between 0 and {MAX_DURATION.days}d")
        return value
    raise ValueError(f"{value!r} is not a duration: write <n>m, <n>h or <n>d, e.g. 24h")


def check_year(year: int, value: object) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"{value} is outside the years {EARLIEST_YEAR}-{LATEST_YEAR}")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds:
            return f"{seconds // size}{unit}"
    return "0h"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+[mhd]$", "examples": ["24h", "30d"]}),
]


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 date-time with an offset, as a string (JSON) or a YAML timestamp."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("time has no UTC offset: write e.g. 2026-03-19T22:00:00Z")
        try:
            check_year(value.astimezone(UTC).year, value.isoformat())
        except OverflowError:
            raise ValueError(f"{value.isoformat()} has no UTC form") from None
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 3339 time with an offset, e.g. 2026-03-19T22:00:00Z"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # 9999-12-31T23:59:59-01:00 has no UTC form
        check_year(parsed.astimezone(UTC).year, value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r} is not a valid time: {exc}") from None
    return parsed


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
