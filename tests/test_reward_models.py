"""Tests of the internal social reward model (internalize.isr, SPEC 5)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.reward_models import isr
from internalize.config import ISRConfig

V, C, N_ACTIONS = 9, 4, 3
FRONT = (5, 4)  # the view cell in front of the agent (world._view_offsets: view[r + 1, r])


# ---------------------------------------------------------------------------------------------
# inputs


def _obs(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape + (V, V, C)).astype(np.uint8)


def test_inputs_onehot_planes():
    obs = _obs((2, 3))
    actions = np.array([[0, 1, 2], [2, 2, 1]])
    x = np.asarray(isr.inputs(jnp.asarray(obs), jnp.asarray(actions), N_ACTIONS))
    assert x.shape == (2, 3, V, V, C + N_ACTIONS) and x.dtype == np.float32
    assert x.shape[-1] == isr.n_input_planes(C, N_ACTIONS)
    np.testing.assert_array_equal(x[..., :C], obs.astype(np.float32))  # raw, unscaled
    planes = x[..., C:]
    c = V // 2
    off_centre = np.ones((V, V), bool)
    off_centre[c, c] = False
    assert not planes[:, :, off_centre].any()
    expected = np.eye(N_ACTIONS, dtype=np.float32)[actions]
    np.testing.assert_array_equal(planes[:, :, c, c, :], expected)


def test_inputs_index_plane():
    obs = _obs((4,), seed=1)
    actions = np.array([0, 1, 2, 2])
    x = np.asarray(isr.inputs(jnp.asarray(obs), jnp.asarray(actions), N_ACTIONS, "index"))
    assert x.shape == (4, V, V, C + 1) and x.shape[-1] == isr.n_input_planes(C, N_ACTIONS, planes="index")
    np.testing.assert_array_equal(x[..., :C], obs.astype(np.float32))
    expected = np.zeros((4, V, V), np.float32)
    expected[:, V // 2, V // 2] = actions
    np.testing.assert_array_equal(x[..., C], expected)


def test_inputs_unbatched():
    obs = _obs((), seed=2)
    x = np.asarray(isr.inputs(jnp.asarray(obs), jnp.int32(1), N_ACTIONS))
    assert x.shape == (V, V, C + N_ACTIONS)
    assert x[V // 2, V // 2, C:].tolist() == [0.0, 1.0, 0.0]
    assert x[..., C:].sum() == 1.0


@pytest.mark.parametrize("planes", ["onehot", "index"])
def test_inputs_two_agents(planes):
    obs = _obs((5,), seed=3)
    actions = np.array([[0, 2], [1, 1], [2, 0], [2, 2], [0, 0]])  # [N, k=2]
    x = np.asarray(isr.inputs(jnp.asarray(obs), jnp.asarray(actions), N_ACTIONS, planes))
    n_extra = 2 * N_ACTIONS if planes == "onehot" else 2
    assert x.shape == (5, V, V, C + n_extra)
    assert x.shape[-1] == isr.n_input_planes(C, N_ACTIONS, n_agents=2, planes=planes)
    np.testing.assert_array_equal(x[..., :C], obs.astype(np.float32))
    centre = x[:, V // 2, V // 2, C:]
    if planes == "onehot":
        expected = np.concatenate([np.eye(N_ACTIONS)[actions[:, 0]], np.eye(N_ACTIONS)[actions[:, 1]]], -1)
    else:
        expected = actions
    np.testing.assert_array_equal(centre, expected.astype(np.float32))
    assert x[..., C:].sum() == centre.sum()  # nothing off the centre


# ---------------------------------------------------------------------------------------------
# pearson and the split


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 0.3 * a + rng.normal(size=200)
    np.testing.assert_allclose(float(isr.pearson(jnp.asarray(a), jnp.asarray(b))), np.corrcoef(a, b)[0, 1],
                               rtol=1e-5)
    np.testing.assert_allclose(float(isr.pearson(jnp.asarray(a), jnp.asarray(-2 * a + 1))), -1.0, rtol=1e-5)
    assert np.isnan(float(isr.pearson(jnp.asarray(a), jnp.zeros(200))))


def test_split_sizes():
    cfg = ISRConfig()
    assert isr.split_sizes(4000, cfg) == (3600, 400)
    assert isr.split_sizes(10, cfg) == (9, 1)
    assert isr.split_sizes(2, cfg) == (1, 1)  # both sides keep at least one step
    assert isr.split_sizes(100, ISRConfig(train_fraction=0.75)) == (75, 25)
    for n in (2, 3, 7, 11, 1000):
        tr, te = isr.split_sizes(n, cfg)
        assert tr + te == n and tr >= 1 and te >= 1


# ---------------------------------------------------------------------------------------------
# Fitting


def synthetic(n, seed=0):
    """Coin-world-like steps: R_s = 0.4 when the goal is in front and the action is forward,
    a negative step cost on the other forward steps (never a target), 0 otherwise."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((n, V, V, C), np.uint8)
    obs[..., 0] = rng.choice([1, 2], size=(n, V, V), p=[0.8, 0.2])  # empty / wall
    obs[..., 1] = np.where(obs[..., 0] == 2, 5, 0)
    front = rng.random(n) < 0.3
    gx = np.where(front, FRONT[0], rng.integers(0, 4, n))
    gy = np.where(front, FRONT[1], rng.integers(0, V, n))
    rows = np.arange(n)
    obs[rows, gx, gy, 0], obs[rows, gx, gy, 1], obs[rows, gx, gy, 3] = 8, 1, 1
    obs[:, V // 2, V // 2, 0] = 10  # the agent
    action = rng.integers(0, N_ACTIONS, n)
    target = np.where(front & (action == 2), 0.4, np.where(action == 2, -0.045, 0.0)).astype(np.float32)
    return obs, action.astype(np.int32), target


@pytest.fixture(scope="module")
def fitted():
    obs, action, target = synthetic(4000)
    cfg = ISRConfig(lr=1e-3, batch_size=32, epochs=3)
    fit = jax.jit(lambda k, o, a, t: isr.fit(k, o, a, t, cfg, N_ACTIONS))
    res = jax.block_until_ready(fit(jax.random.PRNGKey(0), jnp.asarray(obs), jnp.asarray(action),
                                    jnp.asarray(target)))
    return cfg, obs, action, target, jax.tree.map(np.asarray, res._asdict())


def test_fit_recovers_known_reward(fitted):
    cfg, obs, action, target, res = fitted
    n_train, n_test = isr.split_sizes(len(obs), cfg)
    assert res["test_pred"].shape == (n_test,) == res["test_target"].shape
    var = float(np.var(res["test_target"]))
    assert var > 0.005
    assert res["test_mse"][-1] < 0.2 * var, res["test_mse"]
    assert res["test_mse"][-1] < res["test_mse"][0]
    assert float(isr.pearson(jnp.asarray(res["test_pred"]), jnp.asarray(res["test_target"]))) > 0.9
    # the returned params are the final ones: predicting with them reproduces test_pred
    x = isr.inputs(jnp.asarray(obs[n_train:]), jnp.asarray(action[n_train:]), N_ACTIONS)
    np.testing.assert_allclose(np.asarray(isr.predict(res["params"], x)), res["test_pred"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(res["test_mse"][-1], np.mean((res["test_pred"] - res["test_target"]) ** 2),
                               rtol=1e-4)


def test_fit_chronological_split_and_clipped_targets(fitted):
    cfg, obs, action, target, res = fitted
    n_train, _ = isr.split_sizes(len(obs), cfg)
    assert (target < 0).any()  # the data do hold step costs ...
    assert (res["test_target"] >= 0).all()  # ... which are never targets
    np.testing.assert_array_equal(res["test_target"], np.maximum(target[n_train:], 0.0))  # the last 10%


def test_fit_learning_curve_bookkeeping(fitted):
    cfg, obs, _, _, res = fitted
    n_train, _ = isr.split_sizes(len(obs), cfg)
    assert res["train_loss"].shape == res["test_mse"].shape == res["samples_seen"].shape == (isr.N_EVALS,)
    assert np.isfinite(res["train_loss"]).all()
    seen = res["samples_seen"]
    assert (np.diff(seen) > 0).all() and np.all(seen % cfg.batch_size == 0)
    # about `epochs` passes over the training steps in all (rounded up to whole segments)
    assert cfg.epochs * n_train <= seen[-1] < cfg.epochs * n_train + isr.N_EVALS * cfg.batch_size


def test_balanced_sampling():
    """Uninformative inputs: the net can only learn the mean target of the samples it draws.

    With 1% rewarded steps, balanced sampling draws them half the time (mean 0.5 * 0.4 = 0.2);
    uniform sampling draws them 1% of the time (mean 0.004).
    """
    n = 1000
    obs = jnp.zeros((n, V, V, C), jnp.uint8)
    action = jnp.zeros((n,), jnp.int32)
    target = jnp.asarray(np.where(np.arange(n) % 100 == 7, 0.4, 0.0), jnp.float32)
    preds = {}
    for balanced in (True, False):
        cfg = ISRConfig(lr=1e-2, batch_size=32, epochs=5, balanced=balanced)
        res = jax.jit(lambda k, o, a, t: isr.fit(k, o, a, t, cfg, N_ACTIONS))(jax.random.PRNGKey(1), obs, action,
                                                                             target)
        preds[balanced] = np.asarray(res.test_pred)
        # the balanced training loss is the variance of a 50/50 mix of 0 and 0.4 (0.04)
        if balanced:
            assert 0.03 < float(res.train_loss[-5:].mean()) < 0.05
    assert np.ptp(preds[True]) < 1e-4 and np.ptp(preds[False]) < 1e-4  # constant inputs, constant output
    assert 0.13 < preds[True].mean() < 0.27, preds[True].mean()
    assert abs(preds[False].mean()) < 0.03, preds[False].mean()


def test_steps_the_caregiver_missed_are_neither_trained_on_nor_scored():
    """Socialization records R_s as NaN where the caregiver was absent (weaning): such a step is
    unobserved. Uninformative inputs, uniform sampling: the net learns the mean target of the
    steps it draws. Observed steps are half rewarded (mean 0.2); were the missed steps drawn
    (as zeros), the mean would be 0.1."""
    n = 1000
    obs = jnp.zeros((n, V, V, C), jnp.uint8)
    action = jnp.zeros((n,), jnp.int32)
    t = np.where(np.arange(n) % 2 == 0, 0.4, 0.0).astype(np.float32)
    missed = (np.arange(n) < 500) | (np.arange(n) >= 950)  # half of training, half of the held-out steps
    t[missed] = np.nan
    cfg = ISRConfig(lr=2e-3, batch_size=64, epochs=10, balanced=False)
    res = jax.jit(lambda k, o, a, y: isr.fit(k, o, a, y, cfg, N_ACTIONS))(jax.random.PRNGKey(1), obs, action,
                                                                         jnp.asarray(t))
    res = jax.tree.map(np.asarray, res._asdict())
    assert np.isfinite(res["train_loss"]).all() and np.isfinite(res["test_mse"]).all()
    assert 0.15 < res["test_pred"].mean() < 0.25, res["test_pred"].mean()
    np.testing.assert_array_equal(res["test_mask"], ~missed[res["test_index"]])  # scored: observed only
    # a fit's length is set by its window (900 training steps, observed or not), as before
    assert cfg.epochs * 900 <= res["samples_seen"][-1] < cfg.epochs * 900 + isr.N_EVALS * cfg.batch_size
