"""The fast canonical path writes exactly what rfc8785 writes, or defers to it."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpin.routing.canonical import CanonicalError, canonical_bytes, fast_path_applies

ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
percents = st.integers(1, 10_000).map(lambda bp: bp / 100)
odd_text = st.text(st.characters(codec="utf-8"), max_size=12)
odd_keys = st.one_of(ids, odd_text, st.sampled_from(["\U0001f600", "\ue000", "é", "\x7f", ""]))
odd_numbers = st.one_of(
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    percents,
    st.sampled_from([0.0, -0.0, 5.0, 1e21, 1e-7, 0.1, 1e16, 123456789.125]),
)
schema_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), odd_numbers, odd_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(odd_keys, inner, max_size=4),
    ),
    max_leaves=20,
)
route = st.fixed_dictionaries({
    "kind": st.sampled_from(["chat", "embedding"]),
    "stable": ids,
    "candidate": st.one_of(st.none(), ids),
    "mode": st.sampled_from(["pinned", "shadow", "canary", "rolled-back"]),
    "paused": st.booleans(),
    "percent": st.one_of(st.just(0), st.integers(1, 100), percents),
    "salt": st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    "since": st.one_of(st.none(), st.just("2026-03-20T10:00:00Z")),
    "drain_seconds": st.integers(0, 10**6),
})
tenant_doc = st.fixed_dictionaries({
    "group": ids,
    "failure_policy": st.sampled_from(["fallback-stable", "structured-error"]),
    "tools": st.dictionaries(odd_keys, st.one_of(st.booleans(), st.dictionaries(
        odd_keys, schema_values, max_size=5)), max_size=3),
    "aliases": st.dictionaries(ids, route, min_size=1, max_size=3),
})


def _reference(value: Any) -> bytes | None:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return None


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(ids, tenant_doc, max_size=4))
def test_payload_shaped_values_match_the_reference(tenants: dict[str, Any]) -> None:
    doc = {"format": "modelpin.routing-table/v1", "serial": 3, "tenants": tenants}
    expected = _reference(doc)
    if expected is None:
        with pytest.raises(CanonicalError):
            canonical_bytes(doc)
    else:
        assert canonical_bytes(doc) == expected


@settings(max_examples=150, deadline=None)
@given(schema_values)
def test_odd_values_match_the_reference(value: Any) -> None:
    expected = _reference(value)
    if expected is None:
        with pytest.raises(CanonicalError):
            canonical_bytes(value)
    else:
        assert canonical_bytes(value) == expected


@pytest.mark.parametrize("value", [5.0, 0.1 + 0.2, 1e21, 1e-7, 2**53, {"\U0001f600": 1},
                                   {1: "x"}, math.pi])
def test_values_outside_the_proof_take_the_reference(value: Any) -> None:
    assert not fast_path_applies(value)


@pytest.mark.parametrize("value", [12.34, 0.01, 99.99, {"a": [1, "é\n\x01", None, True]}])
def test_payload_values_take_the_fast_path(value: Any) -> None:
    assert fast_path_applies(value)
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), 2**60, {"a": "\ud800"}, {"d": object()}])
def test_values_without_a_canonical_form_are_errors(value: Any) -> None:
    with pytest.raises(CanonicalError):
        canonical_bytes(value)
