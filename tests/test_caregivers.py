"""Caregivers (internalize.caregivers): the paper's, the interface (a key, a memory, numeric
parameters that ride a vmap), caregivers of different classes in one batch, and the learner
paying what a caregiver with a key and a memory decides."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from internalize import caregivers as caregiver
from internalize import learner as L
from internalize import presence
from internalize.config import PRESETS
from internalize.worlds import coin as world



def test_social_reward_on_goal_steps_only():
    info = {"goal_reached": jnp.asarray([[True, False], [False, True]]), "forward": jnp.ones((2, 2), bool)}
    r = caregiver.social_reward(caregiver.caregiver(), info)
    assert r.dtype == jnp.float32 and r.shape == (2, 2)
    np.testing.assert_array_equal(np.asarray(r), np.asarray([[0.4, 0.0], [0.0, 0.4]], np.float32))
    r2 = caregiver.social_reward(caregiver.caregiver(goal_reward=1.5), info)
    np.testing.assert_array_equal(np.asarray(r2), [[1.5, 0.0], [0.0, 1.5]])


def test_waived_follows_waives_step_cost():
    info = {"goal_reached": jnp.asarray([True, False, True])}
    np.testing.assert_array_equal(np.asarray(caregiver.waived(caregiver.caregiver(), info)), [True, False, True])
    none = caregiver.waived(caregiver.caregiver(waives_step_cost=False), info)
    np.testing.assert_array_equal(np.asarray(none), [False, False, False])


def test_caregiver_defaults():
    cg = caregiver.caregiver()
    assert float(cg.goal_reward) == pytest.approx(0.4) and bool(cg.waives_step_cost)




def _step(goal: bool, done: bool = False) -> caregiver.Step:
    z = jnp.zeros(())
    return caregiver.Step((), jnp.zeros((1, 1, 1), jnp.uint8), jnp.int32(2), (), z, jnp.bool_(False),
                          jnp.bool_(done), {"goal_reached": jnp.bool_(goal)})


@struct.dataclass
class Coin(caregiver.Caregiver):
    """Praises a goal with probability ``p`` (needs a key)."""

    p: float = 0.5

    def reward(self, key, state, step):
        hit = step.info["goal_reached"] & (jax.random.uniform(key) < self.p)
        return state, jnp.where(hit, 1.0, 0.0), hit


@struct.dataclass
class Counter(caregiver.Caregiver):
    """Pays the number of goals seen so far in the phase (needs a memory)."""

    scale: float = 1.0

    def init_state(self, key):
        return jnp.float32(0.0)

    def reward(self, key, state, step):
        state = state + step.info["goal_reached"]
        return state, self.scale * state, jnp.bool_(False)


def test_the_papers_caregiver_through_the_interface():
    cg = caregiver.as_arrays(caregiver.GoalPraise())
    state, r, waive = cg.reward(jax.random.PRNGKey(0), cg.init_state(jax.random.PRNGKey(1)), _step(True))
    assert state == () and float(r) == pytest.approx(0.4) and bool(waive)
    assert float(cg.reward(jax.random.PRNGKey(0), (), _step(False))[1]) == 0.0


def test_numeric_parameters_ride_one_vmap_as_a_batch_of_caregivers():
    batch = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]),
                         *[caregiver.as_arrays(Coin(p)) for p in (0.0, 1.0)])
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    _, r, _ = jax.vmap(lambda c, k: c.reward(k, (), _step(True)))(batch, keys)
    np.testing.assert_array_equal(np.asarray(r), [0.0, 1.0])


def test_a_caregiver_draws_from_its_key():
    cg = caregiver.as_arrays(Coin(0.5))
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    r = jax.vmap(lambda k: cg.reward(k, (), _step(True))[1])(keys)
    assert 0.45 < float(r.mean()) < 0.55


def test_different_classes_ride_one_batch_as_switches():
    cgs = caregiver.unify([caregiver.GoalPraise(), Counter(2.0), caregiver.GoalPraise(0.1)])
    assert all(isinstance(c, caregiver.Switch) for c in cgs) and [c.index for c in cgs] == [0, 1, 0]
    batch = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *[caregiver.as_arrays(c) for c in cgs])
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states = jax.vmap(lambda c, k: c.init_state(k))(batch, keys)
    for goal in (True, True):
        states, r, waive = jax.vmap(lambda c, k, s: c.reward(k, s, _step(goal)))(batch, keys, states)
    np.testing.assert_allclose(np.asarray(r), [0.4, 4.0, 0.1], rtol=1e-6)  # the counter has seen 2 goals
    np.testing.assert_array_equal(np.asarray(waive), [True, False, True])
    assert caregiver.unify([caregiver.GoalPraise(), caregiver.GoalPraise(0.2)]) == [caregiver.GoalPraise(),
                                                                                   caregiver.GoalPraise(0.2)]


def test_the_learner_pays_what_a_caregiver_with_a_memory_decides():
    """A caregiver's memory is started by the learner and carried from step to step of a phase."""
    cfg = dataclasses.replace(PRESETS["fast"].ppo, n_envs=2, n_steps=256, minibatch_size=128)
    lrn = L.Learner(cfg, world.COIN)
    wp = world.coin_params(0)
    cg = caregiver.as_arrays(Counter(1.0))
    state = jax.jit(lrn.init)(jax.random.PRNGKey(0), wp, cg)
    assert state.caregiver_state.shape == (2,)
    spec = L.RunSpec(wp, cg, presence.present(), jnp.float32(0.0), ())
    state2, traj = jax.jit(lrn.rollout)(state, spec)
    goals = np.asarray(traj.goal, np.float32)  # [steps, envs]
    assert goals.sum() > 0
    np.testing.assert_allclose(np.asarray(traj.r_s), np.cumsum(goals, 0))
    np.testing.assert_allclose(np.asarray(state2.caregiver_state), goals.sum(0))


def test_known_caregivers_and_the_check():
    assert caregiver.known()["goal_praise"] is caregiver.GoalPraise
    caregiver.check(caregiver.GoalPraise())
    with pytest.raises(TypeError, match="is not a caregiver"):
        caregiver.check(lambda info: 0.4)
