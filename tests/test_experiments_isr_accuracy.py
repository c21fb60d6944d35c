"""Experiment 2's analysis (ISR accuracy) on synthetic curves: error falls with socialization,
predictions correlate with the caregiver's reward."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from internalize.experiments import isr_accuracy

S, E, N = 6, 20, 600
STEPS = np.array([5_000, 10_000, 15_000, 20_000, 40_000, 60_000])
P = len(STEPS)
IDS = ["isr_error_falls", "isr_correlates"]


def mse_curves(rng, final):
    """``isr/test_mse [S, P, E]`` whose last evaluation is ``final [S, P]``; the earlier evaluations
    (during the fit) are larger and flat across budgets, so reading them would change the verdict."""
    mse = np.empty((S, P, E), np.float32)
    mse[:, :, :-1] = rng.uniform(0.5, 1.0, (S, 1, E - 1)).astype(np.float32)
    mse[:, :, -1] = final
    return mse


def falling_mse(rng, orders=3.0, noise=0.1):
    """Final MSE from 1e-3 down by ``orders`` powers of ten, log-normal noise per seed and budget."""
    log = -3.0 - orders * np.linspace(0, 1, P)[None, :] + noise * rng.standard_normal((S, P))
    return (10.0 ** log).astype(np.float32)


def sweep(rng, r_noise=0.02, seeds=S):
    """A sparse caregiver reward (0.4 onto the goal, else 0) and predictions of it."""
    target = np.where(rng.uniform(size=N) < 0.1, 0.4, 0.0).astype(np.float32)
    pred = (target[None, :] + r_noise * rng.standard_normal((seeds, N))).astype(np.float32)
    return pred, target


def make_curves(rng, final=None, pearson_last=0.9, r_noise=0.02):
    final = falling_mse(rng) if final is None else final
    pearson = np.full((S, P), 0.1)  # small budgets correlate badly; only the full budget counts
    pearson[:, -1] = pearson_last + 0.01 * rng.standard_normal(S)
    pred, target = sweep(rng, r_noise)
    return {"isr/prefix_steps": STEPS, "isr/test_mse": mse_curves(rng, final), "isr/pearson": pearson,
            "sweep/pred": pred, "sweep/target": target}


CONFIG = {"arms": [], "seeds": S, "preset": "fast"}


def by_id(claims):
    return {c.id: c for c in claims}


def test_clear_case_both_claims_hold_with_their_values():
    rng = np.random.default_rng(0)
    curves = make_curves(rng)
    claims, _ = isr_accuracy.analyze(curves, CONFIG)
    assert [c.id for c in claims] == IDS
    c = by_id(claims)
    assert c["isr_error_falls"].holds and c["isr_correlates"].holds
    final = curves["isr/test_mse"][:, :, -1].astype(float)
    first, last = np.exp(np.log(final[:, 0]).mean()), np.exp(np.log(final[:, -1]).mean())
    assert c["isr_error_falls"].value == pytest.approx(last, rel=1e-5)
    assert c["isr_error_falls"].detail["mse_first_budget"] == pytest.approx(first, rel=1e-5)
    assert c["isr_error_falls"].detail["ratio"] == pytest.approx(last / first, rel=1e-5)
    assert last / first == pytest.approx(1e-3, rel=0.5)
    p = sps.ttest_rel(np.log10(final[:, 0]), np.log10(final[:, -1])).pvalue
    assert c["isr_error_falls"].p_value == pytest.approx(p, rel=1e-4)
    assert "5,000" in c["isr_error_falls"].statement and "60,000" in c["isr_error_falls"].statement
    r_sweep = np.mean([np.corrcoef(p_, curves["sweep/target"])[0, 1] for p_ in curves["sweep/pred"]])
    r_held = curves["isr/pearson"][:, -1].mean()
    assert c["isr_correlates"].value == pytest.approx(min(r_held, r_sweep), rel=1e-5)
    assert c["isr_correlates"].detail["pearson_heldout"] == pytest.approx(r_held)
    assert c["isr_correlates"].detail["pearson_sweep"] == pytest.approx(r_sweep, rel=1e-5)
    assert c["isr_correlates"].detail["sweep_states"] == N
    assert np.isnan(c["isr_correlates"].p_value)


def test_per_seed_shapes_and_values():
    rng = np.random.default_rng(1)
    curves = make_curves(rng)
    _, per_seed = isr_accuracy.analyze(curves, CONFIG)
    assert set(per_seed) == {"socialization_steps", "test_mse_by_budget", "pearson_heldout", "pearson_sweep"}
    np.testing.assert_array_equal(per_seed["socialization_steps"], STEPS)
    assert per_seed["test_mse_by_budget"].shape == (S, P)
    np.testing.assert_array_equal(per_seed["test_mse_by_budget"], curves["isr/test_mse"][:, :, -1])
    assert per_seed["pearson_heldout"].shape == (S,)
    np.testing.assert_array_equal(per_seed["pearson_heldout"], curves["isr/pearson"][:, -1])
    assert per_seed["pearson_sweep"].shape == (S,)
    assert np.all(per_seed["pearson_sweep"] > 0.95)


def test_flat_error_does_not_fall():
    rng = np.random.default_rng(2)
    c = by_id(isr_accuracy.analyze(make_curves(rng, final=falling_mse(rng, orders=0.0)), CONFIG)[0])
    assert not c["isr_error_falls"].holds
    assert c["isr_error_falls"].detail["ratio"] == pytest.approx(1.0, rel=0.3)


def test_rising_error_does_not_fall():
    rng = np.random.default_rng(3)
    c = by_id(isr_accuracy.analyze(make_curves(rng, final=falling_mse(rng, orders=-2.0)), CONFIG)[0])
    assert not c["isr_error_falls"].holds
    assert c["isr_error_falls"].value > c["isr_error_falls"].detail["mse_first_budget"]


def test_a_significant_but_shallow_fall_is_not_steep():
    """Five times lower, consistently: significant, but not under a tenth."""
    rng = np.random.default_rng(4)
    c = by_id(isr_accuracy.analyze(make_curves(rng, final=falling_mse(rng, orders=np.log10(5), noise=0.02)),
                                   CONFIG)[0])
    assert c["isr_error_falls"].p_value < 0.05
    assert c["isr_error_falls"].detail["ratio"] == pytest.approx(0.2, rel=0.1)
    assert not c["isr_error_falls"].holds
    steep = by_id(isr_accuracy.analyze(make_curves(rng, final=falling_mse(rng, orders=np.log10(20), noise=0.02)),
                                       CONFIG)[0])
    assert steep["isr_error_falls"].holds


def test_a_steep_but_inconsistent_fall_is_not_significant():
    """Geometric mean falls ~500x, but one of three seeds rose: the paired t-test does not reject."""
    final = np.full((3, P), 1e-3)
    final[:, -1] = 1e-3 * 10.0 ** np.array([-4.0, 0.5, -4.5])
    rng = np.random.default_rng(5)
    curves = make_curves(rng)
    curves = {**curves, "isr/test_mse": curves["isr/test_mse"][:3], "isr/pearson": curves["isr/pearson"][:3],
              "sweep/pred": curves["sweep/pred"][:3]}
    curves["isr/test_mse"] = curves["isr/test_mse"].copy()
    curves["isr/test_mse"][:, :, -1] = final
    c = by_id(isr_accuracy.analyze(curves, {**CONFIG, "seeds": 3})[0])
    assert c["isr_error_falls"].detail["ratio"] < 0.1
    assert c["isr_error_falls"].p_value > 0.05
    assert not c["isr_error_falls"].holds


def test_uncorrelated_predictions_fail_the_correlation_claim():
    rng = np.random.default_rng(6)
    c = by_id(isr_accuracy.analyze(make_curves(rng, r_noise=5.0), CONFIG)[0])
    assert not c["isr_correlates"].holds
    assert c["isr_correlates"].detail["pearson_sweep"] < 0.2
    assert c["isr_correlates"].detail["pearson_heldout"] == pytest.approx(0.9, abs=0.02)
    assert c["isr_correlates"].value == pytest.approx(c["isr_correlates"].detail["pearson_sweep"])
    assert c["isr_error_falls"].holds  # the two claims are judged separately


def test_held_out_correlation_below_threshold_fails_even_with_a_good_sweep():
    rng = np.random.default_rng(7)
    low = by_id(isr_accuracy.analyze(make_curves(rng, pearson_last=0.70), CONFIG)[0])["isr_correlates"]
    high = by_id(isr_accuracy.analyze(make_curves(rng, pearson_last=0.78), CONFIG)[0])["isr_correlates"]
    assert not low.holds and high.holds
    assert low.value == pytest.approx(0.70, abs=0.02)


def test_constant_sweep_predictions_do_not_count_as_correlated():
    rng = np.random.default_rng(8)
    curves = make_curves(rng)
    curves["sweep/pred"] = np.full_like(curves["sweep/pred"], 0.05)  # an ISR that predicts one value everywhere
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):  # nanmean of all-NaN
        c = by_id(isr_accuracy.analyze(curves, CONFIG)[0])["isr_correlates"]
    assert np.isnan(c.detail["pearson_sweep"])
    assert not c.holds


def test_the_stored_golden_curves_analyze_to_the_same_claims_and_shapes():
    path = Path(__file__).parent / "golden" / "isr_accuracy.npz"
    curves = dict(np.load(path))
    claims, per_seed = isr_accuracy.analyze(curves, {**CONFIG, "seeds": 2})
    assert [c.id for c in claims] == IDS
    p = len(curves["isr/prefix_steps"])
    assert per_seed["test_mse_by_budget"].shape == (2, p)
    assert per_seed["pearson_heldout"].shape == (2,) and per_seed["pearson_sweep"].shape == (2,)
