"""A small fleet for BETS tests: three tenants, one suite each, models with personas.

The suites cover the three shapes of case: JSON extraction (format JSON Schema + golden),
tool calls (expected tool name + argument schema), classification (regex + golden label).
``ANSWERS`` is what a correct model says to each case's last user message; the fake
server's ``clean`` persona says exactly that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

PIN = "gpt-5-2026-01-10"
JUDGE = "claude-4-20260201"
CANDIDATES = {
    "gpt-5-2026-03-14": "clean",
    "gpt-5-fenced-2026-03-15": "fenced",
    "gpt-5-renamed-2026-03-16": "renamed-arg",
    "gpt-5-refuser-2026-03-17": "refuser",
    "gpt-5-shift-2026-03-18": "label-shift",
    "gpt-5-flaky-2026-03-19": "flaky:clean",
}
PERSONAS = {PIN: "clean", JUDGE: "clean", **CANDIDATES}
KEY_ENV = "BETS_FAKE_KEY"

TOOL = {"type": "function", "function": {
    "name": "lookup_clause", "description": "Fetch a contract clause",
    "parameters": {"type": "object", "required": ["clause_id"],
                   "properties": {"clause_id": {"type": "string"}}}}}


def _extract_cases(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        golden = json.dumps({"parties": [f"Acme {i}", f"Beta {i}"]})
        out.append({"id": f"x-{i:03d}", "system": "Extract the parties as JSON.",
                    "messages": [{"role": "user",
                                  "content": f"Agreement {i} between Acme {i} and Beta {i}."}],
                    "format": {"json_schema": {"type": "object", "required": ["parties"]}},
                    "golden": golden})
    return out


def _tool_cases(n: int) -> list[dict[str, Any]]:
    return [{"id": f"t-{i:03d}", "messages": [{"role": "user", "content": f"Show clause {i}.2"}],
             "tools": [TOOL],
             "expect_tool_call": {"name": "lookup_clause", "arguments": {
                 "type": "object", "required": ["clause_id"], "additionalProperties": False,
                 "properties": {"clause_id": {"type": "string"}}}}}
            for i in range(n)]


def _label_cases(n: int) -> list[dict[str, Any]]:
    labels = ["positive", "neutral", "negative"]
    return [{"id": f"l-{i:03d}", "system": "Answer with one label.",
             "messages": [{"role": "user", "content": f"Review {i}: it was fine"}],
             "format": {"regex": "positive|neutral|negative"}, "golden": labels[i % 3]}
            for i in range(n)]


def answers_for(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        prompt = case["messages"][-1]["content"]
        if "expect_tool_call" in case:
            clause = prompt.removeprefix("Show clause ").rstrip(".")
            out[prompt] = {"tool": "lookup_clause", "arguments": {"clause_id": clause}}
        else:
            out[prompt] = {"content": case["golden"]}
    return out


SUITES = {
    "extract": ("json-extraction", _extract_cases),
    "tools": ("tool-agent", _tool_cases),
    "labels": ("classification", _label_cases),
}
TENANTS = {"t-extract": "extract", "t-tools": "tools", "t-labels": "labels"}


def _yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_fleet(root: Path, base_url: str, *, cases: int = 4, concurrency: int = 4,
                rpm: int = 60_000, tpm: int = 50_000_000, judge: str = JUDGE
                ) -> dict[str, dict[str, Any]]:
    """Write the fleet under ``root``; returns the answers table for the fake server."""
    _yaml(root / "policies/rollout-groups.yaml", {
        "groups": {"pioneers": {"after": [], "ladder": [100], "soak": "0h", "approval": "none",
                                "shadow": "0h", "bets": {"min_pass_rate": 0.9,
                                                         "min_cases": 1}}},
        "evidence_max_age": "30d"})
    _yaml(root / "policies/providers.yaml", {"providers": {
        "fake": {"base_url": base_url, "api_key_env": KEY_ENV, "requests_per_minute": rpm,
                 "tokens_per_minute": tpm, "concurrency": concurrency, "timeout_seconds": 10,
                 "max_attempts": 4}}})
    _yaml(root / "model_versions/compatibility.yaml", {
        "workloads": ["chat", "json-extraction", "classification", "tool-agent"],
        "upgrades": []})
    for i, model in enumerate([PIN, JUDGE, *CANDIDATES]):
        _yaml(root / f"model_versions/{model}.yaml", {
            "id": model, "provider": "fake", "kind": "chat",
            "released": f"2026-01-{10 + i:02d}"})
    answers: dict[str, dict[str, Any]] = {}
    for suite_id, (workload, make) in SUITES.items():
        _yaml(root / f"bets/{suite_id}/suite.yaml", {
            "id": suite_id, "version": 3, "workload": workload, "judge": judge,
            "judge_threshold": 0.8})
        rows = make(cases)
        (root / f"bets/{suite_id}/cases.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        answers.update(answers_for(rows))
    for tenant, suite_id in TENANTS.items():
        _yaml(root / f"tenants/{tenant}.yaml", {
            "id": tenant, "group": "pioneers", "workload": SUITES[suite_id][0],
            "override_allowed": True, "bets_suite": {"id": suite_id, "version": 3},
            "aliases": {"primary": {"kind": "chat", "pin": PIN}}})
    return answers
