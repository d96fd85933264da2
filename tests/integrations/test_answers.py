"""The answer's own signals the LiteLLM hook reports (refused, format kept, length): the
pure reading of a completion, then through the hook into the router's counters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from litellm.proxy._types import UserAPIKeyAuth
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.integrations.answers import AnswerSignals, answer_signals
from modelpin.integrations.litellm import ModelpinHook
from modelpin.integrations.settings import parse_settings
from modelpin.router import Router
from modelpin.router import metric_names as mn
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.integrations.harness import ALIAS, CANDIDATE, STABLE, TOOLS, fleet
from tests.router.tables import envelope, write_atomically

SCHEMA = {"type": "object", "required": ["label"],
          "properties": {"label": {"enum": ["positive", "negative"]}},
          "additionalProperties": False}
JSON_OBJECT = {"response_format": {"type": "json_object"}}


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": schema}}}


JSON_SCHEMA = {"response_format": {"type": "json_schema",
                                   "json_schema": {"name": "label", "schema": SCHEMA,
                                                   "strict": True}}}


def completion(content: str | None = "ok", *, refusal: str | None = None,
               finish: str = "stop", tokens: Any = 12, tool_calls: bool = False,
               choices: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = [{"id": "c1", "type": "function", "function": {
            "name": "lookup_clause", "arguments": '{"clause_id": "1"}'}}]
    out: dict[str, Any] = {"object": "chat.completion", "choices": [
        {"index": i, "message": message, "finish_reason": finish} for i in range(choices)]}
    if tokens is not None:
        out["usage"] = {"prompt_tokens": 5, "completion_tokens": tokens,
                        "total_tokens": 5 + (tokens if isinstance(tokens, int) else 0)}
    return out


@pytest.mark.parametrize(("request_", "answer", "expected"), [
    # no format asked: refusal and length only
    ({}, completion("hello"), AnswerSignals(False, None, 12)),
    ({}, completion(None, refusal="I can't help with that."), AnswerSignals(True, None, 12)),
    ({}, completion("", finish="content_filter"), AnswerSignals(True, None, 12)),
    ({}, completion("I'm sorry, I cannot help with that."), AnswerSignals(False, None, 12)),
    # json_object: parses as JSON
    (JSON_OBJECT, completion('{"a": 1}'), AnswerSignals(False, True, 12)),
    (JSON_OBJECT, completion('```json\n{"a": 1}\n```'), AnswerSignals(False, False, 12)),
    (JSON_OBJECT, completion('{"a": 1'), AnswerSignals(False, False, 12)),  # cut short
    (JSON_OBJECT, completion('{"a": NaN}'), AnswerSignals(False, False, 12)),
    (JSON_OBJECT, completion("[" * 100_000 + "]" * 100_000), AnswerSignals(False, False, 12)),
    (JSON_OBJECT, completion(None), AnswerSignals(False, False, 12)),
    # json_schema: valid against the schema
    (JSON_SCHEMA, completion('{"label": "positive"}'), AnswerSignals(False, True, 12)),
    (JSON_SCHEMA, completion('{"label": "neutral"}'), AnswerSignals(False, False, 12)),
    (JSON_SCHEMA, completion('{"label": "positive", "x": 1}'), AnswerSignals(False, False, 12)),
    # a refusal is a refusal, not also a format failure; a tool call is no answer to judge
    (JSON_SCHEMA, completion(None, refusal="no"), AnswerSignals(True, None, 12)),
    (JSON_OBJECT, completion(None, tool_calls=True, finish="tool_calls"),
     AnswerSignals(False, None, 12)),
    # a schema that is itself invalid, or no schema, cannot be judged
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "no-such-type"}}}},
     completion('{"a": 1}'), AnswerSignals(False, None, 12)),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     completion('{"a": 1}'), AnswerSignals(False, None, 12)),
    ({"response_format": {"type": "text"}}, completion("{"), AnswerSignals(False, None, 12)),
    ({"response_format": "json"}, completion("{"), AnswerSignals(False, None, 12)),
    # attacks on the proxy's event loop through the client's schema and the model's
    # answer: a backtracking regex, pairwise item comparison, a huge answer: not
    # validated (judged only on being JSON), so nothing runs long
    (_schema({"type": "object", "properties": {"s": {"type": "string",
                                                     "pattern": "^(a+)+$"}}}),
     completion(json.dumps({"s": "a" * 40 + "!"})), AnswerSignals(False, None, 12)),
    (_schema({"type": "object", "patternProperties": {"^(a+)+$": {"type": "string"}}}),
     completion(json.dumps({"a" * 40 + "!": "x"})), AnswerSignals(False, None, 12)),
    (_schema({"type": "array", "uniqueItems": True}),
     completion(json.dumps([{}] * 50_000)), AnswerSignals(False, None, 12)),
    (_schema({"type": "array", "items": {"type": "integer"}}),
     completion(json.dumps(list(range(20_000)))), AnswerSignals(False, None, 12)),
    (_schema({"type": "object", "properties": {"s": {"pattern": "^a$"}}}),
     completion("not json"), AnswerSignals(False, False, 12)),  # still not JSON: fails
    # n > 1: any refused choice is a refusal; every answered choice must keep the format
    (JSON_OBJECT, {"choices": [completion('{"a": 1}')["choices"][0],
                               completion("nope")["choices"][0]],
                   "usage": {"completion_tokens": 30}}, AnswerSignals(False, False, 30)),
    # usage missing or not a count: no length
    ({}, completion("hi", tokens=None), AnswerSignals(False, None, None)),
    ({}, completion("hi", tokens=True), AnswerSignals(False, None, None)),
    ({}, completion("hi", tokens=-3), AnswerSignals(False, None, None)),
    ({}, completion("hi", tokens="12"), AnswerSignals(False, None, None)),
    ({}, completion("hi", tokens=10**12), AnswerSignals(False, None, None)),
    # no choices at all: nothing known but the length
    ({}, {"choices": [], "usage": {"completion_tokens": 0}}, AnswerSignals(None, None, 0)),
    (JSON_OBJECT, {"choices": "x"}, AnswerSignals(None, None, None)),
])
def test_what_an_answer_says(request_: dict[str, Any], answer: dict[str, Any],
                             expected: AnswerSignals) -> None:
    assert answer_signals(request_, answer) == expected


# --- through the hook: the router's counters -------------------------------------------

ACME = UserAPIKeyAuth(api_key="sk-acme", team_id="t", team_metadata={"modelpin_tenant": "acme"})


def _hook(tmp_path: Path, fake: FakeOpenAI) -> ModelpinHook:
    key = signing.generate_private_key()
    table = tmp_path / "t.dsse.json"
    write_atomically(table, envelope(fleet(1), [key]))
    router = Router(table, [key.public_key()], registry=CollectorRegistry())
    router.refresh()

    async def complete(kwargs: dict[str, Any]) -> Any:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(fake.base_url + "/chat/completions", json=kwargs,
                                  headers={"Authorization": f"Bearer {fake.api_key}"})
            r.raise_for_status()
            return r.json()

    raw = {"table": str(table), "trusted_keys": [signing.public_key_b64(key.public_key())]}
    return ModelpinHook(router, parse_settings(raw, {}), complete=complete)


ANSWERS: list[dict[str, Any]] = []  # the provider's completions, as the hook saw them


def _serve(hook: ModelpinHook, fake: FakeOpenAI, session: str, **extra: Any
           ) -> dict[str, str]:
    """One request through the hook's steps, its model call sent to the fake provider."""
    data = {"model": ALIAS, "messages": [{"role": "user", "content": "label it"}],
            "metadata": {}, "proxy_server_request": {"headers": {"x-session-id": session}},
            **extra}

    async def scenario() -> dict[str, str]:
        routed = await hook.async_pre_call_hook(ACME, None, data, "acompletion")
        body = {k: v for k, v in routed.items() if k not in ("metadata", "proxy_server_request")}
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(fake.base_url + "/chat/completions", json=body,
                                  headers={"Authorization": f"Bearer {fake.api_key}"})
        answer = r.json()
        ANSWERS.append(answer)
        final = await hook.async_post_call_success_hook(routed, ACME, answer)
        headers = await hook.async_post_call_response_headers_hook(
            routed, ACME, final if final is not None else answer)
        assert headers is not None
        return headers

    return asyncio.run(scenario())


def _session(hook: ModelpinHook, cohort: str) -> str:
    return next(s for s in (f"{cohort}-{i}" for i in range(2000))
                if hook.router.resolve("acme", ALIAS, s).cohort == cohort)


def _count(hook: ModelpinHook, cohort: str, metric: mn.MetricName) -> float:
    return hook.router.telemetry.value("acme", ALIAS, cohort, metric)


def test_the_hook_reports_refusals_formats_and_lengths_per_cohort(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    try:
        hook = _hook(tmp_path, fake)
        fake.script(STABLE, lambda body: Reply(content=json.dumps({"label": "positive"})))
        fake.script(CANDIDATE, lambda body: Reply(content=None, refusal="I can't do that.")
                    if "refuse" in body["messages"][0]["content"]
                    else Reply(content='{"label": "neutral"}'))
        stable, canary = _session(hook, "stable"), _session(hook, "canary")
        ANSWERS.clear()
        assert _serve(hook, fake, stable, **JSON_SCHEMA)["x-modelpin-cohort"] == "stable"
        _serve(hook, fake, stable)  # no format asked: refusal and length only
        _serve(hook, fake, canary, **JSON_SCHEMA)  # fails the schema
        _serve(hook, fake, canary, messages=[{"role": "user", "content": "refuse"}],
               **JSON_SCHEMA)
        assert _count(hook, "stable", mn.REQUESTS) == 2
        assert _count(hook, "stable", mn.REFUSAL_CHECKS) == 2
        assert _count(hook, "stable", mn.REFUSALS) == 0
        assert _count(hook, "stable", mn.FORMAT_CHECKS) == 1
        assert _count(hook, "stable", mn.FORMAT_FAILURES) == 0
        assert _count(hook, "canary", mn.REFUSAL_CHECKS) == 2
        assert _count(hook, "canary", mn.REFUSALS) == 1
        assert _count(hook, "canary", mn.FORMAT_CHECKS) == 1  # the refusal is not judged
        assert _count(hook, "canary", mn.FORMAT_FAILURES) == 1
        # the provider's completion_tokens, reported for every answer
        tokens = [a["usage"]["completion_tokens"] for a in ANSWERS]
        assert all(t > 0 for t in tokens)
        assert _count(hook, "stable", mn.RESPONSE_TOKENS) == 2
        assert _count(hook, "canary", mn.RESPONSE_TOKENS) == 2
        exported = {s.labels["cohort"]: s.value for fam in hook.router.registry.collect()
                    for s in fam.samples if s.name == "modelpin_response_tokens_sum"
                    and s.labels["tenant"] == "acme"}
        assert exported == {"stable": tokens[0] + tokens[1], "canary": tokens[2] + tokens[3]}
    finally:
        fake.close()


def test_after_a_fallback_the_candidates_own_answer_is_reported(tmp_path: Path) -> None:
    """A canary's invalid tool call is answered by stable; what the canary said (here: a
    tool call cut off by the content filter) is what counts for the canary cohort."""
    fake = FakeOpenAI()
    try:
        hook = _hook(tmp_path, fake)
        fake.script(CANDIDATE, Reply(tool_calls=(("lookup_clause", '{"x": 1}'),),
                                     finish_reason="content_filter"))
        fake.script(STABLE, Reply(tool_calls=(("lookup_clause", '{"clause_id": "1"}'),)))
        headers = _serve(hook, fake, _session(hook, "canary"), tools=TOOLS)
        assert headers["x-modelpin-fallback"] == "stable"
        assert _count(hook, "canary", mn.REFUSALS) == 1
        assert _count(hook, "stable", mn.REFUSAL_CHECKS) == 0  # stable's re-ask is not counted
    finally:
        fake.close()


def test_a_failed_model_call_reports_no_answer_signals(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    try:
        hook = _hook(tmp_path, fake)
        data = {"model": ALIAS, "messages": [{"role": "user", "content": "x"}],
                "metadata": {}, "proxy_server_request": {"headers": {"x-session-id": "f-1"}}}

        async def scenario() -> None:
            routed = await hook.async_pre_call_hook(ACME, None, data, "acompletion")
            await hook.async_post_call_response_headers_hook(routed, ACME, None)

        asyncio.run(scenario())
        cohort = hook.router.resolve("acme", ALIAS, "f-1").cohort
        assert _count(hook, cohort, mn.DOWNSTREAM_ERRORS) == 1
        assert _count(hook, cohort, mn.REFUSAL_CHECKS) == 0
        assert _count(hook, cohort, mn.RESPONSE_TOKENS) == 0
    finally:
        fake.close()
