"""Config folders hold regular files only, in a directory and in a git commit alike.

Every way to put something other than a regular file under a config folder (links to
files, to folders, dangling, to ``/proc/self/environ``; a ``tenants/`` that is itself a
link; FIFOs, sockets, devices; submodules and links committed to git; hidden files;
unexpected extensions) is an error at its path, never skipped, never followed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from tests.load.corpus import BASE, NOW

from modelpin.cli import main
from modelpin.load.tree import DirectoryTree, GitTree, Refused

SECRET = "MODELPIN_TEST_SECRET_7f3a"


def _fleet(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(BASE, root)
    return root


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def _commit(repo: Path) -> str:
    if not (repo / ".git").exists():
        _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A", "-f")
    _git(repo, "commit", "-q", "-m", "c", "--allow-empty")
    return _git(repo, "rev-parse", "HEAD")


def _validate(capsys: pytest.CaptureFixture[str], root: Path, *extra: str
              ) -> tuple[int, list[dict[str, object]], str]:
    code = main(["validate", "--repo", str(root), "--now", NOW, "--format", "json", *extra])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    return code, doc["diagnostics"], out.out + out.err


def _at(diagnostics: list[dict[str, object]], path: str) -> dict[str, object]:
    found = [d for d in diagnostics if d["file"] == path]
    assert found, f"no diagnostic at {path}: {diagnostics}"
    assert found[0]["severity"] == "error" and found[0]["line"] == 1 and found[0]["col"] == 1
    assert found[0]["hint"]
    return found[0]


LINKS = {
    "link-to-file": ("tenants/alias.yaml", "acme-legal.yaml"),
    "link-to-dir": ("tenants/more", "../model_versions"),
    "dangling": ("tenants/ghost.yaml", "does-not-exist.yaml"),
    "proc-environ": ("tenants/env.yaml", "/proc/self/environ"),
    "link-in-evidence": ("evidence/acme-legal/x.json", "/etc/passwd"),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_symlinks_are_errors_never_followed(name: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET, "s3cr3t-value-that-must-not-leak")
    root = _fleet(tmp_path)
    link, target = LINKS[name]
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / link)
    code, diagnostics, out = _validate(capsys, root)
    assert code == 1
    assert _at(diagnostics, link)["code"] == "MP009"
    assert "symbolic link" in str(_at(diagnostics, link)["message"])
    assert "s3cr3t" not in out and SECRET not in out
    assert target not in out  # the target is never printed
    assert DirectoryTree(root).refused() == [Refused(link, "a symbolic link")]
    assert link not in DirectoryTree(root).files()
    # the same bytes committed to git: refused from the object database too
    commit = _commit(root)
    code, diagnostics, out = _validate(capsys, root, "--rev", commit)
    assert code == 1 and _at(diagnostics, link)["code"] == "MP009"
    assert "s3cr3t" not in out
    assert GitTree(root, commit).refused() == [Refused(link, "a symbolic link")]


def test_a_tenants_folder_that_is_a_link(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(root / "tenants"), elsewhere)
    os.symlink(elsewhere, root / "tenants")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1 and _at(diagnostics, "tenants")["code"] == "MP009"
    assert not [p for p in DirectoryTree(root).files() if p.startswith("tenants/")]
    os.unlink(root / "tenants")
    os.symlink("elsewhere-in-repo", root / "tenants")
    shutil.copytree(elsewhere, root / "elsewhere-in-repo")
    commit = _commit(root)
    code, diagnostics, _ = _validate(capsys, root, "--rev", commit)
    assert code == 1 and _at(diagnostics, "tenants")["code"] == "MP009"
    assert GitTree(root, commit).refused() == [Refused("tenants", "a symbolic link")]


def test_fifo_is_an_error_and_never_opened(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    os.mkfifo(root / "tenants" / "pipe.yaml")  # opening it for reading would block
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1
    diag = _at(diagnostics, "tenants/pipe.yaml")
    assert diag["code"] == "MP009" and "FIFO" in str(diag["message"])


def test_socket_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    path = root / "model_versions" / "s.yaml"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
        code, diagnostics, _ = _validate(capsys, root)
    finally:
        sock.close()
    assert code == 1 and "socket" in str(_at(diagnostics, "model_versions/s.yaml")["message"])


def test_device_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    try:
        os.mknod(root / "tenants" / "null.yaml", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1 and "device" in str(_at(diagnostics, "tenants/null.yaml")["message"])


@pytest.mark.parametrize("path", ["tenants/.hidden.yaml", "tenants/.git/config",
                                  "policies/.rollout-groups.yaml.swp", "evidence/.DS_Store"])
def test_hidden_files_are_errors(path: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text("id: hidden\n")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1
    diag = _at(diagnostics, path)
    assert diag["code"] == "MP007" and "hidden" in str(diag["message"])
    if "/.git/" in path:
        return  # git itself never stores a .git folder
    commit = _commit(root)
    code, diagnostics, _ = _validate(capsys, root, "--rev", commit)
    assert code == 1 and _at(diagnostics, path)["code"] == "MP007"


@pytest.mark.parametrize("path", ["tenants/acme.yml", "tenants/notes.md", "tenants/x.txt",
                                  "tenants/sub/README.md", "model_versions/x.json",
                                  "policies/extra.yaml", "tenants/acme-legal.yaml.bak"])
def test_unexpected_files_are_errors(path: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text("id: x\n")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1 and _at(diagnostics, path)["code"] == "MP007"


def test_a_readme_at_a_folder_top_is_allowed_and_never_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    (root / "tenants" / "README.md").write_text("# tenants\n: not yaml [\n")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 0 and diagnostics == []
    os.unlink(root / "tenants" / "README.md")
    os.symlink("/proc/self/environ", root / "tenants" / "README.md")
    code, diagnostics, _ = _validate(capsys, root)
    assert code == 1 and _at(diagnostics, "tenants/README.md")["code"] == "MP009"


def test_submodule_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fleet(tmp_path)
    commit = _commit(root)
    _git(root, "update-index", "--add", "--cacheinfo", f"160000,{commit},tenants/vendored")
    _git(root, "commit", "-q", "-m", "submodule")
    code, diagnostics, _ = _validate(capsys, root, "--rev", "HEAD")
    assert code == 1
    diag = _at(diagnostics, "tenants/vendored")
    assert diag["code"] == "MP009" and "submodule" in str(diag["message"])


def test_a_file_swapped_for_a_link_after_the_walk_is_not_read(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    tree = DirectoryTree(root)
    assert "tenants/acme-legal.yaml" in tree.files()
    os.unlink(root / "tenants" / "acme-legal.yaml")
    os.symlink("/proc/self/environ", root / "tenants" / "acme-legal.yaml")
    with pytest.raises(OSError):
        tree.read("tenants/acme-legal.yaml")
    os.unlink(root / "tenants" / "acme-legal.yaml")
    os.mkfifo(root / "tenants" / "acme-legal.yaml")
    with pytest.raises(OSError):
        tree.read("tenants/acme-legal.yaml")  # not blocked on the FIFO


def test_directory_and_git_trees_list_the_same_files(tmp_path: Path) -> None:
    root = _fleet(tmp_path)
    (root / "tenants" / ".hidden.yaml").write_text("x: 1\n")
    (root / "tenants" / "README.md").write_text("# hi\n")
    os.symlink("acme-legal.yaml", root / "tenants" / "l.yaml")
    commit = _commit(root)
    directory, git = DirectoryTree(root), GitTree(root, commit)
    assert directory.files() == git.files()
    assert directory.refused() == git.refused()
    assert all(directory.read(p) == git.read(p) for p in directory.files())
