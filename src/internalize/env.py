"""What the learner needs of a world: pure reset and step over pytree state (gymnax pattern).

A world module exposes an :class:`Env`; the learner, ISR and phases are written against it,
so a new world (or a user's own) plugs in without touching them.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Env(NamedTuple):
    name: str
    reset: Callable[[jax.Array, Any], tuple[jax.Array, Any]]
    """reset(key, params) -> (obs, state)"""
    step: Callable[..., tuple]
    """step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info);
    info carries the events a caregiver reads (``goal_reached``)."""
    n_actions: int
    obs_shape: Callable[[Any], tuple[int, ...]]
    """obs_shape(params) -> shape of one observation (uint8)."""
    other_agents: int = 0
    """Other agents whose actions the ISR sees besides the learner's (``info["other_actions"]``,
    ``int32 [other_agents]``, each in ``0..n_actions-1``)."""
    features: Callable[[jax.Array], jax.Array] | None = None
    """The ``fast`` preset's compact encoding of an observation, ``obs -> float32 [..., F]``."""


def auto_reset_step(env: Env, key: jax.Array, state, action, params):
    """``env.step`` that starts a new episode after a terminated or truncated step.

    On a done step the returned obs and state are the new episode's; ``info["final_obs"]``
    is always the observation the step itself ended on (to bootstrap a truncated episode).
    """
    k_step, k_reset = jax.random.split(key)
    obs, st, reward, terminated, truncated, info = env.step(k_step, state, action, params)
    obs_reset, st_reset = env.reset(k_reset, params)
    done = terminated | truncated
    st = jax.tree.map(lambda a, b: jnp.where(done, a, b), st_reset, st)
    info = dict(info, final_obs=obs)
    return jnp.where(done, obs_reset, obs), st, reward, terminated, truncated, info
