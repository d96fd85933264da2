"""Router benchmarks: each case returns rows {"case", "metric", "value", "baseline",
"ratio", "target", "met"}; ``python benchmarks/router_cases.py`` prints them.

Cases: (a) resolves/s with pinned in-memory sessions; (b) the same against UnleashClient's
is_enabled on a bootstrapped 25% flexibleRollout flag; (c) resolve with the Redis store
against a bare redis-py GET on the same server; (d) verify+load of an N-tenant table
against json.loads of its payload, and router memory for 100,000 tenants; (e) resolve
p99 latency while the table is swapped 100 times against without swaps; (f) resolve
then ``decision.observe(latency)`` (a healthy request's report) against resolve alone.
Timings are medians of several runs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from modelpin import signing
from modelpin.router import (
    InMemorySessionStore,
    RedisSessionStore,
    Router,
    TrustedTableSet,
    trusted_keys,
)

Row = dict[str, Any]
SESSIONS = [f"session-{i}" for i in range(100_000)]
TENANT, ALIAS = "tenant-1", "primary"


def _salt(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def build_payload(n: int, serial: int = 1, percent: float = 25) -> bytes:
    """An n-tenant payload: per tenant a canary chat alias, a pinned embedding alias and
    one tool contract (sorted, compact JSON; canonical enough for these inputs)."""
    tenants = {}
    for i in range(n):
        t = f"tenant-{i}"
        tenants[t] = {
            "group": "standard",
            "failure_policy": "fallback-stable",
            "tools": {"lookup": {"type": "object", "required": ["id"],
                                 "properties": {"id": {"type": "string"}}}},
            "aliases": {
                ALIAS: {"kind": "chat", "stable": "m-old", "candidate": "m-new",
                        "mode": "canary", "paused": False, "percent": percent,
                        "salt": _salt(t, ALIAS, "m-new"), "since": "2026-03-20T10:00:00Z",
                        "drain_seconds": 300},
                "embedder": {"kind": "embedding", "stable": "e-1", "candidate": None,
                             "mode": "pinned", "paused": False, "percent": 0,
                             "salt": _salt(t, "embedder", ""), "since": None,
                             "drain_seconds": 300},
            },
        }
    doc = {
        "format": "modelpin.routing-table/v1", "serial": serial,
        "source": {"commit": "0" * 40},
        "issued_at": "2026-03-20T10:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
        "models": {"m-old": {"provider": "openai", "kind": "chat"},
                   "m-new": {"provider": "openai", "kind": "chat"},
                   "e-1": {"provider": "openai", "kind": "embedding"}},
        "tenants": tenants,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def build_signed_table(
    n: int, key: Ed25519PrivateKey, serial: int = 1, percent: float = 25
) -> tuple[bytes, bytes]:
    """(payload bytes, DSSE envelope bytes) of an n-tenant table."""
    body = build_payload(n, serial, percent)
    return body, signing.dump_envelope(signing.sign(body, [key]))


def _router(env: bytes, key: Ed25519PrivateKey, workdir: Path, **kw: Any) -> Router:
    path = workdir / f"table-{time.monotonic_ns()}.json"
    path.write_bytes(env)
    router = Router(path, trusted_keys([key.public_key()]), registry=CollectorRegistry(), **kw)
    result = router.refresh()
    assert result.outcome == "accepted", result.error
    return router


def _median_rate(fn: Callable[[], int], runs: int = 5) -> float:
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        rates.append(count / (time.perf_counter() - t0))
    return statistics.median(rates)


def _row(case: str, metric: str, value: float, baseline: float | None, target: str,
         met: bool, ratio: float | None = None) -> Row:
    if ratio is None and baseline:
        ratio = value / baseline
    return {"case": case, "metric": metric, "value": round(value, 6),
            "baseline": None if baseline is None else round(baseline, 6),
            "ratio": None if ratio is None else round(ratio, 3), "target": target, "met": met}


# --- (a) + (b) -------------------------------------------------------------------------


def _resolve_rate(router: Router) -> float:
    resolve = router.resolve
    for s in SESSIONS:  # pin every session first
        resolve(TENANT, ALIAS, s)

    def run() -> int:
        for s in SESSIONS:
            resolve(TENANT, ALIAS, s)
        return len(SESSIONS)

    return _median_rate(run, runs=7)


def _unleash_rate(workdir: Path) -> float:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    cache = FileCache("modelpin-bench", directory=str(workdir / "unleash"))
    cache.bootstrap_from_dict({"version": 1, "features": [{
        "name": "canary", "enabled": True, "strategies": [{
            "name": "flexibleRollout",
            "parameters": {"rollout": "25", "stickiness": "sessionId", "groupId": "canary"},
        }],
    }]})
    client = UnleashClient(
        url="http://127.0.0.1:9/api", app_name="modelpin-bench", disable_metrics=True,
        disable_registration=True, cache=cache, cache_directory=str(workdir / "unleash"),
    )
    client.initialize_client(fetch_toggles=False)
    try:
        hits = sum(client.is_enabled("canary", {"sessionId": s}) for s in SESSIONS[:2000])
        assert 300 < hits < 700, hits  # the flag really is a 25% rollout

        def run() -> int:
            for s in SESSIONS:
                client.is_enabled("canary", {"sessionId": s})
            return len(SESSIONS)

        return _median_rate(run, runs=3)
    finally:
        client.destroy()


def case_resolve_and_unleash(n_tenants: int = 1000) -> list[Row]:
    key = signing.generate_private_key()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _, env = build_signed_table(n_tenants, key)
        router = _router(env, key, workdir,
                         session_store=InMemorySessionStore(max_sessions=1_000_000))
        rate = _resolve_rate(router)
        unleash = _unleash_rate(workdir)
    return [
        _row("a-resolve-in-memory", "resolves_per_s", rate, None, ">= 1000000",
             rate >= 1_000_000),
        _row("b-vs-unleash", "resolves_per_s_vs_is_enabled_per_s", rate, unleash, ">= 15x",
             rate / unleash >= 15),
    ]


# --- (c) Redis -------------------------------------------------------------------------


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not on PATH (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.01)
    client.close()
    return proc, port


def case_redis(n_sessions: int = 5_000) -> list[Row]:
    import redis

    key = signing.generate_private_key()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, port = _start_redis(workdir)
        try:
            url = f"redis://127.0.0.1:{port}/0"
            store = RedisSessionStore.from_url(url, timeout=1.0)
            _, env = build_signed_table(100, key)
            router = _router(env, key, workdir, session_store=store)
            sessions = SESSIONS[:n_sessions]
            for s in sessions:
                router.resolve(TENANT, ALIAS, s)

            def resolves() -> int:
                for s in sessions:
                    router.resolve(TENANT, ALIAS, s)
                return len(sessions)

            bare = redis.Redis.from_url(url)
            prefix = f"modelpin:session:{_salt(TENANT, ALIAS, 'm-new')}:"
            get = bare.get

            def gets() -> int:
                for s in sessions:
                    get(prefix + s)
                return len(sessions)

            # Alternate the two so both see the same (shared, noisy) machine.
            resolve_rates, get_rates = [], []
            for _ in range(7):
                resolve_rates.append(_median_rate(resolves, runs=1))
                get_rates.append(_median_rate(gets, runs=1))
            resolve_rate = statistics.median(resolve_rates)
            get_rate = statistics.median(get_rates)
        finally:
            proc.kill()
            proc.wait()
    # time per resolve / time per bare GET, the median of the per-pair ratios
    ratio = statistics.median(g / r for g, r in zip(get_rates, resolve_rates, strict=True))
    return [_row("c-redis", "resolve_time_vs_bare_get_time", 1 / resolve_rate, 1 / get_rate,
                 "<= 1.3x", ratio <= 1.3, ratio)]


# --- (d) load + memory -----------------------------------------------------------------


def case_load(n_tenants: int = 10_000, memory_tenants: int = 100_000) -> list[Row]:
    key = signing.generate_private_key()
    keys = trusted_keys([key.public_key()])
    body, env = build_signed_table(n_tenants, key)
    now = time.time()

    def verify_load() -> None:
        TrustedTableSet(keys).verify(env, now)

    def plain() -> None:
        json.loads(body)

    load_t, json_t = [], []
    for _ in range(7):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        plain()
        json_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        verify_load()
        load_t.append(time.perf_counter() - t0)
    load_s, json_s = statistics.median(load_t), statistics.median(json_t)
    rows = [_row("d-verify-load", f"seconds_{n_tenants}_tenants", load_s, json_s, "<= 3x",
                 load_s / json_s <= 3)]

    _, big = build_signed_table(memory_tenants, key)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    trusted = TrustedTableSet(keys, max_bytes=len(big))
    table = trusted.verify(big, now)
    assert table is not None
    trusted.accept(table)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(s.size_diff for s in after.compare_to(before, "filename"))
    rows.append(_row("d-memory", f"bytes_{memory_tenants}_tenants", used, len(big),
                     "report", True))
    del table, trusted
    return rows


# --- (e) latency during swaps ------------------------------------------------------------


def case_swap_latency(n_tenants: int = 1000, swaps: int = 100) -> list[Row]:
    key = signing.generate_private_key()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tables = [build_signed_table(n_tenants, key, serial=s, percent=1 + s % 50)[1]
                  for s in range(1, swaps + 2)]
        path = workdir / "table.json"
        path.write_bytes(tables[0])
        router = Router(path, trusted_keys([key.public_key()]), registry=CollectorRegistry(),
                        state_file=workdir / "floor.json")
        router.refresh()
        sessions = SESSIONS[:20_000]
        resolve = router.resolve
        clock = time.perf_counter_ns

        def sample(stop: threading.Event | None, limit: int) -> list[int]:
            out: list[int] = []
            i = 0
            while (stop is None or not stop.is_set()) and len(out) < limit:
                s = sessions[i % len(sessions)]
                t0 = clock()
                resolve(TENANT, ALIAS, s)
                out.append(clock() - t0)
                i += 1
            return out

        sample(None, 40_000)  # pin sessions, warm up
        quiet = sample(None, 400_000)
        stop = threading.Event()

        def swapper() -> None:
            for env in tables[1:]:
                tmp_path = workdir / "table.json.tmp"
                tmp_path.write_bytes(env)
                os.replace(tmp_path, path)
                router.refresh()
            stop.set()

        t = threading.Thread(target=swapper)
        t.start()
        busy = sample(stop, 50_000_000)
        t.join()
        assert router.status().serial == swaps + 1

    def p99(xs: list[int]) -> float:
        return statistics.quantiles(xs, n=100)[98] / 1000  # microseconds

    q, b = p99(quiet), p99(busy)
    return [_row("e-swap-latency", "resolve_p99_us", b, q, "report", True)]


# --- (f) resolve + report vs resolve alone ----------------------------------------------


def _report_ratio(router: Router, sessions: list[str], rounds: int = 7,
                  clock: Callable[[], float] = time.perf_counter, *, general: bool = False,
                  alias: str = ALIAS) -> tuple[float, float, float]:
    """(resolve+report/s, resolve/s, median per-round ratio), interleaved rounds, each
    round timed by ``clock``. The report is a healthy request's as the README tells a
    gateway to make it, ``decision.observe(latency)``, or with ``general`` the general
    API, ``router.record(tenant, alias, decision, latency=...)``."""
    resolve, record, tel = router.resolve, router.record, router.telemetry
    for s in sessions:
        record(TENANT, alias, resolve(TENANT, alias, s), latency=0.5)

    def alone() -> None:
        for s in sessions:
            resolve(TENANT, alias, s)

    def with_observe() -> None:
        for s in sessions:
            decision = resolve(TENANT, alias, s)
            decision.observe(0.5)

    def with_record() -> None:
        for s in sessions:
            record(TENANT, alias, resolve(TENANT, alias, s), latency=0.5)

    def rate(fn: Callable[[], None]) -> float:
        t0 = clock()
        fn()
        return len(sessions) / (clock() - t0)

    reported = with_record if general else with_observe
    alone_rates, report_rates = [], []
    for _ in range(rounds):
        alone_rates.append(rate(alone))
        report_rates.append(rate(reported))
        tel.flush()  # what a scrape or the poll thread does, outside the timed loops
    ratio = statistics.median(r / a for r, a in zip(report_rates, alone_rates, strict=True))
    return statistics.median(report_rates), statistics.median(alone_rates), ratio


def case_record(n_tenants: int = 1000) -> list[Row]:
    """A healthy request's router work with telemetry (resolve, then
    ``decision.observe(latency)``) against resolve alone, interleaved on the same router
    and sessions of a canary route: with the in-memory session store (the strictest:
    resolve is a few hundred ns), timed in CPU seconds of the thread (on a shared
    machine wall time mostly measures who else ran; the wall-clock ratio is reported
    beside it), and with the Redis store replicas share (what production runs; wall
    clock, since there the wait for Redis is the cost). Reported beside: the general
    ``record(..., latency=)`` path, and a pinned route (resolve ~100 ns) with observe."""
    key = signing.generate_private_key()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _, env = build_signed_table(n_tenants, key)
        router = _router(env, key, workdir,
                         session_store=InMemorySessionStore(max_sessions=1_000_000))
        cpu = time.thread_time
        rec, alone, ratio = _report_ratio(router, SESSIONS, rounds=9, clock=cpu)
        rows.append(_row("f-record", "resolve_observe_per_cpu_s_vs_resolve_per_cpu_s", rec,
                         alone, ">= 0.8x", ratio >= 0.8, ratio))
        rec, alone, ratio = _report_ratio(router, SESSIONS, rounds=9, clock=cpu,
                                          general=True)
        rows.append(_row("f-record-general", "resolve_record_per_cpu_s_vs_resolve_per_cpu_s",
                         rec, alone, "report", True, ratio))
        rec, alone, ratio = _report_ratio(router, SESSIONS, rounds=9, clock=cpu,
                                          alias="embedder")
        rows.append(_row("f-record-pinned", "pinned_resolve_observe_per_cpu_s_vs_resolve",
                         rec, alone, "report", True, ratio))
        rec, alone, ratio = _report_ratio(router, SESSIONS, rounds=9)
        rows.append(_row("f-record-wall", "resolve_observe_per_s_vs_resolve_per_s", rec,
                         alone, "report", True, ratio))
        proc, port = _start_redis(workdir)
        try:
            store = RedisSessionStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=1.0)
            router = _router(env, key, workdir, session_store=store)
            rec, alone, ratio = _report_ratio(router, SESSIONS[:3000], rounds=5)
            rows.append(_row("f-record-redis", "resolve_observe_per_s_vs_resolve_per_s",
                             rec, alone, ">= 0.8x", ratio >= 0.8, ratio))
        finally:
            proc.kill()
            proc.wait()
    return rows


def all_cases() -> list[Row]:
    rows: list[Row] = []
    for case in (case_resolve_and_unleash, case_redis, case_load, case_swap_latency,
                 case_record):
        rows.extend(case())
    return rows


if __name__ == "__main__":
    for case in (case_resolve_and_unleash, case_redis, case_load, case_swap_latency,
                 case_record):
        for row in case():
            print(json.dumps(row), flush=True)
