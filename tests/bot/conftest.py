from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelpin.bot.decisions import NextStep, RolloutRef
from modelpin.model.signals import SignalsPolicy

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = Path(__file__).parent / "telemetry"


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
