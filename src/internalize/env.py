"""The world contract: what the learner, the caregivers and the reward models need of a world.

A world is pure functions over pytree state (the gymnax pattern), gathered in an :class:`Env`;
an experiment names a world through a *world spec* (:mod:`internalize.worlds`), a frozen
dataclass of settings that builds the :class:`Env` and its parameters. Everything below is
read by the package; a world that provides it plugs in without touching the learner, the
phases or the reward models.

The params pytree (``params``)
    ``params.max_steps`` (int32 []): the episode's time limit. The learner's per-episode rates
    (``goals_per_episode``...) count steps per ``max_steps`` and evaluation runs that many steps.
    Other fields are the world's own; array fields may differ across a vmapped batch.
``step``'s ``info`` (the world's *events*)
    ``goal_reached`` (bool []): the caregiver's event (the coin reached, the partner helped).
    The paper's caregiver praises it; ``goals_per_episode`` counts it. Required.
    ``forward`` (bool [], optional): the learner moved forward (``forward_per_episode``).
    ``other_actions`` (int32 [other_agents], required when ``other_agents`` > 0): the other
    agents' actions of the step, which the reward model sees beside the learner's.
    ``social_reward`` (float32 [], optional): R_s computed by the world itself (a user's world
    with its own caregiver function); the paper's caregiver then pays it as it stands.
    Any key named in ``Env.events`` (bool []): a further event the learner counts per episode
    (``<name>_per_episode`` among its curves), e.g. which coin of the two-coin world was reached.
The state pytree
    Recorded field by field for the report's stills and ``internalize render``: a state whose
    fields are arrays can be recorded (declare ``trace=False`` otherwise). A ``pos`` field
    (int32 [2], x and y) is the agent's cell, drawn as the path of a still.
``terminated`` and ``truncated`` are kept apart: a truncated step is bootstrapped with the
value of ``info["final_obs"]`` (:func:`auto_reset_step`).

What does not live here: the worlds themselves (:mod:`internalize.worlds`), who pays R_s
(:mod:`internalize.caregivers`), how presence follows a schedule (:mod:`internalize.presence`).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Env(NamedTuple):
    name: str
    """The world's name (results and messages)."""
    reset: Callable[[jax.Array, Any], tuple[jax.Array, Any]]
    """reset(key, params) -> (obs, state): a new episode."""
    step: Callable[..., tuple]
    """step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info);
    never resets by itself; ``info`` carries the events above."""
    n_actions: int
    """The learner's discrete actions."""
    obs_shape: Callable[[Any], tuple[int, ...]]
    """obs_shape(params) -> shape of one observation (uint8 [V, V, C]: an egocentric view, or
    one cell [1, 1, D] for a vector observation)."""
    other_agents: int = 0
    """Other agents whose actions the reward model sees besides the learner's (``info["other_actions"]``,
    ``int32 [other_agents]``, each in ``0..n_actions-1``)."""
    features: Callable[[jax.Array], jax.Array] | None = None
    """The compact encoding of an observation the ``mlp`` networks read (the ``fast`` preset),
    ``obs -> float32 [..., F]``; a world without one can only use the conv networks."""
    events: tuple[str, ...] = ()
    """Further ``info`` events (bool []) the learner counts per episode as ``<name>_per_episode``."""


def auto_reset_step(env: Env, key: jax.Array, state, action, params):
    """``env.step`` that starts a new episode after a terminated or truncated step.

    On a done step the returned obs and state are the new episode's; ``info["final_obs"]``
    and ``info["final_state"]`` are always the observation and state the step itself ended on
    (to bootstrap a truncated episode; what a caregiver judges).
    """
    k_step, k_reset = jax.random.split(key)
    obs, st, reward, terminated, truncated, info = env.step(k_step, state, action, params)
    obs_reset, st_reset = env.reset(k_reset, params)
    done = terminated | truncated
    final_state = st
    st = jax.tree.map(lambda a, b: jnp.where(done, a, b), st_reset, st)
    info = dict(info, final_obs=obs, final_state=final_state)
    return jnp.where(done, obs_reset, obs), st, reward, terminated, truncated, info
