"""A small LLM gateway embedding ``modelpin.router``: one real process per router.

``python -m tests.guard.gateway --name gw-1 --port P --table FILE --key B64 --redis URL
--llm URL --state DIR``. ``POST /chat {"tenant", "alias", "session"}`` resolves the
route, calls the model through the chat-completions API, checks its tool call and
reports the outcome (``Decision.observe`` when there is nothing but the latency to
report, else ``record``); it answers the decision. Optional request fields stand for what a
real gateway learns elsewhere: ``prompt`` (sent to the model), ``similarity`` (a judge's
score), ``task_completed``, ``downstream_errors``, and ``shadow_arguments`` (a shadow
model's arguments for the same tool, compared with the answer's). ``GET /metrics`` is
the router's registry.
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from modelpin.router import RedisSessionStore, Router, trusted_keys
from modelpin.router.trips import TripStore
from tests.guard.fake_llm import API_KEY


def main() -> None:
    ap = argparse.ArgumentParser()
    for flag in ("--name", "--table", "--key", "--redis", "--llm", "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    registry = CollectorRegistry()
    router = Router(args.table, trusted_keys([args.key]), name=args.name, registry=registry,
                    state_file=f"{args.state}/{args.name}-floor.json",
                    session_store=RedisSessionStore.from_url(args.redis, timeout=0.2),
                    trips=TripStore.from_url(args.redis), trip_poll_interval=1.0,
                    poll_interval=0.5, max_backoff=1.0)
    router.start()
    llm = httpx.Client(base_url=args.llm, headers={"Authorization": f"Bearer {API_KEY}"},
                       timeout=5.0)

    def chat(req: dict[str, Any]) -> dict[str, Any]:
        tenant, alias, session = req["tenant"], req["alias"], req["session"]
        d = router.resolve(tenant, alias, session)
        t0 = time.perf_counter()
        prompt = req.get("prompt", "clause 7.2?")
        r = llm.post("/chat/completions", json={
            "model": d.model, "messages": [{"role": "user", "content": prompt}],
            "tools": [{"type": "function", "function": {"name": "lookup_clause"}}]})
        r.raise_for_status()
        call = r.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        try:
            arguments = json.loads(call["arguments"])
        except ValueError:
            arguments = call["arguments"]
        result = router.check_tool_call(tenant, call["name"], arguments, alias=alias,
                                        cohort=d.cohort)
        drifted = None
        if "shadow_arguments" in req:
            drift = router.compare_shadow(tenant, alias, [(call["name"], arguments)],
                                          [(call["name"], req["shadow_arguments"])])
            drifted = bool(drift)
        latency = time.perf_counter() - t0
        outcome = ("similarity", "task_completed", "downstream_errors", "refused", "format_ok",
                   "response_tokens")
        if not any(req.get(k) not in (None, 0) for k in outcome):
            d.observe(latency)  # a healthy request: only its latency to report
        else:
            router.record(tenant, alias, d, latency=latency, session_id=session,
                          similarity=req.get("similarity"),
                          task_completed=req.get("task_completed"),
                          downstream_errors=req.get("downstream_errors", 0), prompt=prompt,
                          refused=req.get("refused"), format_ok=req.get("format_ok"),
                          response_tokens=req.get("response_tokens"))
        return {"model": d.model, "cohort": d.cohort, "session_reset": d.session_reset,
                "serial": d.serial, "valid": result.valid, "router": args.name,
                "coerced": bool(result.coercions), "drifted": drifted}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), "text/plain; version=0.0.4")
            elif self.path == "/status":
                st = router.status()
                self._send(200, json.dumps({"serial": st.serial,
                                            "trips": list(router.trips_applied())}).encode(),
                           "application/json")
            else:
                self._send(404, b"", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                out = chat(json.loads(self.rfile.read(length)))
            except Exception as exc:  # report, keep serving
                self._send(500, json.dumps({"error": repr(exc)}).encode(), "application/json")
                return
            self._send(200, json.dumps(out).encode(), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
