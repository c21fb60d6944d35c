"""Tests of the reward models learned from the caregiver's praise other than the ISR: the
bootstrap ensemble (internalize.reward_models.ensemble) and the preference model
(internalize.reward_models.preference), on a tiny synthetic world whose reward is known."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import reward_models
from internalize.config import ISRConfig
from internalize.reward_models import DataSpec, IsrEnsemble, Preference, ensemble, isr, preference

V, C, N_ACTIONS, N_ENVS, N = 3, 4, 3, 4, 3000
SEEDS = 2


def features(obs):
    return obs.reshape(obs.shape[:-3] + (-1,)) / 2.0


SPEC = DataSpec((V, V, C), N_ACTIONS, 1, features, N_ENVS)
CFG = ISRConfig(lr=1e-2, batch_size=32, epochs=5, network="mlp", hidden=(16,))


def true_reward(obs, action):
    """0.5 per unit of the corner cell's first channel (0..2), 0.4 for action 1."""
    return 0.5 * obs[..., 0, 0, 0].astype(np.float32) + 0.4 * (action == 1)


def synthetic(seed=0):
    rng = np.random.default_rng(seed)
    obs = np.zeros((N, V, V, C), np.uint8)
    obs[..., :3] = rng.integers(0, 3, (N, V, V, 3))  # channel 3 is never seen lit (the OOD test lights it)
    action = rng.integers(0, N_ACTIONS, N).astype(np.int32)
    return obs, action, true_reward(obs, action).astype(np.float32)


def with_unobserved(r):
    """R_s the caregiver missed (NaN): every 5th step, and a stretch of the held-out window."""
    r = r.copy()
    r[::5] = np.nan
    r[2600:2700] = np.nan
    return r


def fit_fn(model):
    """One compiled fit, vmapped over seeds, with a traced n_valid (as phases.internalize calls it)."""
    def one(k, o, a, r, n, p0):
        return model.fit(k, CFG, SPEC, (o, a, r), n, p0)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None, 0)))


def run(model, r, n_valid):
    obs, action, _ = synthetic()
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    inits = jax.vmap(lambda k: model.init(k, CFG, SPEC))(keys)
    fn = fit_fn(model)
    res = fn(keys, jnp.asarray(obs), jnp.asarray(action), jnp.asarray(r), jnp.int32(n_valid), inits)
    return jax.tree.map(np.asarray, res._asdict())


@pytest.fixture(scope="module")
def ens():
    """A 3-member ensemble's fits (beta 0) on all steps and, with unobserved steps, on a prefix
    (one compiled program serves both)."""
    model = IsrEnsemble(k=3, beta=0.0)
    _, _, r = synthetic()
    return model, run(model, r, N), run(model, with_unobserved(r), 2500)


@pytest.fixture(scope="module")
def pref():
    model = Preference(segment=4)
    _, _, r = synthetic()
    return model, run(model, r, N), run(model, with_unobserved(r), 2500)


def n_train_of(n):
    return int(isr.window(N, CFG, jnp.int32(n))[1])


def one_seed(res, s=0):
    return jax.tree.map(lambda x: x[s], res)


# ---------------------------------------------------------------------------------------------
# the ensemble


def test_ensemble_recovers_the_reward_and_beta_is_pessimistic(ens):
    model, res, _ = ens
    obs, action, r = synthetic()
    n_train = n_train_of(N)
    assert res["test_pred"].shape == (SEEDS, N - n_train + 1)
    for s in range(SEEDS):
        m = res["test_mask"][s]
        assert m.sum() == N - n_train and res["test_index"][s, 0] == n_train  # the ISR's window
        assert float(isr.pearson(res["test_pred"][s], res["test_target"][s], m)) > 0.9
    params = one_seed(res)["params"]
    assert jax.tree.leaves(params)[0].shape[0] == 3  # members stacked on a leading K axis
    o, a = jnp.asarray(obs), jnp.asarray(action)
    plain = np.asarray(model.reward(params, CFG, SPEC, o, a))
    pessimist = np.asarray(IsrEnsemble(k=3, beta=1.0).reward(params, CFG, SPEC, o, a))
    members = np.asarray(model.members(params, CFG, SPEC, o, a))
    np.testing.assert_allclose(plain, members.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pessimist, members.mean(0) - members.std(0), rtol=1e-5, atol=1e-5)
    assert (pessimist <= plain).all() and (pessimist < plain).any()
    held_out = slice(n_train, N)
    assert np.corrcoef(pessimist[held_out], r[held_out])[0, 1] > 0.9
    np.testing.assert_allclose(res["test_pred"][0][: N - n_train], plain[held_out], rtol=1e-5, atol=1e-5)


def test_ensemble_disagrees_off_the_training_distribution(ens):
    model, res, _ = ens
    obs, action, _ = synthetic(seed=1)
    params = one_seed(res)["params"]
    strange = obs.copy()
    strange[..., 3] = 2  # a channel never lit in training
    spread = {name: np.asarray(model.members(params, CFG, SPEC, jnp.asarray(o), jnp.asarray(action))).std(0).mean()
              for name, o in (("seen", obs), ("unseen", strange))}
    assert spread["unseen"] > 3 * spread["seen"], spread


def test_ensemble_diagnostics(ens):
    model, res, _ = ens
    assert res["test_mse"].shape == res["train_loss"].shape == res["samples_seen"].shape == (SEEDS, isr.N_EVALS)
    assert np.isfinite(res["test_mse"]).all() and np.isfinite(res["train_loss"]).all()
    assert res["test_mse"][:, -1].max() < 0.1 * np.var(res["test_target"][0]) < res["test_mse"][:, 0].min()
    # samples drawn by all members together: K times a member's (epochs passes over the window)
    member = res["samples_seen"][0, -1] // 3
    assert res["samples_seen"][0, -1] == 3 * member
    assert CFG.epochs * n_train_of(N) <= member < CFG.epochs * n_train_of(N) + isr.N_EVALS * CFG.batch_size


def test_ensemble_prefix_with_unobserved_steps(ens):
    _, _, res = ens
    obs, action, r = synthetic()
    r = with_unobserved(r)
    n_train = n_train_of(2500)
    assert np.isfinite(res["test_mse"]).all() and np.isfinite(res["test_pred"]).all()
    for s in range(SEEDS):
        idx, m = res["test_index"][s], res["test_mask"][s]
        assert idx[0] == n_train
        np.testing.assert_array_equal(m, (np.arange(n_train, n_train + len(idx)) < 2500) & np.isfinite(r[idx]))
        assert float(isr.pearson(res["test_pred"][s], res["test_target"][s], m)) > 0.9


def test_bootstrap_map():
    observed = np.ones(100, bool)
    observed[[3, 10, 11, 50, 95]] = False
    n_train = 60
    maps = np.asarray(jax.vmap(lambda k: ensemble.bootstrap_map(k, jnp.asarray(observed), jnp.int32(n_train)))(
        jax.random.split(jax.random.PRNGKey(0), 50)))
    m = observed[:n_train].sum()  # 56 observed training steps
    assert (maps[:, n_train:] == np.arange(n_train, 100)).all()  # held-out steps: never resampled
    drawn = maps[:, :m]
    assert (drawn < n_train).all() and observed[drawn].all()  # from the window's observed steps ...
    assert len(np.unique(drawn[0])) < m  # ... with replacement
    assert len(np.unique(drawn)) == m  # every one of them drawn somewhere
    np.testing.assert_array_equal(maps[:, m:n_train], np.broadcast_to([3, 10, 11, 50], (50, 4)))  # unobserved: kept


def test_resample_reads_the_mapped_steps():
    """An index map that sends every training step to one step (rewarded 1, the rest 0) fits 1
    everywhere; the held-out targets are the data's own."""
    obs, action, _ = synthetic()
    r = np.zeros(N, np.float32)
    r[7] = 1.0
    resample = np.where(np.arange(N) < 2700, 7, np.arange(N)).astype(np.int32)
    cfg = ISRConfig(lr=1e-2, batch_size=32, epochs=1, network="mlp", hidden=(16,))
    res = jax.jit(lambda m: isr.fit(jax.random.PRNGKey(0), jnp.asarray(obs), jnp.asarray(action), jnp.asarray(r),
                                    cfg, N_ACTIONS, features=features, resample=m))(jnp.asarray(resample))
    assert abs(float(res.train_loss[-1])) < 1e-3  # every target drawn was the mapped step's 1 ...
    assert (np.asarray(res.test_target) == 0).all()  # ... the held-out steps are read as they are


# ---------------------------------------------------------------------------------------------
# the preference model


def ranking_accuracy(pred, true):
    """Of the pairs of steps whose true rewards differ, the fraction ranked in that order."""
    dp, dt = pred[:, None] - pred[None, :], true[:, None] - true[None, :]
    differ = np.abs(dt) > 1e-6
    return float(((dp * dt) > 0)[differ].mean())


def test_preference_ranks_held_out_steps_and_is_shifted_to_mean_zero(pref):
    model, res, _ = pref
    obs, action, r = synthetic()
    n_train = n_train_of(N)
    for s in range(SEEDS):
        m = res["test_mask"][s]
        assert res["test_index"][s, 0] == n_train and m.sum() == N - n_train
        assert ranking_accuracy(res["test_pred"][s][m], res["test_target"][s][m]) > 0.9
        params = one_seed(res, s)["params"]
        r_i = np.asarray(model.reward(params, CFG, SPEC, jnp.asarray(obs), jnp.asarray(action)))
        assert abs(r_i[:n_train].mean()) < 1e-4 * np.abs(r_i).mean()  # the shift: mean 0 over training
        assert np.ptp(r_i) > 1.0  # a real (Bradley-Terry) scale, not collapsed
        np.testing.assert_allclose(r_i[n_train:], res["test_pred"][s][: N - n_train], rtol=1e-5, atol=1e-5)


def test_preference_effort_matches_the_isr(pref):
    model, res, _ = pref
    p = n_train_of(N) // (2 * model.segment)  # 2 * segment * P = the ISR's labelled training steps
    assert (res["params"]["judged"] == p).all()
    per_batch = model.pairs_per_batch(CFG)
    assert per_batch == CFG.batch_size // (2 * model.segment)
    seen = res["samples_seen"][0]
    assert (np.diff(seen) > 0).all() and (seen % (2 * model.segment * per_batch) == 0).all()
    steps = CFG.epochs * p * 2 * model.segment  # epochs passes over the judged pairs' steps
    assert steps - model.segment <= seen[-1] < steps + isr.N_EVALS * CFG.batch_size + 2 * model.segment


def test_preference_held_out_loss(pref):
    _, res, _ = pref
    loss = res["test_mse"]  # the held-out Bradley-Terry loss, not an MSE
    assert np.isfinite(loss).all() and np.isfinite(res["train_loss"]).all()
    assert (loss[:, -1] < 0.5 * np.log(2)).all() and (loss[:, -1] < loss[:, 0]).all()


def test_preference_prefix_with_unobserved_steps(pref):
    model, _, res = pref
    _, _, r = synthetic()
    r = with_unobserved(r)
    n_train = n_train_of(2500)
    assert np.isfinite(res["test_mse"]).all() and np.isfinite(res["test_pred"]).all()
    labelled = np.isfinite(r[:n_train]).sum()
    # every 5th step unobserved: a segment of 4 steps of one environment (stride 4) is seen only
    # in the environments whose steps are never a multiple of 5 apart ... some pairs still judged
    assert 0 < res["params"]["judged"].min() <= labelled // (2 * model.segment)
    for s in range(SEEDS):
        m = res["test_mask"][s]
        np.testing.assert_array_equal(m, (res["test_index"][s] < 2500) & np.isfinite(r[res["test_index"][s]]))
        assert ranking_accuracy(res["test_pred"][s][m], res["test_target"][s][m]) > 0.85


def test_segment_sums_follow_one_environment():
    values = jnp.arange(24, dtype=jnp.float32)
    sums = np.asarray(preference.segment_sums(values, 4, 3))
    v = np.arange(24.0)
    expected = [sum(v[s + 4 * j] if s + 4 * j < 24 else 0.0 for j in range(3)) for s in range(24)]
    np.testing.assert_array_equal(sums, expected)


def test_ties_and_unseen_segments_are_not_judged():
    r = np.array([0, 1, 0, 0, 1, 0, np.nan, 0], np.float32)  # one environment, segments of 2
    seen = np.isfinite(r)
    sums = preference.segment_sums(jnp.asarray(np.where(seen, r, 0)), 1, 2)
    unseen = preference.segment_sums(jnp.asarray((~seen).astype(np.int32)), 1, 2)
    a, b, judged, a_pref = preference.draw_pairs(jax.random.PRNGKey(0), 400, 0, 7, sums, unseen)
    a, b, judged, a_pref = map(np.asarray, (a, b, judged, a_pref))
    seg = np.array([r[s] + r[s + 1] for s in range(7)])  # NaN where a step is unseen
    ok = np.isfinite(seg[a]) & np.isfinite(seg[b]) & (seg[a] != seg[b])
    np.testing.assert_array_equal(judged, ok)
    np.testing.assert_array_equal(a_pref[judged], (seg[a] > seg[b])[judged])
    assert ((a >= 0) & (a < 7)).all() and judged.any() and not judged.all()


# ---------------------------------------------------------------------------------------------
# settings and registration


@pytest.mark.parametrize("model, field", [
    (IsrEnsemble(k=0, beta=0.0), "learners.isr_ensemble.k"),
    (IsrEnsemble(k=1, beta=1.0), "learners.isr_ensemble.k"),
    (IsrEnsemble(k=3, beta=-0.5), "learners.isr_ensemble.beta"),
    (Preference(segment=0), "learners.preference.segment"),
    (Preference(candidates=0), "learners.preference.candidates"),
])
def test_bad_settings_name_the_setting(model, field):
    with pytest.raises(ValueError, match=field) as e:
        model.validate()
    assert "\n" not in str(e.value)


def test_good_settings_and_registration():
    for m in (IsrEnsemble(), IsrEnsemble(k=1, beta=0.0), Preference(), Preference(segment=1, candidates=1)):
        m.validate()
    assert reward_models.BUILTIN["isr_ensemble"] == IsrEnsemble() and reward_models.BUILTIN["preference"] == Preference()
    assert {"isr", "isr_ensemble", "preference"} <= set(reward_models.known())
    assert DataSpec((V, V, C), N_ACTIONS, 1, None).n_envs == 1
