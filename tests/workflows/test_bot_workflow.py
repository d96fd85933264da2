"""bot.yml passes the telemetry source with its kind: ``--prometheus`` for
MODELPIN_PROMETHEUS, ``--telemetry`` for MODELPIN_TELEMETRY, never guessed from the URL.
The steps' shell scripts run for real (bash, git) with a recording ``modelpin`` on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "bot.yml"


def _script(job: str, step: str) -> str:
    doc = yaml.safe_load(WORKFLOW.read_text())
    steps = doc["jobs"][job]["steps"]
    return next(s["run"] for s in steps if s.get("name") == step)


def _run(tmp_path: Path, job: str, step: str, **env: str) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bin_dir / "modelpin"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{calls}"\n')
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    full = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
            "REPOSITORY": "acme/fleet", "GITHUB_TOKEN": "t", **env}
    proc = subprocess.run(["bash", "-e", "-c", _script(job, step)], cwd=work, env=full,
                          capture_output=True, text=True, check=False)
    args = calls.read_text().splitlines() if calls.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, args


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PROMETHEUS": "https://prom:9090", "TELEMETRY": ""},
         ["bot", "--prometheus", "https://prom:9090"]),
        ({"PROMETHEUS": "", "TELEMETRY": "https://exporter/telemetry.json"},
         ["bot", "--telemetry", "https://exporter/telemetry.json"]),
    ],
    ids=["prometheus", "telemetry-json-url"],
)
def test_the_propose_step_names_the_source_kind(tmp_path: Path, env: dict[str, str],
                                                expected: list[str]) -> None:
    code, _, args = _run(tmp_path, "propose", "Propose", **env)
    assert code == 0
    assert args == [*expected, "--push", "--github", "acme/fleet"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROMETHEUS": "https://prom:9090", "TELEMETRY": "https://x/t.json"}, "not both"),
        ({"PROMETHEUS": "", "TELEMETRY": ""}, "set the repository variable MODELPIN_PROMETHEUS"),
    ],
    ids=["both", "neither"],
)
def test_the_propose_step_refuses_an_ambiguous_source(tmp_path: Path, env: dict[str, str],
                                                      message: str) -> None:
    code, out, args = _run(tmp_path, "propose", "Propose", **env)
    assert code == 1
    assert f"::error::{message}" in out or message in out
    assert args == []  # modelpin never ran


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DRIFT_TELEMETRY": "https://x/drift.json", "PROMETHEUS": "https://prom"},
         ["--telemetry", "https://x/drift.json"]),
        ({"DRIFT_TELEMETRY": "", "PROMETHEUS": "https://prom"}, ["--prometheus", "https://prom"]),
        ({"DRIFT_TELEMETRY": "", "PROMETHEUS": ""}, []),
    ],
    ids=["drift-json", "prometheus", "none"],
)
def test_the_lifecycle_step_passes_the_drift_source(tmp_path: Path, env: dict[str, str],
                                                    expected: list[str]) -> None:
    code, _, args = _run(tmp_path, "lifecycle", "Lifecycle", **env)
    assert code == 0
    assert args == ["lifecycle", *expected, "--push", "--github", "acme/fleet"]
