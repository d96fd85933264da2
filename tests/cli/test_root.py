"""``modelpin root``: init, sign offline one key holder at a time, rotate, verify; and
``compile``/``verify`` with a trust root instead of a key list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelpin.cli import main
from tests.routing.compilekit import NOW, git_fleet, keypair, spec


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    out = {}
    for name in ("alice", "bob", "carol", "ci", "ci2"):
        private, public, _ = keypair(tmp_path / "keys", name)
        out[name] = (private, public)
    return out


def _root(repo: Path, n: int) -> Path:
    return repo / "root" / f"{n}.root.json"


def test_init_sign_verify_then_compile_and_verify_through_the_root(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["root", "init", "--repo", str(repo), "--now", NOW,
                 "--root-key", str(keys["alice"][1]), "--root-key", str(keys["bob"][1]),
                 "--root-threshold", "2", "--table-key", str(keys["ci"][1])]) == 0
    # Unsigned: verify says so and what is missing.
    assert main(["root", "verify", "--repo", str(repo), "--now", NOW]) == 1
    err = capsys.readouterr().err
    assert "not signed by 2 of the root keys of root version 1 itself" in err
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["alice"][0])]) == 0
    assert main(["root", "verify", "--repo", str(repo), "--now", NOW]) == 1
    # A key that is not a root key cannot sign.
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["carol"][0])]) == 1
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["bob"][0])]) == 0
    assert main(["root", "verify", "--repo", str(repo), "--now", NOW]) == 0
    assert "ok: 1.root.json: version 1" in capsys.readouterr().out

    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key",
                 str(keys["ci"][0])]) == 0
    capsys.readouterr()
    envelope = repo / "dist/routing-table.dsse.json"
    assert main(["verify", str(envelope), "--repo", str(repo), "--now", NOW]) == 0
    assert "root       version 1" in capsys.readouterr().out


def test_rotate_revokes_a_table_key_and_needs_old_and_new_root_signatures(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["root", "init", "--repo", str(repo), "--now", NOW,
                 "--root-key", str(keys["alice"][1]), "--table-key", str(keys["ci"][1])]) == 0
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["alice"][0])]) == 0
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key",
                 str(keys["ci"][0])]) == 0
    old_table = tmp_path / "old-table.dsse.json"
    shutil.copy(repo / "dist/routing-table.dsse.json", old_table)
    capsys.readouterr()
    assert main(["root", "show", str(_root(repo, 1))]) == 0
    shown = capsys.readouterr().out
    ci_id = next(line.split()[0] for line in shown.splitlines()
                 if line.strip().endswith("ci") and len(line.split()[0]) == 64)

    # Root 2: bob replaces alice as root key, ci2 replaces ci as table key.
    assert main(["root", "rotate", str(_root(repo, 1)), "--now", NOW,
                 "--add-root-key", str(keys["bob"][1]), "--remove-root-key", "",
                 ]) == 2  # an empty prefix matches several keys: refused
    assert main(["root", "rotate", str(_root(repo, 1)), "--now", NOW,
                 "--add-table-key", str(keys["ci2"][1]), "--remove-table-key", ci_id[:12],
                 "--add-root-key", str(keys["bob"][1])]) == 0
    assert main(["root", "sign", str(_root(repo, 2)), "--key", str(keys["bob"][0])]) == 0
    # Signed by the new root key only: not enough.
    assert main(["root", "verify", "--repo", str(repo), "--now", NOW]) == 1
    assert "trusted root version 1" in capsys.readouterr().err
    assert main(["root", "sign", str(_root(repo, 2)), "--key", str(keys["alice"][0])]) == 0
    assert main(["root", "verify", "--repo", str(repo), "--now", NOW]) == 0
    capsys.readouterr()

    # The table signed by the revoked key is refused; one signed by ci2 is accepted.
    assert main(["verify", str(old_table), "--repo", str(repo), "--now", NOW]) == 1
    assert "signature check failed" in capsys.readouterr().err
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key",
                 str(keys["ci2"][0])]) == 0
    assert main(["verify", str(repo / "dist/routing-table.dsse.json"), "--repo", str(repo),
                 "--now", NOW]) == 0
    assert "root       version 2" in capsys.readouterr().out


def test_root_verify_reports_an_expired_newest_root(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["root", "init", "--repo", str(repo), "--now", NOW, "--expires", "1d",
                 "--root-key", str(keys["alice"][1]), "--table-key", str(keys["ci"][1])]) == 0
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["alice"][0])]) == 0
    assert main(["root", "verify", "--repo", str(repo), "--now", "2026-03-27T00:00:00Z"]) == 1
    assert "expired" in capsys.readouterr().err


def test_init_refuses_a_threshold_it_can_never_meet(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["root", "init", "--repo", str(repo), "--root-key", str(keys["alice"][1]),
                 "--root-threshold", "2", "--table-key", str(keys["ci"][1])]) == 2
    assert "threshold" in capsys.readouterr().err
    assert not _root(repo, 1).exists()


def test_keygen_without_out_never_writes_into_the_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    monkeypatch.chdir(repo)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("MODELPIN_KEY_DIR", raising=False)
    assert main(["keygen"]) == 0
    assert (tmp_path / "config/modelpin/keys/modelpin-signing-key.pem").is_file()
    assert not list(repo.glob("*.pem"))
    # Asked for a directory inside the work tree: refused unless explicit.
    assert main(["keygen", "--out", str(repo / "keys")]) == 2
    assert "inside the git work tree" in capsys.readouterr().err
    assert not (repo / "keys").exists()
    assert main(["keygen", "--out", str(repo / "keys"), "--inside-work-tree"]) == 0
    assert (repo / "keys/modelpin-signing-key.pem").is_file()


def test_compile_warns_when_what_it_writes_is_already_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["compile", "--repo", str(repo), "--now", "2020-01-01T00:00:00Z"]) == 0
    err = capsys.readouterr().err
    assert "the table expired at 2020-01-08T00:00:00Z, before it was written" in err
    assert "modelpin compile --now $(date -u +%Y-%m-%dT%H:%M:%SZ)" in err
    # A fresh one says nothing of the kind.
    assert main(["compile", "--repo", str(repo), "--now", "2099-01-01T00:00:00Z"]) == 0
    assert "before it was written" not in capsys.readouterr().err


def test_compile_refuses_a_key_the_trust_root_does_not_list(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_fleet(tmp_path / "repo", spec())
    assert main(["root", "init", "--repo", str(repo), "--now", NOW,
                 "--root-key", str(keys["alice"][1]), "--table-key", str(keys["ci"][1])]) == 0
    assert main(["root", "sign", str(_root(repo, 1)), "--key", str(keys["alice"][0])]) == 0
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key",
                 str(keys["carol"][0])]) == 1
    assert "not a table key of the trust root (root/1.root.json)" in capsys.readouterr().err
    assert not (repo / "dist").exists()
    # An unsigned root 2 (a rotation in progress) is skipped with a warning.
    assert main(["root", "rotate", str(_root(repo, 1)), "--now", NOW,
                 "--add-table-key", str(keys["carol"][1])]) == 0
    assert main(["compile", "--repo", str(repo), "--now", NOW, "--key",
                 str(keys["ci"][0])]) == 0
    assert "2.root.json is not (yet) a valid next root" in capsys.readouterr().err


def test_a_tool_schema_routers_would_refuse_as_too_deep_is_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fleetkit import tenant

    def nested(depth: int) -> dict[str, object]:
        schema: dict[str, object] = {"type": "object"}
        for _ in range(depth - 1):
            schema = {"type": "object", "properties": {"x": schema}}
        return schema

    fleet = spec()
    # 61 levels of schema: the YAML nesting limit (64) lets it through, but the table
    # would nest 65 deep and routers refuse more than 64.
    fleet.add(tenant("deep", tools={"t": nested(31)}))
    repo = git_fleet(tmp_path / "repo", fleet)
    assert main(["compile", "--repo", str(repo), "--now", NOW]) == 1
    err = capsys.readouterr()
    assert "MP033" in err.out + err.err
    assert "tenants/deep.yaml" in err.out + err.err
    assert "nests deeper than 60 levels" in err.out + err.err
    ok = spec()
    ok.add(tenant("deep", tools={"t": nested(25)}))  # 49 levels: routers load it
    repo = git_fleet(tmp_path / "repo2", ok)
    assert main(["compile", "--repo", str(repo), "--now", NOW]) == 0
    capsys.readouterr()
    assert main(["verify", str(repo / "dist/routing-table.dsse.json"), "--repo", str(repo),
                 "--now", NOW]) == 0
