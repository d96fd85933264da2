"""Payload and envelope builders for the router tests."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelpin import signing

FAR_FUTURE = "2099-01-01T00:00:00Z"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def salt_of(tenant: str, alias: str, candidate: str | None) -> str:
    return hashlib.sha256(f"{tenant}:{alias}:{candidate or ''}".encode()).hexdigest()[:16]


def route(
    tenant: str,
    alias: str,
    *,
    mode: str = "pinned",
    stable: str = "gpt-5-2026-01-10",
    candidate: str | None = None,
    percent: float = 0,
    paused: bool = False,
    since: str | None = None,
    drain_seconds: int = 300,
    kind: str = "chat",
) -> dict[str, Any]:
    if mode != "pinned":
        candidate = candidate or "gpt-5-2026-03-14"
        since = since or "2026-03-20T10:00:00Z"
    return {
        "kind": kind,
        "stable": stable,
        "candidate": candidate,
        "mode": mode,
        "paused": paused,
        "percent": percent,
        "salt": salt_of(tenant, alias, candidate),
        "since": since,
        "drain_seconds": drain_seconds,
    }


def payload(
    serial: int = 1,
    *,
    expires_at: str = FAR_FUTURE,
    issued_at: str = "2026-03-20T10:00:00Z",
    tenants: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid payload: acme-legal with a canary, a pinned embedder and a tool contract."""
    if tenants is None:
        tenants = {
            "acme-legal": {
                "group": "conservative",
                "failure_policy": "fallback-stable",
                "tools": {
                    "lookup_clause": {
                        "type": "object",
                        "required": ["clause_id"],
                        "properties": {"clause_id": {"type": "string"}},
                        "additionalProperties": False,
                    }
                },
                "aliases": {
                    "primary-reasoning": route(
                        "acme-legal", "primary-reasoning", mode="canary", percent=5
                    ),
                    "embedder": route(
                        "acme-legal", "embedder", kind="embedding",
                        stable="text-embedding-4-2026-02-01",
                    ),
                },
            }
        }
    return {
        "format": "modelpin.routing-table/v1",
        "serial": serial,
        "source": {"commit": COMMIT},
        "issued_at": issued_at,
        "expires_at": expires_at,
        "models": {
            "gpt-5-2026-01-10": {"provider": "openai", "kind": "chat"},
            "gpt-5-2026-03-14": {"provider": "openai", "kind": "chat"},
            "text-embedding-4-2026-02-01": {"provider": "openai", "kind": "embedding"},
        },
        "tenants": tenants,
    }


def with_route(doc: dict[str, Any], tenant: str, alias: str, **kw: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["tenants"][tenant]["aliases"][alias] = route(tenant, alias, **kw)
    return doc


def canonical(doc: dict[str, Any]) -> bytes:
    return rfc8785.dumps(doc)


def envelope(
    doc: dict[str, Any] | bytes,
    keys: list[Ed25519PrivateKey],
    payload_type: str = signing.PAYLOAD_TYPE,
) -> bytes:
    body = doc if isinstance(doc, bytes) else canonical(doc)
    return signing.dump_envelope(signing.sign(body, keys, payload_type))


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def serving(router: Any) -> int:
    """The serial a router answers with (the route every test table carries)."""
    return int(router.resolve("acme-legal", "embedder", "s1").serial)


def push(table_file: Path, data: bytes, router: Any) -> Any:
    """Publish ``data`` as the table file and have ``router`` poll it once."""
    write_atomically(table_file, data)
    return router.refresh()
