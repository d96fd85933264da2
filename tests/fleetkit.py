"""Small fleets for tests, written as real YAML trees (and git repositories).

``FleetSpec`` holds plain dicts; ``write`` turns them into files exactly as a user would
keep them. Tests change one thing and write: a fleet never depends on the example fleet
shipped at the repository root.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NOW = "2026-03-25T12:00:00Z"
"""The time most tests evaluate at."""

GROUPS: dict[str, Any] = {
    "pioneers": {"after": [], "ladder": [100], "soak": "0h", "approval": "none",
                 "shadow": "0h", "bets": {"min_pass_rate": 0.90, "min_cases": 50}},
    "early": {"after": ["pioneers"], "ladder": [10, 100], "soak": "24h", "approval": "none",
              "shadow": "24h", "bets": {"min_pass_rate": 0.95, "min_cases": 200}},
    "standard": {"after": ["early"], "ladder": [5, 25, 50, 100], "soak": "24h",
                 "approval": "none", "shadow": "24h",
                 "bets": {"min_pass_rate": 0.95, "min_cases": 200}},
    "conservative": {"after": ["standard"], "ladder": [1, 5, 25, 50, 100], "soak": "72h",
                     "approval": "manual", "shadow": "72h",
                     "bets": {"min_pass_rate": 0.98, "min_cases": 500}},
}

MODELS: dict[str, dict[str, Any]] = {
    "gpt-5-2026-01-10": {"provider": "openai", "kind": "chat", "released": "2026-01-10"},
    "gpt-5-2026-03-14": {"provider": "openai", "kind": "chat", "released": "2026-03-14"},
    "claude-4-20260201": {"provider": "anthropic", "kind": "chat", "released": "2026-02-01"},
    "emb-4-2026-02-01": {"provider": "openai", "kind": "embedding", "released": "2026-02-01"},
}

COMPATIBILITY: dict[str, Any] = {
    "workloads": ["chat", "json-extraction", "classification", "tool-agent"],
    "upgrades": [
        {"from": "gpt-5-2026-01-10", "to": "gpt-5-2026-03-14",
         "verdicts": {"chat": "compatible", "json-extraction": "breaking",
                      "classification": "needs-prompt-changes", "tool-agent": "compatible"}},
    ],
}


def _rate(direction: str, min_samples: int, tolerance: float, action: str,
          **extra: Any) -> dict[str, Any]:
    return {"kind": "rate", "direction": direction, "min_samples": min_samples,
            "confidence": 0.95, "tolerance": tolerance, "action": action, **extra}


SIGNALS: dict[str, Any] = {
    "window": "1h",
    "signals": {
        "tool_call_failure_rate": _rate("lower_is_better", 200, 0.005, "rollback"),
        "task_completion_rate": _rate("higher_is_better", 100, 0.02, "rollback"),
        "semantic_similarity": {"kind": "mean", "direction": "higher_is_better",
                                "min_samples": 50, "confidence": 0.95, "tolerance": 0.03,
                                "action": "pause"},
        "coercion_rate": _rate("lower_is_better", 200, 0.005, "rollback", limit=0.02),
        "downstream_error_rate": _rate("lower_is_better", 200, 0.005, "escalate"),
    },
}


def cohort(tenant_id: str, alias: str, cohort_name: str, *, requests: int = 20000,
           tool_calls: int = 8000, tool_call_failures: int = 80, tasks: int = 4000,
           tasks_completed: int = 3800, similarity: float = 0.91, coercions: int = 40,
           downstream_errors: int = 60) -> dict[str, Any]:
    """One telemetry record (docs/telemetry.md); defaults are a healthy cohort."""
    return {"tenant": tenant_id, "alias": alias, "cohort": cohort_name, "window": "1h",
            "requests": requests, "tool_calls": tool_calls,
            "tool_call_failures": tool_call_failures, "tasks": tasks,
            "tasks_completed": tasks_completed,
            "semantic_similarity": {"mean": similarity, "std": 0.08, "count": tasks // 2},
            "coercions": coercions, "downstream_errors": downstream_errors}


def telemetry(*records: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "generated_at": NOW, "records": list(records)}


def tenant(tid: str, group: str = "standard", workload: str = "chat",
           pin: str = "gpt-5-2026-01-10", rollout: dict[str, Any] | None = None,
           **extra: Any) -> dict[str, Any]:
    """A tenant with one chat alias ``primary``."""
    alias: dict[str, Any] = {"kind": "chat", "pin": pin}
    if rollout is not None:
        alias["rollout"] = rollout
    doc: dict[str, Any] = {"id": tid, "group": group, "workload": workload,
                           "bets_suite": {"id": f"{tid}-suite", "version": 1},
                           "aliases": {"primary": alias}}
    doc.update(extra)
    return doc


def promoted(doc: dict[str, Any], promoted_from: str = "gpt-5-2026-01-10",
             at: str = "2026-03-01T00:00:00Z", alias: str = "primary") -> dict[str, Any]:
    """``doc`` with its alias's pin recorded as a judged promotion (SPEC 2.1 rule 7)."""
    entry = doc["aliases"][alias]
    doc["aliases"][alias] = {"kind": entry["kind"], "pin": entry["pin"], "pinned_at": at,
                             "promoted_from": promoted_from,
                             **{k: v for k, v in entry.items() if k not in ("kind", "pin")}}
    return doc


def evidence(tid: str, alias: str = "primary", baseline: str = "gpt-5-2026-01-10",
             candidate: str = "gpt-5-2026-03-14", cases: int = 600, passed: int = 600,
             run_at: str = "2026-03-20T00:00:00Z", judge: str = "claude-4-20260201",
             suite: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"tenant": tid, "alias": alias, "baseline": baseline, "candidate": candidate,
            "suite": suite or {"id": f"{tid}-suite", "version": 1}, "judge": judge,
            "run_at": run_at, "cases": cases, "passed": passed, "failures": []}


def suite(sid: str, version: int = 1, cases: int = 4, *, judge: str = "claude-4-20260201",
          threshold: float = 0.8) -> dict[str, Any]:
    """A BETS suite (``bets/<sid>/``): ``{"suite": suite.yaml, "cases": [case, ...]}``."""
    return {"suite": {"id": sid, "version": version, "workload": "chat", "judge": judge,
                      "judge_threshold": threshold},
            "cases": [{"id": f"c-{i:03d}", "messages": [{"role": "user",
                                                         "content": f"question {i}"}],
                       "golden": f"answer {i}"} for i in range(cases)]}


def suite_files(doc: dict[str, Any]) -> dict[str, bytes]:
    """The bytes ``FleetSpec.write`` gives a suite: file name -> bytes."""
    return {"suite.yaml": yaml.safe_dump(doc["suite"], sort_keys=False).encode(),
            "cases.jsonl": "".join(json.dumps(c) + "\n" for c in doc["cases"]).encode()}


def suite_digest(files: dict[str, bytes]) -> str:
    """The documented suite digest, computed here independently of modelpin:
    ``sha256sum suite.yaml cases.jsonl | sha256sum``."""
    import hashlib

    listing = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n"
                      for n in ("suite.yaml", "cases.jsonl"))
    return hashlib.sha256(listing.encode()).hexdigest()


@dataclass
class FleetSpec:
    groups: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(GROUPS))
    models: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(MODELS))
    compatibility: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(COMPATIBILITY))
    tenants: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"t1": tenant("t1")}
    )
    evidence: list[dict[str, Any]] = field(default_factory=list)
    artifact: dict[str, Any] | None = None
    signals: dict[str, Any] | None = field(default_factory=lambda: copy.deepcopy(SIGNALS))
    policy_extra: dict[str, Any] = field(default_factory=dict)
    evaluators: dict[str, Any] | None = None
    """``policies/evaluators.yaml`` (None: no file)."""
    approvers: dict[str, Any] | None = None
    """``policies/approvers.yaml`` (None: no file)."""
    evidence_key: bytes | None = None
    """PEM of an evaluator key: evidence is then written signed, as ``.dsse.json``."""
    suites: dict[str, dict[str, Any]] | None = None
    """``bets/``: suite id -> ``suite(...)`` (None: no bets/ folder is written)."""

    def add(self, doc: dict[str, Any]) -> FleetSpec:
        self.tenants[doc["id"]] = doc
        return self

    def write(self, root: Path) -> Path:
        """Write the tree under ``root`` (existing config folders are replaced)."""
        import shutil

        for top in ("policies", "model_versions", "tenants", "evidence"):
            shutil.rmtree(root / top, ignore_errors=True)
            (root / top).mkdir(parents=True)
        _dump(root / "policies/rollout-groups.yaml",
              {"groups": self.groups, "evidence_max_age": "30d", "sunset_warning_days": 60,
               **self.policy_extra})
        if self.signals is not None:
            _dump(root / "policies/signals.yaml", self.signals)
        if self.artifact is not None:
            _dump(root / "policies/artifact.yaml", self.artifact)
        for mid, model in self.models.items():
            _dump(root / f"model_versions/{mid}.yaml", {"id": mid, **model})
        _dump(root / "model_versions/compatibility.yaml", self.compatibility)
        for tid, doc in self.tenants.items():
            _dump(root / f"tenants/{tid}.yaml", doc)
        if self.suites is not None:
            shutil.rmtree(root / "bets", ignore_errors=True)
            for sid, doc in self.suites.items():
                (root / "bets" / sid).mkdir(parents=True)
                for name, data in suite_files(doc).items():
                    (root / "bets" / sid / name).write_bytes(data)
        if self.evaluators is not None:
            _dump(root / "policies/evaluators.yaml", self.evaluators)
        if self.approvers is not None:
            _dump(root / "policies/approvers.yaml", self.approvers)
        for ev in self.evidence:
            folder = root / "evidence" / ev["tenant"] / ev["alias"]
            folder.mkdir(parents=True, exist_ok=True)
            if self.evidence_key is not None:
                from modelpin import attestation, signing

                key = signing.load_private_key(self.evidence_key)
                (folder / f"{ev['candidate']}.dsse.json").write_bytes(
                    attestation.sign(ev, [key]))
            else:
                (folder / f"{ev['candidate']}.json").write_text(json.dumps(ev, indent=2) + "\n")
        return root


def _dump(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def git(repo: Path, *args: str, date: str | None = None) -> str:
    """Run git in ``repo`` with a fixed identity (and commit date, when given)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    if date:
        env["GIT_AUTHOR_DATE"] = date
        env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env, check=True)
    return proc.stdout.strip()


def init_repo(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit_all(repo: Path, message: str, date: str = NOW) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")
