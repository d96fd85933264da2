"""The compile output is one unit, read from the judged git objects, never from a
shallow history.

* ``dist`` is a link to a release folder holding the three files; a compile flips it
  with one rename, so a reader sees the previous unit or the new one, never a mix and
  never a ``.tmp``.
* A real ``SIGKILL`` of a compiling process at every step of the writer (and at random
  moments) leaves the previous unit whole; the next compile sweeps the leftovers.
* ``compile --rev`` reads git objects, whatever the work tree holds.
* A shallow clone's serial would be refused by routers: compile refuses it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelpin.cli import main
from modelpin.cli.output_unit import PAUSE_ENV, STEPS, releases_dir
from tests.fleetkit import commit_all, git, tenant
from tests.routing.compilekit import NOW, git_fleet, spec

FILES = ("index.html", "routing-table.dsse.json", "routing-table.json")


def compile_(repo: Path, *args: str) -> int:
    return main(["compile", "--repo", str(repo), "--now", NOW, *args])


def _unit(out: Path) -> int:
    """The serial of the unit ``out`` shows; asserts it is whole and consistent."""
    assert out.is_symlink()
    names = sorted(os.listdir(out))
    assert names == list(FILES), names
    payload = (out / "routing-table.json").read_bytes()
    envelope = json.loads((out / "routing-table.dsse.json").read_bytes())
    assert base64.b64decode(envelope["payload"]) == payload
    serial = int(json.loads(payload)["serial"])
    assert f"{serial:,}" in (out / "index.html").read_text() or str(serial) in (
        out / "index.html").read_text()
    return serial


def _no_tmp(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def _two_commits(tmp_path: Path) -> Path:
    repo = git_fleet(tmp_path / "repo")
    (repo / ".gitignore").write_text("/dist\n/.dist.releases/\n/.modelpin/\n")
    assert compile_(repo) == 0
    spec().add(tenant("delta")).write(repo)
    commit_all(repo, "delta")
    return repo


def test_dist_is_one_unit_flipped_by_a_link(tmp_path: Path) -> None:
    repo = git_fleet(tmp_path / "repo", commits=3)
    out = repo / "dist"
    serials = []
    for now in (NOW, "2026-03-26T12:00:00Z", "2026-03-27T12:00:00Z", "2026-03-28T12:00:00Z"):
        assert main(["compile", "--repo", str(repo), "--now", now]) == 0
        serials.append(_unit(out))
        _no_tmp(repo)
    assert serials == sorted(serials) and len(set(serials)) == 4
    kept = [p.name for p in releases_dir(out).iterdir() if p.name != ".lock"]
    assert len(kept) == 2  # the current release and the one before it
    assert os.readlink(out).startswith(".dist.releases/")


def test_a_plain_dist_folder_from_an_older_version_is_replaced(tmp_path: Path) -> None:
    repo = git_fleet(tmp_path / "repo")
    (repo / "dist").mkdir()
    (repo / "dist" / "routing-table.json").write_text("old")
    assert compile_(repo) == 0
    _unit(repo / "dist")


def test_out_that_is_a_file_is_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo = git_fleet(tmp_path / "repo")
    (repo / "dist").write_text("not a folder")
    assert compile_(repo) == 1
    assert "nothing was replaced" in capsys.readouterr().err
    assert (repo / "dist").read_text() == "not a folder"


def _compiler(repo: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = "import sys; from modelpin.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "compile", "--repo", str(repo), "--now", NOW],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_every_step_leaves_a_whole_unit(step: str, tmp_path: Path) -> None:
    repo = _two_commits(tmp_path)
    before = _unit(repo / "dist")
    proc = _compiler(repo, {PAUSE_ENV: step})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and b"paused at" not in line:
        line = proc.stderr.readline()
    assert f"paused at {step}".encode() in line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after = _unit(repo / "dist")
    # killed before the flip: the previous unit; after it: the new one, whole
    assert after == before if step != "flipped" else after > before
    _no_tmp(repo)
    assert compile_(repo) == 0
    assert _unit(repo / "dist") > before
    leftovers = [p.name for p in releases_dir(repo / "dist").iterdir()
                 if p.name.startswith(("staging-", "link-"))]
    assert leftovers == []


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_whole_unit(tmp_path: Path) -> None:
    """Kills spread over the second half of a compile's run time, alternating between
    two commits, so some land while the new unit is written."""
    repo = _two_commits(tmp_path)
    first = _unit(repo / "dist")
    rng = random.Random(11)
    start = time.monotonic()
    full = _compiler(repo, {})
    assert full.wait() == 0
    took = time.monotonic() - start
    second = _unit(repo / "dist")
    assert second > first
    seen = set()
    commits = [git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")]
    for i in range(8):
        git(repo, "checkout", "-q", commits[i % 2])
        proc = _compiler(repo, {})
        time.sleep(rng.uniform(0.5, 1.0) * took)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.add(_unit(repo / "dist"))  # whole and consistent, whatever the moment
        _no_tmp(repo)
    assert seen <= {first, second}


def test_compile_rev_reads_git_objects_not_the_work_tree(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    repo = git_fleet(tmp_path / "repo")
    assert compile_(repo, "--no-cache") == 0
    clean = (repo / "dist" / "routing-table.json").read_bytes()
    # the work tree now differs from the commit: a linked tenant and an edited one
    os.symlink("/proc/self/environ", repo / "tenants" / "env.yaml")
    spec().add(tenant("delta")).write(repo)
    os.symlink("/proc/self/environ", repo / "tenants" / "env.yaml")
    capsys.readouterr()
    assert compile_(repo) == 1
    assert "tenants/env.yaml" in capsys.readouterr().out
    assert compile_(repo, "--rev", "HEAD") == 0
    assert (repo / "dist" / "routing-table.json").read_bytes() == clean


def test_a_shallow_clone_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    origin = git_fleet(tmp_path / "origin", commits=3)
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(shallow)],
                   check=True)
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"
    for args in ((), ("--rev", "HEAD")):
        capsys.readouterr()
        assert compile_(shallow, *args) == 1
        err = capsys.readouterr().err
        assert "shallow clone" in err and "fetch-depth: 0" in err
        assert not (shallow / "dist").exists()
    assert compile_(shallow, "--serial", "3000000") == 0  # an explicit serial is the user's
    git(shallow, "fetch", "-q", "--unshallow")
    assert compile_(shallow) == 0
    assert json.loads((shallow / "dist/routing-table.json").read_bytes())["serial"] == 3_000_000
