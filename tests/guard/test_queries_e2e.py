"""Every default query shipped in ``policies/signals.yaml`` run against real scraped
series: three gateway processes (the router library), a real ``prometheus`` scraping
them every second, a real ``redis-server``. The gateways record known outcomes (tool
calls valid, invalid and coerced, tasks, judge similarity, downstream errors, shadow
comparisons, refusals, format checks, response tokens); each shipped query, as written
and as the bot batches it, and the drift queries of ``lifecycle --prometheus`` must
return exactly what was recorded.

Exactly, not roughly: ``increase()`` extrapolates to the ends of its window unless the
range starts at a zero sample (the router exports every series of a route in rollout at
zero from install) and ends on a sample. So the traffic goes through one gateway, after
Prometheus has scraped its zeros, and the queries are evaluated at the timestamp of its
last scrape; the other two gateways' series stay at zero and add nothing to the sums.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelpin.bot.drift_prometheus import PrometheusDrift
from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.bot.promapi import PrometheusApi
from modelpin.bot.prometheus import PrometheusTelemetry
from modelpin.model.signals import MeanQueries, RateQueries, SignalsPolicy, render_query
from modelpin.router.coercion import STRIP_JSON_FENCES
from tests.guard.scenario import ALIAS, TENANT, Loop, wait_for

SHADOWED = "beta"  # a second tenant whose alias is in stage shadow
REQUESTS = 240


def instant(prom: str, promql: str, at: float | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    r = httpx.get(f"{prom}/api/v1/query", params=params, timeout=5)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def scalar(prom: str, promql: str, at: float) -> float:
    [series] = instant(prom, promql, at)
    return float(series["value"][1])


def script(i: int, rng: random.Random) -> dict[str, Any]:
    """What request i asks the gateway to do and report."""
    req: dict[str, Any] = {"tenant": TENANT, "alias": ALIAS, "session": f"q-{i}"}
    if i % 10 == 3:
        req["prompt"] = "[fenced] clause 7.2?"  # valid after strip-json-fences
    elif i % 12 == 5:
        req["prompt"] = "[invalid] clause 7.2?"
    if rng.random() < 0.8:
        req["similarity"] = round(rng.uniform(0.4, 1.0), 3)
    req["task_completed"] = rng.choice([None, True, True, False])
    req["downstream_errors"] = rng.choice([0, 0, 0, 1, 2])
    # the answer's own signals (drift of pinned versions), each sometimes not reported
    req["refused"] = rng.choice([None, False, False, False, True])
    req["format_ok"] = rng.choice([None, True, True, False])
    if rng.random() < 0.9:
        req["response_tokens"] = rng.randint(0, 900)
    return req


def expected_from(sent: list[tuple[dict[str, Any], dict[str, Any]]], cohort: str) -> dict[
        str, Any]:
    rows = [(req, ans) for req, ans in sent if ans["cohort"] == cohort]
    sims = [req["similarity"] for req, _ in rows if "similarity" in req]
    tasks = [req["task_completed"] for req, _ in rows if req["task_completed"] is not None]
    n = len(rows)
    return {
        "tool_call_failure_rate": RateObservation(sum(not a["valid"] for _, a in rows), n),
        "task_completion_rate": RateObservation(sum(tasks), len(tasks)),
        "coercion_rate": RateObservation(sum(a["coerced"] for _, a in rows), n),
        "downstream_error_rate": RateObservation(
            sum(r["downstream_errors"] for r, _ in rows), n),
        "semantic_similarity": MeanObservation(statistics.fmean(sims), len(sims),
                                               statistics.stdev(sims)),
    }


def expected_drift(sent: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The drift signals of the stable cohort, from what the gateway was asked to report."""
    rows = [req for req, ans in sent if ans["cohort"] == "stable"]
    refused = [r["refused"] for r in rows if r["refused"] is not None]
    formats = [r["format_ok"] for r in rows if r["format_ok"] is not None]
    tokens = [r["response_tokens"] for r in rows if "response_tokens" in r]
    return {
        "refusal_rate": RateObservation(sum(refused), len(refused)),
        "format_failure_rate": RateObservation(sum(not f for f in formats), len(formats)),
        "response_length": MeanObservation(statistics.fmean(tokens), len(tokens),
                                           statistics.stdev(tokens)),
    }


@pytest.mark.slow
def test_every_shipped_query_returns_what_the_routers_recorded(tmp_path: Path) -> None:
    loop = Loop(tmp_path, coercions=(STRIP_JSON_FENCES,), shadow_tenant=SHADOWED)
    try:
        loop.start()
        assert loop.prometheus is not None
        prom = loop.prometheus.url
        gw = loop.gateways[0]
        # Prometheus has scraped every gateway's zeros (both cohorts, the shadow counters)
        zeros = ('modelpin_requests_total{tenant="acme"}',
                 'modelpin_shadow_comparisons_total{tenant="beta"}')
        wait_for(lambda: all(len(instant(prom, q)) == (2 if "requests" in q else 1) * 3
                             for q in zeros), 20, "the first scrape of every gateway")

        rng = random.Random(1414)
        sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
        shadow: list[bool] = []
        with httpx.Client(timeout=5) as client:
            for i in range(REQUESTS):
                req = script(i, rng)
                ans = client.post(f"{gw}/chat", json=req).json()
                assert ans["router"] == "gw-1", ans
                sent.append((req, ans))
            for i in range(60):  # the shadowed tenant: comparisons, a quarter drifting
                req = {"tenant": SHADOWED, "alias": ALIAS, "session": f"b-{i}",
                       "shadow_arguments": {"clause_id": 7 if i % 4 == 0 else "7.2"}}
                ans = client.post(f"{gw}/chat", json=req).json()
                assert ans["router"] == "gw-1" and ans["cohort"] == "stable", ans
                shadow.append(ans["drifted"])
        cohorts = {ans["cohort"] for _, ans in sent}
        assert cohorts == {"stable", "canary"}
        assert any(a["coerced"] for _, a in sent) and not all(a["valid"] for _, a in sent)
        assert 0 < sum(shadow) < len(shadow)

        # the evaluation time: gw-1's first scrape after the last request
        def settled() -> float | None:
            got = instant(prom, 'max(timestamp(modelpin_requests_total{router="gw-1",'
                                'tenant="beta"})) and on() '
                                'sum(modelpin_requests_total{router="gw-1"}) == '
                                f'{REQUESTS + len(shadow)}')
            return float(got[0]["value"][1]) if got else None

        wait_for(settled, 20, "Prometheus to scrape the last request")
        at = settled()
        assert at is not None
        # every request has its latency: the shadowed tenant's carry no outcome, so the
        # gateway reports them with Decision.observe; acme's with record
        assert scalar(prom, 'sum(modelpin_request_duration_seconds_count{router="gw-1",'
                      f'tenant="{SHADOWED}"}})', at) == len(shadow)
        assert scalar(prom, 'sum(modelpin_requests_total{router="gw-1",'
                      f'tenant="{SHADOWED}"}})', at) == len(shadow)
        assert scalar(prom, 'sum(modelpin_request_duration_seconds_count{router="gw-1"})',
                      at) == REQUESTS + len(shadow)
        policy = SignalsPolicy.model_validate(
            yaml.safe_load((loop.clone / "policies" / "signals.yaml").read_text()))
        window = "1h"
        assert policy.window.total_seconds() == 3600  # the shipped window

        # 1. each shipped query, as written, per cohort
        for cohort in ("stable", "canary"):
            want = expected_from(sent, cohort)
            for name, signal in policy.signals.items():
                queries = signal.prometheus
                assert queries is not None, name
                if signal.stage == "shadow":
                    continue

                def run(template: str, cohort: str = cohort) -> float:
                    return scalar(prom, render_query(template, tenant=TENANT, alias=ALIAS,
                                                     cohort=cohort, window=window), at)

                expected = want[name]
                if isinstance(queries, RateQueries):
                    assert isinstance(expected, RateObservation)
                    assert run(queries.events) == expected.events, (name, cohort)
                    assert run(queries.total) == expected.total, (name, cohort)
                else:
                    assert isinstance(queries, MeanQueries) and queries.std is not None
                    assert isinstance(expected, MeanObservation)
                    assert run(queries.count) == expected.count, (name, cohort)
                    assert run(queries.mean) == pytest.approx(expected.mean, rel=1e-12)
                    assert run(queries.std) == pytest.approx(expected.std, rel=1e-9)
        shadow_signal = policy.signals["shadow_drift_rate"]
        assert isinstance(shadow_signal.prometheus, RateQueries)
        for template, value in ((shadow_signal.prometheus.events, sum(shadow)),
                                (shadow_signal.prometheus.total, len(shadow))):
            promql = render_query(template, tenant=SHADOWED, alias=ALIAS, cohort="",
                                  window=window)
            assert scalar(prom, promql, at) == value, promql

        # 2. the bot's own path (batched queries, validated observations) at that time
        with httpx.Client(base_url=prom) as http:
            batch = PrometheusTelemetry(http, policy, at=at).observe_all(
                [(TENANT, ALIAS), (SHADOWED, ALIAS)])
        assert not batch.general and not batch.problems, (batch.general, batch.problems)
        acme = batch.rollouts[(TENANT, ALIAS)]
        for cohort, seen in (("stable", acme.stable), ("canary", acme.canary)):
            want = expected_from(sent, cohort)
            for name, expected in want.items():
                got = seen.signals[name]  # type: ignore[index]
                if isinstance(expected, MeanObservation):
                    assert isinstance(got, MeanObservation) and got.count == expected.count
                    assert got.mean == pytest.approx(expected.mean, rel=1e-12)
                    assert got.std is not None and math.isclose(got.std, expected.std or 0,
                                                                rel_tol=1e-9)
                else:
                    assert got == expected, (name, cohort)
        beta = batch.rollouts[(SHADOWED, ALIAS)]
        assert beta.shadow.signals["shadow_drift_rate"] == RateObservation(sum(shadow),
                                                                           len(shadow))
        # 3. drift of the pinned version's stable cohort, as `lifecycle --prometheus`
        # batches it: the current window holds exactly what was recorded (the baseline
        # window, the hour before, has no series: no data)
        with httpx.Client(base_url=prom) as http:
            drift = PrometheusDrift(PrometheusApi(http, at=at), window=timedelta(hours=1),
                                    baseline=timedelta(hours=1)).drift_all([(TENANT, ALIAS)])
        assert not drift.general and not drift.problems and not drift.notes, drift
        baseline_window, current = drift.windows[(TENANT, ALIAS)]
        assert baseline_window == {}
        want_drift = {**expected_drift(sent), "tool_call_failure_rate":
                      expected_from(sent, "stable")["tool_call_failure_rate"]}
        assert set(current) == set(want_drift)
        for name, expected in want_drift.items():
            got = current[name]
            if isinstance(expected, MeanObservation):
                assert isinstance(got, MeanObservation) and got.count == expected.count
                assert got.mean == pytest.approx(expected.mean, rel=1e-12)
                assert got.std is not None and math.isclose(got.std, expected.std or 0,
                                                            rel_tol=1e-9)
            else:
                assert got == expected, name
        # the report's drift per tool and kind (a series born at its first drift, so its
        # count is Prometheus' extrapolation: only the tool and kind are exact)
        [drift] = beta.shadow.failures
        assert drift.kind == "shadow drift: type-changed"
        assert drift.detail.startswith("tool `lookup_clause`: ")
    except BaseException:
        print(loop.logs())
        raise
    finally:
        loop.stop()
