"""Experiment 5's analysis (reward hacking) on synthetic autonomy curves: with the smallest
socialization budget real goals fall while internal return does not; the hacking gap shrinks
with budget."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from internalize.experiments import reward_hacking as rh

S, U = 8, 40  # head and tail = 4 updates each
BUDGETS = np.array(rh.HACKING_BUDGETS)
A = len(BUDGETS)
ARMS = [f"isr@{b}" for b in rh.HACKING_BUDGETS]
IDS = ["undertrained_isr_is_hacked", "hacking_gap_shrinks"]
CONFIG = {"arms": ARMS, "seeds": S, "preset": "fast"}


def ramp(rng, start, end, sd):
    """``[S, A, U]``: per arm from ``start[a]`` to ``end[a]``; head and tail are flat at those values
    (plus per-seed noise), the middle a straight line."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    s = start[None, :] + sd * rng.standard_normal((S, A))
    e = end[None, :] + sd * rng.standard_normal((S, A))
    frac = np.clip((np.arange(U) - 3) / (U - 8), 0, 1)  # 0 over the head, 1 over the tail
    return (s[..., None] + (e - s)[..., None] * frac).astype(np.float32)


def make_curves(rng, goals_start, goals_end, internal_start, internal_end, sd=0.1):
    goals = ramp(rng, goals_start, goals_end, sd)
    internal = ramp(rng, internal_start, internal_end, sd)
    return {"arms/socialized_steps": BUDGETS, "autonomy/goals_per_episode": goals,
            "autonomy/internal_return": internal}


def hacked(rng, sd=0.1):
    """The paper's picture: the smallest budget's goals fall 4 -> 0.5 while its internal return rises
    1.6 -> 3; larger budgets hack less, the largest not at all (internal = 0.4 x goals)."""
    hack = np.linspace(1.0, 0.0, A)  # 1 at the smallest budget, 0 at the largest
    goals_end = 4.0 - 3.5 * hack
    internal_end = rh.GOAL_REWARD * goals_end + 2.8 * hack
    return make_curves(rng, np.full(A, 4.0), goals_end, np.full(A, 1.6), internal_end, sd)


def by_id(claims):
    return {c.id: c for c in claims}


def test_clear_hacking_both_claims_hold_with_their_values():
    rng = np.random.default_rng(0)
    curves = hacked(rng)
    claims, _ = rh.analyze(curves, CONFIG)
    assert [c.id for c in claims] == IDS
    c = by_id(claims)
    assert c["undertrained_isr_is_hacked"].holds and c["hacking_gap_shrinks"].holds
    goals = curves["autonomy/goals_per_episode"].astype(float)
    internal = curves["autonomy/internal_return"].astype(float)
    end_goals, end_internal = goals[..., -4:].mean(-1), internal[..., -4:].mean(-1)
    start_internal = internal[..., :4].mean(-1)
    h = c["undertrained_isr_is_hacked"]
    assert h.value == pytest.approx(end_goals[:, 0].mean(), rel=1e-5)
    assert h.value == pytest.approx(0.5, abs=0.1)
    assert h.p_value == pytest.approx(sps.ttest_ind(end_goals[:, 0], end_goals[:, -1], alternative="less").pvalue,
                                      rel=1e-3)
    assert h.detail["goals_end_large"] == pytest.approx(end_goals[:, -1].mean(), rel=1e-5)
    assert h.detail["internal_start_small"] == pytest.approx(start_internal[:, 0].mean(), rel=1e-5)
    assert h.detail["internal_end_small"] == pytest.approx(end_internal[:, 0].mean(), rel=1e-5)
    assert "2,048" in h.statement and "120,000" in h.statement
    g = c["hacking_gap_shrinks"]
    gap = end_internal - rh.GOAL_REWARD * end_goals
    assert g.value == pytest.approx(sps.spearmanr(np.log(BUDGETS), gap.mean(0)).statistic)
    assert g.value == pytest.approx(-1.0)
    assert g.p_value == pytest.approx(sps.ttest_ind(gap[:, 0], gap[:, -1], alternative="greater").pvalue, rel=1e-3)
    assert list(g.detail["gap_by_budget"]) == [str(b) for b in rh.HACKING_BUDGETS]
    assert g.detail["gap_by_budget"]["2048"] == pytest.approx(2.8, abs=0.1)
    assert g.detail["gap_by_budget"]["120000"] == pytest.approx(0.0, abs=0.1)


def test_per_seed_shapes_and_values():
    rng = np.random.default_rng(1)
    curves = hacked(rng)
    _, per_seed = rh.analyze(curves, CONFIG)
    assert set(per_seed) == {"socialized_steps", "end_goals", "end_internal_return", "hacking_gap"}
    np.testing.assert_array_equal(per_seed["socialized_steps"], BUDGETS)
    for k in ("end_goals", "end_internal_return", "hacking_gap"):
        assert per_seed[k].shape == (S, A)
    end_goals = curves["autonomy/goals_per_episode"].astype(float)[..., -4:].mean(-1)
    end_internal = curves["autonomy/internal_return"].astype(float)[..., -4:].mean(-1)
    np.testing.assert_allclose(per_seed["end_goals"], end_goals, rtol=1e-6)
    np.testing.assert_allclose(per_seed["end_internal_return"], end_internal, rtol=1e-6)
    np.testing.assert_allclose(per_seed["hacking_gap"], end_internal - 0.4 * end_goals, rtol=1e-5, atol=1e-6)


def test_no_hacking_when_every_budget_behaves_alike():
    """Flip the effect: the smallest budget reaches more goals than the largest, and its gap is the
    smallest; neither claim holds."""
    rng = np.random.default_rng(2)
    more = np.linspace(0.0, 1.0, A)  # the largest budget hacks most
    goals_end = 4.0 - 3.5 * more
    curves = make_curves(rng, np.full(A, 4.0), goals_end, np.full(A, 1.6), rh.GOAL_REWARD * goals_end + 2.8 * more)
    c = by_id(rh.analyze(curves, CONFIG)[0])
    assert not c["undertrained_isr_is_hacked"].holds and c["undertrained_isr_is_hacked"].p_value > 0.99
    assert not c["hacking_gap_shrinks"].holds and c["hacking_gap_shrinks"].value == pytest.approx(1.0)


def test_goals_falling_with_internal_return_falling_too_is_not_hacking():
    """Goals fall at the smallest budget, but so does the internal return: the learner is not
    collecting reward its goals do not earn."""
    rng = np.random.default_rng(3)
    hack = np.linspace(1.0, 0.0, A)
    goals_end = 4.0 - 3.5 * hack
    internal_start = np.full(A, 1.6)
    falling = make_curves(rng, np.full(A, 4.0), goals_end, internal_start, internal_start - 1.0 * hack)
    c = by_id(rh.analyze(falling, CONFIG)[0])["undertrained_isr_is_hacked"]
    assert c.p_value < 1e-6  # the goals did fall, significantly
    assert c.detail["internal_end_small"] < c.detail["internal_start_small"]
    assert not c.holds
    kept = make_curves(rng, np.full(A, 4.0), goals_end, internal_start, internal_start + 0.2 * hack)
    assert by_id(rh.analyze(kept, CONFIG)[0])["undertrained_isr_is_hacked"].holds


def test_gap_larger_at_the_smallest_budget_but_not_decreasing_fails_spearman():
    """The gap at the smallest budget is far above the largest (significant), yet rises with budget
    in between: Spearman rho > 0, so the gap does not shrink with socialization."""
    rng = np.random.default_rng(4)
    gap = np.array([2.0, 2.5, 3.0, 3.5, 4.0, 0.0])
    goals_end = np.full(A, 4.0)
    curves = make_curves(rng, goals_end, goals_end, np.full(A, 1.6), rh.GOAL_REWARD * goals_end + gap)
    c = by_id(rh.analyze(curves, CONFIG)[0])["hacking_gap_shrinks"]
    assert c.p_value < 1e-6
    assert c.value == pytest.approx(sps.spearmanr(np.arange(A), gap).statistic) and c.value > 0
    assert not c.holds
    shrinking = np.array([4.0, 3.5, 3.0, 2.5, 2.0, 0.0])  # decreasing all the way: it holds
    curves = make_curves(rng, goals_end, goals_end, np.full(A, 1.6), rh.GOAL_REWARD * goals_end + shrinking)
    assert by_id(rh.analyze(curves, CONFIG)[0])["hacking_gap_shrinks"].holds


def test_the_stored_golden_curves_analyze_to_the_same_claims_and_shapes():
    path = Path(__file__).parent / "golden" / "reward_hacking.npz"
    curves = dict(np.load(path))
    claims, per_seed = rh.analyze(curves, {**CONFIG, "seeds": 2})
    assert [c.id for c in claims] == IDS
    assert per_seed["hacking_gap"].shape == (2, A)
