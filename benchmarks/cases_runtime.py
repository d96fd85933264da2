"""Case 10 (`--only runtime`): the runtime loop (issue 14).

- breach -> stop: the real loop of ``tests/guard/scenario.py`` (three gateway processes,
  a real Prometheus scraping every second with the shipped queries, Redis, one guard):
  seconds from the moment the candidate starts failing tool calls until no router
  assigns a new session to it (the last new canary session), and until every router
  reports the trip applied. Target <= 30 s (aim <= 10 s).
- no false trip: the bot's own ``decide`` (sequential looks, as the guard runs it) on
  simulated traffic where canary and stable are equally healthy, judged every 5
  simulated seconds for 20 simulated minutes, at failure rates of 1%, 5% and 25%.
  Target: no rollback at all.
(resolve + record vs resolve alone is ``router_cases.case_record``.)
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.measure import ROOT, Row, row


def breach_to_stop(runs: int = 3) -> list[Row]:
    from tests.guard.scenario import CANDIDATE, Loop, Traffic, wait_for

    stops, applied = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            loop = Loop(Path(tmp))
            traffic = None
            try:
                loop.start()
                loop.start_guard()
                traffic = Traffic(loop.gateways)
                traffic.start()
                wait_for(lambda t=traffic: sum(e.cohort == "canary" for e in t.events) > 300,
                         60, "healthy traffic")
                time.sleep(2)
                breach = time.time()
                loop.llm.broken.add(CANDIDATE)
                everywhere = wait_for(
                    lambda lp=loop: all(s.get("trips") for s in lp.statuses()), 60, "the trip")
                time.sleep(2)
                new = [e for e in traffic.new_sessions() if e.cohort == "canary"]
                stops.append(max(e.t for e in new) - breach)
                applied.append(everywhere - breach)
            finally:
                if traffic is not None:
                    traffic.finish()
                loop.stop()
    note = ", ".join(f"{s:.1f}" for s in stops)
    return [
        row("10 runtime", "breach -> no new canary session at any router (3 routers, "
            "prometheus 1 s scrape, guard every 1 s)", statistics.median(stops), None,
            target="<= 30 s", unit="s", note=f"runs {note} s; target 10 s",
            runs=len(stops)),
        row("10 runtime", "breach -> trip applied at every router", statistics.median(applied),
            None, target="report", unit="s", runs=len(applied)),
    ]


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n > 50:  # normal approximation, clamped (n*p*(1-p) is large here)
        x = round(rng.gauss(n * p, (n * p * (1 - p)) ** 0.5))
        return min(n, max(0, x))
    return sum(rng.random() < p for _ in range(n))


def false_trips(levels: tuple[float, ...] = (0.01, 0.05, 0.25), runs: int = 10,
                minutes: int = 20, step: float = 5.0, canary_extra: float = 0.0) -> list[Row]:
    """Runs with a rollback, per failure level. ``canary_extra`` adds failure
    probability to the canary only: the positive control (the same simulation must trip
    a real regression, or its zero false trips would prove nothing)."""
    import yaml

    from modelpin.bot.decisions import RolloutRef, decide
    from modelpin.bot.observations import (
        CohortTelemetry,
        MeanObservation,
        RateObservation,
        RolloutTelemetry,
    )
    from modelpin.model.signals import SignalsPolicy

    policy = SignalsPolicy.model_validate(
        yaml.safe_load((ROOT / "policies" / "signals.yaml").read_text()))
    ref = RolloutRef("t", "a", "m-old", "m-new", "canary", 25)
    rates = {"stable": 30.0, "canary": 10.0}  # requests/s: a 25% canary
    out: list[Row] = []
    for p in levels:
        trips = alarms = looks = 0
        for run in range(runs):
            rng = random.Random(f"{p}-{run}")
            c: dict[str, dict[str, float]] = {k: dict.fromkeys(
                ("req", "tool", "fail", "task", "done", "coerced", "down", "sim_n", "sim_s",
                 "sim_q"), 0.0) for k in rates}
            tripped = alarmed = False
            for _ in range(int(minutes * 60 / step)):
                for cohort, rate in rates.items():
                    n = max(0, round(rng.gauss(rate * step, (rate * step) ** 0.5)))
                    x = c[cohort]
                    x["req"] += n
                    x["tool"] += n
                    x["fail"] += _binomial(rng, n, p + (canary_extra if cohort == "canary"
                                                        else 0.0))
                    tasks = n // 2
                    x["task"] += tasks
                    x["done"] += tasks - _binomial(rng, tasks, p)
                    x["coerced"] += _binomial(rng, n, 0.005)
                    x["down"] += _binomial(rng, n, p / 5)
                    for _s in range(n // 5):
                        s = min(1.0, max(0.0, rng.gauss(0.9, 0.08)))
                        x["sim_n"] += 1
                        x["sim_s"] += s
                        x["sim_q"] += s * s

                def cohort_telemetry(x: dict[str, float]) -> CohortTelemetry:
                    n = x["sim_n"]
                    mean = x["sim_s"] / n if n else 0.0
                    var = max(0.0, x["sim_q"] / n - mean * mean) * n / max(1.0, n - 1) if n else 0
                    return CohortTelemetry({
                        "tool_call_failure_rate": RateObservation(int(x["fail"]), int(x["tool"])),
                        "task_completion_rate": RateObservation(int(x["done"]), int(x["task"])),
                        "coercion_rate": RateObservation(int(x["coerced"]), int(x["req"])),
                        "downstream_error_rate": RateObservation(int(x["down"]), int(x["req"])),
                        "semantic_similarity": MeanObservation(mean, int(n), var ** 0.5),
                    })

                tel = RolloutTelemetry("t", "a", "1h", "simulation",
                                       cohort_telemetry(c["stable"]),
                                       cohort_telemetry(c["canary"]))
                proposal = decide(ref, policy, tel, next_step_allowed=False, next_step=None,
                                  looks="sequential")
                looks += 1
                tripped |= proposal.kind == "rollback"
                alarmed |= proposal.kind in ("rollback", "pause", "escalate")
            trips += tripped
            alarms += alarmed
        what = (f"false trips, equal health at {p:.0%} failures" if not canary_extra else
                f"control: canary {canary_extra:+.0%} tool-call failures over {p:.0%}, "
                "runs tripped")
        out.append(row("10 runtime", f"{what} ({runs} runs x {minutes} simulated min, a look "
                       f"every {step:g} s)", trips, None,
                       target="<= 0" if not canary_extra else f">= {runs}", unit="", runs=runs,
                       note=f"{looks} looks; runs with any alarm (pause/escalate too): "
                       f"{alarms}"))
    return out


def runtime_rows(quick: bool) -> list[Row]:
    runs = 4 if quick else 10
    return [*false_trips(runs=runs),
            *false_trips(levels=(0.05,), runs=runs, canary_extra=0.03),
            *breach_to_stop(runs=1 if quick else 3)]
