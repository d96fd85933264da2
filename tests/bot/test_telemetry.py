"""The JSON telemetry file: schema kept in sync, validation with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.bot.telemetry import (
    SCHEMA_PATH,
    JsonFileTelemetry,
    TelemetryError,
    telemetry_json_schema,
)

from .conftest import TELEMETRY


def test_shipped_schema_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == telemetry_json_schema()


@pytest.mark.parametrize("case", sorted(p.name for p in TELEMETRY.glob("*.json")))
def test_recorded_cases_satisfy_the_schema(case: str) -> None:
    jsonschema.validate(json.loads((TELEMETRY / case).read_text()), telemetry_json_schema())


def _write(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": 1, "records": records}))
    return path


BASE = {"tenant": "acme-legal", "alias": "a", "cohort": "canary", "window": "1h"}


def test_counters_become_observations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [BASE | {"requests": 100, "coercions": 3, "semantic_similarity": {"samples": [0.8, 1.0]}}],
    )
    t = JsonFileTelemetry.from_path(path).observe("acme-legal", "a")
    assert t.canary.signals["coercion_rate"] == RateObservation(3, 100)
    sim = t.canary.signals["semantic_similarity"]
    assert isinstance(sim, MeanObservation)
    assert (sim.mean, sim.count) == (pytest.approx(0.9), 2)
    assert sim.std == pytest.approx(0.1414, rel=1e-3)
    assert "tool_call_failure_rate" not in t.canary.signals  # no data, not zero
    assert dict(t.stable.signals) == {}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (BASE | {"tool_calls": 5, "tool_call_failures": 6}, "exceeds `tool_calls`"),
        (BASE | {"coercions": 1}, "`coercions` needs `requests`"),
        (BASE | {"bogus": 1}, "Extra inputs are not permitted"),
        (BASE | {"semantic_similarity": {"mean": 0.9}}, "both `mean` and `count`"),
    ],
)
def test_invalid_records_are_clear_errors(tmp_path: Path, record: dict, message: str) -> None:
    with pytest.raises(TelemetryError, match=message):
        JsonFileTelemetry.from_path(_write(tmp_path, [record]))


def test_duplicate_records_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match="two records"):
        JsonFileTelemetry.from_path(_write(tmp_path, [BASE, BASE]))
