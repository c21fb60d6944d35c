"""Tests of the paper's statistics (internalize.stats) against scipy."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags; this file does not use JAX itself)

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from internalize import stats

DATA = np.array([[1.0, 2.5, -0.5], [2.0, 3.5, 0.5], [4.0, 2.0, 0.0], [3.5, 5.0, 1.5], [2.5, 1.0, -1.0]])


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_mean_ci_matches_scipy_t_interval(level):
    mean, lo, hi = stats.mean_ci(DATA, level=level)
    n = DATA.shape[0]
    ref_lo, ref_hi = sps.t.interval(level, n - 1, loc=DATA.mean(0), scale=sps.sem(DATA, axis=0))
    np.testing.assert_allclose(mean, DATA.mean(0))
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-10)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-10)


def test_mean_ci_hand_value_and_axis():
    x = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sd sqrt(5/3), sem sqrt(5/12); t(0.975, 3) = 3.182446305
    mean, lo, hi = stats.mean_ci(x)
    half = 3.182446305284263 * math.sqrt(5 / 12)
    assert mean == pytest.approx(2.5)
    assert lo == pytest.approx(2.5 - half, rel=1e-9) and hi == pytest.approx(2.5 + half, rel=1e-9)
    m1, lo1, hi1 = stats.mean_ci(DATA.T, axis=1)
    m0, lo0, hi0 = stats.mean_ci(DATA, axis=0)
    np.testing.assert_allclose(m1, m0)
    np.testing.assert_allclose(lo1, lo0)
    np.testing.assert_allclose(hi1, hi0)


def test_mean_ci_single_seed_collapses():
    mean, lo, hi = stats.mean_ci([[0.3, 0.7]])
    np.testing.assert_array_equal(mean, [0.3, 0.7])
    np.testing.assert_array_equal(lo, mean)
    np.testing.assert_array_equal(hi, mean)


def test_ttest_ind_matches_scipy():
    a, b = DATA[:, 0], DATA[:, 1]
    t, p = stats.ttest_ind(a, b)
    ref = sps.ttest_ind(a, b)  # Student's, equal variances
    assert t == pytest.approx(float(ref.statistic), rel=1e-12)
    assert p == pytest.approx(float(ref.pvalue), rel=1e-12)
    assert isinstance(t, float) and isinstance(p, float)
    # unequal sizes
    t2, p2 = stats.ttest_ind([1.0, 2.0, 3.0, 4.5], [2.0, 4.0, 6.0])
    ref2 = sps.ttest_ind([1.0, 2.0, 3.0, 4.5], [2.0, 4.0, 6.0])
    assert (t2, p2) == pytest.approx((float(ref2.statistic), float(ref2.pvalue)), rel=1e-12)


def test_ttest_rel_matches_scipy():
    a, b = DATA[:, 0], DATA[:, 2]
    t, p = stats.ttest_rel(a, b)
    ref = sps.ttest_rel(a, b)
    assert t == pytest.approx(float(ref.statistic), rel=1e-12)
    assert p == pytest.approx(float(ref.pvalue), rel=1e-12)
    # paired differs from unpaired on the same data
    assert p != pytest.approx(stats.ttest_ind(a, b)[1])


def test_ttests_nan_for_fewer_than_two_samples():
    for t, p in (stats.ttest_ind([1.0], [2.0, 3.0]), stats.ttest_ind([1.0, 2.0], [3.0]), stats.ttest_ind([], []),
                 stats.ttest_rel([1.0], [2.0])):
        assert math.isnan(t) and math.isnan(p)


def test_ttest_ind_nan_for_equal_constant_samples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, p = stats.ttest_ind([2.0, 2.0, 2.0], [2.0, 2.0])
    assert math.isnan(p)


@pytest.mark.parametrize("length,k", [(100, 10), (20, 2), (50, 5), (5, 1), (3, 1), (1, 1)])
def test_tail_mean_last_tenth(length, k):
    curve = np.arange(length, dtype=float) ** 2
    assert stats.tail_mean(curve) == pytest.approx(curve[-k:].mean())


def test_tail_mean_batched_and_fraction():
    curves = np.arange(60, dtype=float).reshape(3, 20)
    np.testing.assert_allclose(stats.tail_mean(curves), curves[:, -2:].mean(-1))
    np.testing.assert_allclose(stats.tail_mean(curves, fraction=0.25), curves[:, -5:].mean(-1))
    np.testing.assert_allclose(stats.tail_mean(curves, fraction=0.0), curves[:, -1])  # at least one point


def test_stats_helpers_match_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 12), rng.normal(0.5, 1, 12)
    for alt in ("two-sided", "less", "greater"):
        ref = sps.ttest_ind(a, b, alternative=alt)
        t, p = stats.ttest_ind(a, b, alternative=alt)
        assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    x, y = rng.normal(size=8), rng.normal(size=8)
    assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic)
    pred = rng.normal(size=(3, 50))
    target = rng.normal(size=50)
    np.testing.assert_allclose(stats.pearson_rows(pred, target), [np.corrcoef(p, target)[0, 1] for p in pred])
    curve = np.arange(20.0)
    assert stats.head_mean(curve, 0.1) == pytest.approx(0.5)
    assert stats.tail_mean(curve, 0.1) == pytest.approx(18.5)
