"""End to end: real LiteLLM proxy replicas with the modelpin hook, a real Redis, the fake
provider. Every request below goes client -> proxy (HTTP) -> hook -> provider (HTTP)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelpin.router import bucket
from modelpin.router.trips import Trip, TripStore
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.integrations.conftest import Stack, read_json
from tests.integrations.harness import (
    ALIAS,
    CANDIDATE,
    STABLE,
    TOOLS,
    HarnessError,
    Proxy,
    chat,
    proxy_config,
)
from tests.router.tables import salt_of

pytestmark = pytest.mark.slow

VALID_STABLE = '{"clause_id": "7.2"}'
VALID_CANDIDATE = '{"clause_id": "9.9"}'
MALFORMED = '{"clause": 7}'


def tool_calls(body: dict[str, Any]) -> list[tuple[str, str]]:
    message = body["choices"][0]["message"]
    return [(c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []]


def canary_sessions(tenant: str, percent: float, n: int, prefix: str) -> list[str]:
    salt = salt_of(tenant, ALIAS, CANDIDATE)
    out = []
    i = 0
    while len(out) < n:
        sid = f"{prefix}-{i}"
        if bucket(salt, sid) < percent * 100:
            out.append(sid)
        i += 1
    return out


@pytest.fixture(autouse=True)
def default_script(stack: Stack) -> None:
    stack.fake.script(STABLE, Reply(content="from stable",
                                    tool_calls=(("lookup_clause", VALID_STABLE),)))
    stack.fake.script(CANDIDATE, Reply(content="from candidate",
                                       tool_calls=(("lookup_clause", VALID_CANDIDATE),)))


def test_proxy_startup_cost_is_recorded(stack: Stack) -> None:
    for p in stack.proxies:
        assert p.startup_seconds is not None
        print(f"litellm proxy start-up: {p.startup_seconds:.1f} s")


def test_canary_25_percent_is_sticky_across_two_replicas(stack: Stack) -> None:
    a, b = stack.proxies
    salt = salt_of("acme", ALIAS, CANDIDATE)
    sessions = [f"acme-conv-{i}" for i in range(160)]
    stack.fake.clear()

    def turn(i_sid: tuple[int, str]) -> tuple[str, str, str, str]:
        i, sid = i_sid
        with httpx.Client(timeout=30) as client:
            first = chat(client, a if i % 2 else b, "sk-acme", sid, "turn 1")
            second = chat(client, b if i % 2 else a, "sk-acme", sid, "turn 2")
        assert first.status_code == 200, first.text
        assert second.status_code == 200, second.text
        return (first.headers["x-modelpin-cohort"], second.headers["x-modelpin-cohort"],
                first.headers["x-modelpin-model"], second.headers["x-modelpin-model"])

    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(sessions, pool.map(turn, enumerate(sessions)), strict=True))
    for sid, (c1, c2, m1, m2) in results.items():
        want = "canary" if bucket(salt, sid) < 2500 else "stable"
        assert c1 == c2 == want, sid  # bucketed as documented, and sticky across replicas
        assert m1 == m2 == (CANDIDATE if want == "canary" else STABLE)
    share = sum(r[0] == "canary" for r in results.values()) / len(results)
    assert 0.15 <= share <= 0.35, share
    # The provider saw exactly the models the headers claim, two turns per session.
    assert len(stack.fake.requests_for(CANDIDATE)) == 2 * sum(
        r[0] == "canary" for r in results.values())
    assert len(stack.fake.requests_for(STABLE)) == 2 * sum(
        r[0] == "stable" for r in results.values())


def test_shadow_copies_reach_the_candidate_and_their_tool_calls_never_reach_the_client(
    stack: Stack,
) -> None:
    proxy = stack.proxies[0]
    stack.fake.clear()
    # The candidate would call a tool the client must never run.
    stack.fake.script(CANDIDATE, Reply(content="shadow", tool_calls=(
        ("lookup_clause", '{"clause_id": "SHADOW-ONLY"}'),)))
    executed: list[tuple[str, str]] = []
    with httpx.Client(timeout=30) as client:
        for i in range(6):
            r = chat(client, proxy, "sk-beta", f"beta-{i}", f"shadow turn {i}")
            assert r.status_code == 200, r.text
            assert r.headers["x-modelpin-cohort"] == "stable"
            assert r.headers["x-modelpin-model"] == STABLE
            executed.extend(tool_calls(read_json(r)))  # what an agent would execute
    assert executed == [("lookup_clause", VALID_STABLE)] * 6
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(stack.fake.requests_for(CANDIDATE)) < 6:
        time.sleep(0.05)
    copies = stack.fake.requests_for(CANDIDATE)
    assert len(copies) == 6
    # A copy is the same request (messages and tools), never streamed.
    texts = sorted(c.body["messages"][-1]["content"] for c in copies)
    assert texts == sorted(f"shadow turn {i}" for i in range(6))
    assert all(c.body["tools"][0]["function"]["name"] == "lookup_clause" for c in copies)
    assert not any(c.body.get("stream") for c in copies)


def test_a_malformed_candidate_tool_call_falls_back_to_stable(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply(content="bad", tool_calls=(("lookup_clause",
                                                                   MALFORMED),)))
    sid = canary_sessions("acme", 25, 1, "acme-fallback")[0]
    stack.fake.clear()
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[1], "sk-acme", sid, "please look up")
    assert r.status_code == 200, r.text
    assert tool_calls(read_json(r)) == [("lookup_clause", VALID_STABLE)]
    assert r.headers["x-modelpin-cohort"] == "canary"
    assert r.headers["x-modelpin-fallback"] == "stable"
    assert r.headers["x-modelpin-model"] == STABLE
    # The candidate was asked first, then stable with the same conversation.
    assert [q.model for q in stack.fake.requests] == [CANDIDATE, STABLE]
    assert stack.fake.requests[1].body["messages"] == stack.fake.requests[0].body["messages"]


def test_a_malformed_candidate_tool_call_returns_a_structured_error(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply(content="bad", tool_calls=(("lookup_clause",
                                                                   MALFORMED),)))
    sid = canary_sessions("gamma", 50, 1, "gamma-err")[0]
    stack.fake.clear()
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[0], "sk-gamma", sid, "please look up")
    assert r.status_code == 422, r.text
    error = read_json(r)["error"]
    assert "clause_id" in r.text  # the contract's complaint reaches the client
    assert "lookup_clause" in error["message"]
    assert "9.9" not in r.text and MALFORMED not in r.text  # the call itself is withheld
    assert [q.model for q in stack.fake.requests] == [CANDIDATE]  # no re-ask


def test_a_stable_answer_is_never_replaced(stack: Stack) -> None:
    stack.fake.script(STABLE, Reply(content="bad", tool_calls=(("lookup_clause",
                                                                MALFORMED),)))
    salt = salt_of("gamma", ALIAS, CANDIDATE)
    sid = next(f"gamma-st-{i}" for i in range(1000) if bucket(salt, f"gamma-st-{i}") >= 5000)
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[0], "sk-gamma", sid, "look up")
    assert r.status_code == 200, r.text
    assert r.headers["x-modelpin-cohort"] == "stable"
    assert tool_calls(read_json(r)) == [("lookup_clause", MALFORMED)]


def test_the_tenant_comes_from_the_key_never_from_the_request(stack: Stack) -> None:
    sid = canary_sessions("acme", 25, 1, "acme-spoof")[0]
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[0], "sk-acme", sid, "hi",
                 metadata={"modelpin_tenant": "beta", "tenant": "beta",
                           "modelpin_request": "0" * 32},
                 user="beta")
    assert r.status_code == 200, r.text
    assert r.headers["x-modelpin-cohort"] == "canary"  # acme's canary, not beta's shadow
    assert "x-modelpin-fallback" not in r.headers


def test_unknown_tenant_alias_and_plain_keys(stack: Stack) -> None:
    proxy = stack.proxies[0]
    with httpx.Client(timeout=30) as client:
        ghost = chat(client, proxy, "sk-ghost", "s", "hi")
        assert ghost.status_code == 403, ghost.text
        assert "ghost" in read_json(ghost)["error"]["message"]
        r = client.post(proxy.url + "/v1/chat/completions",
                        headers={"Authorization": "Bearer sk-acme", "x-session-id": "s"},
                        json={"model": STABLE, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 400, r.text  # an exact version by name bypasses no pin
        assert "no model alias" in r.text
        plain = client.post(proxy.url + "/v1/chat/completions",
                            headers={"Authorization": "Bearer sk-plain"},
                            json={"model": STABLE,
                                  "messages": [{"role": "user", "content": "x"}]})
        assert plain.status_code == 200, plain.text
        assert "x-modelpin-cohort" not in plain.headers


def test_a_request_without_a_session_goes_stable(stack: Stack) -> None:
    stack.fake.clear()
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            r = chat(client, stack.proxies[0], "sk-acme", None, "no session")
            assert r.status_code == 200, r.text
            assert r.headers["x-modelpin-cohort"] == "stable"
    assert {q.model for q in stack.fake.requests} == {STABLE}


def test_a_bad_hook_setting_stops_the_proxy_at_start_up_with_every_problem(
    tmp_path: Path,
) -> None:
    fake = FakeOpenAI()
    try:
        config = proxy_config(provider=(fake.base_url, fake.api_key), table=tmp_path / "t.json",
                              root=tmp_path / "no-root.json", redis_url="http://nope",
                              state_file=tmp_path / "f.json")
        config["callback_settings"]["modelpin"]["tenant_from"] = "header.x-tenant"
        proxy = Proxy(config, tmp_path, "bad")
        with pytest.raises(HarnessError) as info:
            proxy.wait_ready(timeout=120)
        proxy.stop()
    finally:
        fake.close()
    assert proxy.process.returncode not in (0, None)
    text = str(info.value)
    assert "callback_settings.modelpin.redis_url: must be a redis://" in text
    assert "callback_settings.modelpin.tenant_from: 'header.x-tenant'" in text


# --- telemetry through the router's API, scraped from each replica's metrics endpoint ------


def scrape(stack: Stack, replica: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports[replica]}/metrics",
                     timeout=10).text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_every_request_is_counted_once_under_its_cohort(stack: Stack) -> None:
    proxy = stack.proxies[0]
    before = scrape(stack, 0)
    salt = salt_of("acme", ALIAS, CANDIDATE)
    sessions = [f"acme-count-{i}" for i in range(40)]
    canary = sum(bucket(salt, s) < 2500 for s in sessions)
    with httpx.Client(timeout=30) as client:
        for s in sessions:
            assert chat(client, proxy, "sk-acme", s, "count me").status_code == 200
    after = scrape(stack, 0)

    def delta(name: str, cohort: str) -> float:
        return (metric(after, name, tenant="acme", alias=ALIAS, cohort=cohort)
                - metric(before, name, tenant="acme", alias=ALIAS, cohort=cohort))

    assert delta("modelpin_requests_total", "canary") == canary
    assert delta("modelpin_requests_total", "stable") == len(sessions) - canary
    assert delta("modelpin_tool_calls_total", "canary") == canary
    assert delta("modelpin_tool_call_failures_total", "canary") == 0
    assert delta("modelpin_request_duration_seconds_count", "stable") == len(sessions) - canary
    assert canary > 0


def test_a_failing_candidate_counts_as_a_downstream_error(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply.error(500))
    sid = canary_sessions("acme", 25, 1, "acme-down")[0]
    before = scrape(stack, 1)
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[1], "sk-acme", sid, "fail please")
    assert r.status_code >= 500
    after = scrape(stack, 1)
    labels = {"tenant": "acme", "alias": ALIAS, "cohort": "canary"}
    assert (metric(after, "modelpin_downstream_errors_total", **labels)
            - metric(before, "modelpin_downstream_errors_total", **labels)) == 1


def test_the_answers_refusal_format_and_length_are_reported(stack: Stack) -> None:
    """What the provider's answer says (its ``refusal`` field, whether it kept the
    requested JSON schema, ``usage.completion_tokens``) counted under the cohort, as the
    real proxy hands the hook its response object."""
    schema = {"type": "object", "required": ["label"], "additionalProperties": False,
              "properties": {"label": {"enum": ["positive", "negative"]}}}
    response_format = {"type": "json_schema",
                       "json_schema": {"name": "label", "schema": schema, "strict": True}}
    stack.fake.script(STABLE, Reply(content='{"label": "positive"}'))
    stack.fake.script(CANDIDATE, lambda body: Reply(refusal="I can't help with that.")
                      if body["messages"][-1]["content"] == "refuse" else
                      Reply(content='{"label": "neutral"}'))
    canary = canary_sessions("acme", 25, 2, "acme-answer")
    salt = salt_of("acme", ALIAS, CANDIDATE)
    stable = [s for s in (f"acme-answer-s{i}" for i in range(200))
              if bucket(salt, s) >= 2500][:2]
    before = scrape(stack, 0)
    tokens = {"canary": 0, "stable": 0}
    with httpx.Client(timeout=30) as client:
        for cohort, sid, text in (("canary", canary[0], "refuse"), ("canary", canary[1], "label"),
                                  ("stable", stable[0], "label"), ("stable", stable[1], "x")):
            r = chat(client, stack.proxies[0], "sk-acme", sid, text,
                     response_format=response_format)
            assert r.status_code == 200, r.text
            assert r.headers["x-modelpin-cohort"] == cohort
            tokens[cohort] += r.json()["usage"]["completion_tokens"]
    after = scrape(stack, 0)

    def delta(name: str, cohort: str) -> float:
        return (metric(after, name, tenant="acme", alias=ALIAS, cohort=cohort)
                - metric(before, name, tenant="acme", alias=ALIAS, cohort=cohort))

    assert delta("modelpin_refusal_checks_total", "canary") == 2
    assert delta("modelpin_refusals_total", "canary") == 1
    assert delta("modelpin_format_checks_total", "canary") == 1  # the refusal is not judged
    assert delta("modelpin_format_failures_total", "canary") == 1  # "neutral" breaks the enum
    assert delta("modelpin_refusal_checks_total", "stable") == 2
    assert delta("modelpin_refusals_total", "stable") == 0
    assert delta("modelpin_format_checks_total", "stable") == 2
    assert delta("modelpin_format_failures_total", "stable") == 0
    for cohort in ("canary", "stable"):
        assert delta("modelpin_response_tokens_count", cohort) == 2
        assert delta("modelpin_response_tokens_sum", cohort) == tokens[cohort] > 0


def test_shadow_drift_is_counted(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply(content="shadow", tool_calls=(
        ("lookup_clause", '{"clause": "7.2"}'),)))  # a renamed field: drift
    before = scrape(stack, 0)
    with httpx.Client(timeout=30) as client:
        for i in range(4):
            assert chat(client, stack.proxies[0], "sk-beta", f"beta-d-{i}", "d").status_code \
                == 200
    deadline = time.monotonic() + 15
    after = scrape(stack, 0)
    while time.monotonic() < deadline and (
        metric(after, "modelpin_shadow_comparisons_total", tenant="beta")
        - metric(before, "modelpin_shadow_comparisons_total", tenant="beta")
    ) < 4:
        time.sleep(0.1)
        after = scrape(stack, 0)
    assert (metric(after, "modelpin_shadow_comparisons_total", tenant="beta")
            - metric(before, "modelpin_shadow_comparisons_total", tenant="beta")) == 4
    for kind in ("field-missing", "field-extra"):
        assert (metric(after, "modelpin_shadow_drift_total", tenant="beta", kind=kind)
                - metric(before, "modelpin_shadow_drift_total", tenant="beta", kind=kind)) == 4
    # The shadow's calls are judged under cohort "shadow", never stable or canary.
    assert (metric(after, "modelpin_tool_call_failures_total", tenant="beta", cohort="shadow")
            - metric(before, "modelpin_tool_call_failures_total", tenant="beta",
                     cohort="shadow")) == 4


def test_an_allowed_coercion_repairs_the_call_the_client_executes(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply(content="fenced", tool_calls=(
        ("lookup_clause", '```json\n{"clause_id": "9.9"}\n```'),)))
    sid = canary_sessions("epsilon", 50, 1, "eps")[0]
    before = scrape(stack, 0)
    with httpx.Client(timeout=30) as client:
        r = chat(client, stack.proxies[0], "sk-epsilon", sid, "fenced")
    assert r.status_code == 200, r.text
    assert r.headers["x-modelpin-cohort"] == "canary"
    name, arguments = tool_calls(read_json(r))[0]
    assert (name, json.loads(arguments)) == ("lookup_clause", {"clause_id": "9.9"})
    assert "x-modelpin-fallback" not in r.headers
    after = scrape(stack, 0)
    labels = {"tenant": "epsilon", "alias": ALIAS, "cohort": "canary"}
    assert (metric(after, "modelpin_coercions_total", **labels)
            - metric(before, "modelpin_coercions_total", **labels)) == 1


# --- streamed answers --------------------------------------------------------------------------


def stream_chat(client: httpx.Client, proxy: Proxy, key: str, session: str,
                text: str) -> tuple[httpx.Response, list[tuple[str, str]], list[Any]]:
    """A streamed request; the tool calls assembled from the SSE chunks, and any error
    events."""
    headers = {"Authorization": f"Bearer {key}", "x-session-id": session}
    body = {"model": ALIAS, "messages": [{"role": "user", "content": text}], "tools": TOOLS,
            "stream": True}
    calls: dict[int, list[str]] = {}
    errors: list[Any] = []
    with client.stream("POST", proxy.url + "/v1/chat/completions", headers=headers,
                       json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            doc = json.loads(line[len("data: "):])
            if "error" in doc:
                errors.append(doc["error"])
                continue
            for choice in doc.get("choices") or []:
                for tc in (choice.get("delta") or {}).get("tool_calls") or []:
                    entry = calls.setdefault(tc.get("index", 0), ["", ""])
                    fn = tc.get("function") or {}
                    entry[0] = fn.get("name") or entry[0]
                    entry[1] += fn.get("arguments") or ""
    return r, [(n, a) for _, (n, a) in sorted(calls.items())], errors


def test_a_streamed_malformed_candidate_call_falls_back_to_a_streamed_stable_answer(
    stack: Stack,
) -> None:
    stack.fake.script(CANDIDATE, Reply(content="bad", tool_calls=(("lookup_clause",
                                                                   MALFORMED),)))
    sid = canary_sessions("acme", 25, 1, "acme-stream")[0]
    stack.fake.clear()
    with httpx.Client(timeout=30) as client:
        r, calls, errors = stream_chat(client, stack.proxies[0], "sk-acme", sid, "stream")
    assert r.status_code == 200 and errors == []
    assert r.headers["x-modelpin-cohort"] == "canary"
    assert calls == [("lookup_clause", VALID_STABLE)]
    assert [q.model for q in stack.fake.requests] == [CANDIDATE, STABLE]
    assert stack.fake.requests[1].body.get("stream") is True


def test_a_streamed_malformed_candidate_call_is_withheld_for_structured_error(
    stack: Stack,
) -> None:
    stack.fake.script(CANDIDATE, Reply(content="bad", tool_calls=(("lookup_clause",
                                                                   MALFORMED),)))
    sid = canary_sessions("gamma", 50, 1, "gamma-stream")[0]
    with httpx.Client(timeout=30) as client:
        r, calls, errors = stream_chat(client, stack.proxies[0], "sk-gamma", sid, "stream")
    assert calls == []  # the invalid call never reaches the client
    assert errors, r.status_code
    assert "lookup_clause" in json.dumps(errors)


def test_a_streamed_call_gets_the_allowed_coercion(stack: Stack) -> None:
    stack.fake.script(CANDIDATE, Reply(content="fenced", tool_calls=(
        ("lookup_clause", '```json\n{"clause_id": "9.9"}\n```'),)))
    sid = canary_sessions("epsilon", 50, 1, "eps-stream")[0]
    with httpx.Client(timeout=30) as client:
        r, calls, errors = stream_chat(client, stack.proxies[1], "sk-epsilon", sid, "s")
    assert errors == [] and r.headers["x-modelpin-cohort"] == "canary"
    assert [(n, json.loads(a)) for n, a in calls] == [("lookup_clause", {"clause_id": "9.9"})]


# --- trips: the guard's fast rollback, honoured by every proxy replica -----------------------


def test_a_trip_stops_new_candidate_sessions_on_every_replica_within_the_bound(
    stack: Stack,
) -> None:
    """The candidate starts failing; a trip set through the router's trip store (what
    ``modelpin guard`` does on a rollback verdict) moves new sessions to stable on both
    replicas within about a second, and the sessions already on the candidate are cut
    over (``drain_seconds: 0`` for delta) with ``x-modelpin-session-reset`` exactly once."""
    a = stack.proxies[0]
    old = canary_sessions("delta", 50, 2, "delta-old")
    fresh = iter(canary_sessions("delta", 50, 200, "delta-new"))
    with httpx.Client(timeout=30) as client:
        for s in old:
            r = chat(client, a, "sk-delta", s, "before the trip")
            assert r.headers["x-modelpin-cohort"] == "canary", r.text
        stack.fake.script(CANDIDATE, Reply.error(500))  # the candidate starts failing
        store = TripStore.from_url(stack.redis.url)
        try:
            check_trip_honoured(stack, client, store, old, fresh)
        finally:
            store.clear("delta", ALIAS, why="test done", by="test")


def check_trip_honoured(stack: Stack, client: httpx.Client, store: TripStore, old: list[str],
                        fresh: Iterator[str]) -> None:
    """Trip delta's route as the guard does, then watch both replicas."""
    a, b = stack.proxies
    tripped = time.monotonic()
    assert store.trip(Trip(tenant="delta", alias=ALIAS, candidate=CANDIDATE,
                           reason="test: candidate failing", tripped_at=time.time(),
                           by="test"))
    honoured: dict[int, float] = {}
    while len(honoured) < 2 and time.monotonic() - tripped < 10:
        for i, proxy in enumerate((a, b)):
            if i in honoured:
                continue
            r = chat(client, proxy, "sk-delta", next(fresh), "after the trip")
            if r.headers.get("x-modelpin-cohort") == "stable":
                honoured[i] = time.monotonic() - tripped
        time.sleep(0.05)
    print(f"trip honoured after {honoured} s (replica: seconds)")
    assert set(honoured) == {0, 1}
    assert max(honoured.values()) < 2.5  # polled about every second, plus a request
    stack.fake.clear()
    for i in range(20):  # every new session, on either replica, goes stable now
        r = chat(client, (a, b)[i % 2], "sk-delta", next(fresh), "new")
        assert r.status_code == 200 and r.headers["x-modelpin-cohort"] == "stable"
    assert stack.fake.requests_for(CANDIDATE) == []
    for s in old:  # drained at once: cut over with a reset, then plain stable
        first = chat(client, b, "sk-delta", s, "after")
        assert first.status_code == 200, first.text
        assert first.headers["x-modelpin-session-reset"] == "true"
        assert first.headers["x-modelpin-model"] == STABLE
        again = chat(client, a, "sk-delta", s, "again")
        assert "x-modelpin-session-reset" not in again.headers
