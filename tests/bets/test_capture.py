"""``modelpin bets capture``: recorded exchanges -> golden cases, deduplicated, sampled with
a seed, suite version bumped; bad lines refused with file:line:col."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelpin.cli import main
from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree
from tests.bets.conftest import Bets
from tests.bets.fleet import TOOL


def _exchange(prompt: str, *, answer: str | None = None, tool: dict[str, Any] | None = None,
              system: str | None = "Be brief.") -> dict[str, Any]:
    messages: list[dict[str, Any]] = [] if system is None else [
        {"role": "system", "content": system}]
    messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
    request: dict[str, Any] = {"model": "gpt-5-2026-01-10", "messages": messages}
    if tool is not None:
        request["tools"] = [TOOL]
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
            "name": tool["name"], "arguments": json.dumps(tool["arguments"])}}]
    return {"at": "2026-03-01T10:00:00Z", "request": request,
            "response": {"id": "x", "object": "chat.completion", "choices": [
                {"index": 0, "message": message, "finish_reason": "stop"}]}}


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _capture(bets: Bets, log: Path, *args: str) -> tuple[int, str, str]:
    code = main(["bets", "capture", "--repo", str(bets.root), str(log), "--suite", "tools",
                 *args])
    captured = bets.capsys.readouterr()
    return code, captured.out, captured.err


def _cases(bets: Bets) -> list[dict[str, Any]]:
    text = (bets.root / "bets/tools/cases.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_capture_adds_deduplicated_cases_and_bumps_the_version(bets: Bets, tmp_path: Path
                                                               ) -> None:
    log = _write(tmp_path / "log.jsonl", [
        _exchange("Show clause 9.1", tool={"name": "lookup_clause",
                                          "arguments": {"clause_id": "9.1"}}),
        _exchange("Summarise the deal", answer='{"summary": "a sale", "risk": "low"}'),
        _exchange("Summarise the deal", answer='{"summary": "a sale", "risk": "low"}'),
        _exchange("Hello", answer="Hi there", system=None),
    ])
    code, out, err = _capture(bets, log)
    assert code == 0, err
    assert "added 3 case(s)" in out and "1 duplicate(s)" in out
    assert "tools is now version 4" in out
    assert "tenants/t-tools.yaml" in out
    assert "version: 4" in (bets.root / "bets/tools/suite.yaml").read_text()
    new = _cases(bets)[4:]
    assert new[0]["expect_tool_call"]["name"] == "lookup_clause"
    assert new[0]["expect_tool_call"]["arguments"] == TOOL["function"]["parameters"]
    assert new[0]["system"] == "Be brief."
    assert new[0]["messages"] == [{"role": "user", "content": "Show clause 9.1"}]
    assert new[1]["golden"] == '{"summary": "a sale", "risk": "low"}'
    assert new[1]["format"] == {"json_schema": {"type": "object",
                                                "required": ["risk", "summary"]}}
    assert new[2]["golden"] == "Hi there" and "format" not in new[2]
    assert all(c["id"].startswith("cap-") for c in new)
    # The suite still validates (the tenant now names an older version: a warning).
    tenant = bets.root / "tenants/t-tools.yaml"
    tenant.write_text(tenant.read_text().replace("version: 3", "version: 4"))
    result = load_fleet(DirectoryTree(bets.root), load_now())
    assert [d for d in result.diagnostics if d.severity == "error"] == []
    # Captured again: every exchange is a duplicate now.
    code, out, _err = _capture(bets, log)
    assert code == 0 and "no new case (4 duplicate(s))" in out
    assert "version: 4" in (bets.root / "bets/tools/suite.yaml").read_text()


def load_now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 25, tzinfo=UTC)


def test_sampling_is_seeded(bets: Bets, tmp_path: Path) -> None:
    rows = [_exchange(f"Question {i}", answer=f"Answer {i}") for i in range(40)]
    log = _write(tmp_path / "log.jsonl", rows)
    original = (bets.root / "bets/tools/cases.jsonl").read_text()
    picks = []
    for _ in range(2):
        (bets.root / "bets/tools/cases.jsonl").write_text(original)
        code, _out, err = _capture(bets, log, "--sample", "5", "--seed", "7")
        assert code == 0, err
        picks.append([c["golden"] for c in _cases(bets)[4:]])
    assert picks[0] == picks[1] and len(picks[0]) == 5
    (bets.root / "bets/tools/cases.jsonl").write_text(original)
    _capture(bets, log, "--sample", "5", "--seed", "8")
    assert [c["golden"] for c in _cases(bets)[4:]] != picks[0]


@pytest.mark.parametrize(("row", "message"), [
    ('{"request": {"messages": []}', "3:29: syntax error"),
    ({"request": {"messages": [{"role": "user", "content": "x"}]}}, "'response' must be"),
    (_exchange("Refused", answer=None) | {"response": {"choices": [{"message": {
        "role": "assistant", "content": None, "refusal": "no"}}]}}, "is a refusal"),
    (_exchange("Image", answer="a cat") | {"request": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]}]}}, "only text content"),
], ids=["syntax", "no-response", "refusal", "image"])
def test_unusable_exchanges_are_refused_with_their_line(bets: Bets, tmp_path: Path, row: Any,
                                                        message: str) -> None:
    good = _exchange("fine", answer="ok")
    log = _write(tmp_path / "log.jsonl", [good, "", row])
    before = (bets.root / "bets/tools/cases.jsonl").read_bytes()
    code, _out, err = _capture(bets, log)
    assert code == 1
    assert "log.jsonl:3:" in err and message in err
    assert "nothing written" in err
    assert (bets.root / "bets/tools/cases.jsonl").read_bytes() == before
    code, out, err = _capture(bets, log, "--skip-invalid")
    assert code == 0 and "added 1 case(s)" in out and "1 skipped" in out


def test_capture_into_a_missing_suite_is_a_usage_error(bets: Bets, tmp_path: Path) -> None:
    log = _write(tmp_path / "log.jsonl", [_exchange("q", answer="a")])
    code = main(["bets", "capture", "--repo", str(bets.root), str(log), "--suite", "nope"])
    assert code == 2
    assert "no suite 'nope'" in bets.capsys.readouterr().err
