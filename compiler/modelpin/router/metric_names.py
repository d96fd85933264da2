"""The one registry of the telemetry metric names and labels.

The router's exporter (``telemetry.py``) writes exactly these series and the default
PromQL of ``policies/signals.yaml`` reads exactly these series; a test renders
``DEFAULT_QUERIES`` and compares them with the shipped file, and the end-to-end test runs
them against a real Prometheus scraping real routers. The compiler (signals policy, the
bot, the guard) may import this module; this module imports nothing from the compiler.

Every request-outcome series carries the labels ``tenant``, ``alias``, ``cohort`` and
``router`` (the name of the ``Router`` in its process; the queries sum it away).
``cohort`` is ``stable``, ``canary``, ``shadow`` (a shadow model's comparison-only
calls, never mixed into stable or canary) or ``unknown`` (a tool call checked without
saying which cohort made it: never counted for either side of a rollout).

Counters are exported the OpenMetrics way: the family ``modelpin_requests`` has the
sample ``modelpin_requests_total``. ``MetricName.sample`` is the name PromQL reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["counter", "summary", "gauge"]

TENANT: Final = "tenant"
ALIAS: Final = "alias"
COHORT: Final = "cohort"
ROUTER: Final = "router"
TOOL: Final = "tool"
KIND: Final = "kind"
COERCION: Final = "coercion"

OUTCOME_LABELS: Final = (TENANT, ALIAS, COHORT, ROUTER)
COHORTS: Final = ("stable", "canary", "shadow", "unknown")


@dataclass(frozen=True, slots=True)
class MetricName:
    family: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = OUTCOME_LABELS

    @property
    def sample(self) -> str:
        """The sample name PromQL reads (``_total`` for counters; summaries have
        ``_sum`` and ``_count``)."""
        return self.family + "_total" if self.kind == "counter" else self.family


def _c(family: str, help_text: str, labels: tuple[str, ...] = OUTCOME_LABELS) -> MetricName:
    return MetricName(family, "counter", help_text, labels)


REQUESTS = _c("modelpin_requests", "Requests served, by tenant, alias and cohort")
TOOL_CALLS = _c("modelpin_tool_calls", "Tool calls checked against the tenant's contract")
TOOL_CALL_FAILURES = _c(
    "modelpin_tool_call_failures",
    "Tool calls that failed: invalid arguments (after allowed coercions) or a failed "
    "execution reported by the gateway",
)
TASKS = _c("modelpin_tasks", "Agent tasks whose outcome the gateway reported")
TASKS_COMPLETED = _c("modelpin_tasks_completed", "Agent tasks reported completed")
COERCIONS = _c(
    "modelpin_coercions",
    "Tool calls the router had to coerce into shape (one per call, whatever the number "
    "of coercions applied to it)",
)
COERCIONS_APPLIED = _c(
    "modelpin_coercions_applied",
    "Coercions applied, by coercion",
    (*OUTCOME_LABELS, COERCION),
)
DOWNSTREAM_ERRORS = _c(
    "modelpin_downstream_errors", "Errors of systems called on the model's behalf"
)
SEMANTIC_SIMILARITY = MetricName(
    "modelpin_semantic_similarity",
    "summary",
    "Judge similarity (0..1) of an answer to the stable answer",
)
SEMANTIC_SIMILARITY_SQUARES = _c(
    "modelpin_semantic_similarity_squares",
    "Sum of squared judge similarities (for the standard deviation)",
)
REQUEST_DURATION = MetricName(
    "modelpin_request_duration_seconds",
    "summary",
    "Latency of the model call the gateway reported, in seconds",
)
REFUSAL_CHECKS = _c(
    "modelpin_refusal_checks",
    "Answers the gateway checked for a refusal (``refused`` reported, True or False)",
)
REFUSALS = _c(
    "modelpin_refusals",
    "Answers that were refusals (the provider's refusal field, or a content filter)",
)
FORMAT_CHECKS = _c(
    "modelpin_format_checks",
    "Answers checked against the format the request asked for (``format_ok`` reported)",
)
FORMAT_FAILURES = _c(
    "modelpin_format_failures",
    "Answers that failed the format the request asked for (not JSON, or not valid "
    "against the requested JSON schema)",
)
RESPONSE_TOKENS = MetricName(
    "modelpin_response_tokens",
    "summary",
    "Length of the answer in tokens (the provider's completion/output tokens)",
)
RESPONSE_TOKENS_SQUARES = _c(
    "modelpin_response_tokens_squares",
    "Sum of squared answer lengths in tokens (for the standard deviation)",
)
SHADOW_COMPARISONS = _c(
    "modelpin_shadow_comparisons",
    "Shadow answers compared with the stable answer",
    (TENANT, ALIAS, ROUTER),
)
SHADOW_DRIFTED = _c(
    "modelpin_shadow_drifted",
    "Shadow comparisons with at least one difference",
    (TENANT, ALIAS, ROUTER),
)
SHADOW_DRIFT = _c(
    "modelpin_shadow_drift",
    "Differences between a shadow answer's tool calls and the stable answer's, by tool "
    "and kind (tool-changed, call-missing, call-extra, field-missing, field-extra, "
    "type-changed)",
    (TENANT, ALIAS, ROUTER, TOOL, KIND),
)
TRIPS_APPLIED = MetricName(
    "modelpin_router_trips_applied",
    "gauge",
    "Routes this router currently treats as rolled back because of a guard trip",
    (ROUTER,),
)
TRIP_POLL_ERRORS = _c(
    "modelpin_router_trip_poll_errors",
    "Failed reads of the trip store (the last known trips stay applied)",
    (ROUTER,),
)

#: Every request-outcome family, in export order.
OUTCOME_METRICS: Final = (
    REQUESTS,
    TOOL_CALLS,
    TOOL_CALL_FAILURES,
    TASKS,
    TASKS_COMPLETED,
    COERCIONS,
    DOWNSTREAM_ERRORS,
    SEMANTIC_SIMILARITY_SQUARES,
    REFUSAL_CHECKS,
    REFUSALS,
    FORMAT_CHECKS,
    FORMAT_FAILURES,
    RESPONSE_TOKENS_SQUARES,
)

# --- the guard's own metrics (``modelpin guard --metrics-port``) ----------------------

GUARD_CYCLES = _c("modelpin_guard_cycles", "Guard evaluation cycles, by outcome", ("outcome",))
GUARD_EVALUATIONS = _c(
    "modelpin_guard_evaluations",
    "Rollouts judged, by the proposal (rollback, pause, escalate, advance, hold, error)",
    ("proposal",),
)
GUARD_TRIPS = _c("modelpin_guard_trips", "Routes tripped by this guard", ())
GUARD_CLEARS = _c("modelpin_guard_clears", "Trips cleared, by why", ("why",))
GUARD_ERRORS = _c(
    "modelpin_guard_errors",
    "Guard faults by kind (prometheus, redis, git, github, fleet)",
    ("kind",),
)
GUARD_LAST_CYCLE = MetricName(
    "modelpin_guard_last_cycle_timestamp_seconds", "gauge", "End of the last cycle", ()
)
GUARD_ACTIVE_TRIPS = MetricName(
    "modelpin_guard_active_trips", "gauge", "Trips in the store at the last cycle", ()
)


# --- the default PromQL of policies/signals.yaml --------------------------------------


def _sel(metric: MetricName, suffix: str = "") -> str:
    name = metric.sample if not suffix else metric.family + suffix
    return (
        f'sum(increase({name}{{tenant="{{tenant}}",alias="{{alias}}",'
        f'cohort="{{cohort}}"}}[{{window}}]))'
    )


_SIM_SUM = _sel(SEMANTIC_SIMILARITY, "_sum")
_SIM_COUNT = _sel(SEMANTIC_SIMILARITY, "_count")
_SIM_SQUARES = _sel(SEMANTIC_SIMILARITY_SQUARES)

#: The shadow verdict's rate: comparisons that drifted / comparisons (``{tenant}``,
#: ``{alias}``, ``{window}`` are replaced; there is no cohort).
SHADOW_DRIFT_QUERIES: Final[dict[str, str]] = {
    "events": (
        f'sum(increase({SHADOW_DRIFTED.sample}{{tenant="{{tenant}}",alias="{{alias}}"}}'
        "[{window}]))"
    ),
    "total": (
        f'sum(increase({SHADOW_COMPARISONS.sample}{{tenant="{{tenant}}",alias="{{alias}}"}}'
        "[{window}]))"
    ),
}

#: signal -> PromQL templates, exactly as shipped in ``policies/signals.yaml``.
DEFAULT_QUERIES: Final[dict[str, dict[str, str]]] = {
    "tool_call_failure_rate": {"events": _sel(TOOL_CALL_FAILURES), "total": _sel(TOOL_CALLS)},
    "task_completion_rate": {"events": _sel(TASKS_COMPLETED), "total": _sel(TASKS)},
    "semantic_similarity": {
        "mean": f"{_SIM_SUM} / {_SIM_COUNT}",
        "count": _SIM_COUNT,
        # sample std from the sums: sqrt(n/(n-1) * (E[x^2] - E[x]^2)), clamped at 0
        "std": (
            f"sqrt(clamp_min({_SIM_SQUARES} / {_SIM_COUNT} - ({_SIM_SUM} / {_SIM_COUNT})"
            f" ^ 2, 0) * {_SIM_COUNT} / clamp_min({_SIM_COUNT} - 1, 1))"
        ),
    },
    "coercion_rate": {"events": _sel(COERCIONS), "total": _sel(REQUESTS)},
    "downstream_error_rate": {"events": _sel(DOWNSTREAM_ERRORS), "total": _sel(REQUESTS)},
    "shadow_drift_rate": SHADOW_DRIFT_QUERIES,
}

