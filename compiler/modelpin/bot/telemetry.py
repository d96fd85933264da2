"""Telemetry sources and the one validation every source's numbers go through.

A source answers :meth:`TelemetrySource.observe_all` for every rollout in flight at
once with a :class:`TelemetryBatch`: the :class:`RolloutTelemetry` of each, and the
problems found, per rollout and in general. One bad record never stops the others: it
is refused (its cohort has no data, so its signals are inconclusive) and reported.

Sources: the JSON file here (format in ``docs/telemetry.md``; its JSON Schema is
``telemetry.schema.json`` next to this module, generated from :class:`TelemetryFile`)
and Prometheus (:mod:`modelpin.bot.prometheus`). Both build observations with
:func:`rate_observation` and :func:`mean_observation`: impossible data (a part over its
whole, a 0..1 score of 5.0, a negative count) is refused with the same message from
either source, never clamped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, ValidationError, model_validator

from modelpin.model.base import Duration, Identifier, StrictModel, format_duration
from modelpin.model.signals import SIGNAL_NAMES, SignalName

from .drift import DriftBatch
from .observations import (
    Cohort,
    CohortTelemetry,
    MeanObservation,
    Observation,
    RateObservation,
    RolloutTelemetry,
    SampleFailure,
)
from .safejson import UnsafeJson, parse_json

SCHEMA_PATH = Path(__file__).with_name("telemetry.schema.json")
COHORTS: tuple[Cohort, ...] = ("stable", "canary")
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Default cap on a telemetry file: 10,000 rollouts take about 6 MB."""
RolloutKey = tuple[str, str]


class TelemetryError(Exception):
    """Telemetry could not be read at all: a bad file, an unreachable or failing server."""


class InvalidObservation(ValueError):
    """A number that cannot be true (a part over its whole, a score outside 0..1)."""


@dataclass(frozen=True)
class TelemetryBatch:
    """What a source observed for the rollouts asked about, and what it refused.

    ``rollouts`` has an entry for every key asked (empty cohorts when there is no data);
    ``problems`` the refused records per rollout; ``general`` the problems that concern
    no single rollout (a failing query, a record without a readable key).
    """

    rollouts: Mapping[RolloutKey, RolloutTelemetry]
    problems: Mapping[RolloutKey, tuple[str, ...]] = field(default_factory=dict)
    general: tuple[str, ...] = ()


class TelemetrySource(Protocol):
    def observe_all(self, keys: Sequence[RolloutKey]) -> TelemetryBatch:
        """Both cohorts of every (tenant, alias) in ``keys``; signals without data left out."""
        ...


# --- the one validation --------------------------------------------------------------

# signal -> (events counter, trials counter) of the file format
RATE_FIELDS: dict[SignalName, tuple[str, str]] = {
    "tool_call_failure_rate": ("tool_call_failures", "tool_calls"),
    "task_completion_rate": ("tasks_completed", "tasks"),
    "coercion_rate": ("coercions", "requests"),
    "downstream_error_rate": ("downstream_errors", "requests"),
    "shadow_drift_rate": ("shadow_drifted", "shadow_comparisons"),
}
MEAN_BOUNDS: dict[SignalName, tuple[float, float]] = {"semantic_similarity": (0.0, 1.0)}
assert set(RATE_FIELDS) | set(MEAN_BOUNDS) == set(SIGNAL_NAMES)

# drift signals of a pinned version (``modelpin.bot.drift``) -> (events, trials) fields
DRIFT_RATE_FIELDS: dict[str, tuple[str, str]] = {
    "tool_call_failure_rate": ("tool_call_failures", "tool_calls"),
    "refusal_rate": ("refusals", "requests"),
    "format_failure_rate": ("format_failures", "format_checks"),
}


def _count(name: str, value: float) -> int:
    """A counter: finite, not negative; a counter read as a float is rounded, not clamped."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise InvalidObservation(f"`{name}` is {value!r}, not a finite count")
    if value < 0:
        raise InvalidObservation(f"`{name}` is negative ({value:g})")
    return int(value) if isinstance(value, int) else round(value)


def rate_observation(signal: SignalName, events: float, total: float) -> RateObservation:
    """Events out of trials, refused when impossible (same message from every source)."""
    part, whole = RATE_FIELDS[signal]
    e, t = _count(part, events), _count(whole, total)
    if e > t:
        raise InvalidObservation(f"`{part}` ({e}) exceeds `{whole}` ({t})")
    return RateObservation(events=e, total=t)


def drift_rate_observation(signal: str, events: float, total: float,
                           names: tuple[str, str] | None = None) -> RateObservation:
    """A drift rate (:data:`DRIFT_RATE_FIELDS`), refused when impossible like any rate;
    ``names`` of the two counts in messages (default: the JSON fields)."""
    part, whole = names or DRIFT_RATE_FIELDS[signal]
    e, t = _count(part, events), _count(whole, total)
    if e > t:
        raise InvalidObservation(f"`{part}` ({e}) exceeds `{whole}` ({t})")
    return RateObservation(events=e, total=t)


def length_observation(total: float, count: float, squares: float) -> MeanObservation:
    """Mean response length (tokens) and its sample std from the sums a router exports
    (sum, count, sum of squares); refused when the sums cannot come from any answers
    (negative, not finite, or a sum of squares below ``sum**2 / count``)."""
    n = _count("response_tokens.count", count)
    for name, value in (("sum", total), ("squares", squares)):
        if not math.isfinite(value) or value < 0:
            raise InvalidObservation(f"`response_tokens.{name}` is {value!r}, not a finite "
                                     "number >= 0")
    if n == 0:
        if total or squares:
            raise InvalidObservation(f"`response_tokens` has a sum ({total:g}) but no count")
        return MeanObservation(mean=0.0, count=0)
    mean = total / n
    variance = squares / n - mean * mean
    if variance < -1e-9 * max(1.0, squares / n):  # Cauchy-Schwarz: squares >= sum^2 / n
        raise InvalidObservation(
            f"`response_tokens` sum of squares {squares:g} is below sum^2/count "
            f"({total * total / n:g}): not the sums of any answers")
    std = math.sqrt(max(variance, 0.0) * n / (n - 1)) if n > 1 else None
    return MeanObservation(mean=mean, count=n, std=std)


def mean_observation(
    signal: SignalName, mean: float, count: float, std: float | None = None
) -> MeanObservation:
    """A sample mean within the signal's bounds, a count and an optional spread."""
    n = _count("count", count)
    low, high = MEAN_BOUNDS[signal]
    if not math.isfinite(mean) or not low <= mean <= high:
        raise InvalidObservation(
            f"`{signal}` mean {mean!r} is outside {low:g}..{high:g}"
        )
    if std is not None and (not math.isfinite(std) or std < 0 or std > (high - low)):
        raise InvalidObservation(
            f"`{signal}` std {std!r} is not a spread of values in {low:g}..{high:g}"
        )
    return MeanObservation(mean=mean, count=n, std=std)


# --- the JSON file -------------------------------------------------------------------

Count = Annotated[int, Field(ge=0)]
Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SimilarityRecord(StrictModel):
    """Either the raw ``samples`` (scores in 0..1) or their ``mean``, ``count``, ``std``."""

    samples: list[Score] | None = None
    mean: Score | None = None
    count: Count | None = None
    std: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SimilarityRecord:
        summary = (self.mean, self.count)
        if self.samples is not None and any(v is not None for v in (*summary, self.std)):
            raise ValueError("give either `samples` or `mean`/`count`/`std`, not both")
        if self.samples is None and None in summary:
            raise ValueError("give `samples`, or both `mean` and `count`")
        self.observation()
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
            return mean_observation("semantic_similarity", mean, n, std)
        assert self.mean is not None and self.count is not None
        return mean_observation("semantic_similarity", self.mean, self.count, self.std)


class LengthRecord(StrictModel):
    """Response length in tokens: ``mean``, ``count`` and optional ``std``."""

    mean: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    count: Count
    std: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None

    def observation(self) -> MeanObservation:
        return MeanObservation(mean=self.mean, count=self.count, std=self.std)


class FailureRecord(StrictModel):
    kind: str = Field(max_length=200)
    detail: str = Field(max_length=2000)
    ref: str | None = Field(default=None, max_length=200)


class DriftRecord(StrictModel):
    """Differences of the shadow's tool calls from stable's, by tool and kind."""

    tool: str = Field(max_length=200)
    kind: Literal[
        "tool-changed", "call-missing", "call-extra", "field-missing", "field-extra",
        "type-changed",
    ]
    count: Count


class CohortRecord(StrictModel):
    """Counters of one cohort of one tenant's alias over ``window``; absent = no data."""

    tenant: Identifier
    alias: str
    cohort: Literal["stable", "canary", "shadow", "baseline"]
    """``baseline``: the tenant's own reference window on its pinned version (drift).
    ``shadow``: the shadow's answers compared with stable's (``shadow_comparisons``,
    ``shadow_drifted``, ``shadow_drift``)."""
    window: Duration
    requests: Count | None = None
    tool_calls: Count | None = None
    tool_call_failures: Count | None = None
    tasks: Count | None = None
    tasks_completed: Count | None = None
    semantic_similarity: SimilarityRecord | None = None
    coercions: Count | None = None
    downstream_errors: Count | None = None
    refusals: Count | None = None
    format_checks: Count | None = None
    format_failures: Count | None = None
    response_tokens: LengthRecord | None = None
    shadow_comparisons: Count | None = None
    shadow_drifted: Count | None = None
    shadow_drift: list[DriftRecord] = Field(default_factory=list, max_length=200)
    sample_failures: list[FailureRecord] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _parts_within_wholes(self) -> CohortRecord:
        for name, (part, whole) in RATE_FIELDS.items():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is None:
                raise ValueError(f"`{part}` needs `{whole}`")
            if p is not None and w is not None:
                rate_observation(name, p, w)
        for part, whole in DRIFT_RATE_FIELDS.values():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is None:
                raise ValueError(f"`{part}` needs `{whole}`")
            if p is not None and w is not None and p > w:
                raise ValueError(f"`{part}` ({p}) exceeds `{whole}` ({w})")
        return self

    def drift_observations(self) -> dict[str, Observation]:
        """The drift signals this record has data for (``modelpin.bot.drift``)."""
        out: dict[str, Observation] = {}
        for name, (part, whole) in DRIFT_RATE_FIELDS.items():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is not None:
                out[name] = RateObservation(events=p, total=w)
        if self.response_tokens is not None:
            out["response_length"] = self.response_tokens.observation()
        return out

    def telemetry(self) -> CohortTelemetry:
        signals: dict[SignalName, Observation] = {}
        for name, (part, whole) in RATE_FIELDS.items():
            p, w = getattr(self, part), getattr(self, whole)
            if p is not None and w is not None:
                signals[name] = rate_observation(name, p, w)
        if self.semantic_similarity is not None:
            signals["semantic_similarity"] = self.semantic_similarity.observation()
        failures = tuple(SampleFailure(f.kind, f.detail, f.ref) for f in self.sample_failures)
        failures += drift_failures((d.tool, d.kind, d.count) for d in self.shadow_drift)
        return CohortTelemetry(signals=signals, failures=failures)


def drift_failures(rows: Iterable[tuple[str, str, float]]) -> tuple[SampleFailure, ...]:
    """Shadow drift per tool and kind, most frequent first, for the incident report."""
    kept = sorted(((t, k, round(n)) for t, k, n in rows if n > 0),
                  key=lambda r: (-r[2], r[0], r[1]))
    return tuple(SampleFailure(f"shadow drift: {k}", f"tool `{t}`: {n}") for t, k, n in kept)


class TelemetryFile(StrictModel):
    """The telemetry JSON file: one record per tenant, alias and cohort."""

    version: Literal[1]
    generated_at: datetime | None = None
    records: list[CohortRecord]


def telemetry_json_schema() -> dict[str, Any]:
    schema = TelemetryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://modelpin.dev/schemas/telemetry.schema.json"
    return schema


def _brief(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = exc.error_count() - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class JsonFileTelemetry:
    """Telemetry from a JSON file (see ``docs/telemetry.md``), each record validated alone.

    A record that does not validate is refused with its index and reason; if its key is
    readable, its rollout's cohort has no data and the rollout's problems say why. Two
    records for one key are both refused.
    """

    def __init__(
        self,
        records: Mapping[tuple[str, str, str], CohortRecord],
        *,
        source: str = "json",
        problems: Mapping[RolloutKey, tuple[str, ...]] | None = None,
        general: Sequence[str] = (),
    ) -> None:
        self._source = source
        self._records = dict(records)
        self._problems = dict(problems or {})
        self._general = tuple(general)

    @classmethod
    def from_data(cls, data: TelemetryFile, source: str = "json") -> JsonFileTelemetry:
        return cls({(r.tenant, r.alias, r.cohort): r for r in data.records}, source=source)

    @classmethod
    def from_path(cls, path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> JsonFileTelemetry:
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise TelemetryError(
                    f"{path}: {size} bytes is over the {max_bytes}-byte cap on a telemetry "
                    "file (raise it with --max-telemetry-mb, or split the fleet by --tenant)"
                )
            with path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise TelemetryError(f"{path}: cannot read telemetry: {exc.strerror}") from None
        if len(data) > max_bytes:
            raise TelemetryError(f"{path}: grew past the {max_bytes}-byte cap while read")
        return cls.from_raw(parse_json_bytes(data, str(path)), source=f"file {path.name}",
                            where=str(path))


    @classmethod
    def from_raw(cls, raw: Any, *, source: str, where: str) -> JsonFileTelemetry:
        if not isinstance(raw, dict):
            raise TelemetryError(f"{where}: a telemetry file is a JSON object")
        if raw.get("version") != 1:
            raise TelemetryError(f"{where}: `version` must be 1, got {raw.get('version')!r}")
        extra = sorted(set(raw) - {"version", "generated_at", "records"})
        if extra:
            raise TelemetryError(f"{where}: unknown top-level key(s): {', '.join(extra)}")
        items = raw.get("records")
        if not isinstance(items, list):
            raise TelemetryError(f"{where}: `records` must be a list")
        records: dict[tuple[str, str, str], CohortRecord] = {}
        problems: dict[RolloutKey, list[str]] = {}
        general: list[str] = []
        duplicates: set[tuple[str, str, str]] = set()
        for index, item in enumerate(items):
            key = _key_of(item)
            try:
                record = CohortRecord.model_validate(item)
            except ValidationError as exc:
                message = f"{where}: records[{index}] refused: {_brief(exc)}"
                if key is None:
                    general.append(message)
                else:
                    problems.setdefault(key[:2], []).append(message)
                    duplicates.add(key)  # its cohort has no trustworthy record
                continue
            k: tuple[str, str, str] = (record.tenant, record.alias, record.cohort)
            if k in records or k in duplicates:
                problems.setdefault(k[:2], []).append(
                    f"{where}: records[{index}] refused: a second record for "
                    f"{k[0]}/{k[1]} cohort {k[2]}"
                )
                duplicates.add(k)
                continue
            records[k] = record
        for k in duplicates:
            records.pop(k, None)
        return cls(
            records,
            source=source,
            problems={k: tuple(v) for k, v in problems.items()},
            general=general,
        )

    def observe(self, tenant: str, alias: str) -> RolloutTelemetry:
        stable = self._records.get((tenant, alias, "stable"))
        canary = self._records.get((tenant, alias, "canary"))
        shadow = self._records.get((tenant, alias, "shadow"))
        windows = {format_duration(r.window) for r in (stable, canary, shadow) if r is not None}
        return RolloutTelemetry(
            tenant=tenant,
            alias=alias,
            window=", ".join(sorted(windows)) or "none",
            source=self._source,
            stable=stable.telemetry() if stable else CohortTelemetry({}),
            canary=canary.telemetry() if canary else CohortTelemetry({}),
            shadow=shadow.telemetry() if shadow else CohortTelemetry({}),
        )

    def drift(self, tenant: str, alias: str
              ) -> tuple[dict[str, Observation], dict[str, Observation]] | None:
        """(baseline, current) drift observations of a pinned alias, or None without both.

        ``current`` is the ``stable`` cohort: the pinned version serving now.
        """
        baseline = self._records.get((tenant, alias, "baseline"))
        current = self._records.get((tenant, alias, "stable"))
        if baseline is None or current is None:
            return None
        return baseline.drift_observations(), current.drift_observations()

    def drift_all(self, keys: Sequence[RolloutKey]) -> DriftBatch:
        """:meth:`drift` of every key that has both windows; the refused records."""
        windows = {k: w for k in keys if (w := self.drift(*k)) is not None}
        wanted = set(keys)
        return DriftBatch(windows, {k: v for k, v in self._problems.items() if k in wanted},
                          self._general)

    def observe_all(self, keys: Sequence[RolloutKey]) -> TelemetryBatch:
        wanted = set(keys)
        return TelemetryBatch(
            rollouts={k: self.observe(*k) for k in keys},
            problems={k: v for k, v in self._problems.items() if k in wanted},
            general=self._general,
        )


def _key_of(item: Any) -> tuple[str, str, str] | None:
    if not isinstance(item, dict):
        return None
    key = (item.get("tenant"), item.get("alias"), item.get("cohort"))
    if all(isinstance(k, str) for k in key) and key[2] in (*COHORTS, "shadow", "baseline"):
        return key  # type: ignore[return-value]
    return None


def parse_json_bytes(data: bytes, where: str) -> Any:
    """:func:`~.safejson.parse_json`, its refusals as :class:`TelemetryError`."""
    try:
        return parse_json(data, where)
    except UnsafeJson as exc:
        raise TelemetryError(str(exc)) from None
