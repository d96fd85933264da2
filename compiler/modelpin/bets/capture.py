"""Recorded production exchanges -> golden BETS cases (pure: lines in, cases out).

An exchange is one JSON object a line: ``{"request": <chat-completions request body>,
"response": <chat-completions response body>}`` as a gateway records them (optional
``"at"``: when). The case keeps the captured input (system prompt, messages, tools) and
takes its assertions from the recorded answer, which was good enough to serve:

- a tool call -> ``expect_tool_call``: its name, and as the argument schema the tool's
  own declared ``parameters`` (valid arguments, not these exact values);
- text -> ``golden`` (the judge compares meaning), and when the text is a JSON object, a
  format assertion that the answer is a JSON object with the same keys.

Exchanges are deduplicated by prompt hash (sha256 of the canonical system prompt,
messages and tools), against each other and against the suite's existing cases; a
sample of N is drawn with a seeded reservoir (the same seed, the same cases).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelpin.model.bets import Case


class ExchangeError(Exception):
    def __init__(self, message: str, col: int = 1) -> None:
        super().__init__(message)
        self.col = col


@dataclass(frozen=True)
class Captured:
    line: int
    prompt_hash: str
    case: Case


def prompt_hash(system: str | None, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> str:
    body = json.dumps({"system": system, "messages": messages, "tools": tools},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def case_prompt_hash(case: Case) -> str:
    messages = [m.model_dump(exclude_none=True, exclude_defaults=True) | {"role": m.role}
                for m in case.messages]
    tools = [t.model_dump(mode="json") for t in case.tools]
    return prompt_hash(case.system, messages, tools)


def _text(content: Any, where: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise ExchangeError(f"{where}: only text content can be captured (found a "
                                    f"{part.get('type') if isinstance(part, dict) else 'value'}"
                                    " part)")
            parts.append(part["text"])
        return "".join(parts)
    raise ExchangeError(f"{where}: content is neither text nor a list of text parts")


def exchange_case(exchange: Any) -> tuple[str, Case]:
    """One recorded exchange -> (prompt hash, golden case)."""
    if not isinstance(exchange, dict):
        raise ExchangeError("an exchange is a JSON object with 'request' and 'response'")
    request, response = exchange.get("request"), exchange.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        raise ExchangeError("'request' must be a chat-completions request with 'messages'")
    if not isinstance(response, dict) or not isinstance(response.get("choices"), list) \
            or not response["choices"] or not isinstance(response["choices"][0], dict):
        raise ExchangeError("'response' must be a chat-completions response with 'choices'")
    system: str | None = None
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(request["messages"]):
        if not isinstance(message, dict):
            raise ExchangeError(f"request.messages[{i}] is not an object")
        role = message.get("role")
        content = _text(message.get("content"), f"request.messages[{i}]")
        if role in ("system", "developer"):
            if messages or system is not None:
                raise ExchangeError(f"request.messages[{i}]: a system prompt after the "
                                    "conversation started cannot be captured")
            system = content
            continue
        kept = {k: v for k, v in message.items() if k in ("role", "tool_calls", "tool_call_id")}
        if content is not None:
            kept["content"] = content
        messages.append(kept)
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict)]
    answer = response["choices"][0].get("message") or {}
    if answer.get("refusal"):
        raise ExchangeError("the recorded answer is a refusal: not a golden answer")
    calls = answer.get("tool_calls") or []
    record: dict[str, Any] = {"system": system, "messages": messages, "tools": tools}
    if calls:
        name = calls[0].get("function", {}).get("name") if isinstance(calls[0], dict) else None
        declared = next((t.get("function", {}).get("parameters") for t in tools
                         if t.get("function", {}).get("name") == name), None)
        record["expect_tool_call"] = {"name": name,
                                      "arguments": declared or {"type": "object"}}
    else:
        content = _text(answer.get("content"), "response.choices[0].message")
        if not content:
            raise ExchangeError("the recorded answer has neither content nor tool calls")
        record["golden"] = content
        try:
            value = json.loads(content)
        except ValueError:
            value = None
        if isinstance(value, dict):
            record["format"] = {"json_schema": {"type": "object", "required": sorted(value)}}
    digest = prompt_hash(system, messages, tools)
    record["id"] = f"cap-{digest[:12]}"
    if isinstance(exchange.get("at"), str):
        record["source"] = f"captured {exchange['at']}"
    try:
        case = Case.model_validate({k: v for k, v in record.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ExchangeError(f"the exchange makes no valid case: {where}: {first['msg']}"
                            ) from None
    return digest, case


def parse_exchanges(lines: Iterable[str]) -> Iterator[tuple[int, str, Case] | tuple[int,
                                                                                   ExchangeError]]:
    """(line, prompt hash, case) per exchange, or (line, error)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, ExchangeError(f"syntax error: {exc.msg}", exc.colno)
            continue
        try:
            digest, case = exchange_case(value)
        except ExchangeError as exc:
            yield number, exc
            continue
        yield number, digest, case


def sample(items: Iterable[Captured], size: int | None, seed: int) -> list[Captured]:
    """All items, or a seeded reservoir sample of ``size`` (Algorithm R), in input order."""
    if size is None:
        return list(items)
    rng = random.Random(seed)
    reservoir: list[Captured] = []
    for i, item in enumerate(items):
        if i < size:
            reservoir.append(item)
        else:
            j = rng.randint(0, i)
            if j < size:
                reservoir[j] = item
    return sorted(reservoir, key=lambda c: c.line)


_VERSION = re.compile(r"^version:[ \t]*(\d+)[ \t]*(#.*)?$", re.MULTILINE)


def bump_version(suite_text: str) -> tuple[str, int]:
    """``suite.yaml`` text with its top-level ``version`` raised by one (comments kept)."""
    found = list(_VERSION.finditer(suite_text))
    if len(found) != 1:
        raise ValueError("suite.yaml must hold one top-level 'version: N' line")
    match = found[0]
    new = int(match.group(1)) + 1
    comment = f" {match.group(2)}" if match.group(2) else ""
    return suite_text[:match.start()] + f"version: {new}{comment}" + suite_text[match.end():], \
        new
