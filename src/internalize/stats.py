"""Statistics as the paper reports them: per-seed values, means with 95% intervals, t-tests.

What does not live here: which test a claim uses (:mod:`internalize.experiments.claims`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps


def mean_ci(x, axis: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the t-based confidence interval over ``axis`` (seeds). Returns (mean, lo, hi).

    With one seed the interval collapses to the mean.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = x.mean(axis)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    sem = x.std(axis, ddof=1) / math.sqrt(n)
    half = sps.t.ppf(0.5 + level / 2, n - 1) * sem
    return mean, mean - half, mean + half


def ttest_ind(a, b, alternative: str = "two-sided") -> tuple[float, float]:
    """Two-sample t-test (Student's, equal variances, as scipy's default). Returns (t, p).

    NaN p when either sample has fewer than two values or both are constant and equal.
    ``alternative``: "two-sided", "less" (a < b) or "greater" (a > b).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    res = sps.ttest_ind(a, b, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def ttest_rel(a, b) -> tuple[float, float]:
    """Paired t-test over seeds. Returns (t, p)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2:
        return float("nan"), float("nan")
    res = sps.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def tail_mean(curve, fraction: float = 0.1) -> np.ndarray:
    """Mean over the last ``fraction`` of the last axis (at least one point)."""
    curve = np.asarray(curve, float)
    k = max(1, int(round(curve.shape[-1] * fraction)))
    return curve[..., -k:].mean(-1)


def head_mean(curve, fraction: float = 0.1) -> np.ndarray:
    """Mean over the first ``fraction`` of the last axis (at least one point)."""
    curve = np.asarray(curve, float)
    k = max(1, int(round(curve.shape[-1] * fraction)))
    return curve[..., :k].mean(-1)


def pearson_rows(pred, target) -> np.ndarray:
    """Pearson r of each row of ``pred [S, M]`` with ``target [M]`` (NaN where constant)."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    p = pred - pred.mean(-1, keepdims=True)
    t = target - target.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (p * t).sum(-1) / np.sqrt((p * p).sum(-1) * (t * t).sum())


def spearman(x, y) -> float:
    """Spearman rank correlation (NaN for fewer than 3 points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return float("nan")
    return float(sps.spearmanr(x, y).statistic)


def tost(a, b, margin: float) -> tuple[float, float, float]:
    """Two one-sided Welch t-tests of equivalence (SPEC 9.1): is mean(a) - mean(b) within
    ``(-margin, +margin)``? Returns ``(p, p_lower, p_upper)``; ``p`` is the larger of the two
    one-sided p-values, and equivalence is shown at level alpha when ``p < alpha``.

    p_lower tests H0: diff <= -margin against diff > -margin; p_upper tests H0: diff >= margin
    against diff < margin. NaN when either sample has fewer than two values or the margin is
    not positive.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2 or not margin > 0:
        return float("nan"), float("nan"), float("nan")
    lower = sps.ttest_ind(a + margin, b, equal_var=False, alternative="greater")
    upper = sps.ttest_ind(a - margin, b, equal_var=False, alternative="less")
    p_lo, p_hi = float(lower.pvalue), float(upper.pvalue)
    return max(p_lo, p_hi), p_lo, p_hi


def ttest_1samp(x, popmean: float, alternative: str = "two-sided") -> tuple[float, float]:
    """One-sample t-test of mean(x) against ``popmean`` (NaN for fewer than two values, or when a
    value is not finite: a diverged run makes the test fail rather than drop out)."""
    x = np.asarray(x, float)
    if len(x) < 2:
        return float("nan"), float("nan")
    r = sps.ttest_1samp(x, popmean, alternative=alternative)
    return float(r.statistic), float(r.pvalue)


def spearman_test(x, y, alternative: str = "two-sided") -> tuple[float, float]:
    """Spearman's rho and its p over the finite pairs (NaN for fewer than 3 of them or a constant
    side). Pairs with a NaN are left out: there a measure is undefined (a red share with no coin
    reached), not failed."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan")
    r = sps.spearmanr(x[ok], y[ok], alternative=alternative)
    return float(r.statistic), float(r.pvalue)
