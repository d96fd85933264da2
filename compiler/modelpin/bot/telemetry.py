"""Telemetry sources: a JSON file (the embedded default) and a Prometheus server.

Both answer :meth:`TelemetrySource.observe` with a :class:`RolloutTelemetry` of the
stable and canary cohorts of one tenant's alias. The file format is documented in
``docs/telemetry.md``; its JSON Schema is ``telemetry.schema.json`` next to this module
(generated from :class:`TelemetryFile`, a test keeps the two equal).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import httpx
from pydantic import Field, ValidationError, model_validator

from modelpin.model.base import Duration, Identifier, StrictModel, format_duration
from modelpin.model.signals import (
    SIGNAL_NAMES,
    MeanQueries,
    RateQueries,
    SignalName,
    SignalsPolicy,
    render_query,
)

from .observations import (
    Cohort,
    CohortTelemetry,
    MeanObservation,
    Observation,
    RateObservation,
    RolloutTelemetry,
    SampleFailure,
)

SCHEMA_PATH = Path(__file__).with_name("telemetry.schema.json")
COHORTS: tuple[Cohort, ...] = ("stable", "canary")


class TelemetryError(Exception):
    """Telemetry could not be read: a bad file, an unreachable or failing server."""


class TelemetrySource(Protocol):
    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        """Both cohorts of ``tenant``/``alias``; signals without data are left out."""
        ...


# --- the JSON file -------------------------------------------------------------------

Count = Annotated[int, Field(ge=0)]


class SimilarityRecord(StrictModel):
    """Either the raw ``samples`` (scores in 0..1) or their ``mean``, ``count``, ``std``."""

    samples: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    mean: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    count: Count | None = None
    std: Annotated[float, Field(ge=0.0)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SimilarityRecord:
        summary = (self.mean, self.count)
        if self.samples is not None and any(v is not None for v in (*summary, self.std)):
            raise ValueError("give either `samples` or `mean`/`count`/`std`, not both")
        if self.samples is None and None in summary:
            raise ValueError("give `samples`, or both `mean` and `count`")
        return self

    def observation(self) -> MeanObservation:
        if self.samples is not None:
            n = len(self.samples)
            mean = math.fsum(self.samples) / n if n else 0.0
            std = (
                math.sqrt(math.fsum((x - mean) ** 2 for x in self.samples) / (n - 1))
                if n > 1
                else None
            )
            return MeanObservation(mean=mean, count=n, std=std)
        assert self.mean is not None and self.count is not None
        return MeanObservation(mean=self.mean, count=self.count, std=self.std)


class FailureRecord(StrictModel):
    kind: str
    detail: str
    ref: str | None = None


class CohortRecord(StrictModel):
    """Counters of one cohort of one tenant's alias over ``window``; absent = no data."""

    tenant: Identifier
    alias: str
    cohort: Literal["stable", "canary"]
    window: Duration
    requests: Count | None = None
    tool_calls: Count | None = None
    tool_call_failures: Count | None = None
    tasks: Count | None = None
    tasks_completed: Count | None = None
    semantic_similarity: SimilarityRecord | None = None
    coercions: Count | None = None
    downstream_errors: Count | None = None
    sample_failures: list[FailureRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parts_within_wholes(self) -> CohortRecord:
        for part, whole in _RATE_FIELDS.values():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is None:
                raise ValueError(f"`{part}` needs `{whole}`")
            if p is not None and w is not None and p > w:
                raise ValueError(f"`{part}` ({p}) exceeds `{whole}` ({w})")
        return self

    def telemetry(self) -> CohortTelemetry:
        signals: dict[SignalName, Observation] = {}
        for name, (part, whole) in _RATE_FIELDS.items():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is not None:
                signals[name] = RateObservation(events=p, total=w)
        if self.semantic_similarity is not None:
            signals["semantic_similarity"] = self.semantic_similarity.observation()
        failures = tuple(SampleFailure(f.kind, f.detail, f.ref) for f in self.sample_failures)
        return CohortTelemetry(signals=signals, failures=failures)


# signal -> (events counter, trials counter) of the file format
_RATE_FIELDS: dict[SignalName, tuple[str, str]] = {
    "tool_call_failure_rate": ("tool_call_failures", "tool_calls"),
    "task_completion_rate": ("tasks_completed", "tasks"),
    "coercion_rate": ("coercions", "requests"),
    "downstream_error_rate": ("downstream_errors", "requests"),
}
assert set(_RATE_FIELDS) | {"semantic_similarity"} == set(SIGNAL_NAMES)


class TelemetryFile(StrictModel):
    """The telemetry JSON file: one record per tenant, alias and cohort."""

    version: Literal[1]
    generated_at: datetime | None = None
    records: list[CohortRecord]

    @model_validator(mode="after")
    def _unique(self) -> TelemetryFile:
        seen: set[tuple[str, str, str]] = set()
        for r in self.records:
            key = (r.tenant, r.alias, r.cohort)
            if key in seen:
                raise ValueError(f"two records for {r.tenant}/{r.alias} cohort {r.cohort}")
            seen.add(key)
        return self


def telemetry_json_schema() -> dict[str, Any]:
    schema = TelemetryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://modelpin.dev/schemas/telemetry.schema.json"
    return schema


class JsonFileTelemetry:
    """Telemetry from a JSON file (see ``docs/telemetry.md``), validated once on load."""

    def __init__(self, data: TelemetryFile, source: str = "json") -> None:
        self._source = source
        self._records: dict[tuple[str, str, str], CohortRecord] = {
            (r.tenant, r.alias, r.cohort): r for r in data.records
        }

    @classmethod
    def from_path(cls, path: Path) -> JsonFileTelemetry:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TelemetryError(f"{path}: cannot read telemetry: {exc}") from exc
        try:
            data = TelemetryFile.model_validate(raw)
        except ValidationError as exc:
            raise TelemetryError(f"{path}: invalid telemetry file:\n{exc}") from exc
        return cls(data, source=f"file {path.name}")

    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        stable = self._records.get((tenant, alias, "stable"))
        canary = self._records.get((tenant, alias, "canary"))
        windows = {format_duration(r.window) for r in (stable, canary) if r is not None}
        return RolloutTelemetry(
            tenant=tenant,
            alias=alias,
            window=", ".join(sorted(windows)) or "none",
            source=self._source,
            stable=stable.telemetry() if stable else CohortTelemetry({}),
            canary=canary.telemetry() if canary else CohortTelemetry({}),
        )


# --- Prometheus ----------------------------------------------------------------------


class PrometheusTelemetry:
    """Telemetry from a Prometheus server's HTTP API (``GET /api/v1/query``).

    ``http`` carries the base URL (and auth, if any); each signal's queries come from
    the policy. ``at`` pins the evaluation time (unix seconds) for reproducible runs.
    An empty result or NaN is "no data"; more than one series is an error, because the
    bot would otherwise guess how to add them up.
    """

    def __init__(
        self,
        http: httpx.Client,
        policy: SignalsPolicy,
        *,
        at: float | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._policy = policy
        self._at = at
        self._timeout = timeout
        self._window = format_duration(policy.window)

    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        cohorts: dict[Cohort, CohortTelemetry] = {}
        for cohort in COHORTS:
            values = {"tenant": tenant, "alias": alias, "cohort": cohort, "window": self._window}
            signals: dict[SignalName, Observation] = {}
            for name, signal in self._policy.signals.items():
                obs = self._observe_signal(name, signal.prometheus, values)
                if obs is not None:
                    signals[name] = obs
            cohorts[cohort] = CohortTelemetry(signals=signals)
        return RolloutTelemetry(
            tenant=tenant,
            alias=alias,
            window=self._window,
            source=f"prometheus {self._http.base_url}",
            stable=cohorts["stable"],
            canary=cohorts["canary"],
        )

    def _observe_signal(
        self,
        name: SignalName,
        queries: RateQueries | MeanQueries | None,
        values: Mapping[str, str],
    ) -> Observation | None:
        if queries is None:
            raise TelemetryError(
                f"signals.{name} has no `prometheus` queries in the signals policy"
            )
        if isinstance(queries, RateQueries):
            events = self.query_scalar(render_query(queries.events, **values))
            total = self.query_scalar(render_query(queries.total, **values))
            if events is None or total is None:
                return None
            e, t = round(events), round(total)
            return RateObservation(events=min(e, t), total=t)
        count = self.query_scalar(render_query(queries.count, **values))
        mean = self.query_scalar(render_query(queries.mean, **values))
        if count is None or mean is None:
            return None
        std = self.query_scalar(render_query(queries.std, **values)) if queries.std else None
        return MeanObservation(mean=mean, count=round(count), std=std)

    def query_scalar(self, promql: str) -> float | None:
        """Evaluate an instant query that must yield at most one sample."""
        params: dict[str, str] = {"query": promql}
        if self._at is not None:
            params["time"] = f"{self._at:.3f}"
        try:
            response = self._http.get("/api/v1/query", params=params, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise TelemetryError(
                f"prometheus at {self._http.base_url} timed out after {self._timeout}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise TelemetryError(f"prometheus at {self._http.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise TelemetryError(
                f"prometheus query failed (HTTP {response.status_code}): {detail}\n"
                f"  query: {promql}"
            )
        return _single_value(body.get("data", {}), promql)


def _single_value(data: Mapping[str, Any], promql: str) -> float | None:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        raw: Any = result[1] if isinstance(result, list) else None
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise TelemetryError(
                f"prometheus query returned {len(result)} series, expected one "
                f"(aggregate with sum()):\n  query: {promql}"
            )
        raw = result[0].get("value", [None, None])[1]
    else:
        raise TelemetryError(f"prometheus query returned a {kind}, expected a vector: {promql}")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise TelemetryError(f"prometheus returned a non-number {raw!r}: {promql}") from exc
    return None if math.isnan(value) or math.isinf(value) else value
