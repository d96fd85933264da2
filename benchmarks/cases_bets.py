"""BETS run throughput: ``modelpin bets run`` in a subprocess against the shared fake
provider (``tests/fakes/openai_server.py``) in its own process, answering every call
after 50 ms.

The bound. Every case costs three calls (pin, candidate, then the judge: every case has
a golden answer and a clean candidate), so ``calls = cases x 3``; the fastest any client
could finish within the provider's limits is

    bound = calls / min(concurrency / latency, requests_per_minute / 60,
                        tokens_per_minute / 60 / tokens_per_call)
          = max(calls x latency / concurrency, calls x 60 / rpm, tokens x 60 / tpm)

(it ignores the time the client and the server spend on a call, so it cannot be reached
exactly). Two provider configurations are run, so that each limit is measured where it
is the one that binds (when two limits allow the same rate, any jitter in the latency
costs throughput that no client can win back, and the bound says nothing about the
client):

- concurrency-bound: 12 concurrent calls, 60,000 req/min: 240 calls/s by concurrency,
  1,000 calls/s by rate. 10,000 cases over 100 tenants = 30,000 calls: bound 125.0 s.
- rate-bound: 24 concurrent calls, 9,000 req/min: 150 calls/s by rate, 480 calls/s by
  concurrency. 2,000 cases over 20 tenants = 6,000 calls: bound 40.0 s.

Target: wall time within 1.25x of the bound. The machine's share is measured in the same
run: a bare httpx client (one ``AsyncClient``, no pacing, no checks, no journal) makes the
same number of calls at the same concurrency against the same server; on a loaded machine
the ratio to it shows the runner's own cost. Every run checks the server's counters (each
call answered once, no error, no retry) and that every case passed, or fails the case.

Memory: the runner's own max RSS (``wait4``), at 10,000 cases and at 1,000; the runner
streams cases and results, so it should not grow with the suite. Also reported: the
runner's and the fake server's CPU per call, and the load average around each run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import ROOT, Row, row

LATENCY = 0.05
CALLS_PER_CASE = 3  # pin, candidate, judge
PIN, CANDIDATE, JUDGE = "gpt-5-2026-01-10", "gpt-5-2026-03-14", "claude-4-20260201"
KEY = "sk-bench-fake"


@dataclass(frozen=True)
class Limits:
    name: str
    concurrency: int
    rpm: int
    tpm: int = 200_000_000

    def bounds(self, calls: int, tokens: int) -> dict[str, float]:
        return {"concurrency": calls * LATENCY / self.concurrency,
                "requests/min": calls * 60 / self.rpm, "tokens/min": tokens * 60 / self.tpm}

    def describe(self) -> str:
        return (f"{self.concurrency} concurrent, {self.rpm:,} req/min, {self.tpm:,} tok/min, "
                f"{LATENCY * 1000:.0f} ms latency")


CONCURRENCY_BOUND = Limits("concurrency-bound", concurrency=12, rpm=60_000)
RATE_BOUND = Limits("rate-bound", concurrency=24, rpm=9_000)


def write_fleet(root: Path, tenants: int, cases: int, base_url: str,
                limits: Limits = CONCURRENCY_BOUND) -> None:
    def dump(rel: str, data: Any) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    dump("policies/rollout-groups.yaml", {"groups": {"pioneers": {
        "after": [], "ladder": [100], "soak": "0h", "approval": "none", "shadow": "0h",
        "bets": {"min_pass_rate": 0.9, "min_cases": 1}}}, "evidence_max_age": "30d"})
    dump("policies/providers.yaml", {"providers": {"bench": {
        "base_url": base_url, "api_key_env": "BENCH_KEY", "requests_per_minute": limits.rpm,
        "tokens_per_minute": limits.tpm, "concurrency": limits.concurrency,
        "timeout_seconds": 30}}})
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


class Server:
    """The fake provider in its own process (so the runner's process measures only itself)."""

    def __init__(self, work: Path) -> None:
        config = work / "server.json"
        config.write_text(json.dumps({"personas": {PIN: "clean", CANDIDATE: "clean",
                                                    JUDGE: "clean"},
                                      "latency": LATENCY, "api_key": KEY, "record": False}))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server",
                                      str(config)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the fake provider did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def stats(self) -> dict[str, Any]:
        import httpx

        data: dict[str, Any] = httpx.get(self.base_url.removesuffix("/v1") + "/_stats",
                                         timeout=30).json()
        return data

    def cpu(self) -> float | None:
        """CPU seconds the server used so far (Linux /proc), None elsewhere."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


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


def _bare(base_url: str, calls: int, concurrency: int) -> float:
    raw = subprocess.run(
        [sys.executable, "-c", "import sys; from benchmarks.cases_bets import raw_client; "
         "print(raw_client(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))",
         base_url, str(calls), str(concurrency)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    return float(raw.stdout.strip())


def _run_once(work: Path, tenants: int, cases: int, limits: Limits, *,
              bare: bool = False) -> dict[str, Any]:
    server = Server(work)
    try:
        root = work / f"fleet-{limits.name}-{tenants}x{cases}"
        shutil.rmtree(root, ignore_errors=True)
        write_fleet(root, tenants, cases, server.base_url, limits)
        out = work / f"out-{limits.name}-{tenants}x{cases}"
        shutil.rmtree(out, ignore_errors=True)  # a journal left there would answer every call
        env = {**os.environ, "BENCH_KEY": KEY}
        argv = [sys.executable, "-c", "from modelpin.cli import run; run()", "bets", "run",
                "--repo", str(root), "--all", "--candidate", CANDIDATE, "--unsigned",
                "--now", "2026-03-20T10:00:00Z", "--out", str(out)]
        load_before = os.getloadavg()[0]
        server_cpu = server.cpu()
        log = work / "stderr.txt"
        with open(log, "w", encoding="utf-8") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
            _pid, status, usage = os.wait4(proc.pid, 0)  # the runner's own rusage
            wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        load_after = os.getloadavg()[0]
        server_after = server.cpu()
        if code != 0:
            raise RuntimeError(f"bets run failed ({code}): {log.read_text()[-500:]}")
        served = server.stats()
        results = json.loads((out / "results.json").read_text())
        lane = results["calls"]["providers"]["bench"]
        calls, tokens = lane["calls"], lane["tokens"]
        expected = tenants * cases * CALLS_PER_CASE
        passed = sum(t["passed"] for t in results["targets"])
        if (calls, served["answered"], served["requests"], passed) != (
                expected, expected, expected, tenants * cases) or lane["retries"] or set(
                served["statuses"]) != {"200"} or served["max_same_request"] != 1:
            raise RuntimeError(f"unexpected run: {calls} calls (expected {expected}), "
                               f"{passed} passed, runner {lane}, server {served}")
        raw_wall = _bare(server.base_url, calls, limits.concurrency) if bare else None
    finally:
        server.close()
    bounds = limits.bounds(calls, tokens)
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "raw": raw_wall, "calls": calls, "tokens": tokens, "bounds": bounds,
            "bound": max(bounds.values()), "binding": max(bounds, key=lambda k: bounds[k]),
            "maxrss_mib": usage.ru_maxrss / 1024, "cpu_ms": cpu / calls * 1000,
            "server_ms": (server_after - server_cpu) / calls * 1000
            if server_cpu is not None and server_after is not None else None,
            "load": (load_before, load_after), "cases": tenants * cases, "tenants": tenants}


def _note(run: dict[str, Any], limits: Limits) -> str:
    bounds = ", ".join(f"{k} {v:.1f}s" for k, v in run["bounds"].items())
    server = f"{run['server_ms']:.2f}" if run["server_ms"] is not None else "?"
    return (f"{limits.describe()}; bounds: {bounds}; CPU per call: runner {run['cpu_ms']:.2f} "
            f"ms, fake server {server} ms; load average {run['load'][0]:.1f} -> "
            f"{run['load'][1]:.1f}")


def run(work: Path, quick: bool, log: Any) -> list[Row]:
    scale = 10 if quick else 1
    work.mkdir(parents=True, exist_ok=True)
    small = _run_once(work, 10 // scale or 1, 100, CONCURRENCY_BOUND)
    log(f"  bets small run: {small['cases']} cases in {small['wall']:.1f}s "
        f"(bound {small['bound']:.1f}s), peak {small['maxrss_mib']:.0f} MiB")
    big = _run_once(work, 100 // scale, 100, CONCURRENCY_BOUND, bare=True)
    log(f"  bets run ({CONCURRENCY_BOUND.name}): {big['cases']} cases, {big['calls']} calls in "
        f"{big['wall']:.1f}s; bound {big['bound']:.1f}s ({big['binding']}); bare httpx "
        f"{big['raw']:.1f}s; peak {big['maxrss_mib']:.0f} MiB; {_note(big, CONCURRENCY_BOUND)}")
    paced = _run_once(work, 20 // scale, 100, RATE_BOUND)
    log(f"  bets run ({RATE_BOUND.name}): {paced['cases']} cases, {paced['calls']} calls in "
        f"{paced['wall']:.1f}s; bound {paced['bound']:.1f}s ({paced['binding']}); "
        f"{_note(paced, RATE_BOUND)}")
    return [
        row("bets", f"bets run wall time vs the limits' bound, {CONCURRENCY_BOUND.name} "
            f"({big['cases']:,} cases, {big['tenants']} tenants, {big['calls']:,} calls)",
            big["wall"], big["bound"], target="<= 1.25x",
            baseline_name=f"bound: {big['binding']}", note=_note(big, CONCURRENCY_BOUND)),
        row("bets", f"bets run wall time vs a bare httpx client making the same "
            f"{big['calls']:,} calls at the same concurrency (this machine, now)",
            big["wall"], big["raw"], target="report",
            baseline_name="bare httpx, no pacing, no checks"),
        row("bets", f"bets run wall time vs the limits' bound, {RATE_BOUND.name} "
            f"({paced['cases']:,} cases, {paced['tenants']} tenants, {paced['calls']:,} calls)",
            paced["wall"], paced["bound"], target="<= 1.25x",
            baseline_name=f"bound: {paced['binding']}", note=_note(paced, RATE_BOUND)),
        row("bets", f"bets run peak memory (runner max RSS, {big['cases']:,} cases) vs "
            f"{small['cases']:,} cases", big["maxrss_mib"], small["maxrss_mib"],
            unit="MiB", target="report", baseline_name=f"{small['cases']:,} cases"),
    ]
