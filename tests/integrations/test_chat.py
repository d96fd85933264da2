"""OpenAI chat shapes: what a replayed request keeps, how tool calls are read and repaired."""

from __future__ import annotations

import json
from typing import Any

from litellm.types.utils import ModelResponse

from modelpin.integrations.chat import (
    replay_request,
    set_arguments,
    tool_calls_of,
    tool_signature,
)


def completion(*calls: tuple[str, Any]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
        for i, (n, a) in enumerate(calls)]}}]}


def test_a_replayed_request_keeps_only_chat_parameters_and_never_streams() -> None:
    data = {"model": "primary", "messages": [{"role": "user", "content": "x"}],
            "tools": [], "temperature": 0.2, "stream": True, "metadata": {"secret": 1},
            "litellm_logging_obj": object(), "proxy_server_request": {}, "api_key": "sk"}
    out = replay_request(data, "gpt-5-2026-03-14")
    assert out == {"model": "gpt-5-2026-03-14", "messages": data["messages"], "tools": [],
                   "temperature": 0.2, "stream": False}


def test_tool_calls_parse_json_and_keep_other_text_for_coercions() -> None:
    calls = tool_calls_of(completion(("a", '{"x": 1}'), ("b", "```json\n{}\n```"),
                                     ("c", {"already": "parsed"})))
    assert [(c.name, c.arguments) for c in calls] == [
        ("a", {"x": 1}), ("b", "```json\n{}\n```"), ("c", {"already": "parsed"})]
    assert tool_signature(calls)[0] == ("a", {"x": 1})
    assert tool_calls_of({"choices": "nope"}) == []
    assert tool_calls_of({"choices": [{"message": {"tool_calls": [{"function": 3}]}}]}) == []
    nameless = tool_calls_of({"choices": [{"message": {"tool_calls": [
        {"function": {"arguments": "{}"}}]}}]})
    assert nameless[0].name == ""  # judged as a call of no known tool: invalid


def test_set_arguments_rewrites_dicts_and_litellm_responses() -> None:
    doc = completion(("a", "```json\n{\"x\": 1}\n```"))
    set_arguments(doc, tool_calls_of(doc)[0], {"x": 1})
    assert json.loads(doc["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) \
        == {"x": 1}
    response = ModelResponse(**completion(("a", "```{\"x\": 2}```")), model="m")
    set_arguments(response, tool_calls_of(response.model_dump())[0], {"x": 2})
    assert json.loads(response.choices[0].message.tool_calls[0].function.arguments) == {"x": 2}
