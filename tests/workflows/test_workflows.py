"""The GitHub workflows users run: actionlint-clean, least privilege, pinned actions,
and every ``modelpin`` command they call exists in the CLI with those flags."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from modelpin.cli import cli

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(found).exists():
        raise RuntimeError("actionlint is not installed: pip install -e '.[test]'")
    return found


def _load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def test_the_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["bets.yml", "bot.yml", "publish.yml",
                                           "pull-request.yml"]


def _workflow(name: str) -> Path:
    [path] = [p for p in WORKFLOWS if p.name == name]
    return path


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_is_clean(path: Path) -> None:
    proc = subprocess.run([_actionlint(), "-no-color", str(path)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    doc = _load(path)
    assert doc["permissions"] == {}, "workflow-level permissions must be empty"
    for name, job in doc["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict) and perms, f"job {name} declares its permissions"
        assert "write-all" not in str(perms)
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a SHA"


def _commands(path: Path) -> list[list[str]]:
    """Every ``modelpin ...`` invocation in the workflow's run blocks, as argv."""
    found = []
    for job in _load(path)["jobs"].values():
        for step in job.get("steps", []):
            script = step.get("run", "")
            for line in script.replace("\\\n", " ").splitlines():
                line = line.strip()
                if not line.startswith("modelpin "):
                    continue
                line = line.split(" > ")[0]
                found.append(shlex.split(line.replace('"${now_args[@]}"', ""))[1:])
    return found


def _check_argv(argv: list[str]) -> None:
    command = cli.get_command(click.Context(cli), argv[0])
    assert command is not None, f"modelpin has no command {argv[0]!r}"
    if isinstance(command, click.Group):  # e.g. `modelpin bets run`
        sub = command.get_command(click.Context(command), argv[1])
        assert sub is not None, f"modelpin {argv[0]} has no command {argv[1]!r}"
        command, argv = sub, [f"{argv[0]} {argv[1]}", *argv[2:]]
    options = {opt: param for param in command.params if isinstance(param, click.Option)
               for opt in param.opts}
    rest = argv[1:]
    while rest:
        token = rest.pop(0)
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        assert name in options, f"modelpin {argv[0]} has no option {name}"
        param = options[name]
        if not param.is_flag and "=" not in token:
            assert rest, f"{name} needs a value"
            value = rest.pop(0)
            if isinstance(param.type, click.Choice):
                assert value in param.type.choices, f"{name} {value} not in {param.type.choices}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_modelpin_command_exists_with_its_flags(path: Path) -> None:
    commands = _commands(path)
    assert commands, f"{path.name} runs no modelpin command"
    for argv in commands:
        _check_argv(argv)


def test_the_pr_gate_runs_validate_check_and_plan() -> None:
    names = [argv[0] for argv in _commands(_workflow("pull-request.yml"))]
    assert names == ["validate", "plan", "check"]


def test_the_pr_gate_never_runs_the_pull_requests_code() -> None:
    """Red-team row ``workflow/pr-edits-its-own-judge`` (SPEC 2.1): with ``pull_request``
    GitHub runs the PR's copy of this workflow and ``pip install .`` installs the PR's
    modelpin, so a PR could rewrite the gate. The gate runs as the base has it, checks out
    and installs the base commit, and reads the PR only as a fetched ref."""
    doc = _load(_workflow("pull-request.yml"))
    triggers = doc.get("on", doc.get(True))
    assert set(triggers) == {"pull_request_target"}, triggers
    [job] = doc["jobs"].values()
    steps = job["steps"]
    checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert len(checkouts) == 1
    assert checkouts[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    install = [i for i, s in enumerate(steps) if "pip install" in s.get("run", "")]
    fetch = [i for i, s in enumerate(steps) if "refs/pull/" in s.get("run", "")]
    assert install and fetch and "git checkout" not in str(steps)
    assert "--no-tags" in steps[fetch[0]]["run"]
    for argv in _commands(_workflow("pull-request.yml")):
        assert "HEAD" not in argv, argv  # the PR is named by its fetched ref
        if argv[0] in ("check", "plan"):
            assert argv[argv.index("--base") + 1] == "$BASE_SHA", argv
            assert argv[argv.index("--head") + 1] == "refs/modelpin/pr", argv
        else:
            assert argv[argv.index("--rev") + 1] == "refs/modelpin/pr", argv


def test_the_bets_workflow_runs_every_new_version_and_opens_one_pr() -> None:
    path = _workflow("bets.yml")
    assert [argv[:2] for argv in _commands(path)] == [["bets", "run"]]
    doc = _load(path)
    on = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads 'on' as true
    assert on["push"]["paths"] == ["model_versions/**"]
    assert "workflow_dispatch" in on
    text = path.read_text()
    assert text.count("gh pr create") == 1
    assert "MODELPIN_EVALUATOR_KEY: ${{ secrets.MODELPIN_EVALUATOR_KEY }}" in text


def test_the_checker_rejects_an_unknown_flag() -> None:
    with pytest.raises(AssertionError, match="no option --bogus"):
        _check_argv(["validate", "--bogus"])
    with pytest.raises(AssertionError, match="not in"):
        _check_argv(["validate", "--format", "xml"])
    with pytest.raises(AssertionError, match="no option --bogus"):
        _check_argv(["bets", "run", "--bogus"])
    with pytest.raises(AssertionError, match="has no command 'walk'"):
        _check_argv(["bets", "walk"])


def test_publish_compiles_the_judged_commit_from_a_full_clone() -> None:
    """SPEC 2.1 rule 8: the merged commit's git objects, a non-shallow checkout, and a
    schedule that re-publishes within the fleet's ``publish_period``."""
    doc = _load(next(p for p in WORKFLOWS if p.name == "publish.yml"))
    steps = doc["jobs"]["compile"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    compiles = [c for c in _commands(next(p for p in WORKFLOWS if p.name == "publish.yml"))
                if c[0] == "compile"]
    assert compiles and all(c[c.index("--rev") + 1] == "$GITHUB_SHA" for c in compiles)
    cron = doc[True]["schedule"][0]["cron"] if True in doc else doc["on"]["schedule"][0]["cron"]
    minute, hour, *rest = cron.split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]  # daily
    artifact = yaml.safe_load((WORKFLOWS[0].parents[2] / "policies" / "artifact.yaml")
                              .read_text())
    assert artifact["publish_period"] == "1d"
