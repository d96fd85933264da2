"""Write the example fleet's BETS suites (bets/<suite>/): one per tenant, deterministic.

In a real fleet suites come from ``modelpin bets capture`` on production traffic; the
example's are generated from templates so that the suites behind evidence are large
enough for their group's ``min_cases`` while the others stay a handful of cases.
Run: ``python scripts/example_suites.py [REPO]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

GPT_JUDGE, CLAUDE_JUDGE = "gpt-5-2026-09-14", "claude-4-20260201"
PRODUCTS = ["desk lamp", "office chair", "monitor arm", "keyboard", "webcam", "headset",
            "standing desk", "cable tray", "footrest", "whiteboard"]
CITIES = ["AMS", "BER", "CDG", "LHR", "MAD", "FCO", "VIE", "ZRH"]
TOPICS = ["password reset", "invoice copy", "plan upgrade", "data export", "2FA setup",
          "team invite", "API quota", "refund", "SSO login", "account deletion"]


def _tool(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": params}}


def retail(i: int) -> dict[str, Any]:
    product = PRODUCTS[i % len(PRODUCTS)]
    if i % 3 == 2:
        params = {"type": "object", "required": ["order_id"],
                  "properties": {"order_id": {"type": "string"}}}
        return {"id": f"ord-{i:04d}", "system": "You are Acme Retail's order assistant.",
                "messages": [{"role": "user", "content": f"Where is my order A-{1000 + i}?"}],
                "tools": [_tool("lookup_order", params)],
                "expect_tool_call": {"name": "lookup_order", "arguments": params}}
    golden = json.dumps({"product": product, "quantity": i % 5 + 1, "order_ref": f"A-{1000 + i}"})
    return {"id": f"ord-{i:04d}", "system": "Extract product, quantity and order_ref as JSON.",
            "messages": [{"role": "user", "content": f"Order A-{1000 + i}: {i % 5 + 1} x "
                          f"{product}, please ship soon."}],
            "format": {"json_schema": {"type": "object",
                                       "required": ["product", "quantity", "order_ref"]}},
            "golden": golden}


def contracts(i: int) -> dict[str, Any]:
    params = {"type": "object", "required": ["clause_id"],
              "properties": {"clause_id": {"type": "string"}}}
    return {"id": f"clause-{i:03d}", "system": "You answer questions about Acme contracts.",
            "messages": [{"role": "user", "content": f"What does clause {i + 1}.2 say?"}],
            "tools": [_tool("lookup_clause", params)],
            "expect_tool_call": {"name": "lookup_clause", "arguments": params}}


def support(i: int) -> dict[str, Any]:
    topic = TOPICS[i % len(TOPICS)]
    if i % 4 == 3:
        params = {"type": "object", "required": ["ticket_id", "status"],
                  "properties": {"ticket_id": {"type": "integer"},
                                 "status": {"enum": ["open", "pending", "closed"]}}}
        return {"id": f"sup-{i:04d}", "messages": [
            {"role": "user", "content": f"Reopen ticket {5000 + i} about {topic}."}],
            "tools": [_tool("open_ticket", params)],
            "expect_tool_call": {"name": "open_ticket", "arguments": params}}
    return {"id": f"sup-{i:04d}", "system": "You are a concise support agent.",
            "messages": [{"role": "user", "content": f"Case {i}: how do I handle {topic}?"}],
            "golden": f"Open Settings, choose {topic}, and follow the steps (case {i})."}


def labels(prefix: str, names: list[str], noun: str) -> Any:
    def make(i: int) -> dict[str, Any]:
        return {"id": f"{prefix}-{i:04d}", "system": f"Answer with one label: "
                f"{', '.join(names)}.",
                "messages": [{"role": "user", "content": f"{noun} #{i}: classify it."}],
                "format": {"regex": "|".join(names)}, "golden": names[i % len(names)]}
    return make


def chat(prefix: str, subject: str) -> Any:
    def make(i: int) -> dict[str, Any]:
        return {"id": f"{prefix}-{i:04d}",
                "messages": [{"role": "user", "content": f"{subject} {i}: give me the gist."}],
                "golden": f"The gist of {subject.lower()} {i} in one sentence."}
    return make


def travel(i: int) -> dict[str, Any]:
    params = {"type": "object", "required": ["origin", "destination", "date"],
              "properties": {"origin": {"type": "string"}, "destination": {"type": "string"},
                             "date": {"type": "string"}}}
    a, b = CITIES[i % len(CITIES)], CITIES[(i + 3) % len(CITIES)]
    return {"id": f"trip-{i:03d}", "messages": [
        {"role": "user", "content": f"Book {a} to {b} on 2026-12-{10 + i:02d}."}],
        "tools": [_tool("book_flight", params)],
        "expect_tool_call": {"name": "book_flight", "arguments": params}}


# suite id: (version, workload, judge, cases, template, required pass rate by kind)
SUITES: dict[str, tuple[int, str, str, int, Any, dict[str, float]]] = {
    "acme-contracts": (7, "json-extraction", CLAUDE_JUDGE, 6, contracts,
                       {"tool-call-schema": 1.0}),
    "acme-retail-orders": (4, "json-extraction", CLAUDE_JUDGE, 210, retail, {}),
    "beta-support-regression": (5, "chat", CLAUDE_JUDGE, 210, support, {}),
    "civic-faq": (1, "chat", GPT_JUDGE, 5, chat("civ", "Council notice"), {}),
    "harbor-fraud": (11, "classification", CLAUDE_JUDGE, 210,
                     labels("fraud", ["low", "medium", "high"], "Transaction"), {}),
    "lab-smoke": (3, "tool-agent", CLAUDE_JUDGE, 5, support, {}),
    "meridian-booking": (6, "tool-agent", CLAUDE_JUDGE, 5, travel, {}),
    "nimbus-chat": (12, "chat", CLAUDE_JUDGE, 60, chat("nim", "Release note"), {}),
    "northwind-triage": (14, "classification", GPT_JUDGE, 5,
                         labels("tri", ["low", "medium", "high"], "Patient message"), {}),
    "orbit-labels": (9, "classification", CLAUDE_JUDGE, 210,
                     labels("sent", ["positive", "neutral", "negative"], "Review"), {}),
    "pixel-search": (3, "retrieval", GPT_JUDGE, 5, chat("pix", "Photo caption"), {}),
    "quill-summaries": (2, "chat", GPT_JUDGE, 210, chat("sum", "Meeting note"), {}),
}


def main(repo: Path) -> None:
    for suite_id, (version, workload, judge, count, make, required) in SUITES.items():
        folder = repo / "bets" / suite_id
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# yaml-language-server: $schema=../../schemas/bets-suite.schema.json",
                 f"id: {suite_id}", f"version: {version}", f"workload: {workload}",
                 f"judge: {judge}", "judge_threshold: 0.8"]
        if required:
            rates = ", ".join(f"{k}: {v}" for k, v in required.items())
            lines.append(f"required_pass_rate: {{{rates}}}")
        (folder / "suite.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows = [make(i) for i in range(count)]
        (folder / "cases.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
