"""The statistics against reference values computed once with statsmodels 0.15.0 and
scipy 1.17.1 (in a scratch venv outside the repo; no runtime dependency):

    confint_proportions_2indep(x1, n1, x2, n2, method="agresti-caffo", alpha=a)
    scipy.stats.t.ppf(q, df); ttest_ind_from_stats(..., equal_var=False)
"""

from __future__ import annotations

import math
import random

import pytest

from modelpin.bot import stats
from modelpin.bot.decisions import judge_signal
from modelpin.bot.observations import MeanObservation, RateObservation
from modelpin.model.signals import SignalPolicy

AGRESTI_CAFFO = [
    # (x1, n1, x2, n2, alpha) -> statsmodels (low, high)
    ((3, 200, 10, 20000, 0.10), (0.0031261009569531484, 0.035377969428087554)),
    ((45, 1000, 80, 8000, 0.10), (0.024755945486715163, 0.04681548301344523)),
    ((0, 50, 0, 50, 0.05), (-0.05278896673853711, 0.05278896673853711)),
    ((50, 50, 0, 50, 0.05), (0.9087494947999243, 1.0143274282769985)),
    ((23, 2400, 80, 8000, 0.10), (-0.003942584199292833, 0.0036809926446419463)),
    ((1, 7, 3, 9, 0.01), (-0.6581309184212643, 0.3753026355929814)),
]


@pytest.mark.parametrize(("args", "expected"), AGRESTI_CAFFO)
def test_agresti_caffo_equals_statsmodels(args, expected) -> None:
    low, high = stats.agresti_caffo_interval(*args)
    assert low == pytest.approx(expected[0], abs=1e-12)
    assert high == pytest.approx(expected[1], abs=1e-12)


def test_the_issue_example_is_a_regression_at_one_sided_95() -> None:
    """3/200 vs 10/20000: a real regression; the raw-centred interval said inconclusive."""
    policy = SignalPolicy(kind="rate", direction="lower_is_better", min_samples=100,
                          confidence=0.95, tolerance=0.0, action="rollback")
    v = judge_signal("tool_call_failure_rate", policy, RateObservation(10, 20000),
                     RateObservation(3, 200))
    assert v.interval is not None
    assert v.interval == pytest.approx((0.0031261009569531484, 0.035377969428087554), abs=1e-12)
    assert v.result == "fail" and v.method == "agresti-caffo"


T_QUANTILES = [
    ((0.95, 3.0), 2.3533634348018233),
    ((0.975, 10.5), 2.2138402929187886),
    ((0.99, 1.0), 31.820515953773935),
    ((0.9, 200.0), 1.2857987939948012),
    ((0.05, 7.0), -1.8945786050900066),
    ((0.999, 2.5), 13.82219311086596),
]


@pytest.mark.parametrize(("args", "expected"), T_QUANTILES)
def test_t_quantile_equals_scipy(args, expected) -> None:
    assert stats.t_ppf(*args) == pytest.approx(expected, rel=1e-9)


WELCH = [
    # (m1, s1, n1, m2, s2, n2, one-sided confidence) -> df, se, t, low, high, t statistic
    ((0.905, 0.08, 500, 0.91, 0.08, 2000, 0.95),
     (767.7100329403074, 0.004, 1.6468408625899633, -0.011587363450359857,
      0.0015873634503598489, -1.250000000000001)),
    ((0.5, 0.3, 12, 0.6, 0.1, 30, 0.975),
     (11.990522214092461, 0.08850612031567835, 2.179003855155739, -0.2928551773727408,
      0.09285517737274082, -1.1298653657320639)),
    ((10.0, 2.0, 5, 9.0, 4.0, 7, 0.9),
     (9.237592397043294, 1.7566201313073597, 1.3802238398977384, -1.4245289828747136,
      3.4245289828747136, 0.5692750425533111)),
]


@pytest.mark.parametrize(("args", "expected"), WELCH)
def test_welch_equals_scipy(args, expected) -> None:
    m1, s1, n1, m2, s2, n2, conf = args
    diff, se, df = stats.welch(m1, s1, n1, m2, s2, n2)
    t = stats.t_ppf(conf, df)
    assert df == pytest.approx(expected[0], rel=1e-12)
    assert se == pytest.approx(expected[1], rel=1e-12)
    assert t == pytest.approx(expected[2], rel=1e-9)
    assert (diff - t * se, diff + t * se) == pytest.approx(expected[3:5], abs=1e-9)
    assert diff / se == pytest.approx(expected[5], rel=1e-12)


def test_mean_signal_uses_the_welch_t_interval() -> None:
    policy = SignalPolicy(kind="mean", direction="lower_is_better", min_samples=5,
                          confidence=0.9, tolerance=0.0, action="pause")
    v = judge_signal("semantic_similarity", policy, MeanObservation(9.0, 7, 4.0),
                     MeanObservation(10.0, 5, 2.0))
    assert v.interval == pytest.approx((-1.4245289828747136, 3.4245289828747136), abs=1e-9)
    assert v.method == "welch"


def _first_crossing(rng: random.Random, looks: int, per_look: int, p: float, z_of) -> bool:
    """Null data (canary = stable = p); does any look's lower bound exceed 0?"""
    xc = xs = nc = ns = 0
    for _ in range(looks):
        nc += per_look
        ns += per_look * 4
        xc += sum(rng.random() < p for _ in range(per_look))
        xs += sum(rng.random() < p for _ in range(per_look * 4))
        diff, se = stats.agresti_caffo(xc, nc, xs, ns)
        if diff - z_of(min(nc, ns)) * se > 0:
            return True
    return False


def test_repeated_looks_inflate_the_fixed_interval_but_not_the_sequence() -> None:
    """200 null paths, 40 looks each, one-sided 95%: the fixed interval crosses on far
    more than 5% of paths; the confidence sequence stays under 5%."""
    rng = random.Random(20261201)
    alpha, paths, looks, per_look = 0.05, 200, 40, 25
    z = 1.6448536269514722
    fixed = sum(_first_crossing(rng, looks, per_look, 0.3, lambda n: z) for _ in range(paths))
    rng = random.Random(20261201)
    seq = sum(
        _first_crossing(rng, looks, per_look, 0.3,
                        lambda n: stats.sequential_multiplier(n, alpha, 4 * 100))
        for _ in range(paths)
    )
    assert fixed / paths > 0.10, fixed
    assert seq / paths <= alpha, seq


def test_sequential_multiplier_is_widest_early_and_never_below_fixed() -> None:
    z = 1.6448536269514722
    values = [stats.sequential_multiplier(n, 0.05, 400) for n in (10, 100, 400, 4000, 40000)]
    assert all(v > z for v in values)
    assert values[0] > values[2] and values[4] > values[2]  # tightest near the tuned size
    assert values[2] == pytest.approx(
        math.sqrt((7.9361 + 1) / 7.9361 * (math.log(7.9361 + 1) + 2 * math.log(20))), rel=1e-3
    )


WILSON = [
    # statsmodels proportion_confint(x, n, alpha, method="wilson")
    ((5, 200, 0.1), (0.012221026093223602, 0.050458776528813254)),
    ((60, 2000, 0.1), (0.02433290997494867, 0.03693697758049465)),
    ((0, 300, 0.1), (0.0, 0.008937872175128186)),
    ((300, 10000, 0.02), (0.026278706021750343, 0.03422973689083206)),
]


@pytest.mark.parametrize(("args", "expected"), WILSON)
def test_wilson_equals_statsmodels(args, expected) -> None:
    x, n, alpha = args
    z = stats.NormalDist().inv_cdf(1 - alpha / 2)
    assert stats.wilson(x, n, z) == pytest.approx(expected, abs=1e-12)


def _coercion() -> SignalPolicy:
    return SignalPolicy(kind="rate", direction="lower_is_better", min_samples=200,
                        confidence=0.95, tolerance=0.005, limit=0.02, action="rollback")


def test_coercion_over_the_limit_fails_only_with_evidence() -> None:
    stable = RateObservation(200, 20000)  # 1%
    noisy = judge_signal("coercion_rate", _coercion(), stable, RateObservation(5, 200),
                         limit=0.02)  # 2.5% of 200: the 90% Wilson interval reaches 1.2%
    assert noisy.result != "fail" or "above the maximum" not in noisy.reason
    clear = judge_signal("coercion_rate", _coercion(), stable, RateObservation(300, 10000),
                         limit=0.02)  # 3% of 10,000: at least 2.7%
    assert clear.result == "fail" and "is above the maximum 0.02" in clear.reason
