"""What the adoption guide and the shipped workflows promise about the gate's inputs:
every job that judges or publishes reads the whole history (a shallow clone is refused
or would misjudge), and the README's CODEOWNERS covers every folder whose content
decides what the gate allows, the workflows included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
HISTORY_COMMANDS = re.compile(r"\bmodelpin (check|plan|explain|compile|bot|lifecycle|guard)\b")


def _jobs(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    return dict(doc.get("jobs", {}))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_that_read_history_check_out_all_of_it(path: Path) -> None:
    for name, job in _jobs(path).items():
        steps = job.get("steps", [])
        runs = " ".join(str(s.get("run", "")) for s in steps)
        if not HISTORY_COMMANDS.search(runs):
            continue
        checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
        assert checkouts, f"{path.name}:{name} runs modelpin without a checkout"
        for step in checkouts:
            assert (step.get("with") or {}).get("fetch-depth") == 0, (
                f"{path.name}:{name}: a shallow checkout (fetch-depth must be 0)")


def _adoption() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("To adopt modelpin:")
    return text[start:text.index("\n## ", start)]


def test_the_adoption_guide_puts_every_rule_folder_and_the_workflows_under_codeowners() -> None:
    guide = _adoption()
    block = re.search(r"```\n\s*(/policies/.*?)```", guide, re.S)
    assert block is not None, guide
    owned = {line.split()[0] for line in block.group(1).splitlines()
             if line.strip().startswith("/")}
    assert {"/policies/", "/model_versions/", "/evidence/", "/tenants/", "/bets/",
            "/.github/", "/CODEOWNERS"} <= owned, owned
    assert "require review from Code Owners" in guide
    assert "fetch-depth: 0" in guide
    for place in ("policies/evaluators.yaml", "policies/approvers.yaml", "contacts",
                  "MODELPIN_SIGNING_KEY", "MODELPIN_EVALUATOR_KEY"):
        assert place in guide, place
