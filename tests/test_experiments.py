"""Experiment plumbing: the exhaustive ISR sweep, arms, statistics helpers against SciPy, report."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import jax
import numpy as np
import pytest
from scipy import stats as sps

from internalize.config import PRESETS
from internalize import caregivers as caregiver
from internalize import experiments, stats
from internalize.worlds import coin as world


def test_sweep_covers_every_cell_direction_action_exactly_once():
    layouts = []
    for k in jax.random.split(jax.random.PRNGKey(3), 4):
        lay = world.draw_layout(k, world.coin_params(3))
        layouts.append((np.asarray(lay.walls), np.asarray(lay.goal)))
    states, actions, index = world.sweep(layouts)
    rows = {tuple(r) for r in index.tolist()}
    assert len(rows) == len(index)  # no repeats
    expected = set()
    for li, (walls, goal) in enumerate(layouts):
        for x in range(7):
            for y in range(7):
                if not walls[x, y] and (x, y) != tuple(goal):
                    expected |= {(li, x, y, d, a) for d in range(4) for a in range(3)}
    assert rows == expected
    assert len(index) == sum((~w).sum() - 1 for w, _ in layouts) * 12
    # The caregiver's reward in the sweep: 0.4 exactly when moving forward onto the goal.
    info = jax.vmap(world.step, in_axes=(None, 0, 0, None))(jax.random.PRNGKey(0), states, actions,
                                                             world.coin_params(3))[5]
    r_s = np.asarray(caregiver.social_reward(caregiver.caregiver(), info))
    front = index[:, 1:3] + world.DIR_VEC[index[:, 3]]
    goals = np.stack([layouts[i][1] for i in index[:, 0]])
    onto_goal = (index[:, 4] == world.FORWARD) & np.all(front == goals, 1)
    np.testing.assert_allclose(r_s, np.where(onto_goal, 0.4, 0.0), atol=1e-7)
    assert onto_goal.sum() > 0


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


def test_experiments_are_declared_with_their_paper_budgets():
    e = experiments.EXPERIMENTS
    assert set(e) == {"unlearning", "isr_accuracy", "ood_walls", "ood_maps", "reward_hacking", "prosocial"}
    assert e["prosocial"].budget == experiments.Budget(480_000, 480_000)
    assert e["prosocial"].conditions == ("oracle", "none", "isr") and e["prosocial"].isr_replaces_reward
    paper_isr = e["prosocial"].isr_config(PRESETS["paper"])
    assert (paper_isr.batch_size, paper_isr.epochs) == (10, 10.0)  # SPEC 8
    assert e["unlearning"].budget == experiments.Budget(120_000, 120_000)
    assert e["ood_walls"].socialize_world.n_walls == 1 and e["ood_walls"].autonomy_world.n_walls == 5
    assert e["ood_walls"].eval_episodes == 100
    assert e["ood_maps"].budget.autonomy_steps == 240_000
    assert {w.map_name for w in e["ood_maps"].eval_worlds} == set(world.NAMED_MAPS)
    assert [round(f * 120_000) for f in e["isr_accuracy"].isr_prefixes] == [10_000, 20_000, 30_000, 40_000,
                                                                             80_000, 120_000]


def test_interleave_is_seed_major():
    a = {"v": np.array([0, 10])}  # arm 0 for seeds 0, 1
    b = {"v": np.array([1, 11])}  # arm 1
    out = experiments.pipeline._interleave([a, b])
    assert np.asarray(out["v"]).tolist() == [0, 1, 10, 11]
