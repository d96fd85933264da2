"""``evidence/<tenant>/<alias>/<candidate>.json``: BETS results written by eval runs."""

from __future__ import annotations

from pydantic import AwareDatetime, Field, model_validator

from modelpin.model.base import Identifier, StrictModel, rule_error
from modelpin.model.tenant import BetsSuiteRef


class EvidenceFailure(StrictModel):
    case: str
    kind: str
    detail: str = ""


class Evidence(StrictModel):
    tenant: Identifier
    alias: Identifier
    baseline: Identifier
    candidate: Identifier
    suite: BetsSuiteRef
    judge: str = Field(min_length=1)
    run_at: AwareDatetime
    cases: int = Field(ge=0)
    passed: int = Field(ge=0)
    failures: list[EvidenceFailure] = []

    @model_validator(mode="after")
    def _counts(self) -> Evidence:
        if self.passed > self.cases:
            raise rule_error(f"'passed' ({self.passed}) exceeds 'cases' ({self.cases})", "passed")
        return self

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0
