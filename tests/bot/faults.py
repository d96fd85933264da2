"""Helpers of the fault-injection suite: a fleet of rollouts that all regress, and a
small Prometheus HTTP API on loopback that answers the bot's batched queries from a
table and can misbehave per metric or per tenant (drip, ``data: null``, huge numbers).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.fleetkit import NOW, FleetSpec, cohort, commit_all, evidence, git, init_repo, tenant

TENANTS = ("r1", "r2", "r3", "r4")
SINCE = "2026-03-20T00:00:00Z"
FIELDS = ("requests", "tool_calls", "tool_call_failures", "tasks", "tasks_completed",
          "coercions", "downstream_errors")


def spec(prometheus: bool = False) -> FleetSpec:
    s = FleetSpec(tenants={})
    s.add(tenant("p1", group="pioneers", pin="gpt-5-2026-03-14"))
    for tid in TENANTS:
        s.add(tenant(tid, group="early", rollout={
            "candidate": "gpt-5-2026-03-14", "stage": "canary", "percent": 10, "since": SINCE}))
        s.evidence.append(evidence(tid))
    if prometheus:
        assert s.signals is not None
        for name, signal in s.signals["signals"].items():
            signal["prometheus"] = QUERIES[name]
    return s


def _q(metric: str) -> str:
    sel = 'tenant="{tenant}",alias="{alias}",cohort="{cohort}"'
    return f"sum(last_over_time(mp_{metric}{{{sel}}}[{{window}}]))"


QUERIES: dict[str, dict[str, str]] = {
    "tool_call_failure_rate": {"events": _q("tool_call_failures"), "total": _q("tool_calls")},
    "task_completion_rate": {"events": _q("tasks_completed"), "total": _q("tasks")},
    "semantic_similarity": {"mean": _q("similarity_mean"), "count": _q("similarity_count")},
    "coercion_rate": {"events": _q("coercions"), "total": _q("requests")},
    "downstream_error_rate": {"events": _q("downstream_errors"), "total": _q("requests")},
}


def records() -> list[dict[str, Any]]:
    """Every rollout: a healthy stable cohort and a canary whose tool calls regress."""
    out = []
    for tid in TENANTS:
        out.append(cohort(tid, "primary", "stable"))
        out.append(cohort(tid, "primary", "canary", requests=6000, tool_calls=2400,
                          tool_call_failures=120, tasks=1200, tasks_completed=1140,
                          coercions=12, downstream_errors=18))
    return out


def repo(tmp_path: Path, *, prometheus: bool = False) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = init_repo(tmp_path / "work")
    spec(prometheus).write(work)
    commit_all(work, "fleet", date=NOW)
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-q", "origin", "main")
    return work


def write_telemetry(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"version": 1, "generated_at": NOW, "records": recs}))
    return path


@dataclass
class FakePrometheus:
    """``POST|GET /api/v1/query`` over a table of (tenant, alias, cohort) -> metric values.

    ``faults`` maps a metric name to a behaviour: ``"drip"`` (one byte a second),
    ``"null"`` (``data: null``), or a callable giving the raw string value per tenant.
    """

    table: dict[tuple[str, str, str], dict[str, Any]]
    faults: dict[str, Any] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                fake._answer(self, form["query"][0])

            def handle_one_request(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle_one_request()  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, h: BaseHTTPRequestHandler, query: str) -> None:
        self.queries.append(query)
        metric = re.search(r"mp_(\w+)\{", query)
        name = metric.group(1) if metric else ""
        fault = self.faults.get(name)
        if fault == "null":
            return _send(h, {"status": "success", "data": None})
        result = []
        for (t, a, c), values in sorted(self.table.items()):
            if name not in values:
                continue
            raw = fault(t, values[name]) if callable(fault) else str(values[name])
            result.append({"metric": {"tenant": t, "alias": a, "cohort": c},
                           "value": [1774440000.0, raw]})
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        if fault == "drip":
            data = json.dumps(body).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            for i in range(len(data)):
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()
                time.sleep(1.0)
            return None
        return _send(h, body)


def _send(h: BaseHTTPRequestHandler, body: Any) -> None:
    data = json.dumps(body).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def prometheus_table(recs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    table: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in recs:
        values: dict[str, Any] = {f: r[f] for f in FIELDS if f in r}
        sim = r.get("semantic_similarity")
        if sim:
            values["similarity_mean"] = sim["mean"]
            values["similarity_count"] = sim["count"]
        table[(r["tenant"], r["alias"], r["cohort"])] = values
    return table


PerTenant = Callable[[str, Any], str]


def only_for(target: str, bad: str) -> PerTenant:
    return lambda t, value: bad if t == target else str(value)
