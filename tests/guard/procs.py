"""Real servers for the guard tests: redis-server, prometheus, gateways, the guard."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
import redis

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"`{name}` not found: the guard tests need real servers "
                    f"(Debian: apt-get install -y redis-server prometheus)", pytrace=False)
    return exe


class Proc:
    """A child process with its log file; stopped (and reaped) by ``stop``."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path = REPO) -> None:
        self.args = list(args)
        self.log = log
        self.env = env
        self.cwd = cwd
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.p = subprocess.Popen(self.args, stdout=self.log.open("ab"),
                                  stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        return self

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.p is None:
            return
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class RedisProc(Proc):
    def __init__(self, work: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        work.mkdir(parents=True, exist_ok=True)
        super().__init__([binary("redis-server"), "--port", str(self.port), "--bind",
                          "127.0.0.1", "--dir", str(work), "--save", "", "--appendonly", "no",
                          "--protected-mode", "no"], work / "redis.log")

    def start(self) -> RedisProc:
        super().start()
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start:\n" + self.tail())


class PrometheusProc(Proc):
    def __init__(self, work: Path, targets: Sequence[str], scrape: str = "1s") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        config = work / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {scrape}\n  evaluation_interval: {scrape}\n"
            "scrape_configs:\n  - job_name: gateways\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
        super().__init__([binary("prometheus"), f"--config.file={config}",
                          f"--storage.tsdb.path={work / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{self.port}"],
                         work / "prometheus.log")

    def start(self) -> PrometheusProc:
        super().start()
        wait_http(f"{self.url}/-/ready", self, 30)
        return self


def wait_http(url: str, proc: Proc, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{proc.tail()}")
        time.sleep(0.05)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def modelpin(*args: str) -> list[str]:
    return [sys.executable, "-c", "from modelpin.cli import run; run()", *args]


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
