"""``modelpin compile``: real git repositories, real Ed25519 keys, real files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from modelpin import signing
from modelpin.cli import main
from modelpin.load.cache import CACHE_FILE, cache_root
from tests.fleetkit import commit_all, git, tenant
from tests.routing.compilekit import NOW, git_fleet, keypair, spec

SCHEMA = json.loads(
    resources.files("modelpin").joinpath("schemas/routing-table.schema.json").read_text()
)


def compile_(repo: Path, *args: str) -> int:
    return main(["compile", "--repo", str(repo), "--now", NOW, *args])


def test_compile_writes_a_signed_schema_valid_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", commits=3)
    assert compile_(repo) == 0
    out, err = capsys.readouterr()
    payload = (repo / "dist/routing-table.json").read_bytes()
    doc = json.loads(payload)
    jsonschema.validate(doc, SCHEMA)
    assert doc["serial"] == 3_000_000  # 3 commits, issued at the commit's own time
    assert doc["source"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert (doc["issued_at"], doc["expires_at"]) == (NOW, "2026-04-01T12:00:00Z")
    envelope = signing.parse_envelope((repo / "dist/routing-table.dsse.json").read_bytes())
    assert envelope.payload == payload
    dev_key = repo / ".modelpin/dev-signing-key.pem"
    assert dev_key.stat().st_mode & 0o777 == 0o600
    pub = signing.load_private_key(dev_key.read_bytes()).public_key()
    assert signing.verify(envelope, {signing.keyid_of(pub): pub}) == payload
    assert "DEVELOPMENT key" in err
    assert "compiled serial 3000000" in out and "3 tenants, 3 aliases" in out


def test_reissuing_a_commit_later_raises_the_serial(tmp_path: Path) -> None:
    """The daily publish re-signs an unchanged main: routers must accept it (higher
    serial), and the next commit must still outrank every re-issue."""
    repo = git_fleet(tmp_path / "repo", commits=2)
    serials = []
    for now in (NOW, "2026-03-26T12:00:00Z", "2026-03-27T12:30:00Z"):
        assert main(["compile", "--repo", str(repo), "--now", now]) == 0
        serials.append(json.loads((repo / "dist/routing-table.json").read_bytes())["serial"])
    assert serials == [2_000_000, 2_001_440, 2_002_910]
    (repo / "tenants" / "README.md").write_text("a new commit\n")
    commit_all(repo, "another commit", date=NOW)
    assert main(["compile", "--repo", str(repo), "--now", NOW]) == 0
    assert json.loads((repo / "dist/routing-table.json").read_bytes())["serial"] == 3_000_000


def test_require_key_refuses_the_development_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELPIN_SIGNING_KEY", raising=False)
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo, "--require-key") == 1
    assert "--require-key refuses the local development key" in capsys.readouterr().err
    assert not (repo / "dist").exists()


def test_serial_override_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo, "--serial", "41", "--table") == 0
    assert json.loads((repo / "dist/routing-table.json").read_bytes())["serial"] == 41
    out = capsys.readouterr().out
    assert "beta" in out and "canary" in out and "25" in out and "gpt-5-2026-03-14" in out


def test_same_commit_gives_identical_bytes_across_clones_and_environments(
    tmp_path: Path,
) -> None:
    origin = git_fleet(tmp_path / "origin", commits=2)
    private, _pub, _ = keypair(tmp_path / "keys")
    outputs = []
    for i, env_extra in enumerate(({"TZ": "UTC", "LANG": "C"},
                                   {"TZ": "Asia/Kolkata", "LANG": "de_DE.UTF-8",
                                    "LC_ALL": "tr_TR.UTF-8"})):
        clone = tmp_path / f"clone{i}"
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        for path in sorted((clone / "tenants").iterdir()):
            os.utime(path, (1_000_000 * (i + 1), 1_000_000 * (i + 1)))
        env = {**os.environ, **env_extra}
        proc = subprocess.run(
            [sys.executable, "-c", "from modelpin.cli import run; run()", "compile",
             "--repo", str(clone), "--key", str(private), "--now", NOW],
            env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        outputs.append(((clone / "dist/routing-table.json").read_bytes(),
                        (clone / "dist/routing-table.dsse.json").read_bytes()))
    assert outputs[0] == outputs[1]  # Ed25519 is deterministic: the envelopes match too


def test_invalid_tenant_leaves_the_previous_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo) == 0
    before = {p.name: p.read_bytes() for p in (repo / "dist").iterdir()}
    broken = spec().add(tenant("acme", pin="gpt-9-2099-01-01"))
    broken.write(repo)
    assert compile_(repo) == 1
    assert "nothing written" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (repo / "dist").iterdir()} == before


def test_a_write_failing_half_way_replaces_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo) == 0
    before = {p.name: p.read_bytes() for p in (repo / "dist").iterdir()}
    spec().add(tenant("delta")).write(repo)
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the envelope's temp file: the payload's is already written
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert compile_(repo, "--no-cache") == 1
    assert "No space left on device; nothing was replaced" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (repo / "dist").iterdir()} == before


@contextlib.contextmanager
def _read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` read-only for this process. Root ignores mode bits, so as root
    the directory is a tmpfs remounted read-only (EROFS), as a real read-only volume is."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)
        try:
            yield
        finally:
            os.chmod(directory, 0o755)
        return
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)


def test_read_only_output_volume_leaves_the_previous_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` on a volume that turns read-only: the second compile fails before
    anything visible changes; the previous unit is whole."""
    repo = git_fleet(tmp_path / "repo")
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = os.geteuid() == 0
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(volume)],
                       check=True)
    out = volume / "dist"
    try:
        assert compile_(repo, "--out", str(out)) == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        assert set(before) == {"routing-table.json", "routing-table.dsse.json", "index.html"}
        spec().add(tenant("delta")).write(repo)
        capsys.readouterr()
        with _read_only(volume):
            assert compile_(repo, "--out", str(out)) == 1
        assert "nothing was replaced" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    finally:
        if mounted:
            subprocess.run(["umount", str(volume)], check=True)


def test_output_under_a_file_is_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    (tmp_path / "a-file").write_text("x")
    assert compile_(repo, "--out", str(tmp_path / "a-file" / "dist")) == 1
    assert "nothing was replaced" in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == "x"


def test_trusted_keys_refuse_other_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted_priv, _, b64 = keypair(tmp_path / "keys", "trusted")
    other_priv, _, _ = keypair(tmp_path / "keys", "other")
    fleet = spec()
    fleet.artifact = {"ttl": "2d", "trusted_keys": [{"public_key": b64, "owner": "ci"}]}
    repo = git_fleet(tmp_path / "repo", fleet)
    assert compile_(repo) == 1  # the dev key is not trusted
    assert "refusing to sign with the local development key" in capsys.readouterr().err
    assert compile_(repo, "--key", str(other_priv)) == 1
    assert "is not one of the 1 trusted_keys" in capsys.readouterr().err
    assert not (repo / "dist").exists()
    monkeypatch.setenv("MODELPIN_SIGNING_KEY", trusted_priv.read_text())
    assert compile_(repo) == 0
    assert "DEVELOPMENT" not in capsys.readouterr().err


def test_threshold_needs_enough_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k1, _, b1 = keypair(tmp_path / "keys", "one")
    k2, _, b2 = keypair(tmp_path / "keys", "two")
    fleet = spec()
    fleet.artifact = {"threshold": 2, "trusted_keys": [{"public_key": b1}, {"public_key": b2}]}
    repo = git_fleet(tmp_path / "repo", fleet)
    assert compile_(repo, "--key", str(k1)) == 1
    assert "requires 2 signatures, 1 distinct key(s) given" in capsys.readouterr().err
    assert compile_(repo, "--key", str(k1), "--key", str(k2)) == 0
    envelope = signing.parse_envelope((repo / "dist/routing-table.dsse.json").read_bytes())
    assert len(envelope.signatures) == 2


@pytest.mark.parametrize("content", [b"not a key", b""])
def test_unreadable_key_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    repo = git_fleet(tmp_path / "repo")
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    assert compile_(repo, "--key", str(bad)) == 2
    assert "cannot read PEM private key" in capsys.readouterr().err
    assert compile_(repo, "--key", str(tmp_path / "missing.pem")) == 2


def test_outside_git_the_commit_is_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = spec().write(tmp_path / "plain")
    assert compile_(repo) == 0
    doc = json.loads((repo / "dist/routing-table.json").read_bytes())
    assert (doc["source"]["commit"], doc["serial"]) == ("0" * 40, 1)
    assert "not a git repository" in capsys.readouterr().err


def test_uncommitted_changes_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    spec().add(tenant("delta")).write(repo)
    assert compile_(repo) == 0
    assert "uncommitted changes" in capsys.readouterr().err
    commit_all(repo, "delta")
    assert compile_(repo, "--rev", "HEAD~1") == 0  # a commit, read from git objects
    doc = json.loads((repo / "dist/routing-table.json").read_bytes())
    assert "delta" not in doc["tenants"] and doc["serial"] == 1_000_000


@pytest.mark.parametrize("cache", [(), ("--no-cache",)], ids=["blob-ids", "git-status"])
def test_every_kind_of_uncommitted_change_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cache: tuple[str, ...]
) -> None:
    """Clean, then an edit, an added file, a deleted file, an ignored file: the table
    is labelled with a commit, so each is said (with the cache: from the blob ids the
    load computed; without: ``git status``)."""
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" not in capsys.readouterr().err
    tenants = sorted((repo / "tenants").iterdir())
    original = tenants[0].read_bytes()
    tenants[0].write_bytes(original + b"# edited\n")
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" in capsys.readouterr().err
    tenants[0].write_bytes(original)
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" not in capsys.readouterr().err
    spec().add(tenant("delta")).write(repo)
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" in capsys.readouterr().err
    commit_all(repo, "delta")
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" not in capsys.readouterr().err
    git(repo, "rm", "-q", "--cached", "tenants/delta.yaml")
    (repo / ".gitignore").write_text("tenants/delta.yaml\n", encoding="utf-8")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "untrack delta")
    assert compile_(repo, *cache) == 0  # the ignored file is still compiled ...
    err = capsys.readouterr().err
    if not cache:  # ... and said (git status does not show ignored files)
        assert "uncommitted changes" in err
    (repo / "tenants" / "delta.yaml").unlink()
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" not in capsys.readouterr().err
    tenants[1].unlink()
    assert compile_(repo, *cache) == 0
    assert "uncommitted changes" in capsys.readouterr().err


def test_cache_gives_the_same_bytes_and_survives_corruption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo")
    results = []
    for args in (("--no-cache",), (), ()):
        assert compile_(repo, *args) == 0
        results.append((repo / "dist/routing-table.json").read_bytes())
    cache = cache_root(repo) / CACHE_FILE
    assert cache.is_file() and not (repo / ".modelpin" / "cache").exists()
    spec().add(tenant("delta")).write(repo)
    assert compile_(repo) == 0
    incremental = (repo / "dist/routing-table.json").read_bytes()
    assert compile_(repo, "--no-cache") == 0
    assert incremental == (repo / "dist/routing-table.json").read_bytes()
    assert b'"delta"' in incremental and results[0] == results[1] == results[2]
    cache.write_bytes(b"\x80\x05garbage")
    capsys.readouterr()
    assert compile_(repo) == 0
    assert "ignoring the compile cache" in capsys.readouterr().err
    assert (repo / "dist/routing-table.json").read_bytes() == incremental
    shutil.rmtree(cache_root(repo))


def test_a_tool_name_the_table_cannot_carry_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec().add(tenant("delta", tools={"a b": {}})))
    assert compile_(repo) == 1
    out = capsys.readouterr().out
    assert "tenants/delta.yaml:" in out and "tool name 'a b'" in out
    assert not (repo / "dist").exists()
