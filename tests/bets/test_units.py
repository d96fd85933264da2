"""The pure parts: Retry-After, pacing, backoff, answer checks, judge parsing, journal."""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
from pathlib import Path

import pytest

from modelpin.bets import journal as journal_module
from modelpin.bets.checks import Answer, ToolCallMade, check_answer, judge_score
from modelpin.bets.client import CallFailed, answer_of
from modelpin.bets.journal import Journal, JournalError, call_key
from modelpin.bets.limits import Pacer, backoff, parse_retry_after
from modelpin.model.bets import Case

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3.0), ("0", 0.0), (" 1.5 ", 1.5), ("-4", 0.0), ("100000", 600.0),
    (email.utils.formatdate(NOW + 7, usegmt=True), 7.0),
    (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ("soon", None), ("", None), (None, None), ("nan", None),
])
def test_retry_after_as_seconds_or_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_pacer_never_exceeds_its_rate_in_any_window() -> None:
    pacer = Pacer(per_minute=600)  # 10 per second
    starts = [pacer.reserve(1, 0.0) for _ in range(50)]
    assert starts[:3] == [0.0, 0.1, pytest.approx(0.2)]
    for i in range(len(starts)):
        in_window = [s for s in starts if starts[i] <= s < starts[i] + 1.0 - 1e-9]
        assert len(in_window) <= 10


def test_pacer_is_corrected_by_reported_usage() -> None:
    tokens = Pacer(per_minute=6000)  # 100 per second
    assert tokens.reserve(100, 0.0) == 0.0
    tokens.adjust(+100, 0.0)  # the call used 200
    assert tokens.reserve(1, 0.0) == pytest.approx(2.0)
    tokens.adjust(-1000, 0.5)  # credit never reaches back before now
    assert tokens.tat == 0.5


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(1)
    assert all(0 <= backoff(1, rng) <= 0.5 for _ in range(100))
    assert all(0 <= backoff(20, rng) <= 30 for _ in range(100))
    assert max(backoff(4, rng) for _ in range(200)) > 2.0


def _case(**extra: object) -> Case:
    return Case.model_validate({"id": "c", "messages": [{"role": "user", "content": "q"}],
                                **extra})


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
EXPECT = {"name": "lookup", "arguments": {"type": "object", "required": ["id"]}}


@pytest.mark.parametrize(("answer", "kind"), [
    (Answer(content=None, refusal="no"), "refusal"),
    (Answer(content="Sure", finish_reason="content_filter"), "refusal"),
    (Answer(content="I'm sorry, I can't help with that."), "refusal"),
    (Answer(content="the clause says..."), "tool-call-name"),
    (Answer(content=None, tool_calls=(ToolCallMade("search", "{}"),)), "tool-call-name"),
    (Answer(content=None, tool_calls=(ToolCallMade("lookup", "{id: 1"),)), "tool-call-schema"),
    (Answer(content=None, tool_calls=(ToolCallMade("lookup", '{"ID": 1}'),)),
     "tool-call-schema"),
    (Answer(content=None, tool_calls=(ToolCallMade("lookup", '{"id": "7"}'),)), None),
])
def test_tool_call_checks(answer: Answer, kind: str | None) -> None:
    failure = check_answer(_case(tools=[TOOL], expect_tool_call=EXPECT), answer)
    assert (failure.kind if failure else None) == kind


@pytest.mark.parametrize(("fmt", "content", "kind"), [
    ({"regex": "yes|no"}, "yes", None),
    ({"regex": "yes|no"}, " no\n", None),
    ({"regex": "yes|no"}, "yes, no", "format"),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', None),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '```json\n{"a": 1}\n```', "format"),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', "format"),
])
def test_format_checks(fmt: dict[str, object], content: str, kind: str | None) -> None:
    failure = check_answer(_case(format=fmt), Answer(content=content))
    assert (failure.kind if failure else None) == kind


@pytest.mark.parametrize(("content", "score"), [
    ('{"score": 0.9, "reason": "ok"}', 0.9),
    ('Sure! ```json\n{"score": 1, "reason": "same"}\n```', 1.0),
    ('{"score": 1.5}', None), ('{"score": true}', None), ("0.9", None), ('{"s": 1}', None),
])
def test_judge_score(content: str, score: float | None) -> None:
    found = judge_score(Answer(content=content))
    assert (found[0] if found else None) == score


def test_journal_survives_a_torn_last_line_and_refuses_another_run(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    header = {"run": "r1", "run_at": "2026-03-20T10:00:00Z"}
    journal = Journal(path, header)
    key = call_key("s", 1, "c", "m", {"model": "m"})
    journal.append(key, Answer(content="hi").to_json())
    journal.close()
    with open(path, "ab") as fh:
        fh.write(b'{"k": "torn", "a": {"con')  # killed mid-write
    again = Journal(path, {"run": "r1", "run_at": "2099-01-01T00:00:00Z"})
    assert again.header["run_at"] == "2026-03-20T10:00:00Z"  # the first start's time
    assert again.get(key) == Answer(content="hi").to_json()
    assert again.get("torn") is None
    again.close()
    assert path.read_bytes().endswith(b"}\n")
    with pytest.raises(JournalError, match="another run"):
        Journal(path, {"run": "r2"})
    assert json.loads(path.read_bytes().splitlines()[0])["journal"] == 1


def test_a_journaled_line_is_in_the_file_at_once_and_fsynced_soon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(journal_module, "FSYNC_SECONDS", 0.02)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    path = tmp_path / "j.jsonl"
    journal = Journal(path, {"run": "r1", "run_at": "2026-03-20T10:00:00Z"})
    synced.clear()  # the header's own fsync
    key = call_key("s", 1, "c", "m", {"model": "m"})
    journal.append(key, Answer(content="hi").to_json())
    # A process killed now has lost nothing: the line is in the file (another reader sees it).
    assert json.loads(path.read_bytes().splitlines()[1])["k"] == key
    deadline = time.monotonic() + 5
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert synced, "no fsync after an append"
    count = len(synced)
    time.sleep(0.1)
    assert len(synced) == count  # nothing new written: no more fsyncs
    journal.close()


def test_call_key_depends_on_every_part_of_the_request() -> None:
    base = call_key("s", 1, "c", "m", {"model": "m", "messages": [1]})
    assert base != call_key("s", 2, "c", "m", {"model": "m", "messages": [1]})
    assert base != call_key("s", 1, "c", "m", {"model": "m", "messages": [2]})
    assert base != call_key("s", 1, "d", "m", {"model": "m", "messages": [1]})
    assert base == call_key("s", 1, "c", "m", {"messages": [1], "model": "m"})


def _completion(message: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        **extra}).encode()


def test_answer_of_reads_the_documented_completion() -> None:
    body = _completion({"content": None, "refusal": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
        usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    assert answer_of(body) == Answer(content=None, tool_calls=(ToolCallMade("f", '{"a": 1}'),),
                                     finish_reason="stop", tokens=7)
    assert answer_of(_completion({"content": "hi"})).tokens == 0  # no usage: estimate stands


@pytest.mark.parametrize(("body", "why"), [
    (b"<html>gateway</html>", "not JSON"),
    (b'{"choices": []}', "no choices"),
    (b'["a"]', "no choices"),
    (b'{"choices": [{"index": 0}]}', "no message"),
    (_completion({"content": ["parts"]}), "not text"),
    (_completion({"tool_calls": [{"type": "function", "function": {"name": "f",
                                                                     "arguments": {"a": 1}}}]}),
     "malformed tool call"),
])
def test_answer_of_refuses_what_is_not_a_chat_completion(body: bytes, why: str) -> None:
    with pytest.raises(CallFailed, match=why):
        answer_of(body)
