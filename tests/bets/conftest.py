"""Fixtures: a fake provider on 127.0.0.1, the BETS test fleet, an evaluator key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelpin import signing
from modelpin.cli import main
from tests.bets.fleet import KEY_ENV, PERSONAS, write_fleet
from tests.fakes.openai_server import API_KEY, FakeOpenAI


@dataclass
class Bets:
    root: Path
    server: FakeOpenAI
    key_file: Path
    public_key: Any
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str, out: str = "out") -> tuple[int, str, str]:
        code = main(["bets", "run", "--repo", str(self.root), "--out", str(self.root / out),
                     *args])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def results(self, out: str = "out") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / out / "results.json").read_text())
        return data

    def target(self, tenant: str, out: str = "out") -> dict[str, Any]:
        [found] = [t for t in self.results(out)["targets"] if t["tenant"] == tenant]
        return found


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI(PERSONAS, {})
    yield srv
    srv.close()


@pytest.fixture
def bets(tmp_path: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Bets:
    root = tmp_path / "fleet"
    server.answers.update(write_fleet(root, server.base_url))
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.delenv("MODELPIN_EVALUATOR_KEY", raising=False)
    key = signing.generate_private_key()
    key_file = tmp_path / "evaluator.pem"
    key_file.write_bytes(signing.private_key_pem(key))
    return Bets(root, server, key_file, key.public_key(), capsys)
