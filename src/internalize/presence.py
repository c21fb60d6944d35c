"""Presence P of the caregiver and the learner's utility (SPEC 2).

U = R_e + P * R_s + (1 - P) * R_i.

A schedule is a small pytree of numbers, so schedules of different kinds ride one vmap:
the probability p(t) stays at ``start`` for ``delay`` environment steps of the phase, then moves
linearly to ``end`` over ``horizon`` steps (constant when start == end), and ``mode`` says how P
follows it. Steps count the phase's environment steps of all its environments together, as
budgets do (with 16 environments, a horizon of 20,000 steps is 1,250 steps of each).

- ``EXPECTED``: P = p(t), a fraction (the paper's phase switch is p = 1 or p = 0).
- ``PER_STEP``: P ~ Bernoulli(p(t)) drawn every step.
- ``PER_EPISODE``: one uniform draw u per episode, P = [u < p(t)], so the caregiver is there
  for whole episodes (and, with a fading p, leaves once p(t) falls below that episode's u).

What does not live here: who pays R_s (:mod:`internalize.caregivers`) and which condition
keeps the caregiver (:mod:`internalize.conditions`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

EXPECTED, PER_STEP, PER_EPISODE = 0, 1, 2
MODES = {"expected": EXPECTED, "per_step": PER_STEP, "per_episode": PER_EPISODE}


@struct.dataclass
class Presence:
    start: jax.Array  # float32 [], p at the start of the phase
    end: jax.Array  # float32 [], p once `horizon` steps have passed
    horizon: jax.Array  # float32 [], environment steps (all environments) of the ramp
    mode: jax.Array  # int32 [], EXPECTED, PER_STEP or PER_EPISODE
    delay: jax.Array = 0.0  # float32 [], environment steps (all environments) before the ramp starts


def schedule(start: float, end: float | None = None, horizon: float = 1.0, mode: str = "expected",
             delay: float = 0.0) -> Presence:
    if mode not in MODES:
        raise ValueError(f"unknown presence mode {mode!r}; known: {', '.join(MODES)}")
    end = start if end is None else end
    for name, v in (("start", start), ("end", end)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"presence {name} must be in [0, 1], got {v}")
    if horizon <= 0:
        raise ValueError(f"presence horizon must be positive, got {horizon}")
    if delay < 0:
        raise ValueError(f"presence delay must be at least 0, got {delay}")
    return Presence(jnp.float32(start), jnp.float32(end), jnp.float32(horizon), jnp.int32(MODES[mode]),
                    jnp.float32(delay))


UNITS = ("steps", "phase")


def from_spec(spec, phase_steps: float | None = None) -> Presence:
    """The schedule a :class:`internalize.config.PresenceSpec` (settings) describes.

    With ``spec.unit == "phase"``, horizon and delay are fractions of the phase, whose length in
    environment steps is ``phase_steps`` (the phase's budget)."""
    unit, delay = spec.unit, spec.delay
    if unit not in UNITS:
        raise ValueError(f"unknown presence unit {unit!r}; known: {', '.join(UNITS)}")
    if unit == "phase":
        for name, v in (("horizon", spec.horizon), ("delay", delay)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"presence {name} in unit 'phase' is a fraction of the phase, in [0, 1]; got {v}")
        scale = 1.0 if phase_steps is None else float(phase_steps)
        # A ramp of 0 (an instant switch) is one step long.
        return schedule(spec.start, spec.end, max(spec.horizon * scale, 1.0), spec.mode, delay * scale)
    return schedule(spec.start, spec.end, spec.horizon, spec.mode, delay)


def present() -> Presence:
    """The caregiver is there throughout (socialization; the `oracle` condition)."""
    return schedule(1.0)


def absent() -> Presence:
    """The caregiver has left (autonomy under `none` and `isr`)."""
    return schedule(0.0)


def probability(p: Presence, t: jax.Array) -> jax.Array:
    """p(t) for the phase's environment step t (all environments together)."""
    frac = jnp.clip((t - p.delay) / p.horizon, 0.0, 1.0)
    return p.start + (p.end - p.start) * frac


def sample(p: Presence, key: jax.Array, t: jax.Array, episode_draw: jax.Array) -> jax.Array:
    """P for one step. ``episode_draw``: the uniform drawn at the start of the episode."""
    prob = probability(p, t)
    step_draw = jax.random.uniform(key, jnp.shape(episode_draw))
    bern_step = (step_draw < prob).astype(jnp.float32)
    bern_episode = (episode_draw < prob).astype(jnp.float32)
    return jnp.select([p.mode == PER_STEP, p.mode == PER_EPISODE], [bern_step, bern_episode], prob)


def utility(r_e: jax.Array, r_s: jax.Array, r_i: jax.Array, presence: jax.Array, waive: jax.Array,
            replace: jax.Array | float = 0.0) -> jax.Array:
    """U = R_e * (1 - P * waive) + P * R_s + (1 - P) * R_i (SPEC 2; waive: SPEC 3 goal step).

    ``replace`` = 1: while the caregiver is absent R_i replaces the environment's reward too,
    U = P * (R_e * (1 - waive) + R_s) + (1 - P) * R_i (the prosocial world's ISR, SPEC 8).
    """
    keep_env = presence * (1.0 - waive) + (1.0 - presence) * (1.0 - replace)
    return r_e * keep_env + presence * r_s + (1.0 - presence) * r_i
