"""The example fleet's evidence is the runner's output, not written by hand: running
``bets run`` for nimbus-dev against the fake provider, as scripts/make-example-evidence.sh
does, reproduces the committed evidence file byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpin.cli import main
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.personas import answers_from_suites

REPO = Path(__file__).resolve().parents[2]
KEY = REPO / "examples/keys/evaluator.pem"
PERSONAS = {"gpt-5-2026-01-10": "clean", "claude-4-20260201": "clean",
            "gpt-5-2026-09-14": "mostly-clean", "claude-4-5-20260915": "mostly-clean"}


@pytest.mark.slow
def test_nimbus_dev_evidence_is_reproduced_by_the_runner(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeOpenAI(PERSONAS, answers_from_suites(REPO), api_key="sk-example-fake")
    try:
        providers = tmp_path / "providers.yaml"
        providers.write_text("providers:\n" + "".join(
            f"  {p}: {{base_url: '{server.base_url}', api_key_env: EXAMPLE_FAKE_KEY, "
            "requests_per_minute: 60000, tokens_per_minute: 100000000, concurrency: 16}\n"
            for p in ("openai", "anthropic", "google")))
        monkeypatch.setenv("EXAMPLE_FAKE_KEY", "sk-example-fake")
        sign = ["--key", str(KEY)] if KEY.is_file() else ["--unsigned"]
        code = main(["bets", "run", "--repo", str(REPO), "--tenant", "nimbus-dev",
                     "--providers", str(providers), "--now", "2026-11-21T03:00:00Z",
                     "--out", str(tmp_path / "out"), *sign])
        assert code == 0
        [made] = list((tmp_path / "out/evidence/nimbus-dev/primary").iterdir())
        committed = REPO / "evidence/nimbus-dev/primary" / made.name
        assert made.read_bytes() == committed.read_bytes()
    finally:
        server.close()
