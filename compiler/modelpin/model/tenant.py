"""``tenants/<id>.yaml``: one tenant, its aliases, pins and rollouts in flight."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from modelpin.model.base import (
    IDS_ONLY,
    Identifier,
    StrictModel,
    Timestamp,
    is_hundredths,
    rule_error,
)
from modelpin.model.model_version import ModelKind
from modelpin.model.signals import FailAction, SignalName
from modelpin.model.trust import Email, SignOffKey, duplicate_key_error
from modelpin.router.coercion import COERCION_NAMES

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


def _check_tool_name(value: str) -> str:
    if not _TOOL_NAME.match(value):
        raise ValueError(
            f"tool name {value!r} may use only letters, digits, '_', '.' and '-' "
            "(1 to 64 characters), as gateways and the routing table carry it"
        )
    return value


ToolName = Annotated[
    str,
    AfterValidator(_check_tool_name),
    WithJsonSchema({"type": "string", "pattern": TOOL_NAME_PATTERN}),
]
"""A tool's name as gateways and the routing table carry it."""


def _check_coercion(value: str) -> str:
    if value not in COERCION_NAMES:
        raise ValueError(
            f"{value!r} is not a coercion; the router knows {', '.join(COERCION_NAMES)}"
        )
    return value


CoercionName = Annotated[
    str,
    AfterValidator(_check_coercion),
    WithJsonSchema({"enum": list(COERCION_NAMES)}),
]
"""A tool-call repair the router may apply (the registry is ``modelpin.router.coercion``)."""

Stage = Literal["shadow", "canary", "paused", "rolled-back"]
FailurePolicy = Literal["fallback-stable", "structured-error"]


def _percent(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError(f"percent {value:g} is outside (0, 100]")
    if not is_hundredths(value):
        raise ValueError(f"percent {value:g} is finer than 0.01")
    return value


class BetsSuiteRef(StrictModel):
    """A BETS suite and its version: typed strictly (``"7"`` or ``true`` is no version)."""

    id: Identifier = Field(strict=True)
    version: int = Field(ge=1, strict=True)


Contact = SignOffKey
"""A technical contact of the tenant: the sign-off key for manual-approval steps."""


class Approval(StrictModel):
    """A sign-off for entering ladder step ``percent`` (SPEC 2.1 rule 4).

    ``sig`` is the base64 Ed25519 signature (by ``by``'s key) over the DSSE PAE of the
    canonical approval statement (``modelpin.approvals``); absent only while no approver
    keys are configured.
    """

    percent: float = Field(strict=True)
    by: Email
    at: Timestamp
    sig: str | None = Field(default=None, strict=True, max_length=200)

    _check_percent = field_validator("percent")(_percent)


class Rollout(StrictModel):
    candidate: Identifier
    stage: Stage
    percent: float | None = None
    since: Timestamp
    reason: str | None = None
    prompt_changes_ack: bool = False
    approvals: list[Approval] = []

    @field_validator("percent")
    @classmethod
    def _percent_range(cls, value: float | None) -> float | None:
        return None if value is None else _percent(value)

    @model_validator(mode="after")
    def _stage_fields(self) -> Rollout:
        if self.stage in ("canary", "paused") and self.percent is None:
            raise rule_error(f"a {self.stage} rollout needs 'percent' (a step of the ladder)",
                             "stage")
        if self.stage == "shadow" and self.percent is not None:
            raise rule_error("a shadow rollout carries no 'percent': shadow serves no traffic",
                             "percent")
        if self.stage in ("paused", "rolled-back") and not (self.reason and self.reason.strip()):
            raise rule_error(f"a {self.stage} rollout needs a 'reason'", "stage")
        return self


class Alias(StrictModel):
    kind: ModelKind
    pin: Identifier
    pinned_at: Timestamp | None = None
    """Written by the promotion that set ``pin`` (SPEC 2.1 rule 7); absent at onboarding."""
    promoted_from: Identifier | None = None
    """The pin a promotion replaced; with ``pinned_at``, the record of a judged promotion."""
    cleared_rollbacks: list[Identifier] = []
    """Versions this alias rolled back from that a human has cleared to be tried again."""
    rollout: Rollout | None = None

    @model_validator(mode="after")
    def _candidate_differs(self) -> Alias:
        if self.rollout is not None and self.rollout.candidate == self.pin:
            raise rule_error("the rollout's 'candidate' is the current 'pin'",
                             "rollout", "candidate")
        if (self.pinned_at is None) != (self.promoted_from is None):
            missing = "promoted_from" if self.promoted_from is None else "pinned_at"
            raise rule_error(f"a promotion records both 'pinned_at' and 'promoted_from': "
                             f"'{missing}' is missing", missing)
        if self.promoted_from == self.pin:
            raise rule_error("'promoted_from' is the current 'pin'", "promoted_from")
        return self


class Tenant(StrictModel):
    id: Identifier
    group: Identifier
    workload: Identifier
    freeze: bool = False
    override_allowed: bool = False
    failure_policy: FailurePolicy = "fallback-stable"
    bets_suite: BetsSuiteRef | None = None
    contacts: list[SignOffKey] = Field(default=[], max_length=64)
    tools: dict[ToolName, dict[str, Any]] = {}
    coercions: list[CoercionName] = Field(
        default=[],
        description="tool-call repairs the router may apply before judging a call; each "
        "is logged and counted, and a cohort over 2% coerced fails",
    )

    @field_validator("coercions")
    @classmethod
    def _unique_coercions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a coercion is listed twice")
        return value
    aliases: dict[Identifier, Alias] = Field(min_length=1, json_schema_extra=IDS_ONLY)
    signal_actions: dict[SignalName, FailAction] = Field(
        default={},
        description="per signal, the bot's action on a breach for this tenant "
        "(overrides policies/signals.yaml): rollback, pause or escalate",
    )
    owner: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _contacts(self) -> Tenant:
        problem = duplicate_key_error(self.contacts, "contacts")
        if problem is not None:
            raise problem
        return self


def format_time(value: datetime) -> str:
    """The form times take in YAML, JSON and the artifact: UTC, seconds, 'Z'."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
