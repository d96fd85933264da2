from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from modelpin.bot.decisions import NextStep, RolloutRef
from modelpin.model.signals import SignalsPolicy

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = Path(__file__).parent / "telemetry"
TENANT_TEXT = (Path(__file__).parent / "tenants" / "acme-legal.yaml").read_text()
PATH = "tenants/acme-legal.yaml"


@pytest.fixture(scope="session")
def signals_policy() -> SignalsPolicy:
    raw = yaml.safe_load((ROOT / "policies" / "signals.yaml").read_text())
    return SignalsPolicy.model_validate(raw)


@pytest.fixture
def rollout() -> RolloutRef:
    return RolloutRef(
        tenant="acme-legal",
        alias="primary-reasoning",
        pin="gpt-5-2026-01-10",
        candidate="gpt-5-2026-03-14",
        stage="canary",
        percent=5,
        group="conservative",
        manual_approval=True,
    )


@pytest.fixture
def next_step() -> NextStep:
    return NextStep(kind="canary", percent=25)


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def remote_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    run(tmp_path, "init", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    run(tmp_path, "clone", str(remote), str(seed))
    for key, value in (("user.name", "Jane"), ("user.email", "jane@acme.example")):
        run(seed, "config", key, value)
    (seed / "tenants").mkdir()
    (seed / PATH).write_text(TENANT_TEXT)
    run(seed, "add", ".")
    run(seed, "commit", "-m", "fleet")
    run(seed, "push", "origin", "main")
    clone = tmp_path / "clone"
    run(tmp_path, "clone", str(remote), str(clone))
    return remote, clone
