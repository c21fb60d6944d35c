"""Tests of the PPO learner (internalize.learner), its distribution and its networks (SPEC 4).

References are written independently of the module: Stable-Baselines3's GAE as a plain loop,
its PPO loss in numpy. Everything heavy is built once per module (a tiny learner jitted once;
one short learning run of the ``fast`` preset) so the file stays fast on a small CPU machine.
"""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import dataclasses
from types import SimpleNamespace

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import caregivers as caregiver
from internalize import networks, presence
from internalize import reward_models
from internalize.reward_models import isr
from internalize.worlds import coin as world
from internalize import learner as L
from internalize.config import PRESETS, ISRConfig

STEP_COST = 0.9 / 20  # SPEC 3
GOAL_REWARD = 0.4

# A tiny PPO: 4 envs x 40 steps, so every env is truncated twice (episodes are 20 steps) and
# a few goals are reached by the (nearly uniform) initial policy.
TINY = dataclasses.replace(PRESETS["fast"].ppo, n_envs=4, n_steps=40, minibatch_size=40)
TINY_KEY = 4  # a fixed key whose rollout reaches the goal (checked, as a precondition)

_ORIG_GAE = L.gae


# ---------------------------------------------------------------------------------------------
# Independent references


def sb3_gae(rewards, values, dones, last_value, gamma, lam):
    """Stable-Baselines3's GAE (RolloutBuffer.compute_returns_and_advantage) as a plain loop."""
    rewards, values, dones = (np.asarray(x, np.float64) for x in (rewards, values, dones))
    last_value = np.asarray(last_value, np.float64)
    t_max = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last_adv = np.zeros_like(last_value)
    for t in reversed(range(t_max)):
        next_nonterminal = 1.0 - dones[t]
        next_value = last_value if t == t_max - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_value * next_nonterminal - values[t]
        last_adv = delta + gamma * lam * next_nonterminal * last_adv
        adv[t] = last_adv
    return adv, adv + values


def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Module fixtures: a tiny learner updated once (jit once), and a short learning run


class _GaeSpy:
    """Stands in for ``learner.gae`` while ``update`` is traced; records its inputs."""

    def __init__(self):
        self.calls = []

    def _store(self, *arrays):
        self.calls.append([np.asarray(a) for a in arrays])

    def __call__(self, rewards, values, dones, last_value, gamma, lam):
        jax.debug.callback(self._store, rewards, values, dones, last_value)
        return _ORIG_GAE(rewards, values, dones, last_value, gamma, lam)


@pytest.fixture(scope="module")
def tiny():
    lrn = L.Learner(TINY, world.COIN)
    key = jax.random.PRNGKey(TINY_KEY)
    wp = world.coin_params(3)
    isr_params = jax.jit(isr.init, static_argnums=(1, 2))(key, 9, 7)
    cg = caregiver.caregiver()
    state0 = jax.jit(lrn.init)(key, wp)
    spy = _GaeSpy()
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(L, "gae", spy)
        update = jax.jit(lrn.update)  # traced (with the spy) on the first call, then reused
        for name, p in (("present", presence.present()), ("absent", presence.absent())):
            spec = L.RunSpec(wp, cg, p, jnp.float32(0.0), isr_params)
            state1, metrics, traj = jax.block_until_ready(update(state0, spec))
            jax.effects_barrier()
            out[name] = SimpleNamespace(
                spec=spec,
                state1=state1,
                metrics={k: float(v) for k, v in metrics.items()},
                traj=jax.tree.map(np.asarray, traj),
                gae_in=spy.calls[-1],
            )
    assert len(spy.calls) == 2
    return SimpleNamespace(learner=lrn, state0=state0, world=wp, cg=cg, run=out)


@pytest.fixture(scope="module")
def trained():
    """The ``fast`` preset on one run, 25 updates (about 51k steps) in one jitted scan."""
    cfg = PRESETS["fast"].ppo
    lrn = L.Learner(cfg, world.COIN)
    key = jax.random.PRNGKey(1)
    wp = world.coin_params(3)
    spec = L.RunSpec(wp, caregiver.caregiver(), presence.present(), jnp.float32(0.0),
                     jax.jit(isr.init, static_argnums=(1, 2))(key, 9, 7))
    state0 = jax.jit(lrn.init)(key, wp)

    @jax.jit
    def train(state, spec):
        def body(s, _):
            s, m, _ = lrn.update(s, spec)
            return s, m["goals_per_episode"]

        return jax.lax.scan(body, state, None, length=25)

    state, goals = jax.block_until_ready(train(state0, spec))
    return SimpleNamespace(learner=lrn, state0=state0, state=state, goals=np.asarray(goals), world=wp,
                           cg=spec.caregiver)


# ---------------------------------------------------------------------------------------------
# GAE


@pytest.mark.parametrize("seed,gamma,lam", [(0, 0.99, 0.95), (1, 0.9, 1.0), (2, 0.5, 0.0)])
def test_gae_matches_sb3_loop(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    t_max, n_envs = 17, 3
    rewards = rng.normal(size=(t_max, n_envs)).astype(np.float32)
    values = rng.normal(size=(t_max, n_envs)).astype(np.float32)
    dones = rng.random((t_max, n_envs)) < 0.25
    dones[-1, 0] = True  # a done on the last step: no bootstrap from last_value there
    last_value = rng.normal(size=(n_envs,)).astype(np.float32)
    adv, ret = L.gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones), jnp.asarray(last_value),
                     gamma, lam)
    ref_adv, ref_ret = sb3_gae(rewards, values, dones, last_value, gamma, lam)
    np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), ref_ret, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), np.asarray(adv) + values, rtol=1e-6, atol=1e-6)


def test_gae_no_dones_lambda_one_is_discounted_return_minus_value():
    """With lam = 1 and no dones, returns are the discounted rewards plus gamma^T V(last)."""
    rewards = jnp.asarray([[1.0], [2.0], [3.0]])
    values = jnp.asarray([[0.5], [-0.5], [0.25]])
    _, ret = L.gae(rewards, values, jnp.zeros((3, 1), bool), jnp.asarray([10.0]), 0.5, 1.0)
    expected = [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 10, 2 + 0.5 * 3 + 0.25 * 10, 3 + 0.5 * 10]
    np.testing.assert_allclose(np.asarray(ret)[:, 0], expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# PPO loss


def _minibatch(tiny, n=8, seed=0):
    traj = tiny.run["present"].traj
    obs = jnp.asarray(traj.obs.reshape((-1,) + traj.obs.shape[2:])[:n])
    action = jnp.asarray(traj.action.reshape(-1)[:n])
    params = tiny.state0.params
    dist, value = tiny.learner.policy(params, obs)
    rng = np.random.default_rng(seed)
    adv = rng.normal(0.5, 2.0, n).astype(np.float32)
    returns = rng.normal(size=n).astype(np.float32)
    return params, obs, action, dist, value, adv, returns


def _norm_adv(adv, ddof=1):
    return (adv - adv.mean()) / (adv.std(ddof=ddof) + 1e-8)


def test_ppo_loss_at_behaviour_params(tiny):
    lrn = tiny.learner
    params, obs, action, dist, value, adv, returns = _minibatch(tiny)
    old_logp = dist.log_prob(action)
    total, (pg, vl, ent, kl, cf) = lrn.loss(params, (obs, action, old_logp, jnp.asarray(adv), jnp.asarray(returns)))
    assert abs(float(kl)) < 1e-6
    assert float(cf) == 0.0
    np.testing.assert_allclose(float(pg), -_norm_adv(adv).mean(), atol=1e-6)
    np.testing.assert_allclose(float(vl), np.mean((returns - np.asarray(value)) ** 2), rtol=1e-5)
    lp = np_log_softmax(np.asarray(dist.logits))
    np.testing.assert_allclose(float(ent), -(np.exp(lp) * lp).sum(-1).mean(), rtol=1e-5)
    cfg = lrn.cfg
    np.testing.assert_allclose(float(total), float(pg) - cfg.ent_coef * float(ent) + cfg.vf_coef * float(vl),
                               rtol=1e-5, atol=1e-7)


def test_ppo_loss_matches_sb3_reference(tiny):
    """Off-policy ratios (some clipped): the clipped objective, KL estimate and clip fraction."""
    lrn = tiny.learner
    params, obs, action, dist, value, adv, returns = _minibatch(tiny, seed=1)
    rng = np.random.default_rng(2)
    delta = rng.uniform(-0.5, 0.5, len(adv)).astype(np.float32)  # log ratio
    logp = np.asarray(dist.log_prob(action))
    old_logp = jnp.asarray(logp - delta)
    total, (pg, vl, ent, kl, cf) = lrn.loss(params, (obs, action, old_logp, jnp.asarray(adv), jnp.asarray(returns)))
    ratio = np.exp(delta.astype(np.float64))
    clip = lrn.cfg.clip

    def pg_ref(a):
        return -np.minimum(a * ratio, a * np.clip(ratio, 1 - clip, 1 + clip)).mean()

    np.testing.assert_allclose(float(pg), pg_ref(_norm_adv(adv)), rtol=1e-4, atol=1e-6)
    # the reference discriminates: a population-std normalization would give another value
    assert abs(pg_ref(_norm_adv(adv)) - pg_ref(_norm_adv(adv, ddof=0))) > 1e-3
    np.testing.assert_allclose(float(kl), np.mean((ratio - 1) - delta), rtol=1e-3, atol=1e-6)
    assert 0 < float(cf) < 1
    np.testing.assert_allclose(float(cf), np.mean(np.abs(ratio - 1) > clip), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# A real update


def test_update_runs_and_changes_params(tiny):
    r = tiny.run["present"]
    before = jax.tree.leaves(tiny.state0.params)
    after = jax.tree.leaves(r.state1.params)
    assert any(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(before, after))
    for k, v in r.metrics.items():
        assert np.isfinite(v), k
    assert int(r.state1.t) == int(tiny.state0.t) + TINY.n_steps
    assert not np.array_equal(np.asarray(r.state1.key), np.asarray(tiny.state0.key))
    # the optimizer state moved on as well
    assert any(not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(jax.tree.leaves(tiny.state0.opt_state), jax.tree.leaves(r.state1.opt_state)))
    assert r.metrics["presence"] == 1.0 and tiny.run["absent"].metrics["presence"] == 0.0
    assert r.metrics["episodes"] == 2 * TINY.n_envs  # 40 steps of 20-step episodes


def test_update_trajectory_shapes(tiny):
    tr = tiny.run["present"].traj
    t, e = TINY.n_steps, TINY.n_envs
    assert tr.obs.shape == (t, e, 9, 9, 4) and tr.obs.dtype == np.uint8
    assert tr.final_obs.shape == (t, e, 9, 9, 4)
    for name in ("action", "logp", "value", "r_e", "r_s", "waive", "presence", "terminated", "truncated",
                 "goal", "forward"):
        assert getattr(tr, name).shape == (t, e), name


def test_rollout_is_consistent(tiny):
    """logp/value are the behaviour policy's; auto-reset and truncation happen where they should."""
    r = tiny.run["present"]
    tr = r.traj
    dist, value = tiny.learner.policy(tiny.state0.params, jnp.asarray(tr.obs))
    np.testing.assert_allclose(np.asarray(dist.log_prob(jnp.asarray(tr.action))), tr.logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(value), tr.value, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(tr.obs[0], np.asarray(tiny.state0.obs))
    # 20-step episodes, all envs started together: truncation exactly at steps 20 and 40
    expect_trunc = np.zeros((TINY.n_steps, TINY.n_envs), bool)
    expect_trunc[[19, 39]] = True
    np.testing.assert_array_equal(tr.truncated, expect_trunc)
    assert not tr.terminated.any()
    # between resets, the step's final observation is the next step's observation
    nxt = np.concatenate([tr.obs[1:], np.asarray(r.state1.obs)[None]], 0)
    same = np.all(tr.final_obs == nxt, axis=(2, 3, 4))
    assert same[~tr.truncated].all()
    # environment reward: the step cost on every forward move, nothing else
    np.testing.assert_allclose(tr.r_e, np.where(tr.forward, -STEP_COST, 0.0), rtol=1e-6)
    np.testing.assert_array_equal(tr.forward, tr.action == world.FORWARD)
    np.testing.assert_allclose(tr.r_s, np.where(tr.goal, GOAL_REWARD, 0.0))
    np.testing.assert_array_equal(tr.waive, tr.goal)


def test_truncation_bootstrap_and_gae_inputs(tiny):
    """The reward handed to GAE is U + gamma V(final obs) on truncated steps (SB3)."""
    r = tiny.run["present"]
    tr = r.traj
    rewards, values, dones, last_value = r.gae_in
    lrn, params = tiny.learner, tiny.state0.params
    gamma = TINY.gamma
    u = tr.r_e * (1 - tr.waive) + tr.r_s  # P = 1
    _, v_final = lrn.policy(params, jnp.asarray(tr.final_obs))
    expected = u + gamma * np.asarray(v_final) * (tr.truncated & ~tr.terminated)
    np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-6)
    # the bootstrap is really there (values of a fresh net are not all ~0)
    assert np.abs(rewards - u)[tr.truncated].min() > 0
    np.testing.assert_allclose(rewards[~tr.truncated], u[~tr.truncated], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(values, tr.value, rtol=1e-6)
    np.testing.assert_array_equal(dones.astype(bool), tr.truncated | tr.terminated)
    _, v_last = lrn.policy(params, r.state1.obs)
    np.testing.assert_allclose(last_value, np.asarray(v_last), rtol=1e-5, atol=1e-6)


def test_reward_composition_presence_absent(tiny):
    """Caregiver absent, no ISR: the learner's utility is R_e alone (a goal step pays nothing)."""
    r = tiny.run["absent"]
    tr = r.traj
    assert tr.goal.sum() > 0, "precondition: the fixed-key rollout reaches the goal"
    assert not tr.presence.any()
    episodes = TINY.batch_size / 20
    np.testing.assert_allclose(r.metrics["utility_return"], tr.r_e.sum() / episodes, rtol=1e-5)
    u = np.asarray(presence.utility(jnp.asarray(tr.r_e), jnp.asarray(tr.r_s), 0.0, jnp.asarray(tr.presence),
                                    jnp.asarray(tr.waive)))
    np.testing.assert_allclose(u, tr.r_e, rtol=1e-6)
    np.testing.assert_allclose(u[tr.goal], -STEP_COST, rtol=1e-5)  # goal steps: only the cost
    # what GAE got: R_e (+ the bootstrap on truncated steps)
    rewards = r.gae_in[0]
    np.testing.assert_allclose(rewards[~tr.truncated], tr.r_e[~tr.truncated], rtol=1e-6, atol=1e-7)
    # the caregiver's view still counts the goals: +0.4 and the waived cost on each
    gap = r.metrics["true_return"] - r.metrics["utility_return"]
    np.testing.assert_allclose(gap, tr.goal.sum() * (GOAL_REWARD + STEP_COST) / episodes, rtol=1e-4)
    assert r.metrics["internal_return"] == 0.0 and r.metrics["isr_output"] == 0.0
    np.testing.assert_allclose(r.metrics["goals_per_episode"], tr.goal.sum() / episodes, rtol=1e-6)


def test_reward_composition_presence_present(tiny):
    r = tiny.run["present"]
    tr = r.traj
    episodes = TINY.batch_size / 20
    u = np.where(tr.goal, GOAL_REWARD, tr.r_e)  # the goal step pays R_s instead of the cost
    np.testing.assert_allclose(r.metrics["utility_return"], u.sum() / episodes, rtol=1e-5)
    np.testing.assert_allclose(r.metrics["true_return"], r.metrics["utility_return"], rtol=1e-6)
    np.testing.assert_allclose(r.metrics["forward_per_episode"], tr.forward.sum() / episodes, rtol=1e-6)
    # the same actions were taken under both specs (presence does not touch the policy's keys)
    np.testing.assert_array_equal(tr.action, tiny.run["absent"].traj.action)


# ---------------------------------------------------------------------------------------------
# Learning and evaluation (the fast preset)


def test_fast_preset_learns(trained):
    g = trained.goals
    assert g.shape == (25,) and np.isfinite(g).all()
    first, last = g[:3].mean(), g[-5:].mean()
    # a random walk reaches the goal ~0.18 times per episode; the fast preset > 1.5 by 50k steps
    assert first < 0.6
    assert last > 1.2 and last > first + 0.8, g


def test_evaluate(trained):
    lrn = trained.learner
    n, max_steps = 16, 20
    evaluate = jax.jit(lrn.evaluate, static_argnums=(4, 5))
    ret, goals = evaluate(trained.state.params, jax.random.PRNGKey(3), trained.world, trained.cg, n, max_steps)
    ret, goals = np.asarray(ret), np.asarray(goals)
    assert ret.shape == (n,) and goals.shape == (n,)
    assert (ret >= -0.9 - 1e-5).all() and (ret <= GOAL_REWARD * max_steps + 1e-5).all()
    np.testing.assert_array_equal(goals, np.round(goals))
    assert (goals >= 0).all() and (goals <= max_steps).all()
    # return = 0.4 per goal - the cost of every non-goal forward step (the goal step's is waived)
    costly_steps = (GOAL_REWARD * goals - ret) / STEP_COST
    np.testing.assert_allclose(costly_steps, np.round(costly_steps), atol=1e-3)
    assert (np.round(costly_steps) >= 0).all() and (np.round(costly_steps) + goals <= max_steps).all()
    assert goals.mean() > 1.0  # the trained greedy policy reaches goals
    # the same key gives the same episodes; a fresh (untrained) net is far worse
    ret2, _ = evaluate(trained.state.params, jax.random.PRNGKey(3), trained.world, trained.cg, n, max_steps)
    np.testing.assert_array_equal(np.asarray(ret2), ret)
    ret0, _ = evaluate(trained.state0.params, jax.random.PRNGKey(3), trained.world, trained.cg, n, max_steps)
    assert np.asarray(ret0).mean() < ret.mean()


# ---------------------------------------------------------------------------------------------
# Two agents: the ISR sees the partner's action too, and may replace the whole reward (SPEC 8)


def test_two_agent_world_feeds_both_actions_to_the_isr_and_replaces_the_reward():
    from internalize.worlds import prosocial

    cfg = dataclasses.replace(TINY, n_envs=4, n_steps=100)
    wp = prosocial.prosocial_params()
    lrn = L.Learner(cfg, prosocial.PROSOCIAL,
                    reward_model=reward_models.bind(reward_models.ISR, ISRConfig(), prosocial.PROSOCIAL, wp))
    key = jax.random.PRNGKey(5)
    channels = isr.n_input_planes(4, prosocial.N_ACTIONS, 2)
    assert channels == 4 + 2 * 5
    isr_params = isr.init(key, 9, channels)
    state0 = lrn.init(key, wp)
    spec = L.RunSpec(wp, caregiver.caregiver(0.4, waives_step_cost=False), presence.absent(), jnp.float32(1.0),
                     isr_params, jnp.float32(1.0))
    _, traj = jax.jit(lrn.rollout)(state0, spec)
    assert traj.isr_action.shape == (100, 4, 2)
    np.testing.assert_array_equal(np.asarray(traj.isr_action[..., 0]), np.asarray(traj.action))
    partner = np.asarray(traj.isr_action[..., 1])
    assert partner.min() >= 0 and partner.max() < prosocial.N_PARTNER_ACTIONS and (partner > 0).any()
    # R_i depends on the partner's action plane: the same (obs, own action) with another partner action differs
    r_i = np.asarray(lrn.internal_reward(spec, traj.obs, traj.isr_action))
    swapped = traj.isr_action.at[..., 1].set((traj.isr_action[..., 1] + 1) % 5)
    assert not np.allclose(r_i, np.asarray(lrn.internal_reward(spec, traj.obs, swapped)))
    # The ISR replaces the reward entirely while the caregiver is absent: the learner's utility is R_i.
    _, metrics, _ = jax.jit(lrn.update)(state0, spec)
    episodes = cfg.batch_size / 100
    np.testing.assert_allclose(float(metrics["utility_return"]), float(metrics["isr_output"]), rtol=1e-5)
    assert float(metrics["forward_per_episode"]) > 0  # forward moves happened, and cost nothing
    np.testing.assert_allclose(float(metrics["isr_output"]), r_i.sum() / episodes, rtol=1e-4)


def test_orthogonal_init_matches_flax_and_calls_no_lapack():
    """Our orthogonal initializer gives Flax's matrices, without a LAPACK QR (two concurrent
    LAPACK calls deadlock this jaxlib; see networks._orthonormal_columns)."""
    import flax.linen as nn

    from internalize.networks import orthogonal

    key = jax.random.PRNGKey(3)
    for shape in [(162, 64), (64, 3), (2, 2, 7, 16), (3, 200)]:
        ours = np.asarray(orthogonal(1.4)(key, shape))
        np.testing.assert_allclose(ours, np.asarray(nn.initializers.orthogonal(1.4)(key, shape)), atol=1e-5)
        flat = ours.reshape(-1, shape[-1])
        gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
        np.testing.assert_allclose(gram, 1.4 ** 2 * np.eye(len(gram)), atol=1e-4)
    hlo = jax.jit(lambda k: orthogonal(1.0)(k, (64, 64))).lower(key).as_text().lower()
    assert "lapack" not in hlo and "custom_call" not in hlo
