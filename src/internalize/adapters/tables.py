"""A coin world stepped on the host from layout tables: the single Gymnasium env's engine.

A coin-world layout (walls and goal) stays put until the agent reaches the goal, and on it the
world's step depends only on the agent's cell, its direction and the action. So when a layout
is drawn, one compiled call of the world's own :func:`internalize.worlds.coin.step` (vmapped over
every cell, direction and action) and :func:`~internalize.worlds.coin.observe` (over every cell
and direction) fills its *table*: where each action takes the agent, R_e, the world's flags, the
caregiver's social reward and the utility with the caregiver present
(:func:`internalize.caregivers.social_reward`, :func:`internalize.presence.utility`), and each
observation. A step is then a lookup in NumPy: no JAX dispatch, no copy back from a device.

Only two moments call JAX again: a reset (the layout,
the episode's chain of step keys, its table), and a step that reaches the goal (that step
exactly as :func:`~internalize.worlds.coin.step` takes it with that step's key, which draws the
next layout, and the new layout's table). Everything a step returns is therefore what the JAX
world returns for the same keys; ``tests/test_adapters_vector.py`` checks it episode by episode.
The one rule applied on the host is truncation, ``t >= max_steps`` (the world's own, read from
its parameters): the table is made once per layout, not per step.

Keys follow the single adapter's chain (as before these tables): a reset key ``k`` gives
``k_reset, k = split(k)``, and every step ``k_step, k = split(k)``.

Many worlds at once are not stepped this way: the vector env steps them in one compiled call
(docs/performance.md, change 15, measured both).

What does not live here: the Gymnasium classes (:mod:`internalize.adapters.gymnasium`), the
world (:mod:`internalize.worlds.coin`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import caregivers, presence
from ..worlds import coin as world


FIELDS = ("x", "y", "dir", "r_e", "terminated", "goal_reached", "forward", "r_s", "u")
"""The columns of a table's steps: where the action takes the agent (x, y, direction; on the
layout, for steps that do not reach the goal), R_e, the world's flags, the caregiver's R_s and the
utility with it present (all float32)."""
COL = {name: i for i, name in enumerate(FIELDS)}


def _table(state: world.CoinState, params: world.CoinParams, goal_reward: jax.Array):
    """A layout's table (one world): every (cell, direction, action) of the interior stepped by the
    world's own step from ``state``'s layout (``steps [S, S, 4, 3, FIELDS]``, S the interior's side,
    cell (x, y) at [x - 1, y - 1]), and every (cell, direction) observed (``obs [S, S, 4, V, V, C]``).
    The redraw inside the step depends on a key; the steps that reach the goal are taken again
    with the step's real key when they happen (:func:`_goal`)."""
    size = params.size
    cg = caregivers.GoalPraise(goal_reward, waives_step_cost=True)

    def at(x, y, d):
        return world.CoinState(state.walls, state.goal, jnp.stack([x, y]).astype(jnp.int32), d.astype(jnp.int32),
                               jnp.int32(0))

    def one(x, y, d, a):
        _, nxt, r_e, term, _, info = world.step(jax.random.PRNGKey(0), at(x, y, d), a.astype(jnp.int32), params)
        r_s = caregivers.social_reward(cg, info)
        u = presence.utility(r_e, r_s, 0.0, 1.0, caregivers.waived(cg, info))
        return jnp.stack([nxt.pos[0], nxt.pos[1], nxt.dir, r_e, term, info["goal_reached"], info["forward"], r_s,
                          u]).astype(jnp.float32)

    cells = np.arange(1, size + 1)
    xs, ys, ds, acts = (jnp.asarray(v.ravel()) for v in np.meshgrid(cells, cells, np.arange(4),
                                                                     np.arange(world.N_ACTIONS), indexing="ij"))
    steps = jax.vmap(one)(xs, ys, ds, acts).reshape(size, size, 4, world.N_ACTIONS, len(FIELDS))
    cx, cy, cd = (jnp.asarray(v.ravel()) for v in np.meshgrid(cells, cells, np.arange(4), indexing="ij"))
    obs = jax.vmap(lambda x, y, d: world.observe(at(x, y, d), params))(cx, cy, cd)
    return {"steps": steps, "obs": obs.reshape((size, size, 4) + obs.shape[1:])}


def episode_keys(key: jax.Array, steps: int) -> jax.Array:
    """The step keys of an episode from ``key`` (``k_step, key = split(key)`` each step): the
    adapters' key chain, split ahead at reset (this single env, and the PettingZoo env's)."""
    def one(k, _):
        k_step, k_next = jax.random.split(k)
        return k_next, k_step
    return jax.lax.scan(one, key, None, steps)[1]


@functools.partial(jax.jit, static_argnames=("steps",))
def _reset(key: jax.Array, params, goal_reward, steps: int):
    """A world from its reset key: state, observation, the episode's step keys, table."""
    k_reset, k_next = jax.random.split(key)
    obs, state = world.reset(k_reset, params)
    return state, obs, episode_keys(k_next, steps), _table(state, params, goal_reward)


@jax.jit
def _goal(key: jax.Array, state: world.CoinState, action: jax.Array, params, goal_reward):
    """A step that reaches the goal, exactly as the world takes it with its key (which draws the
    next layout), and the next layout's table."""
    obs, nxt = world.step(key, state, action, params)[:2]
    return nxt, obs, _table(nxt, params, goal_reward)


_retable = jax.jit(_table)


class TableWorld:
    """One coin world stepped on the host from its layout's table (see the module doc).

    Host state: the layout (walls, goal), the agent (x, y, direction), the step count, the
    episode's step keys, and the layout's table. ``goal_reward``: the caregiver's praise for the
    goal (its reward and the utility with it present come with every step)."""

    def __init__(self, params: world.CoinParams, goal_reward: float = 0.4):
        self.params = params
        self.max_steps = int(params.max_steps)
        self.goal_reward = jnp.float32(goal_reward)
        self.walls = self.goal = self.steps = self.obs = self.step_keys = None
        self.x = self.y = self.dir = self.t = 0

    def _set(self, state, tables) -> None:
        state, tables = jax.device_get((state, tables))
        self.walls, self.goal = state.walls, state.goal
        self.x, self.y, self.dir = int(state.pos[0]), int(state.pos[1]), int(state.dir)
        self.steps, self.obs = tables["steps"], tables["obs"]

    def reset(self, key: np.ndarray) -> np.ndarray:
        """A new episode from the reset key ``uint32 [2]``; its first observation."""
        state, obs, step_keys, tables = _reset(jnp.asarray(key, jnp.uint32), self.params, self.goal_reward,
                                               self.max_steps)
        obs, self.step_keys = jax.device_get((obs, step_keys))
        self._set(state, tables)
        self.t = 0
        return np.array(obs)  # (writable: the caller's)

    def step(self, action: int):
        """The agent takes ``action``. Returns (obs ``[V, V, 4]``, r_e, terminated, truncated,
        goal_reached, forward, r_s, u); reset the world when it ended."""
        row = self.steps[self.x - 1, self.y - 1, self.dir, action]
        nx, ny, nd = int(row[0]), int(row[1]), int(row[2])
        goal = bool(row[COL["goal_reached"]])
        if goal:  # the world's own step, with the step's key: it draws the next layout
            state = world.CoinState(self.walls, self.goal, np.asarray([self.x, self.y], np.int32),
                                    np.int32(self.dir), np.int32(self.t))
            row = row.copy()  # (the table is replaced below)
            nxt, obs, tables = _goal(jnp.asarray(self.step_keys[self.t], jnp.uint32), state, np.int32(action),
                                     self.params, self.goal_reward)
            obs = np.array(obs)
            self._set(nxt, tables)
        else:
            obs = self.obs[nx - 1, ny - 1, nd].copy()  # (the caller's: the table is replaced later)
            self.x, self.y, self.dir = nx, ny, nd
        self.t += 1
        return (obs, float(row[COL["r_e"]]), bool(row[COL["terminated"]]), self.t >= self.max_steps, goal,
                bool(row[COL["forward"]]), float(row[COL["r_s"]]), float(row[COL["u"]]))

    def set_goal_reward(self, goal_reward: float) -> None:
        """The caregiver's praise for the goal; a layout already drawn is tabled again."""
        self.goal_reward = jnp.float32(goal_reward)
        if self.walls is not None:
            state = world.CoinState(self.walls, self.goal, np.asarray([self.x, self.y], np.int32),
                                    np.int32(self.dir), np.int32(self.t))
            self.steps = np.asarray(_retable(state, self.params, self.goal_reward)["steps"])

    def state(self) -> world.CoinState:
        """The world's state, as the JAX world holds it."""
        return world.CoinState(jnp.asarray(self.walls), jnp.asarray(self.goal), jnp.asarray([self.x, self.y], jnp.int32),
                               jnp.int32(self.dir), jnp.int32(self.t))
