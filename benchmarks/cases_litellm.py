"""Case 9: the latency the modelpin hook adds to a LiteLLM proxy request (p50, p99).

Proxy processes from the same config, started in this run, in front of the same
local fake provider (``tests/fakes/openai_server.py``): one with the hook (tenant
``acme`` asks for its alias with a session pinned in a real Redis; the hook resolves,
rewrites the model, checks the answer's tool call and adds its headers), one without it
(the same key asks for the exact model version), a do-nothing hook, and the modelpin
hook resolving on the event loop (``tests/integrations/onloop_hook.py``: the Redis lookup
blocking the loop, as before it moved to worker threads). Requests alternate between them, one
at a time, so both see the same machine load; the numbers are wall-clock client-side
latencies (what a caller waits for). Then the same under ``CLIENTS`` concurrent clients
(each with its own session), one proxy at a time, alternating by round: there a lookup
that held the event loop would queue the other requests behind it. Needs the
``modelpin[litellm]`` extra and ``redis-server``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.measure import Row, row, unavailable

CASE = "9 litellm"
CLIENTS = 8


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def litellm_rows(requests: int, log: Callable[[str], None]) -> list[Row]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import httpx
        from tests.fakes.openai_server import FakeOpenAI, Reply
        from tests.integrations.harness import (
            ALIAS,
            CANDIDATE,
            STABLE,
            TOOLS,
            HarnessError,
            Proxy,
            fleet,
            proxy_config,
            start_redis,
            trust_root,
        )
        from tests.router.tables import envelope, salt_of, write_atomically

        from modelpin import signing
        from modelpin.router import bucket
    except ImportError as exc:
        return [unavailable(CASE, "proxy latency with the hook", "report", str(exc))]

    with tempfile.TemporaryDirectory(prefix="modelpin-bench-litellm-") as tmp_name:
        tmp = Path(tmp_name)
        key = signing.generate_private_key()
        table = tmp / "routing-table.dsse.json"
        write_atomically(table, envelope(fleet(1), [key]))
        fake = FakeOpenAI()
        fake.script(STABLE, Reply(content="ok", tool_calls=(("lookup_clause",
                                                             '{"clause_id": "7.2"}'),)))
        red = None
        proxies: list[Proxy] = []
        try:
            root = trust_root(tmp / "root", key)
            red = start_redis(tmp / "redis")
            for name, hook, callbacks in (
                ("with-hook", True, None),
                ("without-hook", False, None),
                ("noop-hook", False, ["tests.integrations.noop_hook.handler"]),
                ("on-loop-hook", True, ["tests.integrations.onloop_hook.handler"]),
            ):
                config = proxy_config(provider=(fake.base_url, fake.api_key), table=table,
                                      root=root, redis_url=red.url,
                                      state_file=tmp / f"{name}.floor.json", hook=hook,
                                      callbacks=callbacks)
                proxies.append(Proxy(config, tmp / name, name))
            for p in proxies:
                p.wait_ready()
            hooked, plain, noop, onloop = proxies
            log(f"  proxies ready (start-up {hooked.startup_seconds:.1f} s, "
                f"{plain.startup_seconds:.1f} s)")
            salt = salt_of("acme", ALIAS, CANDIDATE)
            session = next(f"bench-{i}" for i in range(10_000)
                           if bucket(salt, f"bench-{i}") >= 2500)
            messages = [{"role": "user", "content": "look up clause 7.2"}]
            # A session the table puts on stable (acme is at canary 25%): both proxies
            # then call the same model, and only the hook's work differs.
            targets = (
                (hooked, {"model": ALIAS, "messages": messages, "tools": TOOLS},
                 {"Authorization": "Bearer sk-acme", "x-session-id": session}),
                (plain, {"model": STABLE, "messages": messages, "tools": TOOLS},
                 {"Authorization": "Bearer sk-acme"}),
                (noop, {"model": STABLE, "messages": messages, "tools": TOOLS},
                 {"Authorization": "Bearer sk-acme"}),
                (onloop, {"model": ALIAS, "messages": messages, "tools": TOOLS},
                 {"Authorization": "Bearer sk-acme", "x-session-id": session}),
            )
            labels = ("with", "without", "noop", "onloop")
            def timed(client: httpx.Client, proxy: Proxy, body: dict[str, object],
                      headers: dict[str, str], label: str) -> float:
                start = time.perf_counter()
                r = client.post(proxy.url + "/v1/chat/completions", json=body, headers=headers)
                elapsed = time.perf_counter() - start
                if r.status_code != 200:
                    raise HarnessError(f"{proxy.log_path.name}: {r.status_code} {r.text[:300]}")
                if label in ("with", "onloop") and r.headers.get("x-modelpin-model") != STABLE:
                    raise HarnessError("the benchmark session is not on stable")
                return elapsed

            times: dict[str, list[float]] = {label: [] for label in labels}
            with httpx.Client(timeout=30) as client:
                for i in range(requests + 20):
                    for label, (proxy, body, headers) in zip(labels, targets, strict=True):
                        elapsed = timed(client, proxy, body, headers, label)
                        if i >= 20:  # warm-up excluded
                            times[label].append(elapsed)
            # Under concurrency (where a lookup blocking the event loop would queue every
            # other request behind it): CLIENTS clients at once, each with its own stable
            # session, on one proxy at a time, the proxies alternating by round.
            sessions = [s for s in (f"bench-c{i}" for i in range(10_000))
                        if bucket(salt, s) >= 2500][:CLIENTS]
            per_client = max(5, requests // 20)
            together: dict[str, list[float]] = {"with": [], "without": [], "onloop": []}
            for _round in range(3):
                for label, (proxy, body, headers) in zip(labels, targets, strict=True):
                    if label not in together:
                        continue
                    def client_run(k: int, proxy: Proxy = proxy, body: dict[str, object] = body,
                                   headers: dict[str, str] = headers,
                                   label: str = label) -> list[float]:
                        own = dict(headers)
                        if label in ("with", "onloop"):
                            own["x-session-id"] = sessions[k]
                        with httpx.Client(timeout=30) as c:
                            timed(c, proxy, body, own, label)  # warm-up (pins the session)
                            return [timed(c, proxy, body, own, label) for _ in range(per_client)]

                    with ThreadPoolExecutor(CLIENTS) as pool:
                        for latencies in pool.map(client_run, range(CLIENTS)):
                            together[label].extend(latencies)
            log(f"  concurrent: {len(together['with'])} requests per proxy, {CLIENTS} clients")
            hook_times = _pre_call_times(tmp, red.url, session)
        except HarnessError as exc:
            return [unavailable(CASE, "proxy latency with the hook", "report", str(exc))]
        finally:
            for p in proxies:
                p.stop()
            if red is not None:
                red.process.kill()
                red.process.wait()
            fake.close()

    w, wo, nop = times["with"], times["without"], times["noop"]
    p50 = {k: statistics.median(v) for k, v in times.items()}
    p99 = {k: _percentile(v, 0.99) for k, v in times.items()}
    note = (f"{requests} requests each, alternating; the hook adds "
            f"{(p50['with'] - p50['without']) * 1000:+.2f} ms at p50, "
            f"{(p99['with'] - p99['without']) * 1000:+.2f} ms at p99")
    noop_note = ("a do-nothing hook on the same four proxy hooks: LiteLLM's own cost of "
                 "having one")
    rows = [
        row(CASE, "proxy request latency p50, with the hook vs without", p50["with"],
            p50["without"], target="report", baseline_name="proxy without the hook",
            note=note, runs=len(w)),
        row(CASE, "proxy request latency p99, with the hook vs without", p99["with"],
            p99["without"], target="report", baseline_name="proxy without the hook",
            runs=len(w)),
        row(CASE, "proxy request latency p50, do-nothing hook vs without", p50["noop"],
            p50["without"], target="report", baseline_name="proxy without the hook",
            note=noop_note, runs=len(nop)),
        row(CASE, "proxy request latency p50, modelpin hook vs do-nothing hook", p50["with"],
            p50["noop"], target="report", baseline_name="do-nothing hook",
            note="what modelpin's own work costs", runs=len(wo)),
    ]
    h50 = {k: statistics.median(v) for k, v in hook_times.items()}
    h99 = {k: _percentile(v, 0.99) for k, v in hook_times.items()}
    rows += [
        row(CASE, "hook pre-call in process (session pinned in Redis) p50, resolve off the "
            "event loop vs on it", h50["off"], h50["on"], target="report",
            baseline_name="resolve on the loop (blocking)", runs=len(hook_times["off"]),
            note="the price of the worker-thread hand-off that keeps the loop free"),
        row(CASE, "hook pre-call in process (session pinned in Redis) p99, resolve off the "
            "event loop vs on it", h99["off"], h99["on"], target="report",
            baseline_name="resolve on the loop (blocking)", runs=len(hook_times["off"])),
    ]
    rows += [
        row(CASE, "proxy request latency p50, hook resolving off the event loop vs on it",
            p50["with"], p50["onloop"], target="report",
            baseline_name="the hook resolving on the loop", runs=len(w),
            note="the same hook; the on-loop one is tests/integrations/onloop_hook.py"),
        row(CASE, "proxy request latency p99, hook resolving off the event loop vs on it",
            p99["with"], p99["onloop"], target="report",
            baseline_name="the hook resolving on the loop", runs=len(w)),
    ]
    c50 = {k: statistics.median(v) for k, v in together.items()}
    c99 = {k: _percentile(v, 0.99) for k, v in together.items()}
    rows += [
        row(CASE, f"proxy request latency p50, {CLIENTS} concurrent clients, with the hook vs "
            "without", c50["with"], c50["without"], target="report",
            baseline_name="proxy without the hook", runs=len(together["with"]),
            note=f"{len(together['with'])} requests each, 3 rounds alternating; the hook adds "
                 f"{(c50['with'] - c50['without']) * 1000:+.2f} ms at p50, "
                 f"{(c99['with'] - c99['without']) * 1000:+.2f} ms at p99"),
        row(CASE, f"proxy request latency p99, {CLIENTS} concurrent clients, with the hook vs "
            "without", c99["with"], c99["without"], target="report",
            baseline_name="proxy without the hook", runs=len(together["with"])),
        row(CASE, f"proxy request latency p50, {CLIENTS} concurrent clients, hook off the loop "
            "vs on it", c50["with"], c50["onloop"], target="report",
            baseline_name="the hook resolving on the loop", runs=len(together["with"])),
        row(CASE, f"proxy request latency p99, {CLIENTS} concurrent clients, hook off the loop "
            "vs on it", c99["with"], c99["onloop"], target="report",
            baseline_name="the hook resolving on the loop", runs=len(together["with"])),
    ]
    return rows


def _pre_call_times(tmp: Path, redis_url: str, session: str) -> dict[str, list[float]]:
    """The hook's pre-call (resolve with the session pinned in Redis, rewrite) in this
    process, timed per call: resolving in the hook's worker threads ("off") against
    resolving on the event loop ("on"), alternating in rounds of 500 calls."""
    import asyncio

    from litellm.proxy._types import UserAPIKeyAuth
    from tests.integrations.harness import ALIAS, hook_on_redis

    auth = UserAPIKeyAuth(api_key="sk-acme", team_id="t",
                          team_metadata={"modelpin_tenant": "acme"})
    hooks = {label: hook_on_redis(tmp / f"in-process-{label}", redis_url,
                                  remote_sessions=label == "off", timeout=0.05)
             for label in ("off", "on")}

    async def calls(hook: Any, n: int) -> list[float]:
        out = []
        for _ in range(n):
            data = {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}],
                    "metadata": {}, "proxy_server_request": {"headers": {"x-session-id": session}}}
            start = time.perf_counter()
            await hook.async_pre_call_hook(auth, None, data, "acompletion")
            out.append(time.perf_counter() - start)
        return out

    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _round in range(5):
            for label, hook in hooks.items():
                times[label].extend(asyncio.run(calls(hook, 500))[50:])  # warm-up excluded
    finally:
        for hook in hooks.values():
            hook.router.stop()
    return times
