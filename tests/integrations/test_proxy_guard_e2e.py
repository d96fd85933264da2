"""The guard's loop through real LiteLLM proxies: the candidate starts failing, the guard
trips it, and both proxy replicas stop sending new sessions to it within the guard's
documented bound (README "Trips": under 30 s from breach to no new canary session).

Every part is real and is the one of the guard's own end-to-end test
(``tests/guard/scenario.py``: a config repository with the SHIPPED
``policies/signals.yaml``, a table compiled and signed by ``modelpin compile``, a real
``redis-server``, a real ``prometheus`` scraping every second, ``modelpin guard`` as its
own process, the fake GitHub and the fake chat-completions provider), except that the
gateways are two ``litellm`` proxy processes configured as README tells users: the one
callback line and ``callback_settings.modelpin`` with the table, the signed trust root
file (made by ``modelpin root init`` / ``root sign``), the shared Redis and the metrics
address Prometheus scrapes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.guard.fake_llm import API_KEY, FakeLLM
from tests.guard.procs import PrometheusProc, free_port
from tests.guard.scenario import CANDIDATE, STABLE, Event, Loop, Traffic, wait_for
from tests.integrations.harness import ALIAS, TOOLS, Proxy, proxy_config, trust_root

pytestmark = pytest.mark.slow

#: README "Trips: the guard stops a bad canary in seconds" / issue 14: breach -> no new
#: canary session at any router.
GUARD_BOUND_SECONDS = 30.0


class CountingLLM(FakeLLM):
    """The guard tests' fake provider, also counting answered requests per model."""

    def __init__(self) -> None:
        super().__init__()
        self.by_model: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _answer(self, path: str, auth: str | None, raw: bytes) -> tuple[int, Any]:
        status, body = super()._answer(path, auth, raw)
        if status == 200:
            with self._count_lock:
                self.by_model[body["model"]] += 1
        return status, body


class ProxyLoop(Loop):
    """``Loop`` with LiteLLM proxy replicas (the modelpin hook) as the gateways."""

    def __init__(self, work: Path, **kwargs: Any) -> None:
        super().__init__(work, **kwargs)
        self.llm.close()
        self.llm = self.counting = CountingLLM()
        self.proxies: list[Proxy] = []

    def start(self) -> None:
        self.fleet()
        root = trust_root(self.work / "trust", self.key)  # the root names the CI key
        self.root = root  # the guard verifies the table under the same root file
        self.redis.start()
        self.procs.append(self.redis)
        ports = [free_port() for _ in range(self.n_routers)]
        for i, port in enumerate(ports):
            config = proxy_config(provider=(self.llm.url, API_KEY), table=self.table,
                                  root=root, redis_url=self.redis.url,
                                  state_file=self.work / f"proxy-{i}.floor.json",
                                  metrics_port=port)
            self.proxies.append(Proxy(config, self.work / f"proxy-{i}", f"proxy-{i}"))
        for p in self.proxies:
            p.wait_ready()
        self.gateways = [p.url for p in self.proxies]
        self.prometheus = PrometheusProc(self.work / "prometheus",
                                         [f"127.0.0.1:{port}" for port in ports])
        self.prometheus.start()
        self.procs.append(self.prometheus)

    def stop(self) -> None:
        for p in self.proxies:
            p.stop()
        super().stop()

    def logs(self) -> str:
        proxies = "\n".join(f"--- {p.log_path.name}\n{p.log_tail(40)}" for p in self.proxies)
        return super().logs() + "\n" + proxies


@dataclass
class ProxyEvent(Event):
    sent: float = 0.0  # when the request left the client (its decision came after)


class ProxyTraffic(Traffic):
    """``Traffic`` through the proxies' OpenAI API, as a client of the proxy sends it:
    tenant acme's key, its alias as the model, the session in ``x-session-id``."""

    def _send(self, client: httpx.Client, session: str, new: bool) -> Event | None:
        url = random.choice(self.gateways)
        sent = time.time()
        try:
            r = client.post(
                f"{url}/v1/chat/completions",
                headers={"Authorization": "Bearer sk-acme", "x-session-id": session},
                json={"model": ALIAS, "tools": TOOLS,
                      "messages": [{"role": "user", "content": "look up clause 7.2"}]},
                timeout=30)
        except httpx.HTTPError as exc:
            self.errors.append(repr(exc))
            return None
        if r.status_code != 200:
            self.errors.append(f"{r.status_code} {r.text[:300]}")
            return None
        ev = ProxyEvent(time.time(), session, new, url, r.headers["x-modelpin-cohort"],
                        r.headers.get("x-modelpin-session-reset") == "true",
                        "x-modelpin-fallback" not in r.headers,
                        int(r.headers["x-modelpin-serial"]), sent)
        with self._lock:
            self.events.append(ev)
        return ev


def test_the_guard_trips_a_failing_candidate_and_both_proxies_stop_new_sessions(
    tmp_path: Path,
) -> None:
    loop = ProxyLoop(tmp_path, drain_seconds=4, routers=2, guard_interval=1.0)
    traffic: ProxyTraffic | None = None
    try:
        loop.start()
        loop.start_guard("guard-1")
        traffic = ProxyTraffic(loop.gateways)
        traffic.start()
        # Healthy: both cohorts get the guard's minimum samples (200 tool calls each), on
        # both replicas; nothing trips.
        wait_for(lambda: sum(e.cohort == "canary" for e in traffic.events) > 300, 120,
                 "healthy canary traffic through the proxies")
        time.sleep(2)
        assert loop.store().load() == {}, "a healthy canary was tripped"
        assert {e.router for e in traffic.events} == set(loop.gateways)
        before = traffic.new_sessions()
        assert any(e.cohort == "canary" for e in before if e.t > time.time() - 10)

        breach = time.time()  # T: the candidate starts failing its tool calls
        loop.llm.broken.add(CANDIDATE)
        tripped_at = wait_for(lambda: loop.store().load(), 60, "the guard's trip")
        [trip] = loop.store().load().values()
        assert (trip.tenant, trip.alias, trip.candidate) == ("acme", ALIAS, CANDIDATE)
        assert "tool_call_failure_rate" in trip.reason

        def late_sessions() -> list[ProxyEvent]:
            return [e for e in traffic.new_sessions()
                    if isinstance(e, ProxyEvent) and e.sent > tripped_at + 2.0]

        # new sessions keep arriving on both replicas (however slow the machine is)
        wait_for(lambda: len(late_sessions()) >= 10
                 and {e.router for e in late_sessions()} == set(loop.gateways), 60,
                 "new sessions after the trip on both replicas")
        new = traffic.new_sessions()
        last_canary = max(e.t for e in new if e.cohort == "canary")
        breach_to_stop = last_canary - breach
        print(f"\nbreach -> trip {tripped_at - breach:.1f} s, breach -> last new canary "
              f"session {breach_to_stop:.1f} s (answer received; bound "
              f"{GUARD_BOUND_SECONDS:.0f} s)")
        assert breach_to_stop <= GUARD_BOUND_SECONDS, breach_to_stop
        # The proxies read trips about every second: none placed a new session on the
        # candidate once its request was sent 2 s after the trip ...
        late = late_sessions()
        assert {e.router for e in late} == set(loop.gateways), "traffic on both replicas"
        assert len(late) >= 10 and all(e.cohort == "stable" for e in late), \
            Counter((e.router, e.cohort) for e in late)
        # ... and, once the drain window (4 s from the trip) is over, the candidate gets no
        # request at all: the sessions it had were cut over to stable.
        time.sleep(max(0.0, tripped_at + loop.drain_seconds + 2.0 - time.time()))
        seen = loop.counting.by_model[CANDIDATE]
        time.sleep(2)
        assert loop.counting.by_model[CANDIDATE] == seen, "the candidate is still asked"
        assert loop.counting.by_model[STABLE] > 0
        for sid, evs in traffic.watched.items():
            resets = [e for e in evs if e.reset]
            assert len(resets) <= 1, f"{sid} reset {len(resets)} times"
            if resets:
                assert all(e.cohort == "stable" for e in evs if e.t > resets[0].t)
        assert not traffic.errors[:5], traffic.errors[:5]
    except BaseException:
        print(loop.logs())
        raise
    finally:
        if traffic is not None:
            traffic.finish()
        loop.stop()
