"""``model_versions/<id>.yaml``: one exact provider model version."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import field_validator, model_validator
from pydantic_core import PydanticCustomError

from modelpin.model.base import Identifier, StrictModel, check_year, rule_error

ModelKind = Literal["chat", "embedding"]

# Parts of a version id that mean "whatever the provider serves today": never a pin.
FLOATING_TOKENS = frozenset({"latest", "stable", "current", "default", "preview", "newest"})
_SPLIT = re.compile(r"[-._]")


def floating_reason(version_id: str) -> str | None:
    """Why ``version_id`` is a floating alias rather than an exact version, or None."""
    tokens = _SPLIT.split(version_id)
    for token in tokens:
        if token in FLOATING_TOKENS:
            return f"'{token}' names whatever the provider serves today"
    if not any(ch.isdigit() for ch in version_id):
        return "it carries no version number or snapshot date"
    return None


class ModelVersion(StrictModel):
    id: Identifier
    provider: Identifier
    kind: ModelKind
    released: date
    deprecated_on: date | None = None
    retires_on: date | None = None
    successor: Identifier | None = None
    """Where tenants go before retirement; the bot proposes shadows to it in the sunset window."""
    blocked: bool = False
    blocked_reason: str | None = None
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _exact(cls, value: str) -> str:
        reason = floating_reason(value)
        if reason:
            raise PydanticCustomError(
                "floating_version",
                "'{value}' is a floating alias, not an exact version: {reason}",
                {"value": value, "reason": reason},
            )
        return value

    @field_validator("released", "deprecated_on", "retires_on")
    @classmethod
    def _year(cls, value: date | None) -> date | None:
        if value is not None:
            check_year(value.year, value.isoformat())
        return value

    @model_validator(mode="after")
    def _dates_and_block(self) -> ModelVersion:
        if self.blocked and not self.blocked_reason:
            raise rule_error("a blocked model version needs a 'blocked_reason'", "blocked")
        if self.retires_on and self.retires_on < self.released:
            raise rule_error("'retires_on' is before 'released'", "retires_on")
        if self.deprecated_on and self.retires_on and self.retires_on < self.deprecated_on:
            raise rule_error("'retires_on' is before 'deprecated_on'", "retires_on")
        if self.successor == self.id:
            raise rule_error("a model version cannot be its own 'successor'", "successor")
        return self

    def retired(self, today: date) -> bool:
        return self.retires_on is not None and self.retires_on <= today
