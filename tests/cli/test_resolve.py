"""``modelpin resolve``: the router's bucketing applied to one session, for debugging."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpin.cli import main
from modelpin.router.bucketing import bucket
from modelpin.routing.payload import salt_of
from tests.routing.compilekit import CANDIDATE, NOW, git_fleet


@pytest.fixture
def envelope(tmp_path: Path) -> tuple[Path, Path]:
    repo = git_fleet(tmp_path / "repo")
    assert main(["compile", "--repo", str(repo), "--now", NOW]) == 0
    return repo, repo / "dist/routing-table.dsse.json"


def resolve(repo: Path, envelope: Path, *args: str) -> int:
    return main(["resolve", str(envelope), *args, "--repo", str(repo), "--now", NOW])


def test_canary_sessions_split_by_bucket(
    envelope: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, env = envelope
    salt = salt_of("beta", "primary", CANDIDATE)
    sessions = [f"s-{i}" for i in range(40)]
    in_canary = next(s for s in sessions if bucket(salt, s) < 2500)
    in_stable = next(s for s in sessions if bucket(salt, s) >= 2500)
    capsys.readouterr()
    assert resolve(repo, env, "beta", "primary", in_canary) == 0
    out = capsys.readouterr().out
    assert f"model {CANDIDATE} (cohort canary)" in out
    assert f"bucket {bucket(salt, in_canary)} of 10000" in out
    assert resolve(repo, env, "beta", "primary", in_stable) == 0
    assert "model gpt-5-2026-01-10 (cohort stable)" in capsys.readouterr().out


def test_shadow_and_pinned(envelope: tuple[Path, Path],
                           capsys: pytest.CaptureFixture[str]) -> None:
    repo, env = envelope
    capsys.readouterr()
    assert resolve(repo, env, "gamma", "primary", "s") == 0
    out = capsys.readouterr().out
    assert "model gpt-5-2026-01-10 (cohort stable)" in out
    assert f"shadow {CANDIDATE}: comparison only" in out
    assert resolve(repo, env, "acme", "primary", "s") == 0
    assert "mode pinned" in capsys.readouterr().out


def test_unknown_tenant_or_alias(envelope: tuple[Path, Path],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    repo, env = envelope
    assert resolve(repo, env, "bteta", "primary", "s") == 1
    err = capsys.readouterr().err
    assert "tenant 'bteta' is not in the table" in err and "beta" in err
    assert resolve(repo, env, "beta", "secondary", "s") == 1
    assert "has no alias 'secondary'" in capsys.readouterr().err
