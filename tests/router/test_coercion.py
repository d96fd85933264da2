"""Coercions: only those the tenant lists, only in check_tool_call, each counted; and the
attempts to get round them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelpin.router import MalformedTableError, ToolAction
from modelpin.router import metric_names as mn
from modelpin.router.coercion import COERCION_NAMES, unfence
from modelpin.router.payload import parse_payload
from tests.router.tables import canonical, envelope, payload, write_atomically

T, A = "acme-legal", "primary-reasoning"
SCHEMA = {
    "type": "object",
    "required": ["clause_id", "page", "strict"],
    "properties": {"clause_id": {"type": "string"}, "page": {"type": "integer"},
                   "score": {"type": "number"}, "strict": {"type": "boolean"}},
    "additionalProperties": False,
}


def doc_with(coercions: list[str] | None) -> dict[str, Any]:
    doc = payload(1)
    tenant = doc["tenants"][T]
    tenant["tools"] = {"lookup": SCHEMA}
    if coercions is not None:
        tenant["coercions"] = coercions
    return doc


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry,
         coercions: list[str] | None) -> Any:
    write_atomically(table_file, envelope(doc_with(coercions), [key]))
    r = make_router(registry=registry, name="gw")
    assert r.refresh().outcome == "accepted"
    return r


def counted(registry: CollectorRegistry, cohort: str = "canary") -> tuple[Any, Any]:
    labels = {"tenant": T, "alias": A, "cohort": cohort, "router": "gw"}
    return (registry.get_sample_value(mn.COERCIONS.sample, labels),
            registry.get_sample_value(mn.TOOL_CALL_FAILURES.sample, labels))


def test_fenced_json_is_unwrapped_only_when_the_tenant_allows_it(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry
) -> None:
    text = '```json\n{"clause_id": "7", "page": 3, "strict": true}\n```'
    r = make(make_router, key, table_file, registry, ["strip-json-fences"])
    res = r.check_tool_call(T, "lookup", text, alias=A, cohort="canary")
    assert res.valid and res.action is ToolAction.EXECUTE
    assert res.coercions == ("strip-json-fences",)
    assert res.arguments == {"clause_id": "7", "page": 3, "strict": True}
    assert counted(registry) == (1, 0)
    labels = {"tenant": T, "alias": A, "cohort": "canary", "router": "gw",
              "coercion": "strip-json-fences"}
    assert registry.get_sample_value(mn.COERCIONS_APPLIED.sample, labels) == 1


def test_without_the_coercion_listed_the_call_is_invalid(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry
) -> None:
    r = make(make_router, key, table_file, registry, None)
    res = r.check_tool_call(T, "lookup", '```json\n{"clause_id": "7", "page": 3, '
                            '"strict": true}\n```', alias=A, cohort="canary")
    assert not res.valid and res.action is ToolAction.RETRY_ON_STABLE
    assert res.coercions == () and res.arguments is None
    res = r.check_tool_call(T, "lookup", {"clause_id": "7", "page": "3", "strict": True},
                            alias=A, cohort="canary")
    assert not res.valid
    assert counted(registry) == (0, 2)


def test_number_and_boolean_as_string_repair_only_typed_fields(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry, caplog: Any
) -> None:
    r = make(make_router, key, table_file, registry,
             ["number-as-string", "boolean-as-string"])
    args = {"clause_id": "7", "page": "3", "score": "-1.5", "strict": "false"}
    before = copy.deepcopy(args)
    with caplog.at_level("INFO", logger="modelpin.router.coercion"):
        res = r.check_tool_call(T, "lookup", args, alias=A, cohort="canary")
    assert res.valid
    assert res.arguments == {"clause_id": "7", "page": 3, "score": -1.5, "strict": False}
    assert set(res.coercions) == {"number-as-string", "boolean-as-string"}
    assert args == before  # never mutated
    assert counted(registry) == (1, 0)  # one coerced call, whatever the number of repairs
    assert sum("coerced" in rec.getMessage() for rec in caplog.records) == 2
    # clause_id is a string field: a number-looking string there is left alone and valid
    assert r.check_tool_call(T, "lookup", {"clause_id": "42", "page": 1, "strict": True},
                             alias=A, cohort="canary").coercions == ()


@pytest.mark.parametrize("page", ["4.5", "1e5", " 42", "0x10", "NaN", "Infinity", "42 ",
                                  "+3", "", "١٢"])
def test_strings_that_are_not_plain_integers_are_not_coerced(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry, page: str
) -> None:
    r = make(make_router, key, table_file, registry, list(COERCION_NAMES))
    res = r.check_tool_call(T, "lookup", {"clause_id": "7", "page": page, "strict": True},
                            alias=A, cohort="canary")
    assert not res.valid and res.coercions == ()
    assert counted(registry) == (0, 1)


def test_a_coercion_that_does_not_make_the_call_valid_is_a_failure_not_a_coercion(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry
) -> None:
    r = make(make_router, key, table_file, registry, list(COERCION_NAMES))
    res = r.check_tool_call(T, "lookup", {"page": "3", "strict": True}, alias=A,
                            cohort="canary")  # clause_id missing: no coercion fixes that
    assert not res.valid and res.coercions == ()
    res = r.check_tool_call(T, "lookup", '```json\n{"page": 3}\n```', alias=A,
                            cohort="canary")
    assert not res.valid
    assert counted(registry) == (0, 2)


@pytest.mark.parametrize("text", [
    '```json\n{"clause_id": "7", "page": 3, "strict": true}\n``` and then ```x```',
    'Sure! ```json\n{"clause_id": "7", "page": 3, "strict": true}\n```',
    '{"clause_id": "7", "page": 3, "strict": true}',   # plain text is not fenced JSON
    '```json\n{"clause_id": "7", "page": 3, "strict": true\n```',
])
def test_fence_stripping_takes_only_a_whole_fenced_block(text: str) -> None:
    with pytest.raises(ValueError):
        unfence(text)


def test_shadow_calls_are_coerced_for_comparison_but_never_executed(
    make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry
) -> None:
    r = make(make_router, key, table_file, registry, ["number-as-string"])
    res = r.check_tool_call(T, "lookup", {"clause_id": "7", "page": "3", "strict": True},
                            alias=A, shadow=True)
    assert res.valid and res.action is ToolAction.COMPARE_ONLY
    assert counted(registry, "shadow") == (1, 0)


@pytest.mark.parametrize("value, message", [
    (["strip-json-fence"], "is not one of"),
    ([], "non-empty list"),
    ("strip-json-fences", "non-empty list"),
    (["number-as-string", "number-as-string"], "twice"),
    ([1], "is not one of"),
])
def test_the_table_refuses_bad_coercion_lists(value: Any, message: str) -> None:
    with pytest.raises(MalformedTableError, match=message):
        parse_payload(canonical(doc_with(value)), "0" * 64)
