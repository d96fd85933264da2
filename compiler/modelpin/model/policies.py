"""``policies/rollout-groups.yaml`` and ``policies/artifact.yaml``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from modelpin.model.base import (
    IDS_ONLY,
    Duration,
    Identifier,
    StrictModel,
    format_duration,
    is_hundredths,
    rule_error,
)

Approval = Literal["none", "manual"]


class BetsGate(StrictModel):
    min_pass_rate: float = Field(gt=0, le=1)
    min_cases: int = Field(ge=1)


class RolloutGroup(StrictModel):
    after: list[Identifier] = []
    ladder: list[float] = Field(min_length=1)
    soak: Duration
    approval: Approval = "none"
    shadow: Duration = timedelta(0)
    bets: BetsGate
    max_in_flight: int | None = Field(default=None, ge=1)

    @field_validator("ladder")
    @classmethod
    def _ladder(cls, steps: list[float]) -> list[float]:
        for step in steps:
            if not 0 < step <= 100:
                raise ValueError(f"ladder step {step:g} is outside (0, 100]")
            if not is_hundredths(step):
                raise ValueError(f"ladder step {step:g} is finer than 0.01 percent")
        for a, b in itertools.pairwise(steps):
            if b <= a:
                raise ValueError(f"ladder must be strictly increasing: {a:g} then {b:g}")
        if steps[-1] != 100:
            raise ValueError(f"ladder must end at 100, it ends at {steps[-1]:g}")
        return steps

    @field_validator("after")
    @classmethod
    def _unique_after(cls, after: list[str]) -> list[str]:
        if len(set(after)) != len(after):
            raise ValueError("'after' lists a group twice")
        return after


class RolloutPolicy(StrictModel):
    groups: dict[Identifier, RolloutGroup] = Field(min_length=1, json_schema_extra=IDS_ONLY)
    evidence_max_age: Duration = timedelta(days=30)
    # At most 100 years: ``today + sunset_warning_days`` must stay a date (plan, bot).
    sunset_warning_days: int = Field(default=60, ge=0, le=36500)


class TrustedKey(StrictModel):
    public_key: str
    keyid: str | None = None
    owner: str | None = None

    @model_validator(mode="after")
    def _key(self) -> TrustedKey:
        try:
            raw = base64.b64decode(self.public_key, validate=True)
        except (binascii.Error, ValueError):
            raise rule_error("'public_key' is not base64", "public_key") from None
        if len(raw) != 32:
            raise rule_error(f"'public_key' must be 32 raw Ed25519 bytes, got {len(raw)}",
                             "public_key")
        actual = hashlib.sha256(raw).hexdigest()
        if self.keyid is not None and self.keyid != actual:
            raise rule_error(f"'keyid' does not match the public key (its id is {actual})",
                             "keyid")
        return self

    @property
    def computed_keyid(self) -> str:
        return hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()


class ArtifactPolicy(StrictModel):
    ttl: Duration = timedelta(days=7)
    publish_period: Duration = timedelta(days=1)
    """How often the publish workflow re-signs an unchanged main (its schedule): the
    table must outlive two periods, so one failed scheduled run expires nothing."""
    drain_seconds: int = Field(default=300, ge=0)
    threshold: int = Field(default=1, ge=1)
    trusted_keys: list[TrustedKey] = []

    @model_validator(mode="after")
    def _lifetime(self) -> ArtifactPolicy:
        if self.publish_period <= timedelta(0):
            raise rule_error("'publish_period' must be longer than 0", "publish_period")
        if self.ttl < 2 * self.publish_period:
            raise rule_error(
                f"ttl {format_duration(self.ttl)} is shorter than twice the publish_period "
                f"({format_duration(self.publish_period)}): a table would expire before the "
                "next scheduled publish could replace it", "ttl")
        return self

    @model_validator(mode="after")
    def _threshold(self) -> ArtifactPolicy:
        if self.trusted_keys and self.threshold > len(self.trusted_keys):
            raise rule_error(
                f"threshold {self.threshold} exceeds the {len(self.trusted_keys)} trusted key(s)",
                "threshold",
            )
        return self
