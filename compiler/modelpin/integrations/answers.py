"""What an answer says about the model, for ``Router.record``: refused, format kept,
length. Pure functions over the OpenAI chat-completions shapes (a completion as a dict).

- ``refused``: a choice's ``message.refusal`` is set (the provider's refusal field,
  e.g. structured outputs), or a choice ended with ``finish_reason: content_filter``.
  No guess from the wording: an answer that merely sounds like a refusal is not one.
- ``format_ok``: only when the request asked for a format (``response_format`` of type
  ``json_object`` or ``json_schema``): every choice's content parses as JSON, and for
  ``json_schema`` is valid against the schema. A refusal, or a choice that called tools
  instead of answering, is not judged for format (the refusal counts as a refusal, not
  twice). A schema that is itself invalid cannot be judged: None. Validation is kept
  cheap whatever the answer: a schema with a regex (``pattern``, ``patternProperties``)
  or ``uniqueItems``, or an answer over 64 KiB, is judged only on being JSON (not JSON:
  False; JSON: None).
- ``response_tokens``: ``usage.completion_tokens`` (all choices), when reported.

A value that cannot be judged from the answer is None: ``record`` then counts nothing
for it (no data, never a guess).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from jsonschema import exceptions as schema_errors
from jsonschema import validators

from modelpin.router.telemetry import MAX_RESPONSE_TOKENS

JSON_FORMATS: Final = frozenset({"json_object", "json_schema"})
#: Schema keywords whose cost the answer (the model, steered by the client's prompt) can
#: make explode: a backtracking regex (``re`` holds the GIL: the proxy's event loop would
#: stall), or pairwise comparison of array items. A schema naming any of them is not
#: validated: its answers are judged only on whether they are JSON.
UNBOUNDED_KEYWORDS: Final = frozenset({"pattern", "patternProperties", "uniqueItems"})
#: Larger answers are judged only on whether they are JSON (validation stays cheap).
MAX_VALIDATED_CHARS: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class AnswerSignals:
    refused: bool | None = None
    format_ok: bool | None = None
    response_tokens: int | None = None


def answer_signals(request: Mapping[str, Any], completion: Mapping[str, Any]
                   ) -> AnswerSignals:
    """The signals of one chat completion (``completion``) to ``request``."""
    choices = completion.get("choices")
    messages: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, Mapping) else None
        if isinstance(message, Mapping):
            messages.append((choice, message))
    refused: bool | None = None
    if messages:
        refused = any(m.get("refusal") is not None or c.get("finish_reason") == "content_filter"
                      for c, m in messages)
    return AnswerSignals(refused, _format_ok(request.get("response_format"), messages),
                         _tokens(completion.get("usage")))


def _tokens(usage: object) -> int | None:
    tokens = usage.get("completion_tokens") if isinstance(usage, Mapping) else None
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        return None
    return tokens if 0 <= tokens <= MAX_RESPONSE_TOKENS else None


def _format_ok(response_format: object,
               messages: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> bool | None:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind not in JSON_FORMATS or not messages:
        return None
    assert isinstance(response_format, Mapping)
    schema: Any = None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping | bool):
            return None
    judged = False
    for choice, message in messages:
        if (message.get("refusal") is not None
                or choice.get("finish_reason") == "content_filter"):
            continue
        content = message.get("content")
        if content is None and message.get("tool_calls"):
            continue  # called a tool instead of answering: no answer to judge
        judged = True
        if not isinstance(content, str):
            return False
        try:
            value = json.loads(content, parse_constant=_not_json)
        except (ValueError, RecursionError):
            return False
        if schema is not None:
            if len(content) > MAX_VALIDATED_CHARS or _names_unbounded(schema):
                return None  # JSON, but not checked against this schema
            valid = _valid(json.dumps(schema, sort_keys=True), value)
            if valid is None:
                return None
            if not valid:
                return False
    return True if judged else None


def _names_unbounded(schema: Any) -> bool:
    """Whether a keyword of ``UNBOUNDED_KEYWORDS`` appears anywhere in ``schema``
    (conservatively: also as a property's name)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if UNBOUNDED_KEYWORDS.intersection(node):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _valid(schema_text: str, value: Any) -> bool | None:
    validator = _validator(schema_text)
    if validator is None:
        return None
    try:
        return bool(validator.is_valid(value))
    except Exception:  # e.g. an unresolvable $ref: the schema cannot be judged by
        return None


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """A validator of one schema (the same few schemas recur request after request),
    None when the schema itself is invalid."""
    schema = json.loads(schema_text)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except schema_errors.SchemaError:
        return None
    return cls(schema)
