"""The statistics the bot cites, in pure Python (no runtime scipy/statsmodels).

- **Difference of proportions**: the Agresti–Caffo interval (Agresti & Caffo 2000,
  "Simple and effective confidence intervals for proportions and differences of
  proportions result from adding two successes and two failures"): add one success and
  one failure to each group, and centre the Wald interval on the *adjusted* difference.
  Equals statsmodels ``confint_proportions_2indep(method="agresti-caffo")``.
- **Difference of means**: Welch's interval, the Student t quantile at the
  Welch–Satterthwaite degrees of freedom (equals scipy ``ttest_ind(equal_var=False)``'s
  interval, from summary statistics).
- **Repeated looks**: the normal-mixture confidence sequence (Robbins 1970; in the
  form of Howard, Ramdas, McAuliffe & Sekhon 2021, and of Waudby-Smith et al. 2021 for
  the asymptotic version). A fixed-level interval checked at every look is exceeded by
  chance far more often than its level says; the confidence sequence holds at every
  look at once, however many looks there are, with no state to keep between them.
  The price is width: at the sample size it is tuned for, about 1.8 times the
  fixed-look interval. See ``docs/statistics.md``.

Tests pin every function to reference values computed once with statsmodels/scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def agresti_caffo(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Adjusted difference ``p1~ - p2~`` and its standard error (group 1 minus group 2)."""
    p1 = (x1 + 1) / (n1 + 2)
    p2 = (x2 + 1) / (n2 + 2)
    se = math.sqrt(p1 * (1 - p1) / (n1 + 2) + p2 * (1 - p2) / (n2 + 2))
    return p1 - p2, se


def agresti_caffo_interval(
    x1: int, n1: int, x2: int, n2: int, alpha: float
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval (statsmodels' convention for ``alpha``)."""
    diff, se = agresti_caffo(x1, n1, x2, n2)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return diff - z * se, diff + z * se


def wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of one proportion at ``z`` (Wilson 1927)."""
    p = x / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return (centre - half) / denom, (centre + half) / denom


def welch(
    mean1: float, std1: float, n1: int, mean2: float, std2: float, n2: int
) -> tuple[float, float, float]:
    """Difference of means (1 minus 2), its standard error, Welch–Satterthwaite df."""
    v1, v2 = std1 * std1 / n1, std2 * std2 / n2
    se = math.sqrt(v1 + v2)
    if v1 + v2 == 0:
        return mean1 - mean2, 0.0, math.inf
    denom = (v1 * v1 / (n1 - 1) if n1 > 1 else 0.0) + (v2 * v2 / (n2 - 1) if n2 > 1 else 0.0)
    df = (v1 + v2) ** 2 / denom if denom > 0 else math.inf
    return mean1 - mean2, se, df


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
          + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    if math.isinf(df):
        return NormalDist().cdf(t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_pdf(t: float, df: float) -> float:
    ln = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
          - (df + 1) / 2 * math.log1p(t * t / df))
    return math.exp(ln)


def t_ppf(q: float, df: float) -> float:
    """The Student t quantile: Newton from the normal quantile, bisection as a fallback."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be in (0, 1)")
    if math.isinf(df) or df > 1e7:
        return NormalDist().inv_cdf(q)
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    x = NormalDist().inv_cdf(q)
    for _ in range(50):
        step = (t_cdf(x, df) - q) / t_pdf(x, df)
        if not math.isfinite(step):
            break
        x -= step
        if abs(step) < 1e-12 * max(1.0, abs(x)):
            return x
    low, high = 0.0, 1.0
    while t_cdf(high, df) < q:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-13:
            break
    return (low + high) / 2.0


def mixture_rho2(alpha: float, tuned_n: float) -> float:
    """The mixture variance that makes the boundary tightest at ``tuned_n`` samples."""
    k = -2.0 * math.log(alpha)
    return (k + math.log(k + 1.0)) / tuned_n


def sequential_multiplier(n: float, alpha: float, tuned_n: float) -> float:
    """The normal-mixture boundary in standard errors, valid at every look at once.

    With ``v = n rho^2``: ``sqrt((v + 1) / v * (log(v + 1) + 2 log(1 / alpha)))``. The
    two-sided boundary at ``alpha``; used one-sided it holds at ``alpha`` or better.
    """
    v = n * mixture_rho2(alpha, tuned_n)
    return math.sqrt((v + 1.0) / v * (math.log(v + 1.0) + 2.0 * math.log(1.0 / alpha)))
