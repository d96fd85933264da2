"""How the fake provider's models answer when they are not scripted: personas, the way
providers' updates misbehave.

``clean``          the right answer (from ``answers``, keyed by the last user message;
                   ``echo: <message>`` when there is none)
``fenced``         JSON answers wrapped in a markdown code fence
``renamed-arg``    tool calls with their first argument renamed (``clause_id`` -> ``clauseId``)
``refuser``        refuses (alternately through ``refusal`` and in plain text)
``label-shift``    a label moved to its neighbour (positive -> neutral ...)
``mostly-clean``   clean, except on about 2% of prompts (by hash): one of the above
``flaky:<p>``      per distinct request: first a 429 (``Retry-After: 1``), then a 503 whose
                   ``Retry-After`` is an HTTP-date, then persona ``<p>`` (the server decides
                   the errors; see ``openai_server``)

Any model asked to judge (modelpin's judge prompt) scores ``candidate_answer`` against
``golden_answer``: 1.0 if equal (JSON compared as values), else 0.1.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

LABELS = ["positive", "neutral", "negative", "low", "medium", "high"]
REFUSAL = "I'm sorry, but I can't help with that."
JUDGE_PROMPT_START = "You grade whether"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest) if rest else name + "Value"


def _norm(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return " ".join(text.lower().split())


def _truth(body: dict[str, Any], answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    last = next((m.get("content") for m in reversed(body["messages"])
                 if m.get("role") == "user"), "") or ""
    return answers.get(last, {"content": f"echo: {last}"})


def persona_message(persona: str, body: dict[str, Any], digest: str,
                    answers: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason ``persona`` gives to ``body``."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    system = str(body["messages"][0].get("content") or "")
    if persona == "mostly-clean":
        last = str(body["messages"][-1].get("content") or "")
        slot = int(hashlib.sha256(last.encode()).hexdigest(), 16) % 50
        truth = _truth(body, answers)
        if slot != 0:
            persona = "clean"
        elif "tool" in truth:
            persona = "renamed-arg"
        elif str(truth.get("content", "")).strip().lower() in LABELS:
            persona = "label-shift"
        elif str(truth.get("content", "")).startswith("{"):
            persona = "fenced"
        else:
            persona = "refuser"
    if system.startswith(JUDGE_PROMPT_START):
        user = json.loads(body["messages"][-1]["content"])
        same = _norm(str(user.get("golden_answer") or "")) == _norm(
            str(user.get("candidate_answer") or ""))
        message["content"] = json.dumps({"score": 1.0 if same else 0.1,
                                         "reason": "same meaning" if same else "differs"})
        return message, "stop"
    if persona == "refuser":
        if int(digest, 16) % 2:
            message["refusal"] = REFUSAL
        else:
            message["content"] = REFUSAL
        return message, "stop"
    truth = _truth(body, answers)
    if "tool" in truth and body.get("tools"):
        arguments = dict(truth.get("arguments", {}))
        if persona == "renamed-arg" and arguments:
            first = next(iter(arguments))
            arguments = {(_camel(k) if k == first else k): v for k, v in arguments.items()}
        message["tool_calls"] = [{"id": f"call_{digest[:12]}", "type": "function",
                                  "function": {"name": truth["tool"],
                                               "arguments": json.dumps(arguments)}}]
        return message, "tool_calls"
    content = str(truth.get("content", ""))
    if persona == "fenced":
        try:
            json.loads(content)
            content = f"```json\n{content}\n```"
        except ValueError:
            pass
    if persona == "label-shift" and content.strip().lower() in LABELS:
        i = LABELS.index(content.strip().lower())
        content = LABELS[i + 1 if i % 3 < 2 else i - 2]
    message["content"] = content
    return message, "stop"


def _value(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(
        str(kind), "7.2")


def answers_from_suites(repo: Path) -> dict[str, dict[str, Any]]:
    """What a correct model answers to every case of every suite under ``repo/bets``: the
    golden answer, or the expected tool with a value for each required argument."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(repo.glob("bets/*/cases.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            prompt = case["messages"][-1].get("content") or ""
            expected = case.get("expect_tool_call")
            if expected:
                schema = expected.get("arguments") or {}
                props = schema.get("properties", {})
                out[prompt] = {"tool": expected["name"], "arguments": {
                    name: _value(props.get(name, {})) for name in schema.get("required", [])}}
            elif case.get("golden") is not None:
                out[prompt] = {"content": case["golden"]}
    return out
