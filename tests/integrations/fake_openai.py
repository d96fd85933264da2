"""A local OpenAI-compatible chat-completions server for tests (the only faked provider).

It follows the documented API (https://platform.openai.com/docs/api-reference/chat):

- ``POST /v1/chat/completions`` (also ``/chat/completions``) with a JSON body that has
  ``model`` and a non-empty ``messages`` list; otherwise 400 with an ``invalid_request_error``.
- ``Authorization: Bearer <key>`` must match the server's key; otherwise 401
  ``invalid_api_key``.
- A completion is ``{"id", "object": "chat.completion", "created", "model", "choices":
  [{"index": 0, "message": {"role": "assistant", "content", "tool_calls"?},
  "finish_reason": "stop" | "tool_calls"}], "usage"}``; a tool call is ``{"id", "type":
  "function", "function": {"name", "arguments": "<JSON text>"}}``.
- ``stream: true`` answers ``text/event-stream`` chunks (``chat.completion.chunk`` with
  ``delta``), then ``data: [DONE]``.
- Errors are ``{"error": {"message", "type", "param", "code"}}``; 429 carries
  ``Retry-After``.

Replies are scripted per model name (``script``); every request is recorded
(``requests``), so a test can assert what each model was asked.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

API_KEY = "sk-fake-provider-key"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: text, tool calls, or an HTTP error."""

    content: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()  # (name, arguments as JSON text)
    status: int = 200
    error_type: str = ""
    retry_after: int | None = None
    delay: float = 0.0

    @staticmethod
    def text(content: str, *, delay: float = 0.0) -> Reply:
        return Reply(content=content, delay=delay)

    @staticmethod
    def tool_call(name: str, arguments: str, *, delay: float = 0.0) -> Reply:
        return Reply(tool_calls=((name, arguments),), delay=delay)

    @staticmethod
    def error(
        status: int, error_type: str = "server_error", retry_after: int | None = None
    ) -> Reply:
        return Reply(status=status, error_type=error_type, retry_after=retry_after)


@dataclass
class Recorded:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _State:
    scripts: dict[str, Callable[[dict[str, Any]], Reply]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error_body(message: str, error_type: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    ).encode()


class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 in a daemon thread. ``base_url`` ends in ``/v1``."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self._state = _State()
        self._ids = itertools.count(1)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                            for m in sorted(outer._state.scripts)]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode())
                    return
                self._send(404, _error_body(f"no route {self.path}", "invalid_request_error", None))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send(404, _error_body(f"no route {self.path}", "invalid_request_error",
                                                None))
                    return
                if self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    self._send(401, _error_body("Incorrect API key provided.",
                                                "invalid_request_error", "invalid_api_key"))
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, _error_body("We could not parse the JSON body of your "
                                                "request.", "invalid_request_error", None))
                    return
                if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                        or not isinstance(body.get("messages"), list) or not body["messages"]):
                    self._send(400, _error_body("'model' and a non-empty 'messages' are "
                                                "required.", "invalid_request_error", None))
                    return
                outer._answer(self, body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    # --- scripting ---------------------------------------------------------------------

    def script(self, model: str, reply: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        """Answer requests for ``model`` with ``reply`` (or ``reply(body)``)."""
        fn = reply if callable(reply) else (lambda _body, r=reply: r)
        with self._state.lock:
            self._state.scripts[model] = fn

    @property
    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    def requests_for(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.model == model]

    def clear(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- answering ---------------------------------------------------------------------

    def _answer(self, handler: Any, body: dict[str, Any]) -> None:
        model = body["model"]
        with self._state.lock:
            self._state.requests.append(Recorded(model, body, dict(handler.headers.items())))
            fn = self._state.scripts.get(model)
        if fn is None:
            handler._send(404, _error_body(f"The model `{model}` does not exist or you do not "
                                           "have access to it.", "invalid_request_error",
                                           "model_not_found"))
            return
        reply = fn(body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            headers = {} if reply.retry_after is None else {"Retry-After": str(reply.retry_after)}
            handler._send(reply.status, _error_body(f"scripted {reply.status} for {model}",
                                                    reply.error_type, None), headers)
            return
        n = next(self._ids)
        tool_calls = [
            {"id": f"call_{n}_{i}", "type": "function",
             "function": {"name": name, "arguments": args}}
            for i, (name, args) in enumerate(reply.tool_calls)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": reply.content,
                                   "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        finish = "tool_calls" if tool_calls else "stop"
        created = int(time.time())
        if body.get("stream") is True:
            self._stream(handler, f"chatcmpl-{n}", created, model, message, finish)
            return
        completion = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "system_fingerprint": "fp_fake",
        }
        handler._send(200, json.dumps(completion).encode())

    @staticmethod
    def _stream(handler: Any, cid: str, created: int, model: str, message: dict[str, Any],
                finish: str) -> None:
        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            doc = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "choices": [{"index": 0, "delta": delta,
                                                "logprobs": None,
                                                "finish_reason": finish_reason}]}
            return b"data: " + json.dumps(doc).encode() + b"\n\n"

        parts = [chunk({"role": "assistant", "content": ""}, None)]
        if message.get("content"):
            parts.append(chunk({"content": message["content"]}, None))
        for i, tc in enumerate(message.get("tool_calls", [])):
            parts.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                                "function": {"name": tc["function"]["name"],
                                                             "arguments": ""}}]}, None))
            parts.append(chunk({"tool_calls": [{"index": i, "function": {
                "arguments": tc["function"]["arguments"]}}]}, None))
        parts.append(chunk({}, finish))
        parts.append(b"data: [DONE]\n\n")
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for p in parts:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
        handler.wfile.write(b"0\r\n\r\n")
