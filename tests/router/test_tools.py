"""Tool-call contracts and the tenant failure policies."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from modelpin.router import ToolAction, UnknownTenantError
from tests.router.tables import envelope, payload, write_atomically


@pytest.fixture
def router(make_router: Any, key: Any, table_file: Path) -> Any:
    doc = payload(1)
    other = copy.deepcopy(doc["tenants"]["acme-legal"])
    other["failure_policy"] = "structured-error"
    other["tools"]["broken"] = {"type": 12}
    doc["tenants"]["globex"] = other
    write_atomically(table_file, envelope(doc, [key]))
    r = make_router()
    assert r.refresh().outcome == "accepted"
    return r


def test_a_valid_call_is_executed(router: Any) -> None:
    result = router.check_tool_call("acme-legal", "lookup_clause", {"clause_id": "7.2"})
    assert result.valid and result.action is ToolAction.EXECUTE and result.errors == ()


def test_fallback_stable_says_retry_on_stable(router: Any) -> None:
    result = router.check_tool_call("acme-legal", "lookup_clause", {"clause_id": 7})
    assert not result.valid and result.action is ToolAction.RETRY_ON_STABLE
    assert any("clause_id" in e for e in result.errors)
    assert result.error_result is None


def test_structured_error_returns_an_error_result(router: Any) -> None:
    result = router.check_tool_call("globex", "lookup_clause", {"extra": 1})
    assert result.action is ToolAction.RETURN_ERROR
    err = result.error_result["error"]
    assert err["type"] == "invalid_tool_call" and err["tool"] == "lookup_clause"
    assert len(err["details"]) == 2  # clause_id missing, extra not allowed


def test_an_undeclared_tool_is_an_invalid_call(router: Any) -> None:
    result = router.check_tool_call("acme-legal", "delete_everything", {})
    assert not result.valid and result.action is ToolAction.RETRY_ON_STABLE
    assert "no contract" in result.errors[0]


def test_a_broken_contract_fails_closed(router: Any) -> None:
    result = router.check_tool_call("globex", "broken", {})
    assert not result.valid and "not a valid JSON Schema" in result.errors[0]


def test_shadow_calls_are_never_executed(router: Any) -> None:
    good = router.check_tool_call("acme-legal", "lookup_clause", {"clause_id": "1"}, shadow=True)
    bad = router.check_tool_call("acme-legal", "lookup_clause", {}, shadow=True)
    assert good.action is bad.action is ToolAction.COMPARE_ONLY
    assert good.valid and not bad.valid


def test_validators_are_compiled_once_per_table(router: Any) -> None:
    contracts = router._current.contracts
    router.check_tool_call("acme-legal", "lookup_clause", {"clause_id": "1"})
    v = contracts._validators["acme-legal"]["lookup_clause"]
    router.check_tool_call("acme-legal", "lookup_clause", {"clause_id": 2})
    assert contracts._validators["acme-legal"]["lookup_clause"] is v


def test_unknown_tenant_raises(router: Any) -> None:
    with pytest.raises(UnknownTenantError):
        router.check_tool_call("initech", "lookup_clause", {})
