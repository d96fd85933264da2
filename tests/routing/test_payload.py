"""Fleet -> payload: the format of docs/routing-table.md, canonical, schema-valid."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785

from modelpin.load.fleet import load_fleet
from modelpin.load.tree import DirectoryTree
from modelpin.model.fleet import Fleet
from modelpin.router.payload import parse_payload
from modelpin.routing.payload import (
    Header,
    PayloadError,
    build,
    build_document,
    fragment_key,
    salt_of,
)
from tests.fleetkit import FleetSpec, tenant

NOW = datetime(2026, 3, 25, 12, tzinfo=UTC)
HEADER = Header(7, "ab" * 20, NOW, NOW + timedelta(days=7))
SCHEMA = json.loads(
    resources.files("modelpin").joinpath("schemas/routing-table.schema.json").read_text()
)


def mixed_spec() -> FleetSpec:
    spec = FleetSpec(tenants={})
    spec.add(tenant("a-pinned", tools={"lookup": {"type": "object", "minimum": 0.5,
                                                  "description": "naïve \U0001f600"}}))
    spec.add(tenant("b-shadow", rollout={"candidate": "gpt-5-2026-03-14", "stage": "shadow",
                                         "since": "2026-03-20T10:00:00Z"}))
    spec.add(tenant("c-canary", rollout={"candidate": "gpt-5-2026-03-14", "stage": "canary",
                                         "percent": 25, "since": "2026-03-20T10:00:00Z"}))
    spec.add(tenant("d-paused", rollout={"candidate": "gpt-5-2026-03-14", "stage": "paused",
                                         "percent": 5, "since": "2026-03-21T10:00:00Z",
                                         "reason": "latency"}))
    spec.add(tenant("e-rolled", rollout={"candidate": "gpt-5-2026-03-14",
                                         "stage": "rolled-back", "reason": "bad json",
                                         "since": "2026-03-22T10:00:00Z"}))
    spec.groups["standard"]["ladder"] = [0.25, 5, 25, 50, 100]
    spec.add(tenant("f-tiny", rollout={"candidate": "gpt-5-2026-03-14", "stage": "canary",
                                       "percent": 0.25, "since": "2026-03-20T10:00:00Z"}))
    return spec


def load(root: Path) -> Fleet:
    result = load_fleet(DirectoryTree(root), NOW)
    assert result.fleet is not None, [str(d) for d in result.diagnostics]
    return result.fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return load(mixed_spec().write(tmp_path / "repo"))


def test_payload_is_rfc8785_of_the_document_and_matches_the_schema(fleet: Fleet) -> None:
    payload = build(fleet, HEADER)
    document = build_document(fleet, HEADER)
    assert payload == rfc8785.dumps(document)
    jsonschema.validate(json.loads(payload), SCHEMA)
    table = parse_payload(payload, hashlib.sha256(payload).hexdigest())  # the router accepts it
    assert table.serial == 7


def test_routes_follow_the_stage_mapping(fleet: Fleet) -> None:
    doc: dict[str, Any] = json.loads(build(fleet, HEADER))
    routes = {tid: t["aliases"]["primary"] for tid, t in doc["tenants"].items()}
    summary = {tid: (r["mode"], r["paused"], r["percent"], r["candidate"], r["since"])
               for tid, r in routes.items()}
    cand = "gpt-5-2026-03-14"
    assert summary == {
        "a-pinned": ("pinned", False, 0, None, None),
        "b-shadow": ("shadow", False, 0, cand, "2026-03-20T10:00:00Z"),
        "c-canary": ("canary", False, 25, cand, "2026-03-20T10:00:00Z"),
        "d-paused": ("canary", True, 5, cand, "2026-03-21T10:00:00Z"),
        "e-rolled": ("rolled-back", False, 0, cand, "2026-03-22T10:00:00Z"),
        "f-tiny": ("canary", False, 0.25, cand, "2026-03-20T10:00:00Z"),
    }
    assert type(routes["c-canary"]["percent"]) is int  # written as 25, not 25.0
    assert routes["a-pinned"]["salt"] == hashlib.sha256(b"a-pinned:primary:").hexdigest()[:16]
    assert routes["c-canary"]["salt"] == salt_of("c-canary", "primary", cand)
    assert {r["drain_seconds"] for r in routes.values()} == {300}
    assert doc["models"] == {"gpt-5-2026-01-10": {"provider": "openai", "kind": "chat"},
                             "gpt-5-2026-03-14": {"provider": "openai", "kind": "chat"}}
    assert doc["tenants"]["a-pinned"]["tools"]["lookup"]["description"] == "naïve \U0001f600"
    assert (doc["serial"], doc["source"], doc["issued_at"], doc["expires_at"]) == (
        7, {"commit": "ab" * 20}, "2026-03-25T12:00:00Z", "2026-04-01T12:00:00Z")


def test_cached_fragments_give_the_same_bytes_and_are_reused(fleet: Fleet) -> None:
    ids = {tid: f"blob-{tid}" for tid in fleet.tenants}
    cache: dict[str, bytes] = {}
    first = build(fleet, HEADER, content_ids=ids, fragments=cache)
    assert set(cache) == {fragment_key(f"blob-{t}", 300) for t in fleet.tenants}
    cache[fragment_key("blob-a-pinned", 300)] = b'{"marker":1}'
    second = build(fleet, HEADER, content_ids=ids, fragments=cache)
    assert first == build(fleet, HEADER)
    assert b'"a-pinned":{"marker":1}' in second  # proves the cache is read


def test_a_tool_schema_without_json_form_is_a_payload_error(tmp_path: Path) -> None:
    """The loader refuses such numbers at their position (I-JSON range); the payload
    builder still checks, for fleets built in code."""
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1"))
    fleet = load(spec.write(tmp_path / "repo"))
    bad = fleet.tenants["t1"].model_copy(
        update={"tools": {"big": {"type": "integer", "maximum": 2**60}}})
    fleet = dataclasses.replace(fleet, tenants={"t1": bad})
    with pytest.raises(PayloadError, match="tenant 't1'"):
        build(fleet, HEADER)


def test_a_tool_name_outside_the_schema_is_a_payload_error(tmp_path: Path) -> None:
    """The loader refuses such names with a position; the payload builder still checks,
    for fleets built in code (model_copy does not validate)."""
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1"))
    fleet = load(spec.write(tmp_path / "repo"))
    bad = fleet.tenants["t1"].model_copy(update={"tools": {"look up": {"type": "object"}}})
    fleet = dataclasses.replace(fleet, tenants={"t1": bad})
    with pytest.raises(PayloadError, match="tool name 'look up'"):
        build(fleet, HEADER)


def test_serial_must_be_positive(fleet: Fleet) -> None:
    with pytest.raises(PayloadError):
        build(fleet, Header(0, "0" * 40, NOW, NOW))


def test_tenant_coercions_reach_the_router(tmp_path: Path) -> None:
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1", coercions=["strip-json-fences", "number-as-string"],
                    tools={"lookup": {"type": "object"}}))
    spec.add(tenant("t2"))
    fleet = load(spec.write(tmp_path / "repo"))
    payload = build(fleet, HEADER)
    doc = json.loads(payload)
    assert doc["tenants"]["t1"]["coercions"] == ["strip-json-fences", "number-as-string"]
    assert "coercions" not in doc["tenants"]["t2"]  # absent = none: older tables unchanged
    jsonschema.validate(doc, SCHEMA)
    table = parse_payload(payload, hashlib.sha256(payload).hexdigest())
    assert table.tenants["t1"].coercions == ("strip-json-fences", "number-as-string")
    assert table.tenants["t2"].coercions == ()


def test_an_unknown_coercion_is_a_diagnostic_at_its_position(tmp_path: Path) -> None:
    spec = FleetSpec(tenants={})
    spec.add(tenant("t1", coercions=["strip-json-fence"]))
    result = load_fleet(DirectoryTree(spec.write(tmp_path / "repo")), NOW)
    assert result.fleet is None
    [diag] = [d for d in result.diagnostics if d.severity == "error"]
    assert diag.file.endswith("tenants/t1.yaml") and diag.line > 1 and diag.col > 1
    assert "strip-json-fence" in diag.message and "strip-json-fences" in diag.message
