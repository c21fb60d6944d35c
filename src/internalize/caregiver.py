"""The caregiver: a function of the transition that pays social reward R_s (SPEC 2, 3).

In the coin world the caregiver pays ``goal_reward`` (+0.4) when the learner steps onto the
goal. In the authors' scripts that step pays +0.4 *instead of* the step cost; with
``waives_step_cost`` (the ``paper`` behaviour, kept in every preset) the caregiver, when
present, waives the goal step's cost. :func:`internalize.presence.utility` applies it.

A world may instead compute R_s itself (a user's caregiver function,
:mod:`internalize.adapters.gymnax`) and put it in ``info["social_reward"]``; it is then paid as
it stands and ``goal_reward`` is not used.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Caregiver:
    goal_reward: jax.Array  # float32 [], R_s on a goal step (SPEC 3: 0.4)
    waives_step_cost: jax.Array  # bool [], the goal step pays R_s instead of R_s - cost (SPEC 3)


def caregiver(goal_reward: float = 0.4, waives_step_cost: bool = True) -> Caregiver:
    return Caregiver(jnp.float32(goal_reward), jnp.bool_(waives_step_cost))


def social_reward(cg: Caregiver, info: dict) -> jax.Array:
    """R_s of a transition from the world's ``info`` (any batch shape)."""
    if "social_reward" in info:  # the world's own caregiver paid it (decided at trace time)
        return jnp.asarray(info["social_reward"], jnp.float32)
    return jnp.where(info["goal_reached"], cg.goal_reward, 0.0).astype(jnp.float32)


def waived(cg: Caregiver, info: dict) -> jax.Array:
    """Whether the caregiver (if present) waives this step's environment cost."""
    return info["goal_reached"] & cg.waives_step_cost
