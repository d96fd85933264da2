"""Case 9: the latency the modelpin hook adds to a LiteLLM proxy request (p50, p99).

Two proxy processes from the same config, started in this run, in front of the same
local fake provider (``tests/fakes/openai_server.py``): one with the hook (tenant
``acme`` asks for its alias with a session pinned in a real Redis; the hook resolves,
rewrites the model, checks the answer's tool call and adds its headers), one without it
(the same key asks for the exact model version). Requests alternate between the two, one
at a time, so both see the same machine load; the numbers are wall-clock client-side
latencies (what a caller waits for). Needs the ``modelpin[litellm]`` extra and
``redis-server``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.measure import Row, row, unavailable

CASE = "9 litellm"


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
            ):
                config = proxy_config(provider=(fake.base_url, fake.api_key), table=table,
                                      root=root, redis_url=red.url,
                                      state_file=tmp / f"{name}.floor.json", hook=hook,
                                      callbacks=callbacks)
                proxies.append(Proxy(config, tmp / name, name))
            for p in proxies:
                p.wait_ready()
            hooked, plain, noop = proxies
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
            )
            times: dict[str, list[float]] = {"with": [], "without": [], "noop": []}
            with httpx.Client(timeout=30) as client:
                for i in range(requests + 20):
                    for label, (proxy, body, headers) in zip(("with", "without", "noop"), targets,
                                                             strict=True):
                        start = time.perf_counter()
                        r = client.post(proxy.url + "/v1/chat/completions", json=body,
                                        headers=headers)
                        elapsed = time.perf_counter() - start
                        if r.status_code != 200:
                            raise HarnessError(f"{proxy.log_path.name}: {r.status_code} "
                                               f"{r.text[:300]}")
                        if label == "with" and r.headers.get("x-modelpin-model") != STABLE:
                            raise HarnessError("the benchmark session is not on stable")
                        if i >= 20:  # warm-up excluded
                            times[label].append(elapsed)
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
    return rows
