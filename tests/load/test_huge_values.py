"""Every huge or odd value a YAML or JSON file can hold: exit 1 with a location, never
a traceback, through ``validate`` (work tree and ``--rev``), ``check`` and ``compile``.

Each row edits one file of a valid fleet committed to git (the base), commits the edit
(the head), and runs the four commands in-process through the CLI entry point. An
exception escaping ``main`` fails the row; so does exit 0 or 2, or a diagnostic that
does not name the edited file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fleetkit import commit_all
from tests.routing.compilekit import NOW, git_fleet

from modelpin.cli import main

Edit = Callable[[Any], None]
HUGE_INT = 10**400
ROLLOUT = {"candidate": "gpt-5-2026-03-14", "stage": "canary", "percent": 5,
           "since": "2026-03-20T10:00:00Z"}


def _set(*path: str | int, value: Any) -> Edit:
    def edit(doc: Any) -> None:
        for part in path[:-1]:
            doc = doc[part]
        doc[path[-1]] = value
    return edit


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


TENANT = "tenants/beta.yaml"
GROUPS = "policies/rollout-groups.yaml"
ARTIFACT = "policies/artifact.yaml"
MODEL = "model_versions/gpt-5-2026-03-14.yaml"
ROWS: dict[str, tuple[str, Edit]] = {
    "soak-99999999999d": (GROUPS, _set("groups", "standard", "soak", value="99999999999d")),
    "shadow-99999999999m": (GROUPS, _set("groups", "standard", "shadow", value="99999999999m")),
    "evidence-max-age-huge": (GROUPS, _set("evidence_max_age", value="999999999d")),
    "sunset-days-huge": (GROUPS, _set("sunset_warning_days", value=HUGE_INT)),
    "ladder-1e30": (GROUPS, _set("groups", "standard", "ladder", value=[5, 1e30])),
    "ttl-99999999999d": (ARTIFACT, _set("ttl", value="99999999999d")),
    "ttl-9999999d": (ARTIFACT, _set("ttl", value="9999999d")),
    "drain-10e400": (ARTIFACT, _set("drain_seconds", value=HUGE_INT)),
    "threshold-nan": (ARTIFACT, _set("threshold", value=float("nan"))),
    "since-9999-12-31-minus-1h": (TENANT, _set("aliases", "primary", "rollout", "since",
                                               value="9999-12-31T23:59:59-01:00")),
    "since-0001-01-01-plus-1h": (TENANT, _set("aliases", "primary", "rollout", "since",
                                              value="0001-01-01T00:00:00+01:00")),
    "since-year-9999": (TENANT, _set("aliases", "primary", "rollout", "since",
                                     value="9999-12-31T23:59:59Z")),
    "percent-1e30": (TENANT, _set("aliases", "primary", "rollout", "percent", value=1e30)),
    "percent-nan": (TENANT, _set("aliases", "primary", "rollout", "percent",
                                 value=float("nan"))),
    "percent-10e400": (TENANT, _set("aliases", "primary", "rollout", "percent",
                                    value=HUGE_INT)),
    "tool-schema-1e30": (TENANT, _set("tools", value={"t": {"type": "object", "properties": {
        "n": {"type": "number", "maximum": 1e30}}}})),
    "tool-schema-10e400": (TENANT, _set("tools", value={"t": {"type": "object", "properties": {
        "n": {"type": "integer", "maximum": HUGE_INT}}}})),
    "tool-schema-nan": (TENANT, _set("tools", value={"t": {"type": "object", "properties": {
        "n": {"type": "number", "minimum": float("nan")}}}})),
    "tool-schema-inf": (TENANT, _set("tools", value={"t": {"type": "number",
                                                            "maximum": float("inf")}})),
    "tool-schema-deep": (TENANT, _set("tools", value={"t": "DEEP-SCHEMA"})),
    "bets-version-huge": (TENANT, _set("bets_suite", "version", value=HUGE_INT)),
    "model-released-9999": (MODEL, _set("released", value="9999-12-31")),
    "model-retires-0001": (MODEL, _set("retires_on", value="0001-01-01")),
}


def _edit_file(repo: Path, rel: str, edit: Edit) -> None:
    path = repo / rel
    doc = yaml.safe_load(path.read_text()) if path.exists() else {}
    edit(doc)
    text = yaml.safe_dump(doc, sort_keys=False, width=10**6)
    # deep nesting as flow JSON (PyYAML's own dumper would recurse too deep to write it)
    path.write_text(text.replace("DEEP-SCHEMA", json.dumps(_nested(400))))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_located(code: int, out: str, err: str, rel: str, what: str) -> None:
    assert code == 1, f"{what}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in out + err
    doc = json.loads(out)
    files = {d["file"] for d in doc["diagnostics"] if d["severity"] == "error"}
    assert rel in files, f"{what}: no error at {rel}: {doc['diagnostics']}"
    assert all(d["line"] >= 1 and d["col"] >= 1 for d in doc["diagnostics"])


def _repo(tmp_path: Path) -> Path:
    repo = git_fleet(tmp_path / "repo")
    beta = repo / TENANT
    assert yaml.safe_load(beta.read_text())["aliases"]["primary"]["rollout"]["percent"] == 25
    return repo


@pytest.mark.parametrize("name", sorted(ROWS))
def test_huge_or_odd_value(name: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    rel, edit = ROWS[name]
    repo = _repo(tmp_path)
    _edit_file(repo, rel, edit)
    commit_all(repo, name)
    r = str(repo)
    for what, argv in (
        ("validate", ["validate", "--repo", r, "--now", NOW, "--format", "json"]),
        ("validate --rev", ["validate", "--repo", r, "--rev", "HEAD", "--now", NOW,
                            "--format", "json"]),
        ("check", ["check", "--repo", r, "--base", "HEAD~1", "--head", "HEAD", "--now", NOW,
                   "--format", "json"]),
        ("compile", ["compile", "--repo", r, "--now", NOW, "--format", "json", "--out",
                     str(tmp_path / "out")]),
        ("compile --rev", ["compile", "--repo", r, "--rev", "HEAD", "--now", NOW,
                           "--format", "json", "--out", str(tmp_path / "out")]),
    ):
        code, out, err = _run(argv, capsys)
        _assert_located(code, out, err, rel, f"{name} / {what}")
    assert not (tmp_path / "out").exists()


ODD = st.one_of(
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["99999999999d", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00",
                     "1e30", "-0", "NaN", "", "\x00", "9" * 500, "10000-01-01"]),
)
FIELDS = [
    (GROUPS, ("groups", "standard", "soak")),
    (GROUPS, ("groups", "standard", "ladder", 0)),
    (GROUPS, ("evidence_max_age",)),
    (ARTIFACT, ("ttl",)),
    (ARTIFACT, ("drain_seconds",)),
    (TENANT, ("aliases", "primary", "rollout", "since")),
    (TENANT, ("aliases", "primary", "rollout", "percent")),
    (TENANT, ("tools",)),
    (MODEL, ("released",)),
    (MODEL, ("retires_on",)),
]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=ODD)
def test_property_odd_values_never_raise(field: tuple[str, tuple[str | int, ...]], value: Any,
                                         tmp_path_factory: pytest.TempPathFactory,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    tmp = tmp_path_factory.mktemp("odd")
    repo = _repo(tmp)
    rel, path = field
    if path == ("tools",):
        value = {"t": {"type": "object", "properties": {"n": {"maximum": value}}}}
    _edit_file(repo, rel, _set(*path, value=value))
    commit_all(repo, "odd")
    r = str(repo)
    for argv in (["validate", "--repo", r, "--now", NOW, "--format", "json"],
                 ["check", "--repo", r, "--base", "HEAD~1", "--head", "HEAD", "--now", NOW,
                  "--format", "json"],
                 ["compile", "--repo", r, "--rev", "HEAD", "--now", NOW, "--format", "json",
                  "--out", str(tmp / "out")]):
        code, out, err = _run(argv, capsys)  # an exception fails the example
        assert code in (0, 1), (argv, code, out, err)
        assert "Traceback" not in out + err
        if code == 1:
            json.loads(out) if out.strip() else None
