"""The real parts of the LiteLLM integration tests and benchmark: a ``redis-server``, a
``litellm`` proxy process (from the ``modelpin[litellm]`` extra) configured with or without
the modelpin hook, and the test fleet's signed routing table. No pytest here: the
benchmark (``benchmarks/cases_litellm.py``) starts the same processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import signing
from tests.router.tables import payload, route

REPO = Path(__file__).resolve().parents[2]
STABLE = "gpt-5-2026-01-10"
CANDIDATE = "gpt-5-2026-03-14"
ALIAS = "primary"
LOOKUP_SCHEMA = {
    "type": "object",
    "required": ["clause_id"],
    "properties": {"clause_id": {"type": "string"}},
    "additionalProperties": False,
}
TOOLS = [{"type": "function", "function": {"name": "lookup_clause",
                                           "parameters": LOOKUP_SCHEMA}}]


def tenant(mode: str, percent: float, policy: str, *, drain_seconds: int = 300,
           name: str) -> dict[str, Any]:
    return {
        "group": "standard",
        "failure_policy": policy,
        "tools": {"lookup_clause": LOOKUP_SCHEMA},
        "aliases": {ALIAS: route(name, ALIAS, mode=mode, stable=STABLE, candidate=CANDIDATE,
                                 percent=percent, drain_seconds=drain_seconds)},
    }


def fleet(serial: int, **overrides: dict[str, Any]) -> dict[str, Any]:
    """The test fleet: acme canary 25% (fallback-stable), beta shadow, gamma canary 50%
    (structured-error), delta canary 50% (fallback-stable, the one a trip stops), epsilon
    canary 50% allowing the strip-json-fences coercion."""
    tenants = {
        "acme": tenant("canary", 25, "fallback-stable", name="acme"),
        "beta": tenant("shadow", 0, "fallback-stable", name="beta"),
        "gamma": tenant("canary", 50, "structured-error", name="gamma"),
        "delta": tenant("canary", 50, "fallback-stable", drain_seconds=0, name="delta"),
        "epsilon": {**tenant("canary", 50, "fallback-stable", name="epsilon"),
                    "coercions": ["strip-json-fences"]},
    }
    tenants.update(overrides)
    return payload(serial, tenants=tenants)




class HarnessError(RuntimeError):
    """A real part would not start (the message says which and why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a real Redis server ------------------------------------------------------------------


@dataclass
class RedisProcess:
    url: str
    process: subprocess.Popen[bytes]


def start_redis(data: Path) -> RedisProcess:
    exe = shutil.which("redis-server")
    if exe is None:
        raise HarnessError("redis-server is not on PATH (apt-get install -y redis-server)")
    data.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return RedisProcess(f"redis://127.0.0.1:{port}/0", proc)
            except redis.RedisError:
                time.sleep(0.02)
        proc.kill()
        proc.wait()
    raise HarnessError("redis-server did not start (5 attempts)")


# --- a real LiteLLM proxy process ------------------------------------------------------------


def litellm_executable() -> str:
    exe = Path(sys.executable).parent / "litellm"
    if not exe.exists():
        raise HarnessError("the `litellm` command is missing: install the extra, "
                           "pip install -e '.[litellm]' (the test extra includes it)")
    return str(exe)


def modelpin_cli(*args: str) -> None:
    """Run the ``modelpin`` command as a user would (a child process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", "from modelpin.cli import run; run()", *args],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise HarnessError(f"modelpin {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")


def trust_root(directory: Path, table_key: Ed25519PrivateKey) -> Path:
    """A signed trust root naming ``table_key`` as the table key, made the documented way
    (docs/trust-root.md): ``modelpin root init`` with an offline root key, then ``modelpin
    root sign``. The file a proxy's ``callback_settings.modelpin.root`` names."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = signing.generate_private_key()
    (directory / "root-admin.pem").write_bytes(signing.private_key_pem(root_key))
    (directory / "root-admin.pub").write_text(signing.public_key_b64(root_key.public_key()))
    (directory / "ci.pub").write_text(signing.public_key_b64(table_key.public_key()))
    root = directory / "modelpin-root.json"
    modelpin_cli("root", "init", "--root-key", str(directory / "root-admin.pub"),
                 "--table-key", str(directory / "ci.pub"), "--out", str(root))
    modelpin_cli("root", "sign", str(root), "--key", str(directory / "root-admin.pem"))
    return root


def proxy_config(*, provider: tuple[str, str], table: Path, root: Path, redis_url: str,
                 state_file: Path, hook: bool = True, metrics_port: int | None = None,
                 callbacks: list[str] | None = None) -> dict[str, Any]:
    """A proxy's config.yaml as README "The LiteLLM proxy integration" has users write it:
    the model list, the one callback line, and ``callback_settings.modelpin`` with the
    table, the signed trust root file and the shared Redis. ``provider``: the
    OpenAI-compatible server's base URL and API key."""
    api_base, api_key = provider
    models_list = [
        {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": api_base,
                                             "api_key": api_key}}
        for m in (STABLE, CANDIDATE)
    ]
    config: dict[str, Any] = {
        "model_list": models_list,
        "general_settings": {"master_key": "sk-master",
                             "custom_auth": "tests.integrations.tenant_auth.authenticate"},
        "litellm_settings": {"num_retries": 0, "request_timeout": 30},
    }
    if callbacks is not None:
        config["litellm_settings"]["callbacks"] = callbacks
    if hook:
        config["litellm_settings"]["callbacks"] = callbacks or [
            "modelpin.integrations.litellm.proxy_handler"]
        settings: dict[str, Any] = {
            "table": str(table),
            "root": str(root),
            "state_file": str(state_file),
            "redis_url": redis_url,
            "poll_interval": 0.2,
            "shadow_timeout": 10,
        }
        if metrics_port is not None:
            settings["metrics_address"] = f"127.0.0.1:{metrics_port}"
        config["callback_settings"] = {"modelpin": settings}
    return config


class Proxy:
    """``litellm --config CONFIG --host 127.0.0.1 --port PORT`` as a child process."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / f"{name}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        env.pop("DATABASE_URL", None)
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [litellm_executable(), "--config", str(self.config_path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        )
        self.startup_seconds: float | None = None

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"litellm proxy exited ({self.process.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health/readiness", timeout=1).status_code == 200:
                    self.startup_seconds = time.monotonic() - self.started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise HarnessError(f"litellm proxy not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def chat(client: httpx.Client, proxy: Proxy, key: str, session: str | None, text: str,
         **extra: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if session is not None:
        headers["x-session-id"] = session
    body = {"model": ALIAS, "messages": [{"role": "user", "content": text}], "tools": TOOLS}
    body.update(extra)
    return client.post(proxy.url + "/v1/chat/completions", headers=headers, json=body)




def hook_on_redis(directory: Path, redis_url: str, *, remote_sessions: bool,
                  timeout: float) -> Any:
    """An in-process ``ModelpinHook`` whose router (the test fleet, loaded) pins sessions
    in the real Redis at ``redis_url`` with ``timeout``-second socket timeouts;
    ``remote_sessions=False`` resolves on the event loop (the control)."""
    from prometheus_client import CollectorRegistry

    from modelpin.integrations.litellm import ModelpinHook
    from modelpin.integrations.settings import parse_settings
    from modelpin.router import RedisSessionStore, Router
    from tests.router.tables import envelope, write_atomically

    key = signing.generate_private_key()
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / "t.dsse.json"
    write_atomically(table, envelope(fleet(1), [key]))
    router = Router(table, [key.public_key()], registry=CollectorRegistry(),
                    session_store=RedisSessionStore.from_url(redis_url, timeout=timeout))
    router.refresh()
    raw = {"table": str(table), "trusted_keys": [signing.public_key_b64(key.public_key())],
           "redis_url": redis_url}
    return ModelpinHook(router, parse_settings(raw, {}), remote_sessions=remote_sessions)
