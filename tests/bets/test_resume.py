"""Kill a run mid-way (a real SIGKILL of the process) and resume it: the same evidence,
bytes for bytes, as an uninterrupted run; no journaled call made again (count them on
the server). The only calls a kill can cost twice are those in flight when it struck:
at most the provider's concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelpin import signing
from tests.bets.fleet import KEY_ENV, PERSONAS, write_fleet
from tests.fakes.openai_server import API_KEY, FakeOpenAI

NOW = "2026-03-20T10:00:00Z"
CONCURRENCY = 2


def _run(root: Path, out: Path, key: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, KEY_ENV: API_KEY}
    return subprocess.Popen(
        [sys.executable, "-c", "from modelpin.cli import run; run()", "bets", "run",
         "--repo", str(root), "--all", "--candidate", "gpt-5-fenced-2026-03-15",
         "--out", str(out), "--key", str(key), "--now", NOW],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _journaled(out: Path) -> int:
    [journal] = list((out / "journal").glob("*.jsonl"))
    return len(journal.read_bytes().splitlines()) - 1  # minus the header


def _evidence(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for p in sorted((out / "evidence").rglob("*.dsse.json"))}


@pytest.mark.slow
def test_a_killed_run_resumes_to_identical_evidence_without_paying_twice(tmp_path: Path
                                                                        ) -> None:
    server = FakeOpenAI(PERSONAS, {}, latency=0.05)
    try:
        root = tmp_path / "fleet"
        server.answers.update(write_fleet(root, server.base_url, cases=12,
                                          concurrency=CONCURRENCY))
        key = tmp_path / "evaluator.pem"
        key.write_bytes(signing.private_key_pem(signing.generate_private_key()))

        reference = _run(root, tmp_path / "reference", key)
        assert reference.wait(timeout=120) == 0, reference.stderr.read() if reference.stderr \
            else ""
        unique = server.answered()
        assert server.stats()["max_same_request"] == 1
        server.calls.clear()
        server.log.clear()

        out = tmp_path / "out"
        victim = _run(root, out, key)
        deadline = time.monotonic() + 60
        while server.answered() < unique // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        before_kill = list(server.log)
        journaled = _journaled(out)
        assert 0 < journaled < unique
        assert not (out / "evidence").exists()  # nothing written before the run completes
        # Every journaled answer was answered; at most the calls in flight were not journaled.
        assert len(before_kill) - CONCURRENCY <= journaled <= len(before_kill)

        resumed = _run(root, out, key)
        assert resumed.wait(timeout=120) == 0
        after = server.log[len(before_kill):]
        repeated = [r for r in after if r in set(before_kill)]
        assert len(repeated) <= len(before_kill) - journaled <= CONCURRENCY
        assert len(before_kill) + len(after) == unique + len(repeated)
        assert _evidence(out) == _evidence(tmp_path / "reference")
        assert len(_evidence(out)) == 3
    finally:
        server.close()
