"""A local OpenAI-compatible chat-completions server whose models behave like providers'.

A real HTTP/1.1 server on 127.0.0.1 following the documented chat-completions API
(https://platform.openai.com/docs/api-reference/chat/create):

- ``POST /v1/chat/completions`` with ``Authorization: Bearer <key>`` (else 401
  ``invalid_api_key``), a JSON body with ``model`` and non-empty ``messages`` (else 400
  ``invalid_request_error``); an unknown model is 404 ``model_not_found``.
- A completion is ``{"id", "object": "chat.completion", "created", "model", "choices":
  [{"index": 0, "message": {"role": "assistant", "content", "refusal", "tool_calls"?},
  "logprobs": null, "finish_reason": "stop" | "tool_calls" | "content_filter"}], "usage"}``;
  a tool call is ``{"id", "type": "function", "function": {"name", "arguments": "<JSON
  text>"}}``.
- Errors are ``{"error": {"message", "type", "param", "code"}}``; a 429 carries
  ``Retry-After`` (delta-seconds or an HTTP-date).

Each model has a persona, the way provider updates misbehave:

``clean``          the right answer (from ``answers``, keyed by the last user message)
``fenced``         JSON answers wrapped in a markdown code fence
``renamed-arg``    tool calls with their first argument renamed (``clause_id`` -> ``clauseId``)
``refuser``        refuses (alternately through ``refusal`` and in plain text)
``label-shift``    a label moved to its neighbour (positive -> neutral ...)
``mostly-clean``   clean, except on about 2% of prompts (by hash): one of the above
Any model asked to judge (modelpin's judge prompt) scores ``candidate_answer`` against
``golden_answer``: 1.0 if equal (JSON compared as values), else 0.1.
``flaky:<p>``      per distinct request: first a 429 (``Retry-After: 1``), then a 503 whose
                   ``Retry-After`` is an HTTP-date, then persona ``<p>``

Every request is counted by (model, sha256 of the body): ``stats()``, or ``GET /_stats``
when the server runs as its own process (``python -m tests.bets.fake_openai CONFIG``).
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import itertools
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

API_KEY = "sk-bets-fake"
LABELS = ["positive", "neutral", "negative", "low", "medium", "high"]
REFUSAL = "I'm sorry, but I can't help with that."


def _error(message: str, error_type: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": None,
                                 "code": code}}).encode()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest) if rest else name + "Value"


def _norm(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return " ".join(text.lower().split())


class FakeOpenAI:
    def __init__(self, personas: dict[str, str], answers: dict[str, dict[str, Any]] | None = None,
                 *, latency: float = 0.0, api_key: str = API_KEY, port: int = 0) -> None:
        self.personas = dict(personas)
        self.answers = dict(answers or {})
        self.latency = latency
        self.api_key = api_key
        self.calls: Counter[tuple[str, str]] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.statuses: Counter[int] = Counter()
        self.log: list[tuple[str, str]] = []
        """(model, request digest) of every answered request, in order."""
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None
                     ) -> None:
                with outer.lock:
                    outer.statuses[status] += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/_stats":
                    self.send(200, json.dumps(outer.stats()).encode())
                else:
                    self.send(404, _error(f"no route {self.path}", "invalid_request_error",
                                          None))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send(404, _error(f"no route {self.path}", "invalid_request_error",
                                          None))
                    return
                if self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    self.send(401, _error("Incorrect API key provided.",
                                          "invalid_request_error", "invalid_api_key"))
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.send(400, _error("We could not parse the JSON body of your request.",
                                          "invalid_request_error", None))
                    return
                if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                        or not isinstance(body.get("messages"), list) or not body["messages"]):
                    self.send(400, _error("'model' and a non-empty 'messages' are required.",
                                          "invalid_request_error", None))
                    return
                status, payload, headers = outer.respond(body, raw)
                if outer.latency:
                    time.sleep(outer.latency)
                self.send(status, payload, headers)

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 1024
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", port), Handler)
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    # ---- bookkeeping ------------------------------------------------------------------

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
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- behaviour ----------------------------------------------------------------------

    def respond(self, body: dict[str, Any], raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        model = body["model"]
        persona = self.personas.get(model)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self.attempts[(model, digest)] += 1
            attempt = self.attempts[(model, digest)]
        if persona is None:
            return 404, _error(f"The model `{model}` does not exist or you do not have access "
                               "to it.", "invalid_request_error", "model_not_found"), {}
        if persona.startswith("flaky:"):
            persona = persona.split(":", 1)[1]
            if attempt == 1:
                return 429, _error("Rate limit reached for requests", "requests",
                                   "rate_limit_exceeded"), {"Retry-After": "1"}
            if attempt == 2:
                when = email.utils.formatdate(time.time() + 1, usegmt=True)
                return 503, _error("The server is overloaded.", "server_error",
                                   "server_is_overloaded"), {"Retry-After": when}
        message, finish = self._message(persona, body, digest)
        with self.lock:
            self.calls[(model, digest)] += 1
            self.log.append((model, digest))
        tokens_in = len(raw) // 4
        tokens_out = len(json.dumps(message)) // 4
        completion = {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out},
        }
        return 200, json.dumps(completion).encode(), {}

    def _truth(self, body: dict[str, Any]) -> dict[str, Any]:
        last = next((m.get("content") for m in reversed(body["messages"])
                     if m.get("role") == "user"), "") or ""
        return self.answers.get(last, {"content": f"echo: {last}"})

    def _message(self, persona: str, body: dict[str, Any], digest: str
                 ) -> tuple[dict[str, Any], str]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        system = str(body["messages"][0].get("content") or "")
        if persona == "mostly-clean":
            last = str(body["messages"][-1].get("content") or "")
            slot = int(hashlib.sha256(last.encode()).hexdigest(), 16) % 50
            truth = self._truth(body)
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
        if system.startswith("You grade whether"):
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
        truth = self._truth(body)
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


def main(argv: list[str]) -> None:
    """Serve as a process: ``CONFIG`` is a JSON file ``{"personas", "answers" | "repo",
    "latency"}`` ("repo": answers from that fleet's suites); prints ``PORT <n>`` once
    listening, serves until killed."""
    with open(argv[0], encoding="utf-8") as fh:
        config = json.load(fh)
    answers = config.get("answers") or {}
    if config.get("repo"):
        answers.update(answers_from_suites(Path(config["repo"])))
    server = FakeOpenAI(config["personas"], answers, latency=float(config.get("latency", 0)),
                        api_key=str(config.get("api_key", API_KEY)))
    print(f"PORT {server.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
