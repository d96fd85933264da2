"""The progress bar: drawn on an interactive stderr (a real pseudo-terminal here), with the
count of cases advancing to the total; absent when stderr is not a terminal (CI logs,
pipes, files), which then carry only the plain lines."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

import pytest

from tests.bets.conftest import Bets
from tests.bets.fleet import KEY_ENV
from tests.fakes.openai_server import API_KEY

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _argv(bets: Bets, out: str) -> list[str]:
    return [sys.executable, "-c", "from modelpin.cli import run; run()", "bets", "run",
            "--repo", str(bets.root), "--all", "--candidate", "gpt-5-2026-03-14",
            "--unsigned", "--now", "2026-03-20T10:00:00Z", "--out", str(bets.root / out)]


def _total(bets: Bets) -> int:
    return sum(len(p.read_text().splitlines()) for p in (bets.root / "bets").glob("*/cases.jsonl"))


@pytest.mark.slow
def test_on_a_terminal_the_bar_counts_cases_up_to_the_total(bets: Bets) -> None:
    bets.server.latency = 0.1  # long enough for the bar to redraw while cases complete
    master, slave = pty.openpty()
    env = {**os.environ, KEY_ENV: API_KEY, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(_argv(bets, "tty"), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen = b""
    while True:  # read the terminal until the process has closed it
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            pytest.fail(f"no output for 60 s: {screen[-500:]!r}")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None and b"passed" in proc.stdout.read()
    text = ANSI.sub(b"", screen).decode("utf-8", "replace")
    total = _total(bets)
    counts = [int(done) for done, of in re.findall(r"(\d+)/(\d+)", text) if int(of) == total]
    assert "BETS cases" in text
    assert counts[0] == 0 and counts[-1] == total  # from nothing to every case
    assert counts == sorted(counts) and len(set(counts)) >= 3  # advancing, drawn in between
    assert screen.count(b"\x1b[") > 0  # drawn and redrawn in place


def test_without_a_terminal_stderr_carries_no_bar(bets: Bets) -> None:
    env = {**os.environ, KEY_ENV: API_KEY, "TERM": "xterm-256color"}
    proc = subprocess.run(_argv(bets, "pipe"), env=env, capture_output=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert b"BETS cases" not in proc.stderr and b"\x1b[" not in proc.stderr
    assert b"\r" not in proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert any(line.endswith("passed") for line in lines)
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_an_in_process_run_under_capture_draws_nothing(bets: Bets) -> None:
    code, out, err = bets.run("--all", "--candidate", "gpt-5-2026-03-14", "--unsigned")
    assert code == 0
    assert "BETS cases" not in err and "\x1b[" not in err and "\x1b[" not in out
