"""The JSON telemetry file: schema kept in sync, validation with clear errors."""

from __future__ import annotations

import json
import re
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


OTHER = {"tenant": "beta-support", "alias": "a", "cohort": "canary", "window": "1h",
         "requests": 100, "coercions": 1}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (BASE | {"tool_calls": 5, "tool_call_failures": 6}, "exceeds `tool_calls`"),
        (BASE | {"tasks": 10, "tasks_completed": 20}, r"`tasks_completed` \(20\) exceeds"),
        (BASE | {"coercions": 1}, "`coercions` needs `requests`"),
        (BASE | {"bogus": 1}, "Extra inputs are not permitted"),
        (BASE | {"semantic_similarity": {"mean": 0.9}}, "both `mean` and `count`"),
        (BASE | {"semantic_similarity": {"mean": 5.0, "count": 9}}, "less than or equal to 1"),
        (BASE | {"semantic_similarity": {"mean": 0.5, "count": 9, "std": 3}},
         "not a spread of values in 0..1"),
        (BASE | {"requests": -1}, "greater than or equal to 0"),
    ],
)
def test_invalid_records_are_refused_alone(tmp_path: Path, record: dict, message: str) -> None:
    source = JsonFileTelemetry.from_path(_write(tmp_path, [record, OTHER]))
    batch = source.observe_all([("acme-legal", "a"), ("beta-support", "a")])
    (problem,) = batch.problems[("acme-legal", "a")]
    assert re.search(r"t\.json: records\[0\] refused: .*" + message, problem), problem
    assert dict(batch.rollouts[("acme-legal", "a")].canary.signals) == {}  # refused, no data
    assert ("beta-support", "a") not in batch.problems
    assert batch.rollouts[("beta-support", "a")].canary.signals["coercion_rate"] == (
        RateObservation(1, 100)
    )


def test_record_without_a_key_is_a_general_problem(tmp_path: Path) -> None:
    batch = JsonFileTelemetry.from_path(_write(tmp_path, [{"tenant": 7}, OTHER])).observe_all(
        [("beta-support", "a")]
    )
    assert len(batch.general) == 1 and "records[0] refused" in batch.general[0]
    assert batch.rollouts[("beta-support", "a")].canary.signals


def test_duplicate_records_are_both_refused(tmp_path: Path) -> None:
    batch = JsonFileTelemetry.from_path(_write(tmp_path, [BASE, BASE, OTHER])).observe_all(
        [("acme-legal", "a"), ("beta-support", "a")]
    )
    (problem,) = batch.problems[("acme-legal", "a")]
    assert "a second record for acme-legal/a cohort canary" in problem
    assert ("beta-support", "a") not in batch.problems


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"version": 1, "records": [\xff]}', r"not UTF-8 \(byte 27\)"),
        (b'{"version": 1, "records": [{"tenant": "x", "requests": ' + b"9" * 5000 + b"}]}",
         "5000-digit number is out of range"),
        (b'{"version": 1, "records": [{"requests": 1e400}]}', "number 1e400 is out of range"),
        (b'{"version": 1, "records": [{"requests": NaN}]}', "NaN is not a number JSON allows"),
        (b'{"version": 1, "records": ' + b"[" * 100000 + b"]" * 100000 + b"}",
         "nested too deeply"),
        (b'{"version": 1, "records": ' + b"[" * 40 + b"]" * 40 + b"}",
         "nested deeper than 32 levels"),
        (b'{"version": 1, "records": [}', r"t\.json:1:28: invalid JSON"),
        (b'[1, 2]', "a telemetry file is a JSON object"),
        (b'{"version": 2, "records": []}', "`version` must be 1"),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(content)
    with pytest.raises(TelemetryError, match=message):
        JsonFileTelemetry.from_path(path)


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    with path.open("wb") as fh:  # sparse: 200 MB on paper, nothing on disk
        fh.truncate(200 * 1024 * 1024)
    with pytest.raises(TelemetryError, match="over the 16777216-byte cap"):
        JsonFileTelemetry.from_path(path)
