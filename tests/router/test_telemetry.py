"""Router telemetry: the gateway reports outcomes, check_tool_call counts itself, and the
exported series are exactly those the shipped signals.yaml queries read."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from modelpin.router import metric_names as mn
from modelpin.router import telemetry
from modelpin.router.table import Decision
from modelpin.router.telemetry import JsonLinesEvents, prompt_sha256
from tests.router.tables import envelope, payload, write_atomically

REPO = Path(__file__).resolve().parents[2]
T, A = "acme-legal", "primary-reasoning"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def router(make_router: Any, key: Any, table_file: Path, registry: CollectorRegistry) -> Any:
    write_atomically(table_file, envelope(payload(1), [key]))
    r = make_router(registry=registry, name="gw-1")
    assert r.refresh().outcome == "accepted"
    return r


def sample(registry: CollectorRegistry, metric: mn.MetricName, cohort: str,
           suffix: str = "") -> float | None:
    name = metric.sample if not suffix else metric.family + suffix
    return registry.get_sample_value(
        name, {"tenant": T, "alias": A, "cohort": cohort, "router": "gw-1"})


def in_threads(work: Any, threads: int) -> None:
    """Run ``work`` in that many threads at once; return when all are done."""
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_rollout_series_exist_at_zero_before_any_request(router: Any, registry: Any) -> None:
    for cohort in ("stable", "canary"):
        for metric in mn.OUTCOME_METRICS:
            assert sample(registry, metric, cohort) == 0.0, (metric.family, cohort)
        assert sample(registry, mn.SEMANTIC_SIMILARITY, cohort, "_count") == 0.0
        assert sample(registry, mn.RESPONSE_TOKENS, cohort, "_count") == 0.0
        assert sample(registry, mn.RESPONSE_TOKENS, cohort, "_sum") == 0.0
    # a pinned alias gets no series until it is used
    assert registry.get_sample_value(
        mn.REQUESTS.sample,
        {"tenant": T, "alias": "embedder", "cohort": "stable", "router": "gw-1"}) is None


def test_record_counts_each_outcome_under_the_decisions_cohort(router: Any,
                                                               registry: Any) -> None:
    canary = next(router.resolve(T, A, f"s{i}") for i in range(10_000)
                  if router.resolve(T, A, f"s{i}").cohort == "canary")
    stable = router.resolve(T, A, "stable-probe")
    if stable.cohort != "stable":
        stable = next(router.resolve(T, A, f"x{i}") for i in range(100)
                      if router.resolve(T, A, f"x{i}").cohort == "stable")
    router.record(T, A, canary, latency=0.25, task_completed=True, similarity=0.8)
    router.record(T, A, canary, latency=0.75, task_completed=False, similarity=0.6,
                  downstream_errors=2, tool_calls=1, tool_call_failures=1)
    router.record(T, A, stable)
    assert sample(registry, mn.REQUESTS, "canary") == 2
    assert sample(registry, mn.REQUESTS, "stable") == 1
    assert sample(registry, mn.TASKS, "canary") == 2
    assert sample(registry, mn.TASKS_COMPLETED, "canary") == 1
    assert sample(registry, mn.DOWNSTREAM_ERRORS, "canary") == 2
    assert sample(registry, mn.TOOL_CALLS, "canary") == 1
    assert sample(registry, mn.TOOL_CALL_FAILURES, "canary") == 1
    assert sample(registry, mn.SEMANTIC_SIMILARITY, "canary", "_count") == 2
    assert sample(registry, mn.SEMANTIC_SIMILARITY, "canary", "_sum") == pytest.approx(1.4)
    assert sample(registry, mn.SEMANTIC_SIMILARITY_SQUARES, "canary") == pytest.approx(1.0)
    assert sample(registry, mn.REQUEST_DURATION, "canary", "_count") == 2
    assert sample(registry, mn.REQUEST_DURATION, "canary", "_sum") == pytest.approx(1.0)
    assert sample(registry, mn.TASKS, "stable") == 0


def test_record_counts_the_answers_own_signals_only_when_reported(router: Any,
                                                                  registry: Any) -> None:
    d = router.resolve(T, A, "s-answer")
    c = d.cohort
    router.record(T, A, d, latency=0.1)  # the healthy path: none of them counted
    router.record(T, A, d, refused=True, response_tokens=0)
    router.record(T, A, d, latency=0.2, refused=False, format_ok=True, response_tokens=30)
    router.record(T, A, d, refused=False, format_ok=False, response_tokens=50)
    router.record(T, A, d, format_ok=False)
    assert sample(registry, mn.REQUESTS, c) == 5
    assert sample(registry, mn.REFUSAL_CHECKS, c) == 3
    assert sample(registry, mn.REFUSALS, c) == 1
    assert sample(registry, mn.FORMAT_CHECKS, c) == 3
    assert sample(registry, mn.FORMAT_FAILURES, c) == 2
    assert sample(registry, mn.RESPONSE_TOKENS, c, "_count") == 3
    assert sample(registry, mn.RESPONSE_TOKENS, c, "_sum") == 80
    assert sample(registry, mn.RESPONSE_TOKENS_SQUARES, c) == 30 * 30 + 50 * 50
    assert router.telemetry.value(T, A, c, mn.RESPONSE_TOKENS) == 3
    # the other outcome cells are untouched by them
    for metric in (mn.TASKS, mn.TOOL_CALLS, mn.DOWNSTREAM_ERRORS, mn.COERCIONS):
        assert sample(registry, metric, c) == 0, metric.family
    assert sample(registry, mn.SEMANTIC_SIMILARITY, c, "_count") == 0
    assert sample(registry, mn.REQUEST_DURATION, c, "_count") == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"refused": 1}, "refused is True, False or None, not 1"),
    ({"refused": "no"}, "refused is True, False or None"),
    ({"format_ok": 0}, "format_ok is True, False or None, not 0"),
    ({"response_tokens": -1}, r"response_tokens is a count of tokens in 0\.\.1000000000"),
    ({"response_tokens": 12.5}, "response_tokens is a count"),
    ({"response_tokens": True}, "response_tokens is a count"),
    ({"response_tokens": 10**400}, "response_tokens is a count"),
    ({"response_tokens": float("nan")}, "response_tokens is a count"),
])
def test_bad_answer_signals_are_refused_before_any_is_counted(
    router: Any, registry: Any, kwargs: dict[str, Any], message: str
) -> None:
    d = router.resolve(T, A, "s-bad")
    with pytest.raises(ValueError, match=message):
        router.record(T, A, d, **{"task_completed": True, "refused": True, "format_ok": True,
                                  "response_tokens": 5, **kwargs})
    for metric in (mn.REFUSAL_CHECKS, mn.REFUSALS, mn.FORMAT_CHECKS, mn.TASKS):
        assert sample(registry, metric, d.cohort) == 0, metric.family
    assert sample(registry, mn.RESPONSE_TOKENS, d.cohort, "_count") == 0


def test_check_tool_call_counts_itself_per_cohort(router: Any, registry: Any) -> None:
    good, bad = {"clause_id": "7.2"}, {"clause_id": 7}
    router.check_tool_call(T, "lookup_clause", good, alias=A, cohort="canary")
    router.check_tool_call(T, "lookup_clause", bad, alias=A, cohort="canary")
    router.check_tool_call(T, "lookup_clause", bad, alias=A, cohort="stable")
    router.check_tool_call(T, "lookup_clause", bad, alias=A, shadow=True)
    router.check_tool_call(T, "lookup_clause", bad)  # unattributed
    router.check_tool_call(T, "lookup_clause", bad, alias=A, cohort="bogus")
    assert sample(registry, mn.TOOL_CALLS, "canary") == 2
    assert sample(registry, mn.TOOL_CALL_FAILURES, "canary") == 1
    assert sample(registry, mn.TOOL_CALLS, "stable") == 1
    assert sample(registry, mn.TOOL_CALL_FAILURES, "stable") == 1
    assert sample(registry, mn.TOOL_CALL_FAILURES, "shadow") == 1
    # neither unattributed call counts for a side of the rollout
    assert registry.get_sample_value(mn.TOOL_CALLS.sample, {
        "tenant": T, "alias": "", "cohort": "unknown", "router": "gw-1"}) == 1
    assert sample(registry, mn.TOOL_CALLS, "unknown") == 1


def test_concurrent_records_lose_no_update(router: Any, registry: Any) -> None:
    d = router.resolve(T, A, "s-1")
    n, threads = 20_000, 8

    def work() -> None:
        for _ in range(n):
            router.record(T, A, d, latency=0.5, similarity=0.5)

    in_threads(work, threads)
    assert sample(registry, mn.REQUESTS, d.cohort) == n * threads
    assert sample(registry, mn.REQUEST_DURATION, d.cohort, "_sum") == n * threads * 0.5
    assert sample(registry, mn.SEMANTIC_SIMILARITY, d.cohort, "_count") == n * threads


def test_the_locked_path_of_a_free_threaded_build_counts_exactly(
    make_router: Any, key: Any, table_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "GIL_ATOMIC", False)
    write_atomically(table_file, envelope(payload(1), [key]))
    reg = CollectorRegistry()
    r = make_router(registry=reg, name="gw-1")
    r.refresh()
    assert r.record.__func__ is telemetry.RouterTelemetry._locked_record
    d = r.resolve(T, A, "s-1")
    n, threads = 2_000, 4

    def work() -> None:
        for _ in range(n):
            r.record(T, A, d, latency=0.5, similarity=0.5)
            r.check_tool_call(T, "lookup_clause", {"clause_id": 7}, alias=A, cohort=d.cohort)

    in_threads(work, threads)
    assert sample(reg, mn.REQUESTS, d.cohort) == n * threads
    assert sample(reg, mn.REQUEST_DURATION, d.cohort, "_count") == n * threads
    assert sample(reg, mn.SEMANTIC_SIMILARITY, d.cohort, "_sum") == n * threads * 0.5
    assert sample(reg, mn.TOOL_CALL_FAILURES, d.cohort) == n * threads


def test_decisions_carry_their_counters_across_tables_and_compare_as_before(
    router: Any, registry: Any, key: Any, table_file: Path
) -> None:
    held = router.resolve(T, A, "s-1")  # a request in flight across the reload
    assert held._row is not None  # a route in rollout: bound at install
    assert held == Decision(held.model, held.cohort, None, 1)  # the row is not compared
    assert "_row" not in repr(held)
    write_atomically(table_file, envelope(payload(2), [key]))
    assert router.refresh().outcome == "accepted"
    fresh = router.resolve(T, A, "s-1")
    assert fresh.serial == 2 and fresh.cohort == held.cohort and fresh._row is held._row
    router.record(T, A, held, latency=0.5)
    router.record(T, A, fresh)
    assert sample(registry, mn.REQUESTS, held.cohort) == 2  # one series across serials
    assert sample(registry, mn.REQUEST_DURATION, held.cohort, "_count") == 1
    # a pinned alias gets its own decision on its first resolve (test_observe.py)
    pinned = router.resolve(T, "embedder", "s-1")
    assert pinned._row is not None
    router.record(T, "embedder", pinned, latency=0.25)
    assert registry.get_sample_value(mn.REQUESTS.sample, {
        "tenant": T, "alias": "embedder", "cohort": "stable", "router": "gw-1"}) == 1
    assert router.telemetry.value(T, "embedder", "stable", mn.REQUEST_DURATION) == 1


def test_similarity_outside_0_1_is_refused(router: Any) -> None:
    d = router.resolve(T, A, "s-1")
    with pytest.raises(ValueError, match=r"0\.\.1"):
        router.record(T, A, d, similarity=1.5)
    with pytest.raises(ValueError, match="counts"):
        router.record(T, A, d, tool_calls=-1)


def test_structured_events_carry_genai_names_and_only_the_prompt_hash(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))
    out = io.StringIO()
    r = make_router(events=JsonLinesEvents(out), name="gw-e")
    r.refresh()
    d = r.resolve(T, A, "sess-42")
    r.record(T, A, d, latency=0.1, session_id="sess-42", prompt="the secret contract text")
    r.check_tool_call(T, "lookup_clause", {"clause_id": 1}, alias=A, cohort=d.cohort)
    r.record(T, A, d, refused=False, format_ok=False, response_tokens=42)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["modelpin.request", "modelpin.tool_call",
                                           "modelpin.request"]
    req, call, answer = lines
    assert answer["gen_ai.usage.output_tokens"] == 42
    assert answer["modelpin.refused"] is False and answer["modelpin.format.ok"] is False
    assert not {"gen_ai.usage.output_tokens", "modelpin.refused", "modelpin.format.ok"} & set(req)
    assert req["gen_ai.request.model"] == d.model
    assert req["gen_ai.conversation.id"] == "sess-42"
    assert req["modelpin.cohort"] == d.cohort and req["modelpin.tenant"] == T
    assert req["modelpin.prompt.sha256"] == prompt_sha256("the secret contract text")
    assert "secret" not in out.getvalue()
    assert call["gen_ai.tool.name"] == "lookup_clause"
    assert call["modelpin.tool_call.valid"] is False
    assert call["error.type"] == "invalid_tool_call"


def test_a_failing_event_sink_never_breaks_a_request(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))

    def broken(event: dict[str, Any]) -> None:
        raise OSError("disk full")

    r = make_router(events=broken, name="gw-b")
    r.refresh()
    d = r.resolve(T, A, "s")
    r.record(T, A, d)
    assert r.telemetry.event_errors == 1
    assert r.telemetry.value(T, A, d.cohort, mn.REQUESTS) == 1


def test_two_routers_share_a_registry_by_name(make_router: Any, key: Any,
                                             table_file: Path) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))
    reg = CollectorRegistry()
    a = make_router(registry=reg, name="a")
    b = make_router(registry=reg, name="b")
    a.refresh()
    b.refresh()
    a.record(T, A, a.resolve(T, A, "s"))
    text = generate_latest(reg).decode()
    assert text.count("# TYPE modelpin_requests_total counter") == 1
    assert 'router="a"' in text and 'router="b"' in text
    with pytest.raises(ValueError, match="own name"):
        make_router(registry=reg, name="a")


def test_without_a_registry_the_router_touches_no_global_state(
    make_router: Any, key: Any, table_file: Path
) -> None:
    write_atomically(table_file, envelope(payload(1), [key]))
    def modelpin_lines() -> list[str]:
        text = generate_latest(prometheus_client.REGISTRY).decode()
        return [line for line in text.splitlines() if "modelpin" in line]

    before = modelpin_lines()
    r = make_router(registry=None, name="private")
    r.refresh()
    r.record(T, A, r.resolve(T, A, "s"))
    assert modelpin_lines() == before == []
    assert r.registry.get_sample_value(mn.REQUESTS.sample, {
        "tenant": T, "alias": A, "cohort": r.resolve(T, A, "s").cohort,
        "router": "private"}) == 1


def test_the_shipped_signal_queries_are_the_metric_registry_defaults() -> None:
    shipped = yaml.safe_load((REPO / "policies" / "signals.yaml").read_text())
    for name, queries in mn.DEFAULT_QUERIES.items():
        assert shipped["signals"][name]["prometheus"] == queries, name
    assert set(shipped["signals"]) == set(mn.DEFAULT_QUERIES)


def test_every_series_the_queries_read_is_exported(router: Any, registry: Any) -> None:
    # the shadow drift counters exist once a shadow answer has been compared
    router.compare_shadow(T, A, [("lookup", {"id": "1"})], [("lookup", {"id": "1"})])
    exported = {s.name for fam in registry.collect() for s in fam.samples}
    import re

    for queries in mn.DEFAULT_QUERIES.values():
        for promql in queries.values():
            for name in re.findall(r"(modelpin_[a-z_]+)\{", promql):
                assert name in exported, name
