"""BETS suites: ``bets/<suite>/suite.yaml`` and each line of ``bets/<suite>/cases.jsonl``.

A suite names its workload, its judge (an exact model version of the fleet) and the
score the judge must give a candidate's answer. A case is one captured exchange (system
prompt, messages, tools) with what a good answer must satisfy: the expected tool call
(its name, and a JSON Schema of valid arguments rather than exact values), a format
assertion (a JSON Schema or a regular expression) and a golden answer for the judge. A
case that asserts nothing could never fail, so it is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpin.model.base import Identifier, StrictModel, rule_error
from modelpin.model.tenant import ToolName

FailureKind = Literal[
    "error", "refusal", "tool-call-name", "tool-call-schema", "format", "judge-below-threshold",
]
FAILURE_KINDS: tuple[FailureKind, ...] = (
    "error", "refusal", "tool-call-name", "tool-call-schema", "format", "judge-below-threshold",
)
"""Every way a case fails, in the order a candidate's answer is checked: the first one
found is the case's failure kind."""

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class Suite(StrictModel):
    """``bets/<suite>/suite.yaml``."""

    id: Identifier
    version: int = Field(ge=1)
    workload: Identifier
    judge: Identifier
    judge_threshold: float = Field(gt=0, le=1)
    required_pass_rate: dict[FailureKind, float] = {}
    max_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    temperature: float = Field(default=0.0, ge=0, le=2)
    description: str | None = None

    @field_validator("required_pass_rate")
    @classmethod
    def _rates(cls, rates: dict[FailureKind, float]) -> dict[FailureKind, float]:
        for kind, rate in rates.items():
            if not 0 < rate <= 1:
                raise ValueError(f"required pass rate for '{kind}' ({rate:g}) is outside (0, 1]")
        return rates


class FunctionCall(StrictModel):
    name: ToolName
    arguments: str


class ToolCall(StrictModel):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(StrictModel):
    """A captured message. The system prompt is the case's ``system``, not a message."""

    role: Literal["user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise rule_error("only an assistant message carries 'tool_calls'", "tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise rule_error("a tool message needs 'tool_call_id'", "role")
        if self.role != "tool" and self.tool_call_id is not None:
            raise rule_error("only a tool message carries 'tool_call_id'", "tool_call_id")
        if self.content is None and not self.tool_calls:
            raise rule_error("a message needs 'content' (or 'tool_calls')", "role")
        return self


class FunctionDefinition(StrictModel):
    name: ToolName
    description: str = ""
    parameters: dict[str, Any] = {}


class ToolDefinition(StrictModel):
    """A tool offered to the model, as the chat-completions API takes it."""

    type: Literal["function"] = "function"
    function: FunctionDefinition


class ExpectedToolCall(StrictModel):
    name: ToolName
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema of valid arguments (not exact values)"
    )


class FormatAssertion(StrictModel):
    """Exactly one of: the answer parses as JSON valid against ``json_schema``; or the
    whole answer matches ``regex``."""

    json_schema: dict[str, Any] | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FormatAssertion:
        if (self.json_schema is None) == (self.regex is None):
            raise rule_error("a format assertion is exactly one of 'json_schema' or 'regex'")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise rule_error(f"'regex' is not a regular expression: {exc}",
                                 "regex") from None
        return self


class Case(StrictModel):
    """One line of ``cases.jsonl``."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    system: str | None = None
    messages: list[Message] = Field(min_length=1)
    tools: list[ToolDefinition] = []
    expect_tool_call: ExpectedToolCall | None = None
    format: FormatAssertion | None = None
    golden: str | None = None
    source: str | None = Field(default=None, description="where the case was captured from")

    @model_validator(mode="after")
    def _asserts_something(self) -> Case:
        if self.expect_tool_call is None and self.format is None and self.golden is None:
            raise rule_error("a case asserts nothing: give 'expect_tool_call', 'format' or "
                             "'golden' (a case that cannot fail proves nothing)")
        names = [t.function.name for t in self.tools]
        if len(set(names)) != len(names):
            raise rule_error("two tools share a name", "tools")
        if self.expect_tool_call is not None and self.expect_tool_call.name not in names:
            raise rule_error(f"expected tool '{self.expect_tool_call.name}' is not among the "
                             "case's 'tools'", "expect_tool_call", "name")
        return self


class SuiteCases(StrictModel):
    """``cases.jsonl`` as the loader validates it: one case per line."""

    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class SuiteSource:
    """The bytes a BETS suite's verdicts rest on, as the loader read them.

    ``files``: (repo path, hex sha256 of the file's bytes) of ``suite.yaml`` and
    ``cases.jsonl``; ``sha256``: the suite digest over both (``load.suite_digest``), the
    value evidence records as ``suite_sha256``. Any byte of either file changed (a case
    deleted, reordered, reformatted; a threshold, the judge) changes the digest, and a
    changed digest needs a new ``version`` (SPEC 2.1 rule 2; docs/evidence.md).
    ``cases``: the validated cases, to list what a change did to them.
    """

    id: str
    version: int
    files: tuple[tuple[str, str], ...]
    sha256: str
    cases: SuiteCases
