"""Caches never run repository-controlled bytes: no pickle is ever loaded.

A pickle whose loading would create a marker folder is planted where modelpin kept its
caches before (``<repo>/.modelpin/cache/*.pickle``, force-added to git too) and under
every name in the new cache folder; ``validate``, ``compile`` (work tree and ``--rev``),
``explain`` and ``check`` run, and the marker must not exist.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fleetkit import git
from tests.routing.compilekit import NOW, git_fleet

from modelpin.cli import main
from modelpin.load import plain
from modelpin.load.cache import CACHE_FILE, CompileCache, cache_root, code_version, stamp
from modelpin.load.snapshot import SNAPSHOT_FILE


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _plant(folder: Path, marker: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(_Bomb(marker))
    for name in names:
        (folder / name).write_bytes(payload)


def _repo(tmp_path: Path) -> Path:
    return git_fleet(tmp_path / "repo")


def test_a_planted_pickle_is_never_loaded(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "PWNED"
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Bomb(marker)))  # the bomb works ...
    assert marker.exists()
    marker.rmdir()  # ... and is re-armed
    root = _repo(tmp_path)
    old = ["compile-cache.pickle", "fleet-snapshot.pickle"]
    _plant(root / ".modelpin" / "cache", marker, old)
    git(root, "add", "-f", ".modelpin/cache")
    git(root, "commit", "-q", "-m", "force-add a cache")
    _plant(cache_root(root), marker, [*old, CACHE_FILE, SNAPSHOT_FILE])
    runs = [
        ["validate", "--repo", str(root), "--now", NOW],
        ["compile", "--repo", str(root), "--now", NOW],
        ["compile", "--repo", str(root), "--now", NOW, "--rev", "HEAD"],
        ["explain", "acme", "--repo", str(root), "--now", NOW],
        ["check", "--repo", str(root), "--base", "HEAD~1", "--head", "HEAD", "--now", NOW],
    ]
    codes = []
    for argv in runs:
        codes.append(main(argv))
        assert not marker.exists(), argv
    capsys.readouterr()
    # the work tree's own (untracked) old folder is simply never read; a commit that
    # carries it is refused where a commit is judged
    assert codes[0] == 0 and codes[1] == 0 and codes[3] == 0
    assert codes[2] == 1 and codes[4] == 1


def test_a_committed_cache_is_refused_at_its_path(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path)
    (root / ".modelpin" / "cache").mkdir(parents=True)
    (root / ".modelpin" / "cache" / "compile-cache.pickle").write_bytes(b"\x80\x05N.")
    git(root, "add", "-f", ".modelpin/cache")
    git(root, "commit", "-q", "-m", "cache")
    assert main(["validate", "--repo", str(root), "--rev", "HEAD", "--format", "json",
                 "--now", NOW]) == 1
    found = json.loads(capsys.readouterr().out)["diagnostics"]
    assert [(d["code"], d["file"], d["line"]) for d in found] == [
        ("MP009", ".modelpin/cache/compile-cache.pickle", 1)]


def test_cache_lives_outside_the_work_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
    folder = cache_root(root)
    assert folder.parent == tmp_path / "xdg" / "modelpin"
    assert (folder / CACHE_FILE).is_file()
    assert not (root / ".modelpin" / "cache").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignore it
    assert cache_root(root).parent == Path.home() / ".cache" / "modelpin"
    for inside in (root, root / ".modelpin" / "cache", root / "tenants"):
        capsys.readouterr()
        assert main(["compile", "--repo", str(root), "--cache-dir", str(inside)]) == 2
        assert "inside the repository" in capsys.readouterr().err


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    root = _repo(tmp_path)
    for argv in (["compile", "--no-cache"], ["explain", "acme", "--no-cache"]):
        assert main([*argv, "--repo", str(root), "--now", NOW]) == 0
    assert not cache_root(root).exists()
    # a cache that would change the answer is not read with --no-cache
    assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
    assert main(["compile", "--repo", str(root), "--now", NOW, "--no-cache"]) == 0


def _cache_doc(root: Path) -> dict[str, object]:
    doc = plain.loads((cache_root(root) / CACHE_FILE).read_bytes())
    assert isinstance(doc, dict)
    return doc


def test_cache_is_stamped_with_the_code_version(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache written by other code (one rule changed) is never read."""
    root = _repo(tmp_path)
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
    doc = _cache_doc(root)
    assert doc["stamp"] == stamp() and stamp()["code"] == code_version()
    assert len(code_version()) == 64
    warned: list[str] = []
    loaded = CompileCache.load(cache_root(root), warned.append)
    assert loaded.parse.packed and not warned
    monkeypatch.setattr("modelpin.load.cache.code_version", lambda: "0" * 64)
    assert not CompileCache.load(cache_root(root), warned.append).parse.packed


def test_a_poisoned_cache_entry_is_validated_again(tmp_path: Path) -> None:
    """Entries are plain data rebuilt by validation: a tampered entry that is not a
    valid model never becomes one. It is a miss: the file is read and parsed again."""
    root = _repo(tmp_path)
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
    doc = _cache_doc(root)
    parse = doc["parse"]
    assert isinstance(parse, dict)
    key = next(k for k in parse if k.endswith(":tenants/acme.yaml"))
    data = plain.decode_text(parse[key][1])
    assert data["group"] == "standard"
    data["group"] = 12345  # not a group name
    parse[key][1] = plain.encode_text(data)
    broken = next(k for k in parse if k != key)
    parse[broken][1] = ["not", "json", "text"]
    (cache_root(root) / CACHE_FILE).write_bytes(plain.dumps(plain.encode(doc)))
    cache = CompileCache.load(cache_root(root), lambda m: None)
    for name in (key, broken):
        blob, path = name.split(":", 1)
        assert cache.parse.get((path, blob)) is None  # refused, never trusted
    # the command reads the file instead and compiles the true table
    assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
    table = json.loads((root / "dist" / "routing-table.json").read_bytes())
    assert table["tenants"]["acme"]["group"] == "standard"


def test_plain_round_trip_keeps_dates_and_user_dollar_keys() -> None:
    from datetime import UTC, date, datetime

    data = {"since": datetime(2026, 3, 20, 10, tzinfo=UTC), "released": date(2026, 3, 14),
            "tools": {"t": {"$date": "x", "$map": [1], "$ref": "#/a"}},
            "nan": float("inf"), "big": 10**40, "list": [{"$datetime": "y"}]}
    assert plain.loads(plain.dumps(plain.encode(data))) == data


_TEXT = st.text(alphabet=st.sampled_from(['$', '"', '\\', 'a', 'd', '\u00e9', '\ud800']),
                max_size=8)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60), _TEXT,
                  st.dates(), st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
                  st.sampled_from(["$date", "$datetime", "$map", '"$', '\\"$']))
_DATA = st.recursive(_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(_TEXT, st.sampled_from(["$date", "$datetime", "$map", "$ref"])),
                    inner, max_size=4)), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_DATA)
def test_encode_text_is_exactly_the_tagged_encoding(data: object) -> None:
    """The C-encoder fast path writes the same text as tagging every value by hand, and
    reads back the same data: a user mapping never passes for a tag."""
    text = plain.encode_text(data)
    assert text == json.dumps(plain.encode(data), separators=(",", ":"))
    assert plain.decode_text(text) == data


def test_entries_with_yaml_timestamps_survive_a_second_save(tmp_path: Path) -> None:
    """Unquoted YAML timestamps become datetimes; an entry read from disk must be
    written again unchanged when another file changes (the cache is saved again)."""
    from tests.fleetkit import commit_all, tenant
    from tests.routing.compilekit import spec

    root = _repo(tmp_path)
    beta = root / "tenants" / "beta.yaml"
    beta.write_text(beta.read_text().replace("'2026-03-20T10:00:00Z'", "2026-03-20T10:00:00Z"))
    assert "since: 2026-03-20T10:00:00Z" in beta.read_text()
    commit_all(root, "unquoted")
    outputs = []
    for extra in ("delta", "epsilon"):
        assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
        s = spec().add(tenant(extra))
        s.write(root)
        beta.write_text(beta.read_text().replace("'2026-03-20T10:00:00Z'",
                                                 "2026-03-20T10:00:00Z"))
        assert main(["compile", "--repo", str(root), "--now", NOW]) == 0
        outputs.append((root / "dist" / "routing-table.json").read_bytes())
        assert main(["compile", "--repo", str(root), "--now", NOW, "--no-cache"]) == 0
        assert (root / "dist" / "routing-table.json").read_bytes() == outputs[-1]
    doc = _cache_doc(root)
    assert any(":tenants/beta.yaml" in k for k in doc["parse"])  # type: ignore[union-attr]
