"""A gateway process embedding ``modelpin.router`` that records scripted tool-call
outcomes and serves ``GET /metrics``: what the bot's live Prometheus tests scrape.

``python -m tests.bot.exporter --port P --table FILE --key B64 --state DIR``.
``POST /record {"tenant", "alias", "cohort", "calls", "failures"}`` resolves sessions
until one lands in ``cohort`` and reports ``calls`` tool calls, ``failures`` of them
failed, through ``Router.record`` (the gateway API). Optional answers: ``"answers": n``
requests reported with ``refused`` (the first ``"refused": k`` True), ``format_ok``
(the first ``"format_failed": k`` False) and ``response_tokens`` (``"tokens": m``
plus a deterministic spread of ``"spread": s``: m-s..m+s).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from modelpin.router import Router, trusted_keys
from modelpin.router.table import Decision


def main() -> None:
    ap = argparse.ArgumentParser()
    for flag in ("--table", "--key", "--state"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    registry = CollectorRegistry()
    router = Router(args.table, trusted_keys([args.key]), name="gw-bot", registry=registry,
                    state_file=f"{args.state}/floor.json")
    assert router.refresh().outcome == "accepted"
    decisions: dict[tuple[str, str, str], Decision] = {}

    def decision(tenant: str, alias: str, cohort: str) -> Decision:
        key = (tenant, alias, cohort)
        if key not in decisions:
            for i in range(100_000):
                d = router.resolve(tenant, alias, f"s{i}")
                decisions.setdefault((tenant, alias, d.cohort), d)
                if d.cohort == cohort:
                    break
        return decisions[key]

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
            self._send(200, generate_latest(registry), "text/plain; version=0.0.4")

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            d = decision(req["tenant"], req["alias"], req["cohort"])
            for i in range(req["calls"]):
                router.record(req["tenant"], req["alias"], d, tool_calls=1,
                              tool_call_failures=1 if i < req["failures"] else 0)
            spread = req.get("spread", 0)
            for i in range(req.get("answers", 0)):
                router.record(req["tenant"], req["alias"], d, latency=0.1,
                              refused=i < req.get("refused", 0),
                              format_ok=i >= req.get("format_failed", 0),
                              response_tokens=req["tokens"] + i % (2 * spread + 1) - spread)
            self._send(200, b"{}", "application/json")

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
