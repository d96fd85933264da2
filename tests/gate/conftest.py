"""Fixtures of the PR-scenario suite (``tests/gate/harness.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gate.harness import Gate


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    """Runs scenario rows in fresh git repositories under ``tmp_path``."""
    return Gate(tmp_path)
