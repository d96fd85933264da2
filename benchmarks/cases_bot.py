"""The bot's statistics under repeated looks: false rollbacks and detection power.

``python -m benchmarks.cases_bot`` (or ``python -m benchmarks.run --only bot``).

1,000 canaries at 5% of their tenant's traffic, each looked at every hour for a day
(24 looks) with the shipped ``policies/signals.yaml`` and the bot's own ``decide``.
Realistic noise, not textbook binomials: tenant traffic is log-normal (median 4,000
requests an hour, sigma 0.8) with a day/night cycle; each tenant has its own base
rates; every hour all rates move together (a shared log-normal factor, sigma 0.15:
the traffic mix) and each cohort wobbles on its own (sigma 0.05: users are not coin
flips, so counts are over-dispersed). *Healthy* canaries have exactly the stable
cohort's rates; *regressed* ones fail tool calls 3 points more often.

Two ways to feed the looks: ``window`` = the last hour (the policy's ``window: 1h``,
``--window policy``: the looks see fresh data each time) and ``step`` = the data since
the step started (``--window step``, the default): the step starts at a random minute,
its start is rounded up to the 15-minute grid (``prometheus.STEP_GRID``; the minutes
before it are lost), and each look reads everything from there (cumulative).
Two intervals: the fixed one-look interval and the confidence sequence
(``--looks sequential``, the default). Reported: the share of healthy canaries that
got at least one rollback proposal in the day (target <= 1%), and the share of
regressed canaries rolled back within the day with the median hour of detection.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from modelpin.bot.decisions import Looks, RolloutRef, decide
from modelpin.bot.observations import (
    CohortTelemetry,
    MeanObservation,
    RateObservation,
    RolloutTelemetry,
)
from modelpin.bot.prometheus import STEP_GRID
from modelpin.model.signals import SignalsPolicy

ROOT = Path(__file__).resolve().parents[1]
HOURS = 24
CANARY_SHARE = 0.05
REGRESSION = 0.03
STEP_GRID_MINUTES = STEP_GRID // 60


def binomial(rng: random.Random, n: int, p: float) -> int:
    """A binomial draw without numpy: inversion for small means, normal for large."""
    p = min(max(p, 0.0), 1.0)
    if n <= 0 or p == 0.0:
        return 0
    mean = n * p
    if mean < 30 or n * (1 - p) < 30:
        if p > 0.5:
            return n - binomial(rng, n, 1 - p)
        u, k = rng.random(), 0
        prob = (1 - p) ** n
        cdf = prob
        while u > cdf and k < n:
            prob *= (n - k) / (k + 1) * p / (1 - p)
            k += 1
            cdf += prob
        return k
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))


@dataclass
class Tenant:
    requests: float
    tool_fail: float
    complete: float
    coerce: float
    downstream: float
    similarity: float


def _tenant(rng: random.Random) -> Tenant:
    return Tenant(
        requests=4000 * math.exp(rng.gauss(0, 0.8)),
        tool_fail=rng.uniform(0.005, 0.04),
        complete=rng.uniform(0.85, 0.97),
        coerce=rng.uniform(0.001, 0.008),
        downstream=rng.uniform(0.001, 0.01),
        similarity=rng.uniform(0.85, 0.93),
    )


def _cohort(rng: random.Random, t: Tenant, share: float, hour: int, shared: float,
            extra_fail: float) -> dict[str, Any]:
    diurnal = 0.6 + 0.4 * math.sin(2 * math.pi * (hour - 6) / 24)
    wobble = math.exp(rng.gauss(0, 0.05))
    requests = max(1, round(t.requests * diurnal * share))
    tool_calls, tasks = round(requests * 0.4), round(requests * 0.2)
    f = shared * wobble
    sims = max(0, tasks // 2)
    return {
        "requests": requests, "tool_calls": tool_calls,
        "tool_fail": binomial(rng, tool_calls, t.tool_fail * f + extra_fail),
        "tasks": tasks, "completed": binomial(rng, tasks, 1 - (1 - t.complete) * f),
        "coercions": binomial(rng, requests, t.coerce * f),
        "downstream": binomial(rng, requests, t.downstream * f),
        "sim_n": sims,
        "sim_sum": sum(min(1.0, max(0.0, rng.gauss(t.similarity, 0.08))) for _ in range(sims))
        if sims < 400 else sims * t.similarity + rng.gauss(0, 0.08 * math.sqrt(sims)),
    }


def _telemetry(c: dict[str, Any]) -> CohortTelemetry:
    n = c["sim_n"]
    return CohortTelemetry({
        "tool_call_failure_rate": RateObservation(c["tool_fail"], c["tool_calls"]),
        "task_completion_rate": RateObservation(c["completed"], c["tasks"]),
        "coercion_rate": RateObservation(c["coercions"], c["requests"]),
        "downstream_error_rate": RateObservation(c["downstream"], c["requests"]),
        "semantic_similarity": MeanObservation(
            min(1.0, max(0.0, c["sim_sum"] / n)) if n else 0.0, n, 0.08),
    })


def _thin(rng: random.Random, c: dict[str, Any], share: float) -> dict[str, Any]:
    """The part of an hour's counts that fell in its last ``share`` of the hour."""
    out = dict(c)
    for whole, part in (("tool_calls", "tool_fail"), ("tasks", "completed"),
                        ("requests", "coercions")):
        n = round(c[whole] * share)
        out[part] = binomial(rng, n, c[part] / c[whole]) if c[whole] else 0
        out[whole] = n
    out["downstream"] = binomial(rng, out["requests"], c["downstream"] / max(1, c["requests"]))
    n = round(c["sim_n"] * share)
    out["sim_sum"], out["sim_n"] = (c["sim_sum"] / c["sim_n"] * n if c["sim_n"] else 0.0), n
    return out


def _add(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    return dict(b) if a is None else {k: a[k] + b[k] for k in b}


def simulate(policy: SignalsPolicy, *, canaries: int, regressed: bool, seed: int
             ) -> dict[tuple[str, str], list[int | None]]:
    """Per (feed, looks): the hour of the first rollback of each canary (None: never)."""
    rng = random.Random(seed)
    ref = RolloutRef("t", "a", "pin", "cand", "canary", 5)
    out: dict[tuple[str, str], list[int | None]] = {
        (feed, looks): [] for feed in ("window", "step") for looks in ("fixed", "sequential")
    }
    for _ in range(canaries):
        t = _tenant(rng)
        first: dict[tuple[str, str], int | None] = {k: None for k in out}
        cum_s: dict[str, Any] | None = None
        cum_c: dict[str, Any] | None = None
        start_minute = rng.randrange(60)  # the step starts this many minutes before a look
        kept = (start_minute // STEP_GRID_MINUTES * STEP_GRID_MINUTES) / 60  # grid loss
        for hour in range(HOURS):
            shared = math.exp(rng.gauss(0, 0.15))
            s = _cohort(rng, t, 1 - CANARY_SHARE, hour, shared, 0.0)
            c = _cohort(rng, t, CANARY_SHARE, hour, shared, REGRESSION if regressed else 0.0)
            if hour == 0:  # the first look sees only the minutes since the grid-rounded start
                s0, c0 = _thin(rng, s, kept), _thin(rng, c, kept)
                cum_s, cum_c = _add(None, s0), _add(None, c0)
            else:
                cum_s, cum_c = _add(cum_s, s), _add(cum_c, c)
            for feed, (ds, dc) in (("window", (s, c)), ("step", (cum_s, cum_c))):
                tel = RolloutTelemetry("t", "a", "1h", "sim", _telemetry(ds), _telemetry(dc))
                for looks in ("fixed", "sequential"):
                    key = (feed, looks)
                    if first[key] is not None:
                        continue
                    mode: Looks = "fixed" if looks == "fixed" else "sequential"
                    p = decide(ref, policy, tel, next_step_allowed=False, next_step=None,
                               looks=mode)
                    if p.kind == "rollback":
                        first[key] = hour + 1
        for key in out:
            out[key].append(first[key])
    return out


def run(canaries: int = 1000, seed: int = 13) -> list[dict[str, Any]]:
    policy = SignalsPolicy.model_validate(
        yaml.safe_load((ROOT / "policies" / "signals.yaml").read_text()))
    healthy = simulate(policy, canaries=canaries, regressed=False, seed=seed)
    bad = simulate(policy, canaries=canaries, regressed=True, seed=seed + 1)
    rows = []
    for key in healthy:
        false = sum(h is not None for h in healthy[key]) / canaries
        hits = [h for h in bad[key] if h is not None]
        rows.append({
            "feed": key[0], "looks": key[1], "false_rollbacks": false,
            "power": len(hits) / canaries,
            "median_hours": statistics.median(hits) if hits else None,
        })
    return rows


def report(rows: list[dict[str, Any]], canaries: int) -> str:
    lines = [
        f"{canaries} healthy + {canaries} regressed canaries (5% traffic), 24 hourly looks",
        "| data per look | interval | false rollbacks (healthy) | rolled back in a day "
        "(+3 pt tool-call failures) | median hours to rollback |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        median = "n/a" if r["median_hours"] is None else f"{r['median_hours']:g}"
        lines.append(f"| {r['feed']} | {r['looks']} | {r['false_rollbacks']:.1%} | "
                     f"{r['power']:.1%} | {median} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.cases_bot", description=__doc__)
    p.add_argument("--canaries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    print(report(run(args.canaries, args.seed), args.canaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
