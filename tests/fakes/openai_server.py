"""The local OpenAI-compatible chat-completions server: the one faked LLM provider of the
tests and benchmarks (BETS, the LiteLLM integration).

A real HTTP/1.1 server on 127.0.0.1 (asyncio, keep-alive, one event loop in a daemon
thread, or its own process: ``python -m tests.fakes.openai_server CONFIG``) following the
documented API (https://platform.openai.com/docs/api-reference/chat/create):

- ``POST /v1/chat/completions`` (also ``/chat/completions``) with ``Authorization: Bearer
  <key>`` (else 401 ``invalid_api_key``) and a JSON body with ``model`` and a non-empty
  ``messages`` list (else 400 ``invalid_request_error``); an unknown model is 404
  ``model_not_found``. ``GET /v1/models`` lists the models.
- A completion is ``{"id", "object": "chat.completion", "created", "model", "choices":
  [{"index": 0, "message": {"role": "assistant", "content", "refusal", "tool_calls"?},
  "logprobs": null, "finish_reason": "stop" | "tool_calls"}], "usage",
  "system_fingerprint"}``; a tool call is ``{"id", "type": "function", "function":
  {"name", "arguments": "<JSON text>"}}``.
- ``stream: true`` answers ``text/event-stream`` chunks (``chat.completion.chunk`` with
  ``delta``; tool calls by ``index``), then ``data: [DONE]``.
- Errors are ``{"error": {"message", "type", "param", "code"}}``; a 429 or 503 may carry
  ``Retry-After`` (delta-seconds or an HTTP-date). Responses carry ``x-request-id``.

A model answers by its script if it has one (``script(model, Reply | fn(body))``), else
by its persona (``personas``, see ``tests.fakes.personas``), else 404. ``latency`` is
added to every chat-completions answer (a script's ``Reply.delay`` on top).

Bookkeeping: every chat-completions request is recorded (``requests``, ``requests_for``,
``clear``) and counted by (model, sha256 of its canonical body): ``attempts`` (every
request), ``calls`` and ``log`` (answered with 200), ``statuses``; ``stats()`` sums them
up, also served as ``GET /_stats`` (for a server in its own process).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import http
import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.personas import answers_from_suites, persona_message

API_KEY = "sk-fake-provider-key"
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
MODELS_PATHS = ("/v1/models", "/models")


@dataclass(frozen=True)
class Reply:
    """One scripted answer: text, tool calls, or an HTTP error."""

    content: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()  # (name, arguments as JSON text)
    status: int = 200
    error_type: str = ""
    retry_after: int | str | None = None
    delay: float = 0.0
    refusal: str | None = None  # the message's ``refusal`` field
    finish_reason: str | None = None  # default: ``tool_calls`` or ``stop``

    @staticmethod
    def text(content: str, *, delay: float = 0.0) -> Reply:
        return Reply(content=content, delay=delay)

    @staticmethod
    def tool_call(name: str, arguments: str, *, delay: float = 0.0) -> Reply:
        return Reply(tool_calls=((name, arguments),), delay=delay)

    @staticmethod
    def error(status: int, error_type: str = "server_error",
              retry_after: int | str | None = None) -> Reply:
        return Reply(status=status, error_type=error_type, retry_after=retry_after)


@dataclass
class Recorded:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float = 0.0
    stream: list[bytes] | None = None  # SSE events: sent chunked instead of ``body``


def error_body(message: str, error_type: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": None,
                                 "code": code}}).encode()


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we can answer."""


class FakeOpenAI:
    """The server, listening on 127.0.0.1 once constructed. ``base_url`` ends in ``/v1``."""

    def __init__(self, personas: dict[str, str] | None = None,
                 answers: dict[str, dict[str, Any]] | None = None, *, latency: float = 0.0,
                 api_key: str = API_KEY, port: int = 0, record: bool = True) -> None:
        self.personas = dict(personas or {})
        self.answers = dict(answers or {})
        self.latency = latency
        self.api_key = api_key
        self.record = record
        """Keep every request's body and headers (``requests``); off for long benchmark runs,
        whose counters are enough."""
        self.scripts: dict[str, Callable[[dict[str, Any]], Reply]] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.statuses: Counter[int] = Counter()
        self.log: list[tuple[str, str]] = []
        """(model, request digest) of every answered request, in order."""
        self._requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-openai",
                                        daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", port, backlog=1024,
                                 limit=1 << 20), self._loop).result()
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    # ---- scripting and bookkeeping ------------------------------------------------------

    def script(self, model: str, reply: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        """Answer requests for ``model`` with ``reply`` (or ``reply(body)``)."""
        fn = reply if callable(reply) else (lambda _body, r=reply: r)
        with self.lock:
            self.scripts[model] = fn

    @property
    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[Recorded]:
        return [r for r in self.requests if r.model == model]

    def clear(self) -> None:
        with self.lock:
            self._requests.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            per_model: Counter[str] = Counter()
            for (model, _h), n in self.calls.items():
                per_model[model] += n
            return {"answered": sum(self.calls.values()), "per_model": dict(per_model),
                    "max_same_request": max(self.calls.values(), default=0),
                    "statuses": {str(k): v for k, v in self.statuses.items()},
                    "requests": sum(self.attempts.values())}

    def answered(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # ---- HTTP/1.1 -------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    method, path, version, headers, body = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except (BadRequest, asyncio.LimitOverrunError, ValueError) as exc:
                    self._write(writer, Response(400, error_body(
                        f"malformed request: {exc}", "invalid_request_error", None), {}), False)
                    await writer.drain()
                    return
                lower = {k.lower(): v for k, v in headers.items()}
                connection = lower.get("connection", "").lower()
                keep = connection != "close" if version == "HTTP/1.1" else \
                    connection == "keep-alive"
                response = self._route(method, path, headers, lower, body)
                if response.delay > 0:
                    await asyncio.sleep(response.delay)
                self._write(writer, response, keep)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()

    def _write(self, writer: asyncio.StreamWriter, response: Response, keep: bool) -> None:
        with self.lock:
            self.statuses[response.status] += 1
        head = [f"HTTP/1.1 {response.status} {http.HTTPStatus(response.status).phrase}",
                f"Date: {email.utils.formatdate(usegmt=True)}",
                f"x-request-id: req_{next(self._ids)}"]
        if response.stream is None:
            head += ["Content-Type: application/json", f"Content-Length: {len(response.body)}"]
        else:
            head += ["Content-Type: text/event-stream", "Cache-Control: no-cache",
                     "Transfer-Encoding: chunked"]
        head += [f"{k}: {v}" for k, v in response.headers.items()]
        if not keep:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if response.stream is None:
            writer.write(data + response.body)
            return
        parts = [data]
        parts += [b"%x\r\n%s\r\n" % (len(p), p) for p in response.stream]
        parts.append(b"0\r\n\r\n")
        writer.write(b"".join(parts))

    def _route(self, method: str, path: str, headers: dict[str, str], lower: dict[str, str],
               raw: bytes) -> Response:
        path = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and path == "/_stats":
            return Response(200, json.dumps(self.stats()).encode(), {})
        if method == "GET" and path in MODELS_PATHS:
            with self.lock:
                names = sorted(set(self.scripts) | set(self.personas))
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in names]
            return Response(200, json.dumps({"object": "list", "data": data}).encode(), {})
        if path not in CHAT_PATHS or method not in ("GET", "POST"):
            return Response(404, error_body(f"no route {method} {path}",
                                            "invalid_request_error", None), {})
        if method != "POST":
            return Response(405, error_body(f"{method} is not allowed on {path}",
                                            "invalid_request_error", None), {"Allow": "POST"})
        if lower.get("authorization") != f"Bearer {self.api_key}":
            return Response(401, error_body("Incorrect API key provided.",
                                            "invalid_request_error", "invalid_api_key"), {})
        try:
            body = json.loads(raw)
        except ValueError:
            return Response(400, error_body("We could not parse the JSON body of your request.",
                                            "invalid_request_error", None), {})
        if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                or not isinstance(body.get("messages"), list) or not body["messages"]):
            return Response(400, error_body("'model' and a non-empty 'messages' are required.",
                                            "invalid_request_error", None), {})
        return self._chat(body, raw, headers)

    # ---- chat completions -------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], raw: bytes, headers: dict[str, str]) -> Response:
        model = body["model"]
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            if self.record:
                self._requests.append(Recorded(model, body, dict(headers)))
            self.attempts[(model, digest)] += 1
            attempt = self.attempts[(model, digest)]
            script = self.scripts.get(model)
        persona = self.personas.get(model)
        delay = self.latency
        if script is not None:
            reply = script(body)
            delay += reply.delay
            if reply.status != 200:
                extra = {} if reply.retry_after is None else \
                    {"Retry-After": str(reply.retry_after)}
                return Response(reply.status, error_body(
                    f"scripted {reply.status} for {model}", reply.error_type, None), extra, delay)
            n = next(self._ids)
            calls = [{"id": f"call_{n}_{i}", "type": "function",
                      "function": {"name": name, "arguments": args}}
                     for i, (name, args) in enumerate(reply.tool_calls)]
            message: dict[str, Any] = {"role": "assistant", "content": reply.content,
                                       "refusal": reply.refusal}
            if calls:
                message["tool_calls"] = calls
            finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        elif persona is None:
            return Response(404, error_body(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error", "model_not_found"), {}, delay)
        else:
            if persona.startswith("flaky:"):
                persona = persona.split(":", 1)[1]
                if attempt == 1:
                    return Response(429, error_body("Rate limit reached for requests",
                                                    "requests", "rate_limit_exceeded"),
                                    {"Retry-After": "1"}, delay)
                if attempt == 2:
                    when = email.utils.formatdate(time.time() + 1, usegmt=True)
                    return Response(503, error_body("The server is overloaded.", "server_error",
                                                    "server_is_overloaded"),
                                    {"Retry-After": when}, delay)
            message, finish = persona_message(persona, body, digest, self.answers)
        with self.lock:
            self.calls[(model, digest)] += 1
            self.log.append((model, digest))
        cid, created = f"chatcmpl-{next(self._ids)}", int(time.time())
        if body.get("stream") is True:
            return Response(200, b"", {}, delay, _sse(cid, created, model, message, finish))
        tokens_in, tokens_out = len(raw) // 4, len(json.dumps(message)) // 4
        completion = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out},
        }
        return Response(200, json.dumps(completion).encode(), {}, delay)


def _sse(cid: str, created: int, model: str, message: dict[str, Any], finish: str
         ) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        doc = {"id": cid, "object": "chat.completion.chunk", "created": created,
               "model": model, "system_fingerprint": "fp_fake",
               "choices": [{"index": 0, "delta": delta, "logprobs": None,
                            "finish_reason": finish_reason}]}
        return b"data: " + json.dumps(doc).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""}, None)]
    if message.get("content"):
        parts.append(chunk({"content": message["content"]}, None))
    if message.get("refusal"):
        parts.append(chunk({"refusal": message["refusal"]}, None))
    for i, tc in enumerate(message.get("tool_calls", [])):
        parts.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                            "function": {"name": tc["function"]["name"],
                                                         "arguments": ""}}]}, None))
        parts.append(chunk({"tool_calls": [{"index": i, "function": {
            "arguments": tc["function"]["arguments"]}}]}, None))
    parts.append(chunk({}, finish))
    parts.append(b"data: [DONE]\n\n")
    return parts


async def _read_request(reader: asyncio.StreamReader
                        ) -> tuple[str, str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"request line {lines[0][:80]!r}")
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"header line {line[:80]!r}")
        headers[name.strip()] = value.strip()
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(data[:-2])
        return method, path, version, headers, b"".join(chunks)
    length = int(lower.get("content-length") or 0)
    if length < 0:
        raise BadRequest("negative Content-Length")
    return method, path, version, headers, await reader.readexactly(length)


def main(argv: list[str]) -> None:
    """Serve as a process: ``CONFIG`` is a JSON file ``{"personas", "answers" | "repo",
    "latency", "api_key", "port", "record"}`` ("repo": answers from that fleet's suites); prints
    ``PORT <n>`` once listening, serves until killed."""
    with open(argv[0], encoding="utf-8") as fh:
        config = json.load(fh)
    answers = config.get("answers") or {}
    if config.get("repo"):
        answers.update(answers_from_suites(Path(config["repo"])))
    server = FakeOpenAI(config["personas"], answers, latency=float(config.get("latency", 0)),
                        api_key=str(config.get("api_key", API_KEY)),
                        port=int(config.get("port", 0)), record=bool(config.get("record", True)))
    print(f"PORT {server.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
