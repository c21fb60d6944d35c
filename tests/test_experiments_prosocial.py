"""Experiment 6's analysis (prosocial helping) on synthetic curves: isr keeps helping its partner,
none stops. The events are partner goals reached per episode."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from internalize.experiments import prosocial

ARMS = ["oracle", "none", "isr"]
S, U, E = 5, 50, 20  # tail = the last 5 updates
IDS = ["prosocial_isr_keeps_helping", "prosocial_none_stops"]


def make_curves(rng, soc=4.7, oracle=4.7, none=0.3, isr=4.4, noise=0.2, arms=ARMS):
    """Curves whose tails are exactly the per-seed end values; the heads go the other way."""
    def ends(m):
        return (m + noise * rng.standard_normal(S)).astype(np.float32)

    socialize = np.zeros((S, U), np.float32)
    socialize[:, :-5] = np.linspace(0.0, soc, U - 5, dtype=np.float32)
    soc_end = ends(soc)
    socialize[:, -5:] = soc_end[:, None]
    targets = {"oracle": oracle, "none": none, "isr": isr}
    autonomy = np.zeros((S, len(arms), U), np.float32)
    end = {}
    for i, a in enumerate(arms):
        end[a] = ends(targets[a])
        autonomy[:, i, :-5] = np.linspace(soc, 2 * soc - targets[a], U - 5, dtype=np.float32)
        autonomy[:, i, -5:] = end[a][:, None]
    curves = {"socialize/goals_per_episode": socialize, "autonomy/goals_per_episode": autonomy,
              "isr/test_mse": rng.uniform(1e-4, 1e-3, (S, 1, E)).astype(np.float32),
              "isr/pearson": rng.uniform(0.7, 0.9, (S, 1))}
    return curves, soc_end.astype(float), {a: v.astype(float) for a, v in end.items()}


def config(arms=ARMS):
    return {"arms": list(arms), "seeds": S, "preset": "fast"}


def by_id(claims):
    return {c.id: c for c in claims}


def test_clear_helping_both_claims_hold_with_their_values_and_p():
    rng = np.random.default_rng(0)
    curves, soc, end = make_curves(rng)
    claims, _ = prosocial.analyze(curves, config())
    assert [c.id for c in claims] == IDS
    c = by_id(claims)
    keeps, stops = c["prosocial_isr_keeps_helping"], c["prosocial_none_stops"]
    assert keeps.holds and stops.holds
    assert keeps.value == pytest.approx(end["isr"].mean(), rel=1e-6)
    assert stops.value == pytest.approx(end["none"].mean(), rel=1e-6)
    p = sps.ttest_ind(end["none"], end["isr"]).pvalue
    assert keeps.p_value == pytest.approx(p, rel=1e-5) and stops.p_value == pytest.approx(p, rel=1e-5)
    assert keeps.detail["socialized"] == pytest.approx(soc.mean(), rel=1e-6)
    assert keeps.detail["oracle"] == pytest.approx(end["oracle"].mean(), rel=1e-6)
    assert keeps.detail["retained_fraction"] == pytest.approx(end["isr"].mean() / soc.mean(), rel=1e-6)
    assert keeps.detail["isr_vs_oracle_p"] == pytest.approx(sps.ttest_ind(end["isr"], end["oracle"]).pvalue,
                                                            rel=1e-5)
    assert stops.detail["none"] == pytest.approx(end["none"].mean(), rel=1e-6)
    assert stops.detail["isr"] == pytest.approx(end["isr"].mean(), rel=1e-6)


def test_per_seed_shapes_and_values():
    rng = np.random.default_rng(1)
    curves, soc, end = make_curves(rng)
    _, per_seed = prosocial.analyze(curves, config())
    assert set(per_seed) == {"socialized_helping_per_episode", "end_of_autonomy_helping_per_episode",
                             "isr_test_mse", "isr_pearson"}
    assert per_seed["socialized_helping_per_episode"].shape == (S,)
    np.testing.assert_allclose(per_seed["socialized_helping_per_episode"], soc, rtol=1e-6)
    assert set(per_seed["end_of_autonomy_helping_per_episode"]) == set(ARMS)
    for a in ARMS:
        assert per_seed["end_of_autonomy_helping_per_episode"][a].shape == (S,)
        np.testing.assert_allclose(per_seed["end_of_autonomy_helping_per_episode"][a], end[a], rtol=1e-6)
    assert per_seed["isr_test_mse"].shape == (S,)
    np.testing.assert_array_equal(per_seed["isr_test_mse"], curves["isr/test_mse"][:, -1, -1])
    assert per_seed["isr_pearson"].shape == (S,)
    np.testing.assert_array_equal(per_seed["isr_pearson"], curves["isr/pearson"][:, -1])


def test_neither_claim_holds_when_none_keeps_helping():
    rng = np.random.default_rng(2)
    curves, _, _ = make_curves(rng, none=4.4, isr=4.4)
    c = by_id(prosocial.analyze(curves, config())[0])
    assert not c["prosocial_isr_keeps_helping"].holds and not c["prosocial_none_stops"].holds


def test_flipped_arms_fail_both_claims():
    """isr stops and none keeps helping: the same significance, the wrong direction."""
    rng = np.random.default_rng(3)
    curves, _, _ = make_curves(rng, none=4.4, isr=0.3)
    c = by_id(prosocial.analyze(curves, config())[0])
    assert c["prosocial_none_stops"].p_value < 1e-6
    assert not c["prosocial_isr_keeps_helping"].holds and not c["prosocial_none_stops"].holds


def test_none_stopping_does_not_count_when_isr_stops_even_more():
    """Both collapse, isr further than none (significantly): none helps less than half as often
    as when socialized, yet not less than isr, so "helping stops without the ISR" is not shown."""
    rng = np.random.default_rng(7)
    curves, _, _ = make_curves(rng, none=1.5, isr=0.1, noise=0.1)
    c = by_id(prosocial.analyze(curves, config())[0])
    assert c["prosocial_none_stops"].p_value < 1e-6 and c["prosocial_none_stops"].value < 0.5 * 4.7
    assert not c["prosocial_none_stops"].holds and not c["prosocial_isr_keeps_helping"].holds


@pytest.mark.parametrize("isr, keeps", [(3.8, True), (3.2, False)])  # 81% and 68% of 4.7
def test_isr_keeps_helping_needs_three_quarters_of_socialized(isr, keeps):
    rng = np.random.default_rng(4)
    curves, _, _ = make_curves(rng, isr=isr, noise=0.05)
    c = by_id(prosocial.analyze(curves, config())[0])
    assert c["prosocial_isr_keeps_helping"].holds is keeps
    assert c["prosocial_none_stops"].holds


@pytest.mark.parametrize("none, stops", [(2.0, True), (2.7, False)])  # 43% and 57% of 4.7
def test_none_stops_needs_less_than_half_of_socialized(none, stops):
    rng = np.random.default_rng(5)
    curves, _, _ = make_curves(rng, none=none, noise=0.05)
    c = by_id(prosocial.analyze(curves, config())[0])
    assert c["prosocial_none_stops"].holds is stops
    assert c["prosocial_isr_keeps_helping"].holds


def test_arms_are_read_by_name_from_the_config():
    rng = np.random.default_rng(6)
    arms = ["none", "isr", "oracle"]
    curves, _, end = make_curves(rng, arms=arms)
    c = by_id(prosocial.analyze(curves, config(arms))[0])
    assert c["prosocial_isr_keeps_helping"].holds and c["prosocial_none_stops"].holds
    assert c["prosocial_none_stops"].value == pytest.approx(end["none"].mean(), rel=1e-6)


def test_the_stored_golden_curves_analyze_to_the_same_claims_and_shapes():
    path = Path(__file__).parent / "golden" / "prosocial.npz"
    curves = {k: v for k, v in np.load(path).items()}
    claims, per_seed = prosocial.analyze(curves, {**config(), "seeds": 2})
    assert [c.id for c in claims] == IDS
    assert per_seed["socialized_helping_per_episode"].shape == (2,)
    assert all(v.shape == (2,) for v in per_seed["end_of_autonomy_helping_per_episode"].values())
