"""Socialization by demonstration: the caregiver shows the way instead of praising.

A scripted demonstrator (a world's ``demonstrator()``, e.g. the coin world's shortest way to
the goal) acts in the world; its steps (:class:`Demos`, :func:`collect`) are all a learner
gets in place of socialization's praise: no R_s reaches it. :func:`learn` then trains a
learner and a reward model from them, by the model's kind:

- ``irl`` (:class:`internalize.reward_models.airl.Airl`): adversarial IRL with the PPO learner
  as the generator. Each update: the learner's rollout, paid the discriminator's logit
  f(s, a, s') - log pi(a | s) (standard AIRL; R_e is not added), :meth:`Learner.learn`, then
  ``disc_steps`` discriminator steps on the rollout's steps against random demonstrations.
  R_i = g(s, a) afterwards.
- ``bc`` (:class:`internalize.reward_models.bc.BehaviourCloning`): a fresh learner's policy
  is trained by cross-entropy on the demonstrated actions; no reward (R_i = 0).

Either way the learner comes back ready for autonomy (:func:`internalize.phases.autonomy`),
with the reward model's parameters for its R_i there. Runs are one vmapped, compiled program
(per device), in chunks of updates like the phases.

What does not live here: the demonstrators (each world's), the models' maths
(:mod:`internalize.reward_models.airl`, :mod:`internalize.reward_models.bc`), PPO
(:mod:`internalize.learner`), and when an experiment demonstrates
(:mod:`internalize.experiments.pipeline`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import devices
from . import env as env_
from . import reward_models
from .learner import Learner, RunSpec, RunState
from .reward_models.airl import Airl, Transitions
from .reward_models.bc import BehaviourCloning

Progress = Callable[[int], None]  # called with environment steps just done (all runs)


class Demos(NamedTuple):
    """A demonstrator's steps, in the order they happened: index ``tau * n_envs + e`` (step tau
    of environment e), as socialization's data are laid out."""

    obs: jax.Array  # uint8 [N, V, V, C], the observation the action was taken on
    action: jax.Array  # int32 [N]
    next_obs: jax.Array  # uint8 [N, V, V, C], the observation the step ended on (before any reset)
    done: jax.Array  # bool [N], the episode ended with this step (next_obs is its last)


@dataclass
class Demonstrated:
    """What :func:`learn` returns."""

    state: RunState
    """``[runs]`` the learner after learning from the demonstrations (ready for autonomy)."""
    metrics: dict[str, np.ndarray]
    """name -> ``[runs, updates]``: for ``irl`` the generator's usual curves per PPO update
    (``goals_per_episode``...; ``utility_return`` is its AIRL reward, ``isr_output`` the learned
    g, ``true_return`` what the caregiver would have paid: a curve, never a reward) and the
    discriminator's ``disc_loss`` and ``disc_accuracy`` (means over the update's steps); for
    ``bc`` per epoch ``bc_loss`` and ``bc_accuracy`` (agreement with the held-out demonstrated
    actions)."""
    params: Any
    """``[runs]`` the reward model's parameters, as its ``reward`` reads them."""


def n_updates(steps: int, batch_size: int) -> int:
    """PPO updates for a budget of environment steps, rounded up (as :func:`internalize.phases.n_updates`)."""
    return max(1, math.ceil(steps / batch_size))


def _cached(learner: Learner, key: tuple, build: Callable) -> Callable:
    """A compiled function kept on its learner (as the phases keep theirs); built afresh when
    ``key`` cannot be hashed."""
    try:
        hash(key)
    except TypeError:
        return build()
    cache = learner.__dict__.setdefault("_compiled", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


# ---------------------------------------------------------------------------------------------
# Collecting demonstrations


def collect(keys: jax.Array, env: env_.Env, world_params, demonstrator: Callable, n_envs: int,
            steps: int) -> Demos:
    """A demonstrator's steps in ``n_envs`` environments side by side, per run.

    keys: ``[runs]``; ``world_params``: one world's parameters, shared by the runs;
    ``demonstrator(key, state, world_params) -> action`` (e.g. ``CoinWorld.demonstrator()``; one
    that is a pytree of arrays, as the coin world's is, is an input of the compiled program, so
    demonstrators that differ only in their arrays share it). ``steps``: per run, all
    environments together, rounded up to whole steps of ``n_envs``. Environments start fresh and
    reset when an episode ends (:func:`internalize.env.auto_reset_step`).
    Returns :class:`Demos` with a leading ``[runs]`` axis, as NumPy arrays.
    """
    t_steps = max(1, math.ceil(steps / n_envs))
    leaves, treedef = jax.tree.flatten(demonstrator)
    traced = all(isinstance(x, (jax.Array, np.ndarray, np.generic, float, int)) for x in leaves)
    static = treedef if traced else demonstrator
    fn = _collect_fn(env, static if _hashable(static) else _Unhashable(static), traced, n_envs, t_steps)
    runs = keys.shape[0]
    out = fn(devices.shard(np.asarray(keys), runs), world_params, leaves if traced else [])
    return Demos(*devices.unpad(out, runs))


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


class _Unhashable:
    """Wraps what cannot key the cache (compiled once per call instead)."""

    def __init__(self, value):
        self.value = value


@functools.lru_cache(maxsize=16)
def _collect_fn(env: env_.Env, static, traced: bool, n_envs: int, t_steps: int):
    """The compiled collection (vmapped over runs, per device), kept for a few settings."""
    static = static.value if isinstance(static, _Unhashable) else static

    def one(key, wp, leaves):
        demonstrator = jax.tree.unflatten(static, leaves) if traced else static
        k_reset, k_steps = jax.random.split(key)
        obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs), wp)
        act = jax.vmap(demonstrator, in_axes=(0, 0, None))
        step = jax.vmap(lambda k, s, a: env_.auto_reset_step(env, k, s, a, wp))

        def body(carry, key):
            obs, st = carry
            k_act, k_env = jax.random.split(key)
            action = act(jax.random.split(k_act, n_envs), st, wp).astype(jnp.int32)
            next_obs, next_st, _, term, trunc, info = step(jax.random.split(k_env, n_envs), st, action)
            return (next_obs, next_st), Demos(obs, action, info["final_obs"], term | trunc)

        _, d = jax.lax.scan(body, (obs, st), jax.random.split(k_steps, t_steps))
        return jax.tree.map(lambda x: x.reshape((t_steps * n_envs,) + x.shape[2:]), d)

    return jax.jit(devices.per_device(jax.vmap(one, in_axes=(0, None, None)), sharded=(0,)))


# ---------------------------------------------------------------------------------------------
# Learning from them


def learn(learner: Learner, keys: jax.Array, spec: RunSpec, demos: Demos, model: reward_models.Bound, steps: int,
          chunk: int, progress: Progress | None = None) -> Demonstrated:
    """Train a fresh learner and ``model`` from each run's demonstrations (see the module doc).

    keys: ``[runs]``; spec: :class:`RunSpec` stacked ``[runs]`` (its world is where the learner
    acts; its caregiver's R_s is never paid, and its ISR fields are not read); demos:
    :class:`Demos` ``[runs]`` (:func:`collect`). ``irl``: ``steps`` environment steps of the
    generator (:func:`n_updates` PPO updates), compiled in chunks of ``chunk`` updates,
    ``progress`` told of each chunk's steps. ``bc``: one compiled fit (``chunk`` is not used);
    ``progress`` is told, once it is done, of the ``steps`` it stands in for (as many as AIRL's
    generator would take), so a run's progress counts the same either way.
    """
    m = model.model
    m.validate()
    if isinstance(m, Airl):
        return _adversarial(learner, keys, spec, demos, model, steps, chunk, progress)
    if isinstance(m, BehaviourCloning):
        got = _clone(learner, keys, spec, demos, model)
        if progress is not None:
            progress(keys.shape[0] * n_updates(steps, learner.cfg.batch_size) * learner.cfg.batch_size)
        return got
    raise ValueError(f"reward model {m.name!r} does not learn from demonstrations (known here: irl, bc)")


# -- AIRL ---------------------------------------------------------------------------------------


class _AirlState(NamedTuple):
    run: RunState  # the generator (the learner)
    disc: Any  # the discriminator's params {"g", "h"}
    opt: Any  # its optimizer state
    key: jax.Array  # the discriminator's draws


def _airl_update(learner: Learner, model: reward_models.Bound, carry: _AirlState, spec: RunSpec, demos: Demos):
    """One AIRL update: the generator's PPO update on the discriminator's reward, then
    ``disc_steps`` discriminator steps. Returns (carry, metrics)."""
    m, cfg, dspec = model.model, model.cfg, model.spec
    gamma = spec.hyper.get("gamma", learner.cfg.gamma)
    state, traj = learner.rollout(carry.run, spec)
    # The generator's reward, log D - log(1 - D) = f(s, a, s') - log pi(a | s) with the behaviour
    # policy's log pi; the caregiver's R_s (traj.r_s) is never read, and R_e is not added.
    reward = m.discriminator_logit(carry.disc, cfg, dspec,
                                   Transitions(traj.obs, traj.isr_action, traj.final_obs, traj.logp), gamma)
    g = m.reward(carry.disc, cfg, dspec, traj.obs, traj.isr_action)
    state, aux = learner.learn(state, traj, jax.lax.stop_gradient(reward), spec.hyper)

    batch = learner.cfg.batch_size
    flat = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]),
                        (traj.obs, traj.action, traj.isr_action, traj.final_obs))
    n_demos = demos.action.shape[0]

    def logp(obs, action):  # the generator's policy as it now is, on both sides (D is defined with it)
        dist, _ = learner.policy(state.params, obs)
        return dist.log_prob(action)

    def disc_step(c, key):
        p, o = c
        k_gen, k_demo = jax.random.split(key)
        i = jax.random.randint(k_gen, (m.disc_batch,), 0, batch)
        j = jax.random.randint(k_demo, (m.disc_batch,), 0, n_demos)
        obs, action, isr_action, next_obs = (x[i] for x in flat)
        gen = Transitions(obs, isr_action, next_obs, logp(obs, action))
        demo = Transitions(demos.obs[j], demos.action[j], demos.next_obs[j], logp(demos.obs[j], demos.action[j]))
        p, o, out = m.discriminator_step(p, o, cfg, dspec, demo, gen, gamma)
        return (p, o), out

    key, k_steps = jax.random.split(carry.key)
    (disc, opt), (loss, acc) = jax.lax.scan(disc_step, (carry.disc, carry.opt),
                                            jax.random.split(k_steps, m.disc_steps))
    metrics = learner.metrics(spec, traj, g, reward, aux)
    for meaningless in ("presence", "internal_return"):  # no caregiver comes or goes here
        metrics.pop(meaningless)
    metrics.update(disc_loss=loss.mean(), disc_accuracy=acc.mean())
    return _AirlState(state, disc, opt, key), metrics


def _airl_chunk_fn(learner: Learner, model: reward_models.Bound, max_updates: int):
    """The compiled chunk of ``n <= max_updates`` AIRL updates (vmapped over runs, per device)."""

    def one(carry, spec, demos, n):
        _, m_shape = jax.eval_shape(lambda: _airl_update(learner, model, carry, spec, demos))
        bufs = jax.tree.map(lambda s: jnp.zeros((max_updates,) + s.shape, s.dtype), m_shape)

        def body(i, c):
            st, mb = c
            st, mets = _airl_update(learner, model, st, spec, demos)
            return st, jax.tree.map(lambda b, x: jax.lax.dynamic_update_index_in_dim(b, x, i, 0), mb, mets)

        return jax.lax.fori_loop(0, n, body, (carry, bufs))

    return _cached(learner, ("airl", model, max_updates), lambda: jax.jit(
        devices.per_device(jax.vmap(one, in_axes=(0, 0, 0, None)), sharded=(0, 1, 2)), donate_argnums=0))


def _adversarial(learner, keys, spec, demos, model, steps, chunk, progress) -> Demonstrated:
    if learner.env.other_agents:
        raise ValueError("AIRL from demonstrations learns a single agent's reward; this world has other agents")
    runs = keys.shape[0]
    split = np.asarray(jax.jit(jax.vmap(lambda k: jax.random.split(k, 3)))(keys))
    init = _cached(learner, ("init",), lambda: jax.jit(jax.vmap(learner.init)))
    state = init(split[:, 0], spec.world, spec.caregiver)
    disc = jax.jit(jax.vmap(model.init))(split[:, 1])
    opt = jax.jit(jax.vmap(model.model.optimizer(model.cfg).init))(disc)
    carry = _AirlState(state, disc, opt, split[:, 2])
    fn = _airl_chunk_fn(learner, model, chunk)
    carry, spec, demos = devices.shard((carry, spec, demos), runs)
    updates, done, metrics = n_updates(steps, learner.cfg.batch_size), 0, []
    while done < updates:
        n = min(chunk, updates - done)
        carry, mets = fn(carry, spec, demos, jnp.int32(n))
        metrics.append(jax.tree.map(lambda x: np.asarray(x)[:runs, :n], mets))
        done += n
        if progress is not None:
            progress(n * learner.cfg.batch_size * runs)
    carry = devices.unpad(carry, runs)
    return Demonstrated(carry.run, {k: np.concatenate([mm[k] for mm in metrics], 1) for k in metrics[0]},
                        carry.disc)


# -- behaviour cloning --------------------------------------------------------------------------


def _clone(learner, keys, spec, demos, model) -> Demonstrated:
    m: BehaviourCloning = model.model
    size = demos.action.shape[1]
    n_test = min(size - 1, int(round(m.holdout * size)))
    n_train = size - n_test
    batch = min(m.batch_size, n_train)
    per_epoch = n_train // batch
    tx = optax.adam(m.lr)

    def one(key, world, caregiver, obs, action):
        k_init, k_fit, k_params = jax.random.split(key, 3)
        state = learner.init(k_init, world, caregiver)

        def loss_fn(p, o, a):
            dist, _ = learner.policy(p, o)
            return -dist.log_prob(a).mean()

        test = slice(n_train, size) if n_test else slice(0, n_train)

        def epoch(c, k):
            def minibatch(c, idx):
                p, o = c
                loss, grads = jax.value_and_grad(loss_fn)(p, obs[idx], action[idx])
                updates, o = tx.update(grads, o, p)
                return (optax.apply_updates(p, updates), o), loss

            order = jax.random.permutation(k, n_train)[:per_epoch * batch].reshape(per_epoch, batch)
            (p, o), losses = jax.lax.scan(minibatch, c, order)
            dist, _ = learner.policy(p, obs[test])
            return (p, o), (losses.mean(), jnp.mean(dist.mode() == action[test]))

        (params, _), (loss, acc) = jax.lax.scan(epoch, (state.params, tx.init(state.params)),
                                                jax.random.split(k_fit, m.epochs))
        # The cloned policy goes on with a fresh optimizer (its Adam moments were the cloning's).
        state = state.replace(params=params, opt_state=learner.tx.init(params))
        return state, {"bc_loss": loss, "bc_accuracy": acc}, model.init(k_params)

    runs = keys.shape[0]
    fn = jax.jit(devices.per_device(jax.vmap(one), sharded=(0, 1, 2, 3, 4)))
    args = devices.shard((np.asarray(keys), spec.world, spec.caregiver, demos.obs, demos.action), runs)
    state, metrics, params = devices.unpad(fn(*args), runs)
    return Demonstrated(state, {k: np.asarray(v) for k, v in metrics.items()}, params)
