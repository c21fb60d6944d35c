"""Experiment 1's analysis (unlearning) on synthetic curves: none collapses, isr persists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from internalize.experiments import unlearning

ARMS = ["oracle", "none", "isr"]
S, U, P, E = 8, 40, 1, 20  # tail = the last 4 updates
IDS = ["none_unlearns", "isr_keeps"]


def make_curves(rng, soc=4.0, oracle=4.0, none=0.4, isr=3.8, noise=0.15, arms=ARMS, seeds=S):
    """Curves whose tails are exactly the per-seed end values drawn around the given means; the
    heads go the other way (start of the phase), so averaging them in would change the verdict."""
    def ends(m):
        return (m + noise * rng.standard_normal(seeds)).astype(np.float32)

    socialize = np.zeros((seeds, U), np.float32)
    socialize[:, :-4] = np.linspace(0.0, soc, U - 4, dtype=np.float32)
    soc_end = ends(soc)
    socialize[:, -4:] = soc_end[:, None]
    targets = {"oracle": oracle, "none": none, "isr": isr}
    autonomy = np.zeros((seeds, len(arms), U), np.float32)
    end = {}
    for i, a in enumerate(arms):
        end[a] = ends(targets[a])
        autonomy[:, i, :-4] = np.linspace(soc, 2 * soc - targets[a], U - 4, dtype=np.float32)  # heads away
        autonomy[:, i, -4:] = end[a][:, None]
    mse = rng.uniform(1e-6, 1e-5, (seeds, P, E)).astype(np.float32)
    pearson = rng.uniform(0.8, 0.95, (seeds, P))
    curves = {"socialize/goals_per_episode": socialize, "autonomy/goals_per_episode": autonomy,
              "isr/test_mse": mse, "isr/pearson": pearson}
    return curves, soc_end.astype(float), {a: v.astype(float) for a, v in end.items()}


def config(arms=ARMS, seeds=S):
    return {"arms": list(arms), "seeds": seeds, "preset": "fast"}


def by_id(claims):
    return {c.id: c for c in claims}


def test_clear_unlearning_both_claims_hold_with_their_values_and_p():
    rng = np.random.default_rng(0)
    curves, soc, end = make_curves(rng)
    claims, _ = unlearning.analyze(curves, config())
    assert [c.id for c in claims] == IDS
    c = by_id(claims)
    assert c["none_unlearns"].holds and c["isr_keeps"].holds
    assert c["none_unlearns"].value == pytest.approx(end["none"].mean(), rel=1e-6)
    assert c["isr_keeps"].value == pytest.approx(end["isr"].mean(), rel=1e-6)
    p = sps.ttest_ind(end["none"], end["isr"]).pvalue
    assert c["none_unlearns"].p_value == pytest.approx(p, rel=1e-6)
    assert c["isr_keeps"].p_value == pytest.approx(p, rel=1e-6)
    assert p < 1e-6
    d = c["isr_keeps"].detail
    assert d["socialized"] == pytest.approx(soc.mean(), rel=1e-6)
    assert d["oracle"] == pytest.approx(end["oracle"].mean(), rel=1e-6)
    assert d["retained_fraction"] == pytest.approx(end["isr"].mean() / soc.mean(), rel=1e-6)
    assert d["isr_vs_oracle_p"] == pytest.approx(sps.ttest_ind(end["isr"], end["oracle"]).pvalue, rel=1e-5)
    assert c["none_unlearns"].detail["none"] == pytest.approx(end["none"].mean(), rel=1e-6)
    assert all("two-sample t" in x.test for x in claims)


def test_per_seed_shapes_and_values():
    rng = np.random.default_rng(1)
    curves, soc, end = make_curves(rng)
    _, per_seed = unlearning.analyze(curves, config())
    assert set(per_seed) == {"socialized_goals_per_episode", "end_of_autonomy_goals_per_episode", "isr_test_mse",
                             "isr_pearson"}
    assert per_seed["socialized_goals_per_episode"].shape == (S,)
    np.testing.assert_allclose(per_seed["socialized_goals_per_episode"], soc, rtol=1e-6)
    assert set(per_seed["end_of_autonomy_goals_per_episode"]) == set(ARMS)
    for a in ARMS:
        assert per_seed["end_of_autonomy_goals_per_episode"][a].shape == (S,)
        np.testing.assert_allclose(per_seed["end_of_autonomy_goals_per_episode"][a], end[a], rtol=1e-6)
    assert per_seed["isr_test_mse"].shape == (S,)
    np.testing.assert_array_equal(per_seed["isr_test_mse"], curves["isr/test_mse"][:, -1, -1])
    assert per_seed["isr_pearson"].shape == (S,)
    np.testing.assert_array_equal(per_seed["isr_pearson"], curves["isr/pearson"][:, -1])


def test_no_unlearning_when_none_keeps_its_goals():
    """Flip the effect: none persists as well as isr; neither claim holds."""
    rng = np.random.default_rng(2)
    curves, _, _ = make_curves(rng, none=3.8, isr=3.8)
    c = by_id(unlearning.analyze(curves, config())[0])
    assert not c["none_unlearns"].holds
    assert not c["isr_keeps"].holds  # isr is not significantly above none


def test_isr_collapsing_too_fails_isr_keeps_only():
    rng = np.random.default_rng(3)
    curves, _, _ = make_curves(rng, none=0.4, isr=0.4)
    c = by_id(unlearning.analyze(curves, config())[0])
    assert not c["isr_keeps"].holds
    assert not c["none_unlearns"].holds  # none is below half, but not below isr significantly


def test_none_below_half_does_not_count_when_isr_collapses_further():
    rng = np.random.default_rng(8)
    curves, _, _ = make_curves(rng, soc=4.0, none=1.5, isr=0.1, noise=0.1)
    c = by_id(unlearning.analyze(curves, config())[0])
    assert c["none_unlearns"].p_value < 1e-6 and c["none_unlearns"].value < 2.0
    assert not c["none_unlearns"].holds and not c["isr_keeps"].holds


def test_isr_below_three_quarters_of_socialized_fails_isr_keeps():
    rng = np.random.default_rng(4)
    keep = make_curves(rng, soc=4.0, none=0.2, isr=3.3)[0]  # 82% retained
    lose = make_curves(rng, soc=4.0, none=0.2, isr=2.6)[0]  # 65% retained, still far above none
    ck, cl = by_id(unlearning.analyze(keep, config())[0]), by_id(unlearning.analyze(lose, config())[0])
    assert ck["isr_keeps"].holds and not cl["isr_keeps"].holds
    assert ck["none_unlearns"].holds and cl["none_unlearns"].holds
    assert cl["isr_keeps"].detail["retained_fraction"] == pytest.approx(0.65, abs=0.05)


def test_none_above_half_of_socialized_fails_none_unlearns():
    rng = np.random.default_rng(5)
    curves, _, _ = make_curves(rng, soc=4.0, none=2.4, isr=3.9)  # 60% kept: significantly below isr, not half
    c = by_id(unlearning.analyze(curves, config())[0])
    assert not c["none_unlearns"].holds
    assert c["none_unlearns"].p_value < 0.05
    assert c["isr_keeps"].holds


def test_a_large_but_insignificant_drop_does_not_count():
    """Three seeds, one of which did not unlearn: none's mean is below half, yet not significant."""
    soc = np.full((3, U), 4.0, np.float32)
    autonomy = np.full((3, 3, U), 4.0, np.float32)
    autonomy[:, 0, -4:] = np.array([3.8, 4.0, 4.2], np.float32)[:, None]  # oracle
    autonomy[:, 2, -4:] = np.array([3.9, 4.0, 4.1], np.float32)[:, None]  # isr
    autonomy[:, 1, -4:] = np.array([0.0, 0.0, 5.0], np.float32)[:, None]  # none
    curves = {"socialize/goals_per_episode": soc, "autonomy/goals_per_episode": autonomy,
              "isr/test_mse": np.ones((3, 1, E)), "isr/pearson": np.ones((3, 1))}
    c = by_id(unlearning.analyze(curves, config(seeds=3))[0])
    assert c["none_unlearns"].value == pytest.approx(5 / 3)
    assert c["none_unlearns"].p_value > 0.05
    assert not c["none_unlearns"].holds and not c["isr_keeps"].holds
    autonomy[:, 1, -4:] = np.array([0.0, 0.1, 0.2], np.float32)[:, None]  # all three unlearn: now it counts
    c = by_id(unlearning.analyze(curves, config(seeds=3))[0])
    assert c["none_unlearns"].holds and c["isr_keeps"].holds


def test_arms_are_read_by_name_from_the_config():
    rng = np.random.default_rng(6)
    arms = ["isr", "none", "oracle"]
    curves, _, end = make_curves(rng, arms=arms)
    claims, _ = unlearning.analyze(curves, config(arms))
    c = by_id(claims)
    assert c["none_unlearns"].holds and c["isr_keeps"].holds
    assert c["isr_keeps"].value == pytest.approx(end["isr"].mean(), rel=1e-6)
    # Read in the declared order instead, the same array means something else and the verdict flips.
    c = by_id(unlearning.analyze(curves, config(["none", "isr", "oracle"]))[0])
    assert not c["isr_keeps"].holds


def test_the_stored_golden_curves_analyze_to_the_same_claims_and_shapes():
    path = Path(__file__).parent / "golden" / "unlearning.npz"
    curves = dict(np.load(path))
    claims, per_seed = unlearning.analyze(curves, config(seeds=2))
    assert [c.id for c in claims] == IDS
    assert all(isinstance(c.holds, bool) for c in claims)
    assert per_seed["socialized_goals_per_episode"].shape == (2,)
    assert all(v.shape == (2,) for v in per_seed["end_of_autonomy_goals_per_episode"].values())
