"""The shared fake provider speaks the documented chat-completions API: checked through
the real ``openai`` SDK (which parses every documented shape) and raw sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI({"persona-model": "clean", "flaky-model": "flaky:clean"},
                        {"hello": {"content": "hi there"}})
    yield server
    server.close()


def sdk(fake: FakeOpenAI, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=key, max_retries=0)


def test_a_persona_answers_as_a_documented_completion(fake: FakeOpenAI) -> None:
    done = sdk(fake).chat.completions.create(model="persona-model", messages=MESSAGES)
    assert done.object == "chat.completion" and done.model == "persona-model"
    assert done.choices[0].message.content == "hi there"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.total_tokens > 0
    assert fake.stats()["answered"] == 1 and fake.requests_for("persona-model")[0].body[
        "messages"] == MESSAGES


def test_a_script_wins_over_a_persona_and_makes_tool_calls(fake: FakeOpenAI) -> None:
    fake.script("persona-model", Reply.tool_call("lookup", '{"id": "1"}'))
    done = sdk(fake).chat.completions.create(model="persona-model", messages=MESSAGES)
    [call] = done.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"id": "1"}
    assert done.choices[0].finish_reason == "tool_calls"


def test_errors_have_the_documented_shape_and_status(fake: FakeOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        sdk(fake, "sk-wrong").chat.completions.create(model="persona-model", messages=MESSAGES)
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk(fake).chat.completions.create(model="nope", messages=MESSAGES)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk(fake).chat.completions.create(model="persona-model", messages=[])
    r = httpx.post(fake.base_url + "/chat/completions", content=b"{not json",
                   headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert fake.stats()["statuses"] == {"401": 1, "404": 1, "400": 2}


def test_flaky_says_429_then_503_with_an_http_date_then_answers(fake: FakeOpenAI) -> None:
    client = sdk(fake)
    with pytest.raises(openai.RateLimitError) as first:
        client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert first.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as second:
        client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert second.value.status_code == 503
    assert second.value.response.headers["retry-after"].endswith(" GMT")
    done = client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert done.choices[0].message.content == "hi there"
    assert fake.stats()["max_same_request"] == 1 and fake.stats()["requests"] == 3


def test_a_scripted_error_carries_retry_after(fake: FakeOpenAI) -> None:
    fake.script("persona-model", Reply.error(429, "requests", retry_after=7))
    r = httpx.post(fake.base_url + "/chat/completions", json={"model": "persona-model",
                                                              "messages": MESSAGES},
                   headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_a_stream_is_server_sent_events_the_sdk_reassembles(fake: FakeOpenAI) -> None:
    fake.script("persona-model", Reply(content="streamed", tool_calls=(("f", '{"a": 1}'),)))
    chunks = list(sdk(fake).chat.completions.create(model="persona-model", messages=MESSAGES,
                                                    stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "streamed"
    args = "".join(tc.function.arguments or "" for c in chunks
                   for tc in (c.choices[0].delta.tool_calls or []) if tc.function)
    assert json.loads(args) == {"a": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_models_are_listed(fake: FakeOpenAI) -> None:
    fake.script("scripted", Reply.text("x"))
    assert [m.id for m in sdk(fake).models.list()] == ["flaky-model", "persona-model",
                                                        "scripted"]


def raw(fake: FakeOpenAI, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_keep_alive_chunked_bodies_and_connection_close_on_the_wire(fake: FakeOpenAI) -> None:
    body = json.dumps({"model": "persona-model", "messages": MESSAGES}).encode()
    auth = f"Authorization: Bearer {API_KEY}\r\n".encode()
    first = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth
             + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    second = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth
              + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    out = raw(fake, first + second)  # two requests on one connection, then closed
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.count(b"hi there") == 2
    assert b"Connection: close" in out.split(b"HTTP/1.1 200 OK")[2]


def test_a_malformed_request_line_is_a_400_not_a_hang(fake: FakeOpenAI) -> None:
    out = raw(fake, b"NONSENSE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b"invalid_request_error" in out
