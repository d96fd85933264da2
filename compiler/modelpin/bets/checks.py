"""What a good answer is: the pure checks of one case against one model's answer.

No I/O here. An ``Answer`` is the part of a chat-completions response the checks read.
``check_answer`` applies the case's assertions in the order of ``FAILURE_KINDS`` and
returns the first failure (kind and a human detail) or None. The judge's part is split
in two: ``judge_request`` builds what the judge is asked, ``judge_score`` reads its
answer; the runner calls the judge in between.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from modelpin.model.bets import Case, FailureKind

DETAIL_CHARS = 300

REFUSAL = re.compile(
    r"^\s*(I'?m sorry|I am sorry|sorry,|I can(?:'|no)t (?:help|assist|comply|provide|do)|"
    r"I cannot (?:help|assist|comply|provide|do)|I(?:'m| am) (?:unable|not able) to|"
    r"I won'?t be able to|As an AI)",
    re.IGNORECASE,
)
"""Answers that open like a refusal. Providers also refuse through the ``refusal`` field
and ``finish_reason: content_filter``; a model that refuses in plain text does so with
one of a handful of openings."""


@dataclass(frozen=True)
class ToolCallMade:
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    content: str | None
    tool_calls: tuple[ToolCallMade, ...] = ()
    refusal: str | None = None
    finish_reason: str | None = None
    tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "refusal": self.refusal,
                "finish_reason": self.finish_reason, "tokens": self.tokens,
                "tool_calls": [[t.name, t.arguments] for t in self.tool_calls]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        return cls(content=data.get("content"), refusal=data.get("refusal"),
                   finish_reason=data.get("finish_reason"), tokens=int(data.get("tokens", 0)),
                   tool_calls=tuple(ToolCallMade(str(n), str(a))
                                    for n, a in data.get("tool_calls", [])))

    def describe(self) -> str:
        """What the model answered, short, for reports."""
        if self.refusal:
            return f"refusal: {clip(self.refusal)}"
        if self.tool_calls:
            return "; ".join(f"tool call {t.name}({clip(t.arguments)})" for t in self.tool_calls)
        return clip(self.content or "(no content)")


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    detail: str
    expected: str = ""
    got: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def clip(text: str, limit: int = DETAIL_CHARS) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = _validator(json.dumps(schema, sort_keys=True))
    found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    out = []
    for err in found[:3]:
        where = "/".join(str(p) for p in err.absolute_path)
        out.append(f"{'/' + where + ': ' if where else ''}{err.message}")
    return out


def is_refusal(answer: Answer) -> bool:
    if answer.refusal:
        return True
    if answer.finish_reason == "content_filter":
        return True
    return not answer.tool_calls and bool(answer.content) and bool(
        REFUSAL.match(answer.content or ""))


def check_answer(case: Case, answer: Answer) -> Failure | None:
    """The first assertion of ``case`` that ``answer`` breaks (the judge aside)."""
    if is_refusal(answer):
        return Failure("refusal", f"the model refused: {answer.describe()}",
                       expected="an answer", got=answer.describe())
    expected_call = case.expect_tool_call
    if expected_call is not None:
        calls = [t for t in answer.tool_calls if t.name == expected_call.name]
        if not calls:
            made = ", ".join(t.name for t in answer.tool_calls) or "no tool call"
            return Failure("tool-call-name", f"expected a call of '{expected_call.name}', got "
                           f"{made}", expected=expected_call.name, got=answer.describe())
        try:
            arguments = json.loads(calls[0].arguments)
        except ValueError:
            return Failure("tool-call-schema", "arguments are not JSON: "
                           f"{clip(calls[0].arguments, 80)}",
                           expected=json.dumps(expected_call.arguments, sort_keys=True),
                           got=calls[0].arguments)
        problems = schema_errors(expected_call.arguments, arguments)
        if problems:
            return Failure("tool-call-schema", "; ".join(problems),
                           expected=json.dumps(expected_call.arguments, sort_keys=True),
                           got=clip(calls[0].arguments))
    assertion = case.format
    if assertion is not None:
        content = answer.content or ""
        if assertion.regex is not None:
            if re.fullmatch(assertion.regex, content.strip()) is None:
                return Failure("format", f"answer does not match /{assertion.regex}/",
                               expected=f"/{assertion.regex}/", got=clip(content))
        elif assertion.json_schema is not None:
            try:
                value = json.loads(content)
            except ValueError:
                start = clip(content.strip(), 20)
                return Failure("format", f"answer is not JSON (starts with {start!r})",
                               expected="JSON valid against the case's schema", got=clip(content))
            problems = schema_errors(assertion.json_schema, value)
            if problems:
                return Failure("format", "; ".join(problems),
                               expected=json.dumps(assertion.json_schema, sort_keys=True),
                               got=clip(content))
    return None


JUDGE_SYSTEM = (
    "You grade whether a candidate answer means the same as a golden answer for the same "
    "request. Ignore wording and formatting; judge meaning, facts, labels and values. "
    'Reply with one JSON object and nothing else: {"score": <number from 0 to 1>, '
    '"reason": "<one sentence>"}. 1 means equivalent, 0 means unrelated or contradictory.'
)


def judge_request(case: Case, answer: Answer) -> list[dict[str, str]]:
    """The judge's messages: the request's last user turn, the golden answer, the
    candidate's answer (its tool calls, when it made some)."""
    question = next((m.content for m in reversed(case.messages)
                     if m.role == "user" and m.content), "")
    got = answer.content or ""
    if answer.tool_calls:
        got += "".join(f"\n[tool call {t.name}({t.arguments})]" for t in answer.tool_calls)
    user = json.dumps({"request": question, "golden_answer": case.golden,
                       "candidate_answer": got}, ensure_ascii=False)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def judge_score(answer: Answer) -> tuple[float, str] | None:
    """(score, reason) from the judge's answer, or None if it gave no usable score. The
    judge is not under test: a JSON object anywhere in its answer is accepted."""
    match = _OBJECT.search(answer.content or "")
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return None
    return float(score), str(data.get("reason", ""))
