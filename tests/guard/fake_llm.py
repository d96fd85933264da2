"""A minimal OpenAI-compatible chat-completions server (the faked LLM provider).

``POST /v1/chat/completions`` with ``model`` and ``messages`` answers a completion whose
message carries one tool call, per the documented shape (``choices[0].message.
tool_calls[0].function.arguments`` is JSON text, ``finish_reason: "tool_calls"``).
Models in ``broken`` answer arguments that break the tool's contract, and so does any
model asked a last message containing ``[invalid]``; ``[fenced]`` gets valid arguments
wrapped in markdown code fences (what the ``strip-json-fences`` coercion repairs). Bearer
auth is checked (401 otherwise); a body without ``model``/``messages`` is a 400.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "sk-fake"
GOOD_ARGUMENTS = '{"clause_id": "7.2"}'
BAD_ARGUMENTS = '{"clause_id": 7}'
FENCED_ARGUMENTS = '```json\n{"clause_id": "7.2"}\n```'


class FakeLLM:
    def __init__(self, tool: str = "lookup_clause") -> None:
        self.tool = tool
        self.broken: set[str] = set()
        self.requests = 0
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body = fake._answer(self.path, self.headers.get("Authorization"), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str, auth: str | None, raw: bytes) -> tuple[int, Any]:
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": "not found", "type": "invalid_request_error",
                                   "param": None, "code": None}}
        if auth != f"Bearer {API_KEY}":
            return 401, {"error": {"message": "Incorrect API key provided",
                                   "type": "invalid_request_error", "param": None,
                                   "code": "invalid_api_key"}}
        try:
            req = json.loads(raw)
            model, messages = req["model"], req["messages"]
            assert isinstance(model, str) and isinstance(messages, list) and messages
        except (ValueError, KeyError, AssertionError, TypeError):
            return 400, {"error": {"message": "'model' and 'messages' are required",
                                   "type": "invalid_request_error", "param": None,
                                   "code": None}}
        self.requests += 1
        n = next(self._ids)
        last = messages[-1].get("content") if isinstance(messages[-1], dict) else None
        last = last if isinstance(last, str) else ""
        if model in self.broken or "[invalid]" in last:
            arguments = BAD_ARGUMENTS
        elif "[fenced]" in last:
            arguments = FENCED_ARGUMENTS
        else:
            arguments = GOOD_ARGUMENTS
        return 200, {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [{
                    "id": f"call_{n}", "type": "function",
                    "function": {"name": self.tool, "arguments": arguments}}]},
                "logprobs": None,
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        }
