"""The closed loop on real parts, for the end-to-end test and the benchmark.

A config repository (bare remote + clones), a signed table compiled by ``modelpin
compile``, a real ``redis-server``, three gateway processes embedding the router, a
real ``prometheus`` scraping them every second with the SHIPPED ``policies/signals.yaml``
queries, the fake LLM provider (chat-completions API) and the fake GitHub, and
``modelpin guard`` as its own process. A traffic generator sends sessions through the
gateways and logs every decision.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis

from modelpin import signing
from modelpin.router.trips import TripStore
from tests.bot.fake_github import FakeGitHub
from tests.fleetkit import FleetSpec, git, tenant
from tests.guard.fake_llm import FakeLLM
from tests.guard.procs import (
    REPO,
    Proc,
    PrometheusProc,
    RedisProc,
    env_with,
    free_port,
    modelpin,
    python_module,
    wait_http,
)

TENANT, ALIAS = "acme", "primary"
STABLE, CANDIDATE = "gpt-5-2026-01-10", "gpt-5-2026-03-14"
TOOLS = {"lookup_clause": {"type": "object", "required": ["clause_id"],
                           "properties": {"clause_id": {"type": "string"}}}}
BRANCH = f"modelpin/rollback/{TENANT}/{ALIAS}"


@dataclass
class Event:
    t: float
    session: str
    new: bool
    router: str
    cohort: str
    reset: bool
    valid: bool
    serial: int


@dataclass
class Traffic:
    """Sessions through the gateways; every answer is logged."""

    gateways: list[str]
    threads: int = 6
    events: list[Event] = field(default_factory=list)
    watched: dict[str, list[Event]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    watch_canary: int = 12

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._watch, daemon=True)
        t.start()
        self._threads.append(t)

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _send(self, client: httpx.Client, session: str, new: bool) -> Event | None:
        url = random.choice(self.gateways)
        try:
            r = client.post(f"{url}/chat", json={"tenant": TENANT, "alias": ALIAS,
                                                 "session": session}, timeout=5)
            data = r.json()
            if r.status_code != 200:
                self.errors.append(str(data))
                return None
        except (httpx.HTTPError, ValueError) as exc:
            self.errors.append(repr(exc))
            return None
        ev = Event(time.time(), session, new, data["router"], data["cohort"],
                   data["session_reset"], data["valid"], data["serial"])
        with self._lock:
            self.events.append(ev)
        return ev

    def _run(self, i: int) -> None:
        live: list[str] = []
        with httpx.Client() as client:
            while not self.stop.is_set():
                if not live or random.random() < 0.4:
                    sid = f"s-{i}-{uuid.uuid4().hex[:12]}"
                    ev = self._send(client, sid, True)
                    if ev is None:
                        continue
                    if (ev.cohort == "canary" and len(self.watched) < self.watch_canary
                            and sid not in self.watched):
                        with self._lock:
                            self.watched[sid] = []
                    live.append(sid)
                    if len(live) > 20:
                        live.pop(0)
                else:
                    self._send(client, random.choice(live), False)

    def _watch(self) -> None:
        """Keep the first canary sessions talking: they drain, then are cut over."""
        with httpx.Client() as client:
            while not self.stop.wait(0.3):
                for sid in list(self.watched):
                    ev = self._send(client, sid, False)
                    if ev is not None:
                        self.watched[sid].append(ev)

    def new_sessions(self) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.new]


class Loop:
    """Everything of the closed loop, started and stopped together."""

    def __init__(self, work: Path, *, drain_seconds: int = 4, routers: int = 3,
                 guard_interval: float = 1.0, coercions: tuple[str, ...] = (),
                 shadow_tenant: str | None = None) -> None:
        self.work = work
        self.coercions = coercions
        self.shadow_tenant = shadow_tenant  # a second tenant, its alias in stage shadow
        self.drain_seconds = drain_seconds
        self.n_routers = routers
        self.guard_interval = guard_interval
        self.procs: list[Proc] = []
        self.key = signing.generate_private_key()
        self.key_file = work / "signing.pem"
        self.pub = signing.public_key_b64(self.key.public_key())
        #: A signed trust root file the guard verifies the table under (``--root``), as
        #: the routers are configured; ``None``: the table key itself (``--trusted-key``).
        self.root: Path | None = None
        self.dist = work / "dist"
        self.table = self.dist / "routing-table.dsse.json"
        self.remote = work / "remote.git"
        self.clone = work / "config"
        self.guard_repo = work / "guard-config"
        self.llm = FakeLLM()
        self.github = FakeGitHub().start()
        self.redis = RedisProc(work / "redis")
        self.gateways: list[str] = []
        self.gateway_procs: list[Proc] = []
        self.prometheus: PrometheusProc | None = None
        self.guards: list[Proc] = []
        self.guard_metrics: list[str] = []

    # --- setup ---------------------------------------------------------------------------

    def fleet(self, *, compile_table: bool = True) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.key_file.write_bytes(signing.private_key_pem(self.key))
        git(self.work, "init", "-q", "--bare", "-b", "main", str(self.remote))
        now = datetime.now(UTC).replace(microsecond=0)
        spec = FleetSpec(tenants={})
        extra: dict[str, Any] = {"coercions": list(self.coercions)} if self.coercions else {}
        spec.add(tenant(TENANT, tools=TOOLS, rollout={
            "candidate": CANDIDATE, "stage": "canary", "percent": 50,
            "since": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}, **extra))
        if self.shadow_tenant is not None:
            spec.add(tenant(self.shadow_tenant, tools=TOOLS, rollout={
                "candidate": CANDIDATE, "stage": "shadow",
                "since": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}))
        spec.artifact = {"ttl": "7d", "drain_seconds": self.drain_seconds, "threshold": 1,
                         "trusted_keys": []}
        self.clone.mkdir()
        git(self.clone, "init", "-q", "-b", "main")
        spec.write(self.clone)
        # the shipped signal policy, byte for byte: its PromQL is what is under test
        shutil.copyfile(REPO / "policies" / "signals.yaml",
                        self.clone / "policies" / "signals.yaml")
        self.commit(self.clone, "fleet")
        git(self.clone, "remote", "add", "origin", str(self.remote))
        git(self.clone, "push", "-q", "origin", "main")
        git(self.work, "clone", "-q", str(self.remote), str(self.guard_repo))
        if compile_table:
            self.compile()

    def commit(self, repo: Path, message: str) -> None:
        git(repo, "add", "-A")
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        git(repo, "commit", "-q", "-m", message, date=stamp)

    def compile(self) -> None:
        import subprocess

        proc = subprocess.run(
            modelpin("compile", "--repo", str(self.clone), "--key", str(self.key_file),
                     "--out", str(self.dist), "--no-cache"),
            capture_output=True, text=True, env=env_with(), cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"compile failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        self.fleet()
        self.redis.start()
        self.procs.append(self.redis)
        for i in range(self.n_routers):
            port = free_port()
            name = f"gw-{i + 1}"
            p = Proc(python_module("tests.guard.gateway", "--name", name, "--port", str(port),
                                   "--table", str(self.table), "--key", self.pub,
                                   "--redis", self.redis.url, "--llm", self.llm.url,
                                   "--state", str(self.work)),
                     self.work / f"{name}.log", env=env_with()).start()
            self.procs.append(p)
            self.gateway_procs.append(p)
            self.gateways.append(f"http://127.0.0.1:{port}")
        for url, p in zip(self.gateways, self.gateway_procs, strict=True):
            wait_http(f"{url}/status", p, 30)
        self.prometheus = PrometheusProc(self.work / "prometheus",
                                         [u.removeprefix("http://") for u in self.gateways])
        self.prometheus.start()
        self.procs.append(self.prometheus)

    def start_guard(self, name: str = "guard-1", prometheus: str | None = None) -> Proc:
        """``modelpin guard run`` as a process (``prometheus``: another URL than the
        loop's own server, e.g. one that is down)."""
        if prometheus is None:
            assert self.prometheus is not None
            prometheus = self.prometheus.url
        port = free_port()
        p = Proc(modelpin("guard", "run", "--repo", str(self.guard_repo),
                          "--prometheus", prometheus, "--redis", self.redis.url,
                          "--interval", str(self.guard_interval), "--timeout", "2",
                          "--table", str(self.table),
                          *(("--root", str(self.root)) if self.root is not None
                            else ("--trusted-key", self.pub)),
                          "--clear-grace", "1", "--github", "acme/fleet",
                          "--github-api", self.github.url, "--dispatch",
                          "--metrics-port", str(port), "--id", name),
                 self.work / f"{name}.log", env=env_with(GITHUB_TOKEN=self.github.token)).start()
        self.procs.append(p)
        self.guards.append(p)
        self.guard_metrics.append(f"http://127.0.0.1:{port}/metrics")
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            t = time.time()
            p.stop()
            print(f"    stopped {p.log.name} in {time.time() - t:.1f}s")
        self.llm.close()
        self.github.stop()

    # --- observing -----------------------------------------------------------------------

    def store(self) -> TripStore:
        return TripStore.from_url(self.redis.url, timeout=1.0)

    def statuses(self) -> list[dict[str, Any]]:
        out = []
        for url in self.gateways:
            try:
                out.append(httpx.get(f"{url}/status", timeout=2).json())
            except (httpx.HTTPError, ValueError):
                out.append({})
        return out

    def redis_client(self) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.redis.url, socket_timeout=1)

    def merge_rollback(self) -> None:
        """What a human does with the PR: merge it; then CI compiles and publishes."""
        git(self.clone, "fetch", "-q", "origin", f"+refs/heads/{BRANCH}:refs/remotes/pr")
        git(self.clone, "merge", "-q", "--ff-only", "refs/remotes/pr")
        git(self.clone, "push", "-q", "origin", "main")
        self.compile()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in self.procs)


def wait_for(predicate: Any, seconds: float, what: str, step: float = 0.1) -> float:
    """Poll until ``predicate()`` is truthy; the time it became so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")

