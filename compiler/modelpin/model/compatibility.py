"""``model_versions/compatibility.yaml``: upgrade verdicts per workload category."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelpin.model.base import IDS_ONLY, Identifier, StrictModel

Verdict = Literal["compatible", "needs-prompt-changes", "breaking"]
VerdictOrUnknown = Literal["compatible", "needs-prompt-changes", "breaking", "unknown"]


class Upgrade(StrictModel):
    from_: Identifier = Field(alias="from")
    to: Identifier
    verdicts: dict[Identifier, Verdict] = Field(json_schema_extra=IDS_ONLY)
    notes: str | None = None


class Compatibility(StrictModel):
    workloads: list[Identifier] = Field(min_length=1)
    upgrades: list[Upgrade] = []

    def verdict(self, from_: str, to: str, workload: str) -> VerdictOrUnknown:
        for upgrade in self.upgrades:
            if upgrade.from_ == from_ and upgrade.to == to:
                return upgrade.verdicts.get(workload, "unknown")
        return "unknown"

    def upgrade(self, from_: str, to: str) -> Upgrade | None:
        for upgrade in self.upgrades:
            if upgrade.from_ == from_ and upgrade.to == to:
                return upgrade
        return None
