"""Shared claim helpers on synthetic samples: equivalence by TOST (SPEC 9.1), persistence, and
stats.tost against a direct Welch computation with SciPy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from internalize import stats
from internalize.experiments import claims
from internalize.experiments.spec import Claim


# --- stats.tost -----------------------------------------------------------------------------


def welch_one_sided(x, y, alternative: str) -> float:
    """The one-sided Welch t-test p of mean(x) vs mean(y), from its formula."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return float(sps.t.sf(t, df) if alternative == "greater" else sps.t.cdf(t, df))


@pytest.mark.parametrize("shift", [0.0, 0.3, -0.8, 2.5])
def test_tost_is_two_one_sided_welch_tests_on_shifted_samples(shift):
    rng = np.random.default_rng(11)
    a = rng.normal(5.0 + shift, 0.6, 9)
    b = rng.normal(5.0, 1.7, 14)  # unequal sizes and variances: Welch differs from Student here
    margin = 0.5
    p, p_lo, p_hi = stats.tost(a, b, margin)
    # H0 diff <= -margin vs diff > -margin; H0 diff >= margin vs diff < margin. Shift b, not a.
    ref_lo = sps.ttest_ind(a, b - margin, equal_var=False, alternative="greater").pvalue
    ref_hi = sps.ttest_ind(a, b + margin, equal_var=False, alternative="less").pvalue
    assert p_lo == pytest.approx(ref_lo, rel=1e-10)
    assert p_hi == pytest.approx(ref_hi, rel=1e-10)
    assert p_lo == pytest.approx(welch_one_sided(a + margin, b, "greater"), rel=1e-8)
    assert p_hi == pytest.approx(welch_one_sided(a - margin, b, "less"), rel=1e-8)
    assert p == max(p_lo, p_hi)
    student = sps.ttest_ind(a + margin, b, alternative="greater").pvalue
    assert p_lo != pytest.approx(student, rel=1e-3)  # Welch, not Student


def test_tost_equal_means_and_variances_give_equal_one_sided_ps():
    a = np.array([1.0, 2.0, 4.0, 7.0, 3.5])
    b = a[::-1].copy() + 0.0  # same mean, same variance
    p, p_lo, p_hi = stats.tost(a, b, 1.0)
    assert p_lo == pytest.approx(p_hi)
    assert p == pytest.approx(p_lo)


def test_tost_p_falls_as_the_margin_widens():
    rng = np.random.default_rng(2)
    a, b = rng.normal(10, 1, 12), rng.normal(10, 1, 12)
    ps = [stats.tost(a, b, m)[0] for m in (0.1, 0.5, 1.0, 2.0, 4.0)]
    assert all(x > y for x, y in zip(ps, ps[1:]))
    assert ps[0] > 0.05 and ps[-1] < 1e-4


@pytest.mark.parametrize("a, b, margin", [
    ([1.0], [1.0, 2.0], 0.5),
    ([1.0, 2.0], [3.0], 0.5),
    ([1.0, 2.0], [1.0, 2.0], 0.0),
    ([1.0, 2.0], [1.0, 2.0], -1.0),
    ([1.0, 2.0], [1.0, 2.0], float("nan")),
])
def test_tost_nan_for_too_few_values_or_a_non_positive_margin(a, b, margin):
    assert all(math.isnan(x) for x in stats.tost(a, b, margin))


# --- claims.equivalence ------------------------------------------------------------------------


def test_equivalence_holds_when_close_relative_to_ten_percent_of_the_reference():
    rng = np.random.default_rng(0)
    ref = rng.normal(10.0, 0.3, 10)
    a = rng.normal(10.1, 0.3, 10)
    c = claims.equivalence("eq", "a is like ref", a, ref, detail={"extra": 1})
    assert isinstance(c, Claim)
    assert c.id == "eq" and c.statement == "a is like ref"
    assert c.holds
    assert c.p_value < 0.05
    assert c.margin == pytest.approx(0.1 * ref.mean())
    assert c.test == claims.TOST
    assert c.value == pytest.approx(a.mean() - ref.mean())
    p, p_lo, p_hi = stats.tost(a, ref, 0.1 * ref.mean())
    assert c.p_value == pytest.approx(p)
    assert c.detail["p_lower"] == pytest.approx(p_lo) and c.detail["p_upper"] == pytest.approx(p_hi)
    assert c.detail["paper_t_test_p"] == pytest.approx(sps.ttest_ind(a, ref).pvalue)
    assert c.detail["margin_fraction_of_reference"] == 0.1
    assert c.detail["extra"] == 1


@pytest.mark.parametrize("offset, holds", [(-0.5, True), (0.5, True), (-2.0, False), (2.0, False),
                                           (-1.5, False), (1.5, False)])
def test_equivalence_flips_with_the_distance_to_the_reference(offset, holds):
    """Reference mean 10 (margin 1): tight samples half a margin away are equivalent, one and a
    half or two margins away are not, on either side."""
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 0.1, 12)
    ref = 10.0 + noise - noise.mean()
    a = 10.0 + offset + rng.normal(0, 0.1, 12)
    c = claims.equivalence("eq", "", a, ref)
    assert c.holds is holds
    assert c.margin == pytest.approx(1.0)
    assert c.value == pytest.approx(a.mean() - 10.0)
    if not holds:
        assert c.p_value > 0.5
        # Far apart: the paper's plain t-test sees the difference that TOST refuses to call equal.
        assert c.detail["paper_t_test_p"] < 0.05


def test_equivalence_fails_when_too_noisy_even_with_equal_means():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5.0, 10)
    y = rng.normal(0, 5.0, 10)
    ref = 10.0 + y - y.mean()
    a = 10.0 + x - x.mean()  # the same mean exactly: only the noise stands in the way
    c = claims.equivalence("eq", "", a, ref)
    assert c.value == pytest.approx(0.0, abs=1e-12)
    assert not c.holds and c.p_value > 0.05
    # The plain t-test cannot tell them apart either (p = 1): it is no evidence of equivalence.
    assert c.detail["paper_t_test_p"] == pytest.approx(1.0)
    # The same means with a tenth of the noise are equivalent.
    tight = claims.equivalence("eq", "", 10.0 + (x - x.mean()) / 50, 10.0 + (y - y.mean()) / 50)
    assert tight.holds


def test_equivalence_margin_uses_the_magnitude_of_a_negative_reference():
    rng = np.random.default_rng(4)
    ref = rng.normal(-20.0, 0.2, 10)
    a = rng.normal(-20.3, 0.2, 10)
    c = claims.equivalence("eq", "", a, ref)
    assert c.margin == pytest.approx(0.1 * abs(ref.mean())) and c.margin > 0
    assert c.holds


def test_equivalence_never_holds_with_a_zero_reference_mean_or_one_seed():
    zero = claims.equivalence("eq", "", np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    assert zero.margin == 0.0 and not zero.holds and math.isnan(zero.p_value)
    one = claims.equivalence("eq", "", np.array([10.0]), np.array([10.0]))
    assert not one.holds and math.isnan(one.p_value) and math.isnan(one.detail["paper_t_test_p"])


# --- claims.persistence ----------------------------------------------------------------------------


def test_end_fraction_is_a_tenth():
    assert claims.END_FRACTION == 0.1


def test_persistence_takes_tail_means_per_arm_in_config_order():
    rng = np.random.default_rng(9)
    S, U = 6, 30  # tail = last 3 updates
    arms = ["isr", "oracle", "none"]  # not the declaration order: names follow config["arms"]
    socialize = np.full((S, U), 100.0, np.float32)  # the head is not averaged in
    soc_end = rng.uniform(3.5, 4.5, S).astype(np.float32)
    socialize[:, -3:] = soc_end[:, None]
    autonomy = np.full((S, len(arms), U), -50.0, np.float32)
    ends = {"isr": rng.uniform(3.0, 4.0, S), "oracle": rng.uniform(3.8, 4.2, S), "none": rng.uniform(0.0, 1.0, S)}
    for i, a in enumerate(arms):
        autonomy[:, i, -3:] = ends[a].astype(np.float32)[:, None]
    curves = {"socialize/goals_per_episode": socialize, "autonomy/goals_per_episode": autonomy}
    socialized, end, p_none_isr, p_isr_oracle = claims.persistence(curves, {"arms": arms})
    np.testing.assert_allclose(socialized, soc_end, rtol=1e-6)
    assert set(end) == set(arms)
    for a in arms:
        assert end[a].shape == (S,)
        np.testing.assert_allclose(end[a], ends[a].astype(np.float32), rtol=1e-6)
    e = {a: ends[a].astype(np.float32).astype(float) for a in arms}
    assert p_none_isr == pytest.approx(sps.ttest_ind(e["none"], e["isr"]).pvalue, rel=1e-5)
    assert p_isr_oracle == pytest.approx(sps.ttest_ind(e["isr"], e["oracle"]).pvalue, rel=1e-5)
    assert p_none_isr < 1e-6


def test_persistence_p_is_large_when_arms_do_not_differ():
    rng = np.random.default_rng(10)
    S, U = 8, 20
    autonomy = rng.normal(4.0, 0.3, (S, 3, U))
    curves = {"socialize/goals_per_episode": rng.normal(4.0, 0.3, (S, U)), "autonomy/goals_per_episode": autonomy}
    _, end, p_none_isr, _ = claims.persistence(curves, {"arms": ["oracle", "none", "isr"]})
    np.testing.assert_allclose(end["none"], autonomy[:, 1, -2:].mean(-1))
    assert p_none_isr > 0.05
