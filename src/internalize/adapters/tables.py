"""Coin worlds stepped on the host from layout tables: the adapters' engine (one world or many).

A coin-world layout (walls and goal) stays put until the agent reaches the goal, and on it the
world's step depends only on the agent's cell, its direction and the action. So when a layout
is drawn, one compiled call of the world's own :func:`internalize.worlds.coin.step` (vmapped over
every cell, direction and action) and :func:`~internalize.worlds.coin.observe` (over every cell
and direction) fills its *table*: where each action takes the agent, R_e, the world's flags, the
caregiver's social reward and the utility with the caregiver present
(:func:`internalize.caregivers.social_reward`, :func:`internalize.presence.utility`), and each
observation. A step is then a lookup in NumPy: no JAX dispatch, no copy back from a device.

Only two moments call JAX again, each once for every world that needs it: a reset (the layout,
the episode's chain of step keys, its table), and a step that reaches the goal (that step
exactly as :func:`~internalize.worlds.coin.step` takes it with that step's key, which draws the
next layout, and the new layout's table). Everything a step returns is therefore what the JAX
world returns for the same keys; ``tests/test_adapters_speed.py`` checks it episode by episode.
The one rule applied on the host is truncation, ``t >= max_steps`` (the world's own, read from
its parameters): the table is made once per layout, not per step.

Keys follow the single adapter's chain (as before these tables): a reset key ``k`` gives
``k_reset, k = split(k)``, and every step ``k_step, k = split(k)``.

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


def _keys_of(key: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """The step keys of an episode from ``key`` (``k_step, key = split(key)`` each step) and the key after."""
    def one(k, _):
        k_step, k_next = jax.random.split(k)
        return k_next, k_step
    last, step_keys = jax.lax.scan(one, key, None, steps)
    return step_keys, last


@functools.partial(jax.jit, static_argnames=("steps",))
def _reset(keys: jax.Array, params, goal_reward, steps: int):
    """Worlds ``[B]`` from their reset keys: state, observation, the episode's step keys, table."""
    def one(key):
        k_reset, k_next = jax.random.split(key)
        obs, state = world.reset(k_reset, params)
        step_keys, _ = _keys_of(k_next, steps)
        return state, obs, step_keys, _table(state, params, goal_reward)
    return jax.vmap(one)(keys)


@jax.jit
def _goal(keys: jax.Array, states: world.CoinState, actions: jax.Array, params, goal_reward):
    """Steps that reach the goal ``[B]``, each exactly as the world takes it with its key (which
    draws the next layout), and the next layout's table."""
    def one(key, state, action):
        obs, nxt = world.step(key, state, action, params)[:2]
        return nxt, obs, _table(nxt, params, goal_reward)
    return jax.vmap(one)(keys, states, actions)


@jax.jit
def _tables(states: world.CoinState, params, goal_reward):
    """The tables of layouts already drawn ``[B]`` (after the caregiver's praise changed)."""
    return jax.vmap(lambda s: _table(s, params, goal_reward))(states)


def _bucket(n: int, most: int) -> int:
    """Calls for ``n`` worlds are padded to a power of two (at most ``most``): few compiled shapes."""
    b = 1
    while b < n:
        b *= 2
    return min(b, most)


class TableWorlds:
    """``n`` coin worlds stepped on the host from their layouts' tables (see the module doc).

    Host state per world: the layout (walls, goal), the agent (x, y, direction), the step count,
    the episode's step keys, and the layout's table. ``goal_reward``: the caregiver's praise for
    the goal (its reward and the utility with it present come with every step)."""

    def __init__(self, n: int, params: world.CoinParams, goal_reward: float = 0.4):
        self.n = n
        self.params = params
        self.max_steps = int(params.max_steps)
        self.goal_reward = jnp.float32(goal_reward)
        w, v, size = params.width, params.view, params.size
        self.walls = np.zeros((n, w, w), bool)
        self.goal = np.zeros((n, 2), np.int32)
        self.pos = np.zeros((n, 2), np.int32)
        self.dir = np.zeros(n, np.int32)
        self.t = np.zeros(n, np.int32)
        self.step_keys = np.zeros((n, self.max_steps, 2), np.uint32)
        self.steps = np.zeros((n, size, size, 4, world.N_ACTIONS, len(FIELDS)), np.float32)
        self.obs = np.zeros((n, size, size, 4, v, v, 4), np.uint8)
        self.drawn = np.zeros(n, bool)
        self._all = np.arange(n)

    def _set(self, which: np.ndarray, state, tables) -> None:
        state, tables = jax.device_get((state, tables))
        k = len(which)
        self.walls[which] = state.walls[:k]
        self.goal[which] = state.goal[:k]
        self.pos[which] = state.pos[:k]
        self.dir[which] = state.dir[:k]
        self.steps[which] = tables["steps"][:k]
        self.obs[which] = tables["obs"][:k]
        self.drawn[which] = True

    def reset(self, which: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Reset the worlds ``which`` from reset keys ``uint32 [len(which), 2]``; their observations."""
        which = np.asarray(which)
        pad = _bucket(len(which), self.n) - len(which)
        keys = np.concatenate([keys, np.repeat(keys[:1], pad, 0)]) if pad else keys
        state, obs, step_keys, tables = _reset(jnp.asarray(keys, jnp.uint32), self.params, self.goal_reward,
                                               self.max_steps)
        obs, step_keys = jax.device_get((obs, step_keys))
        self._set(which, state, tables)
        self.step_keys[which] = step_keys[: len(which)]
        self.t[which] = 0
        return obs[: len(which)]

    def step(self, actions: np.ndarray):
        """Every world takes its action. Returns (obs ``[n, V, V, 4]``, r_e, terminated, truncated,
        goal_reached, forward, r_s, u); the worlds are left as stepped (reset those that ended)."""
        actions = np.asarray(actions, np.int32)
        x, y, d = self.pos[:, 0] - 1, self.pos[:, 1] - 1, self.dir
        if self.n == 1:  # plain indexing: a single world steps several times faster so
            row = self.steps[0, x[0], y[0], d[0], actions[0]][None].copy()  # (a view would change with the table)
        else:
            row = self.steps[self._all, x, y, d, actions]
        nx, ny, nd = (row[:, i].astype(np.int32) for i in range(3))
        goal = row[:, COL["goal_reached"]] != 0
        if self.n == 1:
            obs = self.obs[0, nx[0] - 1, ny[0] - 1, nd[0]][None].copy()
        else:
            obs = self.obs[self._all, nx - 1, ny - 1, nd]
        before = (self.pos, self.dir)
        self.pos, self.dir = np.stack([nx, ny], 1), nd
        if goal.any():  # the world's own step, with the step's key: it draws the next layout
            hit = np.flatnonzero(goal)
            states = world.CoinState(self.walls[hit], self.goal[hit], before[0][hit], before[1][hit], self.t[hit])
            args = (self.step_keys[hit, self.t[hit]], states, actions[hit])
            pad = _bucket(len(hit), self.n) - len(hit)
            if pad:
                args = jax.tree.map(lambda v: np.concatenate([v, np.repeat(v[:1], pad, 0)]), args)
            nxt_state, goal_obs, tables = _goal(jnp.asarray(args[0], jnp.uint32), args[1], jnp.asarray(args[2]),
                                                self.params, self.goal_reward)
            self._set(hit, nxt_state, tables)
            obs = obs.copy()
            obs[hit] = np.asarray(goal_obs)[: len(hit)]
        self.t = self.t + 1
        trunc = self.t >= self.max_steps
        return (obs, row[:, COL["r_e"]], row[:, COL["terminated"]] != 0, trunc, goal, row[:, COL["forward"]] != 0,
                row[:, COL["r_s"]], row[:, COL["u"]])

    def set_goal_reward(self, goal_reward: float) -> None:
        """The caregiver's praise for the goal; the layouts already drawn are tabled again."""
        self.goal_reward = jnp.float32(goal_reward)
        if self.drawn.any():
            states = world.CoinState(self.walls, self.goal, self.pos, self.dir, self.t)
            self.steps[:] = np.asarray(_tables(states, self.params, self.goal_reward)["steps"])

    def state(self, i: int) -> world.CoinState:
        """World ``i``'s state, as the JAX world holds it."""
        return world.CoinState(jnp.asarray(self.walls[i]), jnp.asarray(self.goal[i]), jnp.asarray(self.pos[i]),
                               jnp.asarray(self.dir[i]), jnp.asarray(self.t[i]))
