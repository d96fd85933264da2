"""BETS run throughput: 10,000 cases over 100 tenants against the local fake provider
(its own process, 50 ms per answer), as ``modelpin bets run`` in a subprocess.

The bound is what the configured limits allow: every case costs three calls (pin,
candidate, judge), so ``calls x latency / concurrency`` (the concurrency bound),
``calls / (requests_per_minute / 60)`` and ``tokens / (tokens_per_minute / 60)``; the
largest is the fastest any client could finish. Target: wall time within 1.25x of it.
Peak memory is the runner process's maximum RSS; the same run at a tenth of the cases
shows whether it grows with the suite (it streams cases and results, so it should not).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import ROOT, Row, row

LATENCY = 0.05
CONCURRENCY = 12
RPM = 15_000
TPM = 200_000_000
PIN, CANDIDATE, JUDGE = "gpt-5-2026-01-10", "gpt-5-2026-03-14", "claude-4-20260201"
KEY = "sk-bench-fake"


def write_fleet(root: Path, tenants: int, cases: int, base_url: str) -> None:
    def dump(rel: str, data: Any) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    dump("policies/rollout-groups.yaml", {"groups": {"pioneers": {
        "after": [], "ladder": [100], "soak": "0h", "approval": "none", "shadow": "0h",
        "bets": {"min_pass_rate": 0.9, "min_cases": 1}}}, "evidence_max_age": "30d"})
    dump("policies/providers.yaml", {"providers": {"bench": {
        "base_url": base_url, "api_key_env": "BENCH_KEY", "requests_per_minute": RPM,
        "tokens_per_minute": TPM, "concurrency": CONCURRENCY, "timeout_seconds": 30}}})
    dump("model_versions/compatibility.yaml", {"workloads": ["chat"], "upgrades": []})
    for i, model in enumerate((PIN, CANDIDATE, JUDGE)):
        dump(f"model_versions/{model}.yaml", {"id": model, "provider": "bench", "kind": "chat",
                                              "released": f"2026-01-{10 + i}"})
    for t in range(tenants):
        suite = f"suite-{t:03d}"
        dump(f"bets/{suite}/suite.yaml", {"id": suite, "version": 1, "workload": "chat",
                                          "judge": JUDGE, "judge_threshold": 0.8})
        with open(root / f"bets/{suite}/cases.jsonl", "w", encoding="utf-8") as fh:
            for c in range(cases):
                prompt = f"Tenant {t} question {c}: summarise the ticket."
                fh.write(json.dumps({"id": f"c-{c:05d}", "system": "Be brief.",
                                     "messages": [{"role": "user", "content": prompt}],
                                     "golden": f"echo: {prompt}"}) + "\n")
        dump(f"tenants/tenant-{t:03d}.yaml", {
            "id": f"tenant-{t:03d}", "group": "pioneers", "workload": "chat",
            "override_allowed": True, "bets_suite": {"id": suite, "version": 1},
            "aliases": {"primary": {"kind": "chat", "pin": PIN}}})


def _server(config: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", str(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the fake provider did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def raw_client(base_url: str, calls: int, concurrency: int) -> float:
    """Seconds a bare httpx client takes for ``calls`` requests at ``concurrency``: what
    this machine allows right now, whatever the client (the reference for a loaded box)."""
    import asyncio

    import httpx

    async def main() -> float:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with gate:
                    r = await client.post(f"{base_url}/chat/completions",
                                          headers={"Authorization": f"Bearer {KEY}"},
                                          json={"model": PIN, "messages": [
                                              {"role": "user", "content": f"raw {i}"}]})
                    r.raise_for_status()

            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(calls)))
            return time.perf_counter() - start

    return asyncio.run(main())


def _run_once(work: Path, tenants: int, cases: int) -> dict[str, Any]:
    config = work / "server.json"
    config.write_text(json.dumps({"personas": {PIN: "clean", CANDIDATE: "clean",
                                                JUDGE: "clean"},
                                  "latency": LATENCY, "api_key": KEY}))
    server, base_url = _server(config)
    try:
        root = work / f"fleet-{tenants}x{cases}"
        write_fleet(root, tenants, cases, base_url)
        out = work / f"out-{tenants}x{cases}"
        shutil.rmtree(out, ignore_errors=True)  # a journal left there would answer every call
        env = {**os.environ, "BENCH_KEY": KEY}
        argv = [sys.executable, "-c", "from modelpin.cli import run; run()", "bets", "run",
                "--repo", str(root), "--all", "--candidate", CANDIDATE, "--unsigned",
                "--now", "2026-03-20T10:00:00Z", "--out", str(out)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"bets run failed: {proc.stderr[-500:]}")
        results = json.loads((out / "results.json").read_text())
        calls = results["calls"]["providers"]["bench"]["calls"]
        raw = subprocess.run(
            [sys.executable, "-c", "import sys; from benchmarks.cases_bets import raw_client; "
             "print(raw_client(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))",
             base_url, str(calls), str(CONCURRENCY)],
            cwd=ROOT, capture_output=True, text=True, check=True)
        raw_wall = float(raw.stdout.strip())
    finally:
        server.kill()
        server.wait()
    lane = results["calls"]["providers"]["bench"]
    calls, tokens = lane["calls"], lane["tokens"]
    bounds = {"concurrency": calls * LATENCY / CONCURRENCY, "requests/min": calls / (RPM / 60),
              "tokens/min": tokens / (TPM / 60)}
    passed = sum(t["passed"] for t in results["targets"])
    return {"wall": wall, "raw": raw_wall, "calls": calls, "tokens": tokens, "bounds": bounds,
            "bound": max(bounds.values()), "binding": max(bounds, key=lambda k: bounds[k]),
            "maxrss_mib": after.ru_maxrss / 1024, "cpu": (after.ru_utime + after.ru_stime)
            - (before.ru_utime + before.ru_stime), "passed": passed,
            "cases": sum(t["cases"] for t in results["targets"])}


def run(work: Path, quick: bool, log: Any) -> list[Row]:
    tenants, cases = (10, 100) if quick else (100, 100)
    work.mkdir(parents=True, exist_ok=True)
    small = _run_once(work, tenants // 10 or 1, cases)
    log(f"  bets small run: {small['cases']} cases in {small['wall']:.1f}s, "
        f"peak {small['maxrss_mib']:.0f} MiB")
    big = _run_once(work, tenants, cases)
    log(f"  bets run: {big['cases']} cases, {big['calls']} calls in {big['wall']:.1f}s; "
        f"bound {big['bound']:.1f}s ({big['binding']}), peak {big['maxrss_mib']:.0f} MiB")
    if big["passed"] != big["cases"]:
        raise RuntimeError(f"only {big['passed']}/{big['cases']} cases passed on a clean run")
    limits = f"{CONCURRENCY} concurrent, {RPM:,} req/min, {LATENCY * 1000:.0f} ms latency"
    bound_note = ", ".join(f"{k} {v:.1f}s" for k, v in big["bounds"].items())
    return [
        row("bets", f"bets run wall time vs the limits' bound ({big['cases']:,} cases, "
            f"{tenants} tenants, {big['calls']:,} calls)", big["wall"], big["bound"],
            target="<= 1.25x", baseline_name=f"bound: {big['binding']}",
            note=f"{limits}; bounds: {bound_note}; runner CPU {big['cpu']:.1f}s"),
        row("bets", f"bets run wall time vs a bare httpx client making the same {big['calls']:,} "
            f"calls at the same concurrency (this machine, now)", big["wall"], big["raw"],
            target="report", baseline_name="bare httpx, no pacing, no checks"),
        row("bets", f"bets run peak memory (max RSS, {big['cases']:,} cases) vs "
            f"{small['cases']:,} cases", big["maxrss_mib"], small["maxrss_mib"],
            unit="MiB", target="report", baseline_name=f"{small['cases']:,} cases"),
    ]
