"""Bring your own world: a gymnax environment and your caregiver, as an experiment's world.

:func:`from_gymnax` takes a gymnax ``Environment`` object as it is (``gymnax.make(...)`` or your
own subclass) and a caregiver function, and returns a :class:`GymnaxWorld`: what
:class:`internalize.experiments.Experiment` takes as its ``socialize_world`` and
``autonomy_world`` (``.env``, ``.params()``, ``.caregiver()``). The learner, the ISR and the
phases then run on it unchanged (docs/own_world.md).

Episodes
    The world steps with gymnax's ``step_env`` and ``reset_env``, which do not reset by
    themselves, so the learner's own auto reset keeps the final observation of a truncated
    episode for its value bootstrap. ``terminated`` is ``step_env``'s done (gymnax >= 1.0: the
    natural end, e.g. the pole fell); ``truncated`` is the time limit
    (``env.is_truncated``: ``state.time >= max_steps_in_episode``). A step may be both; the
    learner then treats it as terminated (no bootstrap).
The caregiver
    A plain JAX function of one transition, ``caregiver(t: Transition) -> R_s`` (a float
    scalar), traced inside the world's step, so it must be jittable (``jnp.where``, not ``if``).
    R_s is paid as it stands while the caregiver is present, and the ISR learns to predict it
    from (observation, action). Praise is R_s > 0; the ISR is fitted on ``max(R_s, 0)``
    (SPEC 5), so a caregiver that scolds cannot be internalized. The learner's
    ``goals_per_episode`` counts the steps the caregiver praised (R_s > 0), per ``max_steps``
    steps of experience.
Observations
    A vector observation ``[D]`` reaches the learner and the ISR as one cell with D channels,
    ``[1, 1, D]``: the ISR's action codes then sit on that cell, as they sit on the agent's
    cell of the coin world's egocentric view, and no ISR or network code changes. Observations
    of rank 3 (images) are kept; other ranks are flattened to ``[1, 1, D]``; booleans become
    ``uint8``. The networks see :attr:`GymnaxWorld.env`'s ``features`` of an observation: by
    default the flat observation as float32, or your ``features`` function applied to the
    environment's own observation shape. Use the ``mlp`` networks (the ``fast`` preset); the
    paper's conv nets need images of at least 4x4 cells and refuse one-cell observations.
Presence
    The caregiver's presence is the experiment's, not the world's: ``Experiment``'s
    ``socialize_presence`` and ``leave_presence`` (:class:`internalize.config.PresenceSpec`, the
    numbers of :func:`internalize.presence.schedule`) say when it is there during socialization
    and, for the conditions where it leaves (``none``, ``isr``), during autonomy.
Traces
    An experiment records one greedy episode per arm, field by field of the world's state
    (``Experiment.trace``); this needs a state whose fields are arrays, as gymnax's classic
    control states are. For a state with nested fields, declare the experiment with
    ``trace=False``.

Importing :mod:`internalize` does not import this module; it needs ``gymnax``
(``pip install internalize[gymnax]``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import InitVar, dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .. import caregivers
from ..env import Env


class Transition(NamedTuple):
    """One step of the world as the caregiver function sees it (one environment, no batch axis).

    ``next_state`` and ``next_obs`` are where the step ended, before any reset.
    """

    state: Any  # the gymnax state the action was taken in
    action: jax.Array  # int32 []
    next_state: Any  # the gymnax state after the step
    next_obs: jax.Array  # the environment's observation of next_state (its own shape)
    reward: jax.Array  # float32 [], the environment's reward R_e
    terminated: jax.Array  # bool []
    truncated: jax.Array  # bool []
    params: Any  # the gymnax environment params


CaregiverFn = Callable[[Transition], jax.Array]


@struct.dataclass
class GymnaxParams:
    """A :class:`GymnaxWorld`'s params pytree, what the learner passes to the world's step."""

    env_params: Any  # the gymnax environment params
    max_steps: jax.Array  # int32 [], the time limit (the learner's per-episode metrics and evaluation read it)


def _params_record(env_params) -> dict:
    """The gymnax params as plain numbers, for the experiment's config.json."""
    if dataclasses.is_dataclass(env_params):
        items = {f.name: getattr(env_params, f.name) for f in dataclasses.fields(env_params)}
    else:
        items = {f"leaf{i}": v for i, v in enumerate(jax.tree.leaves(env_params))}
    out = {}
    for k, v in items.items():
        a = np.asarray(v)
        out[k] = a.item() if a.ndim == 0 else a.tolist()
    return out


@dataclass(frozen=True)
class _Source:
    """What a world is made of that is not a number: not a dataclass field, so not in config.json."""

    env: Env
    gymnax_env: Any
    env_params: Any
    caregiver: CaregiverFn


@dataclass(frozen=True)
class GymnaxWorld:
    """A gymnax environment with its caregiver: an experiment's world (build it with :func:`from_gymnax`).

    The fields are a record of the world (they go to the experiment's config.json and decide
    whether stored results match); the environment object and the caregiver function ride
    along outside them. Change a world with :meth:`with_env_params` (``dataclasses.replace``
    cannot carry them and refuses).
    """

    name: str
    max_steps: int
    caregiver_fn: str
    """The caregiver function's qualified name (for the record)."""
    env_params: dict = dataclasses.field(compare=False, hash=False)
    """The gymnax params as plain numbers (for the record)."""
    source: InitVar[_Source | None] = None

    def __post_init__(self, source: _Source | None):
        if source is None:
            raise TypeError("a GymnaxWorld carries its environment and caregiver outside its fields: build it with "
                            "from_gymnax(...) and change it with .with_env_params(...)")
        object.__setattr__(self, "_source", source)

    # -- what an experiment needs of a world ---------------------------------------------------
    @property
    def env(self) -> Env:
        return self._source.env

    def params(self) -> GymnaxParams:
        return GymnaxParams(self._source.env_params, jnp.int32(self.max_steps))

    def caregiver(self) -> caregivers.GoalPraise:
        """The world pays R_s itself (``info["social_reward"]``); nothing is waived."""
        return caregivers.GoalPraise(0.0, waives_step_cost=False)

    # -- variants ------------------------------------------------------------------------------
    @property
    def gymnax_env(self):
        return self._source.gymnax_env

    @property
    def gymnax_params(self):
        return self._source.env_params

    def with_env_params(self, env_params) -> GymnaxWorld:
        """A copy on other gymnax params (e.g. a longer pole for a new situation in autonomy).

        The time limit is the new params' ``max_steps_in_episode``; the network is the same, so
        the observation shape must not change.
        """
        obs, _ = jax.eval_shape(self.gymnax_env.reset_env, jax.random.PRNGKey(0), env_params)
        if _cell_shape(obs.shape) != self.env.obs_shape(None):
            raise ValueError(f"these params change the observation shape to {obs.shape}; the network needs "
                             f"{self.env.obs_shape(None)}")
        s = dataclasses.replace(self._source, env_params=env_params)
        return GymnaxWorld(self.name, int(env_params.max_steps_in_episode), self.caregiver_fn,
                           _params_record(env_params), source=s)


def _cell_shape(obs_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape an observation of ``obs_shape`` has as the learner sees it (see the module doc)."""
    return tuple(obs_shape) if len(obs_shape) == 3 else (1, 1, int(math.prod(obs_shape)))


def _cell(obs: jax.Array, rank: int) -> jax.Array:
    """An observation of the environment's own shape as the learner sees it (see the module doc)."""
    if obs.dtype == jnp.bool_:
        obs = obs.astype(jnp.uint8)
    if rank == 3:
        return obs
    batch = obs.shape[: obs.ndim - rank]
    return obs.reshape(batch + (1, 1, -1))


def _make_env(gymnax_env, caregiver: CaregiverFn, name: str, obs_shape: tuple[int, ...], n_actions: int,
              features: Callable | None) -> Env:
    rank = len(obs_shape)

    def reset(key, params: GymnaxParams):
        obs, st = gymnax_env.reset_env(key, params.env_params)
        return _cell(obs, rank), st

    def step(key, state, action, params: GymnaxParams):
        ep = params.env_params
        obs, st, reward, done, info = gymnax_env.step_env(key, state, action, ep)
        terminated = jnp.asarray(done, jnp.bool_)
        truncated = jnp.asarray(gymnax_env.is_truncated(st, ep), jnp.bool_)
        reward = jnp.asarray(reward, jnp.float32)
        r_s = jnp.asarray(caregiver(Transition(state, action, st, obs, reward, terminated, truncated, ep)), jnp.float32)
        if r_s.shape != ():
            raise ValueError(f"the caregiver function must return one number per transition, got shape {r_s.shape}")
        info = dict(info, social_reward=r_s, goal_reached=r_s > 0)
        return _cell(obs, rank), st, reward, terminated, truncated, info

    if features is None:
        def feats(obs):
            return obs.reshape(obs.shape[:-3] + (-1,)).astype(jnp.float32)
    else:
        def feats(obs):
            own = obs.reshape(obs.shape[:-3] + tuple(obs_shape))
            return jnp.asarray(features(own), jnp.float32)

    cell_shape = _cell_shape(obs_shape)
    return Env(name=name, reset=reset, step=step, n_actions=n_actions, obs_shape=lambda params: cell_shape,
               features=feats)


def _qualified_name(fn) -> str:
    return f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def from_gymnax(env, env_params=None, *, caregiver: CaregiverFn, name: str | None = None,
                max_steps: int | None = None, features: Callable | None = None) -> GymnaxWorld:
    """An experiment's world from a gymnax environment object and a caregiver function.

    env: a gymnax ``Environment`` (discrete actions), e.g. the first value of
    ``gymnax.make("CartPole-v1")``. env_params: its params (default ``env.default_params``).
    caregiver: ``caregiver(t: Transition) -> R_s``, jittable, one float per transition (see
    the module doc). name: the world's name (default the environment's). max_steps: the time
    limit (default the params' ``max_steps_in_episode``; when given it replaces it).
    features: ``features(obs) -> float32 [..., F]`` on observations of the environment's own
    shape with any leading batch axes, the networks' input (default: the flat observation).
    """
    if env_params is None:
        env_params = env.default_params
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        env_params = env_params.replace(max_steps_in_episode=int(max_steps))
    if not callable(caregiver):
        raise TypeError("caregiver must be a function of a Transition returning R_s")
    space = env.action_space(env_params)
    n_actions = getattr(space, "n", None)
    if n_actions is None:
        raise ValueError(f"the learner needs a Discrete action space; {env.name} has {space!r}")
    obs, _ = jax.eval_shape(env.reset_env, jax.random.PRNGKey(0), env_params)
    if not isinstance(obs, jax.ShapeDtypeStruct):
        raise ValueError(f"observations must be one array; {env.name} returns {jax.tree.structure(obs)}")
    name = name or env.name
    source = _Source(_make_env(env, caregiver, name, tuple(obs.shape), int(n_actions), features), env,
                     env_params, caregiver)
    return GymnaxWorld(name, int(env_params.max_steps_in_episode),
                       _qualified_name(caregiver), _params_record(env_params), source=source)
