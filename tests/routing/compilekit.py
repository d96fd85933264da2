"""Helpers for compile/verify/keygen/resolve tests: a fleet in a real git repo, keys."""

from __future__ import annotations

import os
from pathlib import Path

from modelpin import signing
from tests.fleetkit import FleetSpec, commit_all, init_repo, tenant

NOW = "2026-03-25T12:00:00Z"
CANDIDATE = "gpt-5-2026-03-14"


def spec() -> FleetSpec:
    s = FleetSpec(tenants={})
    s.add(tenant("acme", tools={"lookup": {"type": "object", "required": ["id"]}}))
    s.add(tenant("beta", rollout={"candidate": CANDIDATE, "stage": "canary", "percent": 25,
                                  "since": "2026-03-20T10:00:00Z"}))
    s.add(tenant("gamma", rollout={"candidate": CANDIDATE, "stage": "shadow",
                                   "since": "2026-03-20T10:00:00Z"}))
    s.artifact = {"ttl": "7d", "drain_seconds": 300, "threshold": 1, "trusted_keys": []}
    return s


def git_fleet(root: Path, fleet: FleetSpec | None = None, commits: int = 1) -> Path:
    init_repo(root)
    (fleet or spec()).write(root)
    commit_all(root, "fleet")
    for i in range(1, commits):
        (root / "README.md").write_text(f"rev {i}\n")
        commit_all(root, f"rev {i}")
    return root


def keypair(directory: Path, name: str = "key") -> tuple[Path, Path, str]:
    """(private PEM file, public base64 file, base64 public key)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = signing.generate_private_key()
    private = directory / f"{name}.pem"
    private.write_bytes(signing.private_key_pem(key))
    os.chmod(private, 0o600)
    b64 = signing.public_key_b64(key.public_key())
    public = directory / f"{name}.pub"
    public.write_text(b64 + "\n")
    return private, public, b64
