"""Shadow drift: the shape of a shadow answer's tool calls against the stable answer's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelpin.router import metric_names as mn
from modelpin.router.drift import compare
from tests.router.tables import envelope, payload, write_atomically


def test_identical_shapes_with_other_values_do_not_drift() -> None:
    stable = [("lookup", {"id": "7", "page": 1, "opts": {"deep": True}})]
    shadow = [("lookup", '{"id": "other words", "page": 2.0, "opts": {"deep": false}}')]
    assert compare(stable, shadow) == {}


def test_each_kind_is_counted_per_tool() -> None:
    stable = [("lookup", {"id": "7", "page": 1, "meta": {"a": 1}}), ("notify", {"to": "x"})]
    shadow = [("lookup", {"id": 7, "extra": True, "meta": {}}), ("lookup", {"id": "8"})]
    assert compare(stable, shadow) == {
        ("lookup", "type-changed"): 1,      # id: string -> number
        ("lookup", "field-missing"): 2,     # page, meta.a
        ("lookup", "field-extra"): 1,       # extra
        ("lookup", "call-extra"): 1,        # a second lookup
        ("notify", "call-missing"): 1,
    }


def test_choosing_another_tool_or_none_is_tool_changed() -> None:
    assert compare([("lookup", {})], [("search", {})]) == {
        ("lookup", "tool-changed"): 1, ("lookup", "call-missing"): 1,
        ("search", "call-extra"): 1}
    assert compare([], [("search", {})]) == {
        ("(none)", "tool-changed"): 1, ("search", "call-extra"): 1}


def test_unparseable_text_is_a_string_and_deep_nesting_is_bounded() -> None:
    assert compare([("t", {"a": 1})], [("t", "```json {\"a\": 1}```")]) == {
        ("t", "type-changed"): 1}
    deep: Any = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    assert compare([("t", deep)], [("t", deep)]) == {}


def test_router_counts_comparisons_and_drift(make_router: Any, key: Any,
                                             table_file: Path) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))
    reg = CollectorRegistry()
    r = make_router(registry=reg, name="gw")
    r.refresh()
    t, a = "acme-legal", "primary-reasoning"
    r.compare_shadow(t, a, [("lookup", {"id": "1"})], [("lookup", {"id": "2"})])
    counts = r.compare_shadow(t, a, [("lookup", {"id": "1"})], [("lookup", {"id": 2})])
    assert counts == {("lookup", "type-changed"): 1}
    base = {"tenant": t, "alias": a, "router": "gw"}
    assert reg.get_sample_value(mn.SHADOW_COMPARISONS.sample, base) == 2
    assert reg.get_sample_value(mn.SHADOW_DRIFTED.sample, base) == 1
    assert reg.get_sample_value(
        mn.SHADOW_DRIFT.sample, {**base, "tool": "lookup", "kind": "type-changed"}) == 1


@pytest.mark.parametrize("kind", ["tool-changed", "field-missing"])
def test_kinds_are_the_documented_ones(kind: str) -> None:
    from modelpin.router.drift import KINDS

    assert kind in KINDS and kind in mn.SHADOW_DRIFT.help
