"""OpenAI chat-completions shapes the gateway hook reads and writes. Pure functions.

- ``replay_request``: the request to send again to another model (the shadow copy, the
  re-ask on stable): only the documented chat-completions parameters of the request as
  the proxy's other hooks left it (so a guardrail's masking is kept), never the proxy's
  internals, never streaming.
- ``tool_calls_of``: the tool calls of a completion (every choice), with their arguments
  parsed from JSON text; text that is not JSON is passed on as text, so the router's
  coercions (e.g. ``strip-json-fences``) can judge it.
- ``invalid_tool_call_error``: the structured error a ``structured-error`` tenant's client
  gets instead of a candidate's invalid tool call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: Request parameters of the chat-completions API that a replayed request keeps.
REPLAYED_PARAMS: Final = (
    "messages", "tools", "tool_choice", "parallel_tool_calls", "functions",
    "function_call", "temperature", "top_p", "max_tokens", "max_completion_tokens", "n",
    "stop", "seed", "response_format", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "user", "reasoning_effort",
)

_NOT_JSON: Final = object()


def replay_request(data: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Keyword arguments for ``litellm.Router.acompletion``: ``data``'s chat parameters
    with ``model`` replaced, not streaming."""
    out = {k: data[k] for k in REPLAYED_PARAMS if k in data}
    out["model"] = model
    out["stream"] = False
    return out


@dataclass(frozen=True, slots=True)
class ToolCall:
    choice: int
    index: int
    id: str | None
    name: str
    arguments: Any  # parsed JSON, or the text as it came when it is not JSON
    text: str


def _arguments(text: object) -> tuple[Any, str]:
    if not isinstance(text, str):
        return text, json.dumps(text)
    try:
        return json.loads(text), text
    except ValueError:
        return text, text


def tool_calls_of(completion: Mapping[str, Any]) -> list[ToolCall]:
    """Every tool call of every choice of a chat completion (as a dict)."""
    calls: list[ToolCall] = []
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return calls
    for c, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, Mapping) else None
        raw = message.get("tool_calls") if isinstance(message, Mapping) else None
        if not isinstance(raw, list):
            continue
        for i, call in enumerate(raw):
            function = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(function, Mapping):
                continue
            name = function.get("name")
            arguments, text = _arguments(function.get("arguments"))
            call_id = call.get("id")
            calls.append(ToolCall(c, i, call_id if isinstance(call_id, str) else None,
                                  name if isinstance(name, str) else "", arguments, text))
    return calls


def set_arguments(completion: Any, call: ToolCall, arguments: Any) -> None:
    """Replace ``call``'s arguments in ``completion`` (a dict or LiteLLM's response
    object) with ``arguments`` as JSON text."""
    text = json.dumps(arguments, ensure_ascii=False)
    choices = completion["choices"] if isinstance(completion, Mapping) else completion.choices
    message = choices[call.choice]
    message = message["message"] if isinstance(message, Mapping) else message.message
    tool_call = (message["tool_calls"] if isinstance(message, Mapping)
                 else message.tool_calls)[call.index]
    function = tool_call["function"] if isinstance(tool_call, Mapping) else tool_call.function
    if isinstance(function, dict):
        function["arguments"] = text
    else:
        function.arguments = text


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def streamed_tool_calls(chunks: Sequence[Mapping[str, Any]]) -> list[ToolCall]:
    """The tool calls of a streamed completion (``chat.completion.chunk`` dicts): each
    call's name and id from its deltas, its arguments the concatenated argument deltas."""
    acc: dict[tuple[int, int], list[Any]] = {}  # (choice, index) -> [id, name, text]
    for chunk in chunks:
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = _get(choice, "delta")
            deltas = _get(delta, "tool_calls") if delta is not None else None
            for tc in deltas if isinstance(deltas, list) else ():
                key = (_get(choice, "index") or 0, _get(tc, "index") or 0)
                entry = acc.setdefault(key, [None, "", ""])
                if isinstance(_get(tc, "id"), str):
                    entry[0] = _get(tc, "id")
                function = _get(tc, "function")
                if isinstance(_get(function, "name"), str):
                    entry[1] = _get(function, "name")
                if isinstance(_get(function, "arguments"), str):
                    entry[2] += _get(function, "arguments")
    calls = []
    for (c, i), (call_id, name, text) in sorted(acc.items()):
        arguments, text = _arguments(text)
        calls.append(ToolCall(c, i, call_id, name, arguments, text))
    return calls


def set_streamed_arguments(chunks: Sequence[Any], call: ToolCall, arguments: Any) -> None:
    """Replace ``call``'s arguments in buffered chunks (dicts or LiteLLM's chunk objects):
    its first argument delta carries the whole repaired JSON, the later ones nothing."""
    text = json.dumps(arguments, ensure_ascii=False)
    first = True
    for chunk in chunks:
        for choice in _get(chunk, "choices") or ():
            if (_get(choice, "index") or 0) != call.choice:
                continue
            delta = _get(choice, "delta")
            for tc in (_get(delta, "tool_calls") if delta is not None else None) or ():
                function = _get(tc, "function")
                if (_get(tc, "index") or 0) != call.index or not _get(function, "arguments"):
                    continue
                value = text if first else ""
                if isinstance(function, dict):
                    function["arguments"] = value
                else:
                    function.arguments = value
                first = False


def tool_signature(calls: list[ToolCall]) -> list[tuple[str, Any]]:
    """(name, arguments) of each call, in order: what a shadow comparison looks at."""
    return [(c.name, c.arguments) for c in calls]


def invalid_tool_call_error(
    tenant: str, alias: str, tool: str, errors: tuple[str, ...], error_result: Any
) -> dict[str, Any]:
    """The body of the structured error (OpenAI's error shape, plus modelpin's details)."""
    return {
        "error": {
            "message": (
                f"modelpin: the model's call of tool {tool!r} does not match tenant "
                f"{tenant!r}'s contract; it was not returned (failure policy "
                "structured-error)"
            ),
            "type": "invalid_tool_call",
            "param": None,
            "code": "modelpin_invalid_tool_call",
            "modelpin": {
                "tenant": tenant,
                "alias": alias,
                "tool": tool,
                "errors": list(errors),
                "result": error_result,
            },
        }
    }
