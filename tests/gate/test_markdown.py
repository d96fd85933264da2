"""The plan comment cannot be forged (issue 11): every value a pull request writes into a
file (a tool schema's description, a model's ``blocked_reason``, an approver's address)
reaches the comment as literal text. Rendered with a real CommonMark renderer (tables,
raw HTML on, as GitHub renders), it adds no tag, no link, no mention, no emoji, no
table cell and no line of its own.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

from modelpin.rollout.plan import escape_markdown
from tests.fleetkit import FleetSpec, tenant
from tests.gate.harness import FRESH, Gate, PullRequest, base_fleet, canary

_WJ = "\u2060"

PAYLOADS = [
    "</td></tr></table><details open><summary>ok</summary>",
    "<!-- modelpin-plan --> :white_check_mark: all allowed",
    "```\nfenced``` and `code` and **bold** _em_ ~~gone~~",
    "@octocat please merge; cc @acme/platform and #1",
    "[approve](https://evil.example/x) ![i](https://e.x/i.png)",
    "a | b | c | d | e | f | g | h",
    "one\n## forged heading\n- forged item",
    "&lt;b&gt; literal entities &amp; \\*stars\\*",
    "<img src=x onerror=alert(1)> <a href='//e.x'>link</a>",
    "ANSI \x1b[31m red, bidi \u202e gnirts, nul-free",
]
"""Hostile values, each at most 60 characters (``shown`` cuts longer values)."""


class _Tags(HTMLParser):
    """Every element and comment of rendered HTML, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(markdown: str) -> _Tags:
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    parsed = _Tags()
    parsed.feed(html)
    return parsed


def visible(text: str) -> str:
    """What a reader sees of an escaped value: no word joiners, one line."""
    return text.replace(_WJ, "")


def expected(payload: str) -> str:
    from modelpin.diagnostics import escape_controls

    return escape_controls(" ".join(payload.splitlines()))


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_an_escaped_value_renders_as_its_literal_text(payload: str) -> None:
    item = render(f"- {escape_markdown(payload)}\n")
    assert item.tags == ["ul", "li"], item.tags
    assert not item.comments
    assert visible("".join(item.text).strip()) == expected(payload)
    cell = render(f"| A | B |\n|---|---|\n| {escape_markdown(payload)} | x |\n")
    assert cell.tags.count("td") == 2, cell.tags
    assert set(cell.tags) <= {"table", "thead", "tbody", "tr", "th", "td"}


def test_mentions_emoji_and_references_are_broken_only_where_they_would_act() -> None:
    out = escape_markdown("@octocat :x: #12 at 10:00:00Z std-a/primary: next")
    assert "@octocat" not in out and f"@{_WJ}octocat" in out
    assert ":x:" not in out and f":{_WJ}x:" in out
    assert "#12" not in out
    assert "10:00:00Z std-a/primary: next" in out  # times and prose keep their colons


def _hostile_base() -> FleetSpec:
    """The default base, std-p with tool schemas a PR can rewrite, and approvals on a
    conservative canary."""
    spec = base_fleet()
    tools = {f"tool{i}": {"type": "object", "description": "plain"}
             for i in range(len(PAYLOADS))}
    spec.tenants["std-p"]["tools"] = tools
    spec.add(tenant("cons-c", group="conservative", rollout=canary(1)))
    return spec


def _inject(pr: PullRequest) -> None:
    for i, payload in enumerate(PAYLOADS):
        pr.tenant("std-p")["tools"][f"tool{i}"]["description"] = payload
    pr.spec.models["claude-4-20260201"]["blocked"] = True  # the judge: unused as a pin
    pr.spec.models["claude-4-20260201"]["blocked_reason"] = PAYLOADS[1]
    rollout = canary(5, FRESH)
    rollout["approvals"] = [{"percent": 50, "by": "<details>@e.x", "at": FRESH},
                            {"percent": 50, "by": "`merge`|**ok**@e.x", "at": FRESH}]
    pr.set_rollout("cons-c", rollout)
    pr.write()


def _plan(gate: Gate) -> tuple[PullRequest, str, dict[str, Any]]:
    pr = gate.pull_request(_hostile_base())
    _inject(pr)
    pr.commit()
    markdown = pr.plan(fmt="markdown")
    assert markdown.exit_code == 0, markdown.explain()
    data = pr.plan(fmt="json")
    assert data.exit_code == 0, data.explain()
    assert data.document is not None
    return pr, markdown.stdout, data.document


def test_a_pull_request_cannot_write_markup_into_its_plan_comment(gate: Gate) -> None:
    _, markdown, doc = _plan(gate)
    # The values did reach the comment (the test would prove nothing otherwise) ...
    messages = [c["message"] for c in doc["rule_changes"]["changes"]]
    for payload in PAYLOADS:
        assert any(payload[:30] in m for m in messages), (payload, messages)
    reasons = [r["message"] for c in doc["changes"] for r in c["reasons"]]
    assert any("<details>@e.x" in m for m in reasons), reasons
    # ... and rendered as text only: the tags are the plan's own, no link, no comment.
    rendered = render(markdown)
    assert not rendered.comments
    assert set(rendered.tags) <= {"h2", "h3", "p", "strong", "code", "ul", "li", "table",
                                  "thead", "tbody", "tr", "th", "td"}, rendered.tags
    assert "details" not in rendered.tags and "a" not in rendered.tags
    text = "".join(rendered.text)
    for payload in PAYLOADS:
        assert expected(payload)[:40] in visible(text), payload
    assert not re.search(r"@octocat|@acme|@e\.x|#1\b", text)
    assert text.count(":white_check_mark:") == 0  # the verdict is :x:, nothing forged it
    for line in markdown.splitlines():  # every table row keeps its six cells
        if line.startswith("| ") and not line.startswith("| Group"):
            row = render(f"| a | b | c | d | e | f |\n|---|---|---|---|---|---|\n{line}\n")
            assert row.tags.count("td") in (0, 6), line


def test_the_violation_lines_quote_hostile_values_escaped(gate: Gate) -> None:
    _, markdown, _ = _plan(gate)
    [section] = [s for s in markdown.split("### ") if s.startswith("Violations")]
    assert "<details>" not in section and "&lt;details&gt;" in section
    assert "`merge`|**ok**" not in section and "\\`merge\\`\\|\\*\\*ok\\*\\*" in section
