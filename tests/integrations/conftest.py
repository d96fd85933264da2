"""Fixtures for the LiteLLM integration tests: real proxy replicas (``harness.py``), a
real Redis, the fake provider (``tests/fakes/openai_server.py``) on loopback."""

from __future__ import annotations

import os

# LiteLLM fetches its model price map from GitHub at import unless told not to; the tests
# run on loopback only.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import signing
from tests.fakes.openai_server import FakeOpenAI
from tests.integrations.harness import (
    HarnessError,
    Proxy,
    RedisProcess,
    fleet,
    free_port,
    proxy_config,
    start_redis,
    trust_root,
)
from tests.router.tables import envelope, write_atomically


@dataclass
class Stack:
    fake: FakeOpenAI
    redis: RedisProcess
    table: Path
    key: Ed25519PrivateKey
    proxies: list[Proxy]
    metrics_ports: list[int]

    def publish(self, doc: dict[str, Any]) -> None:
        write_atomically(self.table, envelope(doc, [self.key]))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two proxy replicas with the hook, sharing one Redis, in front of the fake."""
    tmp = tmp_path_factory.mktemp("litellm")
    key = signing.generate_private_key()
    fake = FakeOpenAI()
    red: RedisProcess | None = None
    table = tmp / "routing-table.dsse.json"
    write_atomically(table, envelope(fleet(1), [key]))
    proxies: list[Proxy] = []
    ports = [free_port(), free_port()]
    try:
        # Trust as README tells users: a signed root file in config.yaml, not bare keys.
        root = trust_root(tmp / "root", key)
        red = start_redis(tmp / "redis")
        for i in range(2):
            config = proxy_config(provider=(fake.base_url, fake.api_key), table=table,
                                  root=root, redis_url=red.url,
                                  state_file=tmp / f"floor-{i}.json", metrics_port=ports[i])
            proxies.append(Proxy(config, tmp / f"replica-{i}", f"replica-{i}"))
        for p in proxies:
            p.wait_ready()
    except HarnessError as exc:
        _stop(proxies, red, fake)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield Stack(fake, red, table, key, proxies, ports)
    finally:
        _stop(proxies, red, fake)


def _stop(proxies: list[Proxy], red: RedisProcess | None, fake: FakeOpenAI) -> None:
    for p in proxies:
        p.stop()
    if red is not None:
        red.process.kill()
        red.process.wait()
    fake.close()


def read_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except json.JSONDecodeError:
        pytest.fail(f"not JSON ({response.status_code}): {response.text[:500]}", pytrace=False)
