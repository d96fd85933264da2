"""``modelpin keygen``: a key pair that compile and verify accept, never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelpin.cli import main
from modelpin.model.policies import ArtifactPolicy
from tests.routing.compilekit import NOW, git_fleet, spec


def test_keygen_out_dir_writes_a_private_0600_key_and_prints_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out", str(tmp_path / "k"), "--owner", "ci-bot"]) == 0
    private = tmp_path / "k/modelpin-signing-key.pem"
    public = tmp_path / "k/modelpin-signing-key.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    out = capsys.readouterr().out
    policy = ArtifactPolicy.model_validate(yaml.safe_load(out))
    assert policy.trusted_keys[0].public_key == public.read_text().strip()
    assert policy.trusted_keys[0].owner == "ci-bot"

    fleet = spec()
    fleet.artifact = {"ttl": "7d", **yaml.safe_load(out)}
    repo = git_fleet(tmp_path / "repo", fleet)
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key", str(private)]) == 0
    assert main(["verify", str(repo / "dist/routing-table.dsse.json"), "--repo", str(repo),
                 "--now", NOW]) == 0


def test_keygen_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["keygen", "--private", str(tmp_path / "a.pem"), "--public", str(tmp_path / "a.pub")]
    assert main(args) == 0
    first = (tmp_path / "a.pem").read_bytes()
    assert main(args) == 2
    assert "exists; not overwriting a key" in capsys.readouterr().err
    assert (tmp_path / "a.pem").read_bytes() == first
    assert main([*args, "--force"]) == 0
    assert (tmp_path / "a.pem").read_bytes() != first
    assert (tmp_path / "a.pem").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args", [
    ["--private", "x.pem"],
    ["--out", "d", "--private", "x.pem", "--public", "x.pub"],
    ["--private", "same", "--public", "same"],
])
def test_keygen_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", *args]) == 2
    assert not list(tmp_path.iterdir())
