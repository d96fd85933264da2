"""``modelpin schema --out DIR``: JSON Schemas an editor or CI can check files with.

Every file of the valid base fleet validates against its schema, and files of the bad
corpus that break a per-file rule (unknown key, bad enum, wrong type...) do not.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.load.corpus import BASE, NEGATIVE

from modelpin.cli import main
from modelpin.load.document import parse

KINDS = {"rollout-groups", "artifact", "signals", "compatibility", "model-version", "tenant",
         "evidence", "providers", "bets-suite", "bets-case", "evidence-envelope", "evaluators",
         "approvers"}


def _schema_name(rel: str) -> str:
    if rel.startswith("bets/"):
        return "bets-suite" if rel.endswith("suite.yaml") else "bets-case"
    if rel.startswith("policies/"):
        return rel.split("/")[1].split(".")[0]
    if rel == "model_versions/compatibility.yaml":
        return "compatibility"
    if rel.endswith(".dsse.json"):
        return "evidence-envelope"
    return {"model_versions": "model-version", "tenants": "tenant",
            "evidence": "evidence"}[rel.split("/")[0]]


def _as_json(value: Any) -> Any:
    """YAML data as a JSON document would carry it (dates and times as strings)."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _data(path: Path) -> Any:
    if path.suffix == ".jsonl":  # validated line by line: the schema is one case's
        [line] = path.read_text().splitlines()[:1]
        return json.loads(line)
    doc = parse(path.name, path.read_bytes())
    assert doc.data is not None, doc.diagnostics
    return _as_json(doc.data)


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("schemas")
    assert main(["schema", "--out", str(out)]) == 0
    return {p.name.removesuffix(".schema.json"): json.loads(p.read_text())
            for p in out.glob("*.schema.json")}


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_schema_writes_one_valid_json_schema_per_kind(
        schemas: dict[str, dict[str, Any]]) -> None:
    assert set(schemas) == KINDS
    for schema in schemas.values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_file_of_the_valid_fleet_matches_its_schema(
        schemas: dict[str, dict[str, Any]]) -> None:
    files = sorted(p for p in BASE.rglob("*") if p.is_file())
    assert {_schema_name(str(p.relative_to(BASE))) for p in files} == KINDS
    for path in files:
        rel = str(path.relative_to(BASE))
        errors = list(_validator(schemas[_schema_name(rel)]).iter_errors(_data(path)))
        assert errors == [], (rel, [e.message for e in errors])


SCHEMA_VISIBLE = [
    "unknown-key-top-level", "unknown-key-in-alias", "unknown-key-in-rollout",
    "unknown-key-in-group", "missing-required-key", "missing-rollout-since",
    "wrong-type-suite-version", "wrong-type-freeze", "wrong-type-aliases-list",
    "bad-enum-stage", "bad-enum-kind", "bad-enum-failure-policy", "bad-enum-approval",
    "bad-id-pattern", "bad-alias-name", "bad-duration", "bad-duration-number",
    "compat-bad-verdict", "approval-bad-email",
]


@pytest.mark.parametrize("case", SCHEMA_VISIBLE)
def test_a_file_that_breaks_a_per_file_rule_fails_its_schema(
        case: str, schemas: dict[str, dict[str, Any]]) -> None:
    folder = NEGATIVE / case
    [path] = [p for p in folder.rglob("*") if p.is_file() and p.name != "expected.yaml"]
    rel = str(path.relative_to(folder))
    assert not _validator(schemas[_schema_name(rel)]).is_valid(_data(path))


def test_the_committed_editor_schemas_are_what_modelpin_schema_writes(
        tmp_path: Path) -> None:
    """``schemas/`` in the repository (what editors and the README point at) must not lag
    the models: a field added to a model without ``modelpin schema`` would make editors
    flag valid files (or accept invalid ones)."""
    assert main(["schema", "--out", str(tmp_path)]) == 0
    committed = Path(__file__).resolve().parents[2] / "schemas"
    written = {p.name: p.read_bytes() for p in tmp_path.glob("*.schema.json")}
    stale = sorted(name for name, data in written.items()
                   if not (committed / name).is_file() or (committed / name).read_bytes() != data)
    assert stale == [], f"run `modelpin schema` and commit: {stale}"
    assert sorted(p.name for p in committed.glob("*.schema.json")) == sorted(written)
