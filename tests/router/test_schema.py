"""The shipped JSON Schema and the router's hand checks agree: what the compiler
validates with the schema is what the router accepts."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from modelpin.router import MalformedTableError
from modelpin.router.payload import parse_payload
from tests.router.tables import canonical, payload, with_route


def _schema() -> Any:
    text = resources.files("modelpin").joinpath("schemas/routing-table.schema.json").read_text()
    return json.loads(text)


def _validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _alias(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["tenants"]["acme-legal"]["aliases"]["primary-reasoning"]  # type: ignore[no-any-return]


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return edit


def _delete(path: list[str]) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
    return edit


ALIAS = ["tenants", "acme-legal", "aliases", "primary-reasoning"]
TENANT = ["tenants", "acme-legal"]

BAD: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown top-level key": _set(["extra"], 1),
    "missing serial": _delete(["serial"]),
    "serial zero": _set(["serial"], 0),
    "serial as string": _set(["serial"], "17"),
    "wrong format": _set(["format"], "modelpin.routing-table/v2"),
    "short commit": _set(["source", "commit"], "abc123"),
    "uppercase commit": _set(["source", "commit"], "0123456789ABCDEF0123456789abcdef01234567"),
    "time with offset": _set(["issued_at"], "2026-03-20T10:00:00+00:00"),
    "time with fraction": _set(["expires_at"], "2099-01-01T00:00:00.5Z"),
    "bad tenant id": lambda d: d["tenants"].__setitem__("Acme", d["tenants"]["acme-legal"]),
    "unknown tenant key": _set([*TENANT, "owner"], "x"),
    "missing tools": _delete([*TENANT, "tools"]),
    "bad failure policy": _set([*TENANT, "failure_policy"], "ignore"),
    "bad tool name": _set([*TENANT, "tools", "no spaces"], {}),
    "tool schema not an object": _set([*TENANT, "tools", "t"], "string"),
    "unknown alias key": _set([*ALIAS, "weight"], 1),
    "missing salt": _delete([*ALIAS, "salt"]),
    "bad mode": _set([*ALIAS, "mode"], "blue-green"),
    "short salt": _set([*ALIAS, "salt"], "9c1e5b0a"),
    "percent over 100": _set([*ALIAS, "percent"], 101),
    "canary at 0": _set([*ALIAS, "percent"], 0),
    "negative drain": _set([*ALIAS, "drain_seconds"], -1),
    "drain as float": _set([*ALIAS, "drain_seconds"], 1.5),
    "paused as string": _set([*ALIAS, "paused"], "false"),
    "bad kind": _set([*ALIAS, "kind"], "image"),
    "canary without since": _set([*ALIAS, "since"], None),
    "canary without candidate": _set([*ALIAS, "candidate"], None),
    "model bad kind": _set(["models", "gpt-5-2026-01-10", "kind"], "vision"),
    "model unknown key": _set(["models", "gpt-5-2026-01-10", "retired"], True),
}


def _pinned_with(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        a = _alias(doc)
        a.update(mode="pinned", candidate=None, since=None, percent=0, paused=False)
        a.update(fields)
    return edit


BAD.update({
    "pinned with candidate": _pinned_with(candidate="gpt-5-2026-03-14"),
    "pinned with percent": _pinned_with(percent=5),
    "pinned paused": _pinned_with(paused=True),
    "shadow with percent": lambda d: _alias(d).update(mode="shadow", percent=10),
    "rolled-back paused": lambda d: _alias(d).update(mode="rolled-back", percent=0, paused=True),
})


def test_the_schema_accepts_valid_payloads_of_every_mode() -> None:
    v = _validator()
    for mode, percent in (("pinned", 0), ("shadow", 0), ("canary", 33.33), ("rolled-back", 0)):
        doc = with_route(payload(3), "acme-legal", "primary-reasoning", mode=mode,
                         percent=percent)
        errors = list(v.iter_errors(doc))
        assert not errors, (mode, [e.message for e in errors])
        parse_payload(canonical(doc), hashlib.sha256(canonical(doc)).hexdigest())


@pytest.mark.parametrize("case", sorted(BAD))
def test_schema_and_router_both_reject(case: str) -> None:
    doc = copy.deepcopy(payload(3))
    BAD[case](doc)
    assert not _validator().is_valid(doc), f"the schema accepts: {case}"
    with pytest.raises(MalformedTableError):
        parse_payload(json.dumps(doc).encode(), "0" * 64)


@pytest.mark.parametrize(
    ("case", "edit"),
    [
        ("undeclared stable model", _set([*ALIAS, "stable"], "gpt-9")),
        ("candidate of another kind", _set([*ALIAS, "candidate"], "text-embedding-4-2026-02-01")),
        ("percent off the 0.01 grid", _set([*ALIAS, "percent"], 5.005)),
        ("expires before issued", _set(["expires_at"], "2026-01-01T00:00:00Z")),
        ("impossible date", _set(["issued_at"], "2026-02-30T10:00:00Z")),
        ("NaN percent", _set([*ALIAS, "percent"], float("nan"))),
    ],
)
def test_router_checks_what_a_schema_cannot_say(case: str, edit: Any) -> None:
    doc = copy.deepcopy(payload(3))
    edit(doc)
    with pytest.raises(MalformedTableError):
        parse_payload(json.dumps(doc).encode(), "0" * 64)
