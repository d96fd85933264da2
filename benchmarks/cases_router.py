"""Cases 5-8: the router, measured by ``benchmarks/router_cases.py`` (the router's file).

This module only adapts: it calls those cases with the run's sizes, renames their rows
into the table's numbering and units, and adds the resolve scaling points. Router
timings are wall-clock (``time.perf_counter``): resolve throughput and latency are what
a gateway waits for. A target of ``report`` has no threshold: its ``met`` is blank.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import Row, unavailable

NAMES: dict[str, tuple[str, str, str, str]] = {
    # their case -> (our case, metric, unit, baseline name)
    "a-resolve-in-memory": ("5 resolve", "resolves/s, in-memory store, pinned sessions",
                            "/s", ""),
    "b-vs-unleash": ("5 resolve", "resolves/s vs UnleashClient is_enabled/s", "/s",
                     "UnleashClient"),
    "c-redis": ("6 redis", "resolve time, Redis store, vs bare redis-py GET", "s",
                "redis-py GET"),
    "d-verify-load": ("7 load", "table verify + load vs json.loads of the payload", "s",
                      "json.loads"),
    "d-memory": ("7 load", "router memory for the table (tracemalloc)", "MiB",
                 "payload JSON"),
    "e-swap-latency": ("8 reload", "resolve p99 during 100 swaps vs without swaps", "µs",
                       "no swaps"),
    "f-record": ("10 runtime", "resolve + observe vs resolve alone, per CPU second "
                 "(in-memory store, canary route)", "/s", "resolve alone"),
    "f-record-general": ("10 runtime", "resolve + record(latency=) vs resolve alone, per "
                         "CPU second (in-memory store, canary route)", "/s", "resolve alone"),
    "f-record-pinned": ("10 runtime", "pinned route: resolve + observe vs resolve alone, "
                        "per CPU second", "/s", "resolve alone"),
    "f-record-wall": ("10 runtime", "resolve + observe/s vs resolve alone/s, wall clock "
                      "(in-memory store)", "/s", "resolve alone"),
    "f-record-redis": ("10 runtime", "resolve + observe/s vs resolve alone/s (Redis store)",
                       "/s", "resolve alone"),
}


def _module() -> Any | None:
    try:
        from benchmarks import router_cases
    except ImportError as exc:
        if "router_cases" not in str(exc):
            raise
        return None
    return router_cases


def adapt(r: Row, tenants: str = "") -> Row:
    case, metric, unit, base_name = NAMES.get(r["case"], (r["case"], r["metric"], "", ""))
    out = {**r, "case": case, "metric": f"{metric}{tenants}", "unit": unit,
           "baseline_name": base_name, "note": r.get("note", f"router_cases {r['case']}"),
           "runs": r.get("runs", 0)}
    if unit == "MiB":
        out["value"] = r["value"] / 2**20
        out["baseline"] = r["baseline"] / 2**20 if r.get("baseline") else None
    if str(r.get("target", "")).strip() == "report":
        out["met"] = None
    return out


def router_rows(tenants: int, quick: bool,
                log: Callable[[str], None]) -> list[Row]:
    rc = _module()
    if rc is None:
        return [unavailable(case, metric, "", "benchmarks/router_cases.py is not there yet")
                for case, metric, _u, _b in NAMES.values()]
    memory_tenants = 10_000 if quick else 100_000
    calls: list[tuple[str, Callable[[], list[Row]], str]] = [
        ("5", lambda: rc.case_resolve_and_unleash(n_tenants=tenants), f" ({tenants:,} tenants)"),
        ("6", lambda: rc.case_redis(), ""),
        ("7", lambda: rc.case_load(n_tenants=tenants, memory_tenants=memory_tenants), ""),
        ("8", lambda: rc.case_swap_latency(), ""),
        ("9", lambda: rc.case_record(n_tenants=tenants), f" ({tenants:,} tenants)"),
    ]
    rows: list[Row] = []
    for key, call, suffix in calls:
        log(f"case {key}: router")
        try:
            for r in call():
                label = suffix
                if r["case"] == "d-verify-load":
                    label = f" ({tenants:,} tenants)"
                elif r["case"] == "d-memory":
                    label = f" ({memory_tenants:,} tenants)"
                rows.append(adapt(r, label))
        except BaseException as exc:  # router_cases raises SystemExit without redis-server
            if isinstance(exc, KeyboardInterrupt):
                raise
            rows.append(unavailable(f"{key} router", f"router case {key}", "",
                                    f"failed: {exc!r}"))
    return rows


def resolve_time(n: int) -> float | None:
    """Seconds per in-memory resolve (pinned sessions) with an ``n``-tenant table."""
    rc = _module()
    if rc is None:
        return None
    from modelpin import signing
    from modelpin.router import InMemorySessionStore

    key = signing.generate_private_key()
    with tempfile.TemporaryDirectory() as tmp:
        _, env = rc.build_signed_table(n, key)
        router = rc._router(env, key, Path(tmp), max_bytes=len(env) + 1,
                            session_store=InMemorySessionStore(max_sessions=1_000_000))
        rate: float = rc._resolve_rate(router)
    return 1 / rate
