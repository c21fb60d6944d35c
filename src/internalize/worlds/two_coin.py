"""The two-coin world: the coin world (:mod:`.coin`) with a red and a blue coin.

The same room, actions, step cost and episode length as the coin world; both coins are always
on the floor. Moving forward onto either coin reaches it: the whole layout (walls, both coins,
the agent) is redrawn and the episode goes on; episodes end by truncation only. ``info`` says
which coin was reached (``red_reached``, ``blue_reached``, and ``goal_reached`` for either), so
a caregiver can praise one colour and another caregiver the other.

The observation is the coin world's egocentric view with the coins shown as MiniGrid balls of
their colour: planes object type, colour, state (MiniGrid), "is red coin" and "is blue coin"
(``uint8 [V, V, 5]``, V = 2 * size - 1). Parameters are the coin world's
(:class:`~.coin.CoinParams`, built by :func:`two_coin_params`), so named maps work too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .. import caregivers, env
from . import coin
from .coin import (COLOR_BLUE, COLOR_GREY, COLOR_RED, DIR_VEC, FORWARD, N_ACTIONS, NAMED_MAPS, OBJ_AGENT, OBJ_BALL,
                   OBJ_EMPTY, OBJ_WALL, CoinParams, _draw_layout_once, _reachable, _triangle_mask, egocentric,
                   coin_params, draw_room)

N_CHANNELS = 5
ACTION_NAMES = ("left", "right", "forward")
# Turning: left is -1 (mod 4), right +1, forward keeps the direction.
_TURN = np.array([3, 1, 0], np.int32)


def two_coin_params(
    n_walls: int = 3,
    map_name: str | None = None,
    size: int = 5,
    max_steps: int | None = None,
    step_cost_total: float = 0.9,
    reachable_only: bool = False,
) -> CoinParams:
    """The coin world's parameters (:func:`~.coin.coin_params`), with room for both coins and the agent."""
    if size >= 2 and map_name is None and not 0 <= n_walls <= size * size - 3:
        raise ValueError(f"n_walls must be in 0..{size * size - 3} for size {size} (two coins and the agent "
                         f"need 3 free cells), got {n_walls}")
    params = coin_params(n_walls, map_name, size, max_steps, step_cost_total, reachable_only)
    if map_name is not None and (~NAMED_MAPS[map_name]).sum() < 3:
        raise ValueError(f"map {map_name!r} has fewer than 3 free cells (two coins and the agent)")
    return params


@struct.dataclass
class TwoCoinState:
    walls: jax.Array  # bool [W, H]
    red: jax.Array  # int32 [2], (x, y) of the red coin
    blue: jax.Array  # int32 [2], (x, y) of the blue coin
    pos: jax.Array  # int32 [2], (x, y) of the agent
    dir: jax.Array  # int32 [], 0..3
    t: jax.Array  # int32 [], steps taken this episode


def _draw_once(key: jax.Array, params: CoinParams, t: jax.Array) -> TwoCoinState:
    """Walls, red coin, blue coin and agent on distinct free cells, and a direction.

    The coin world orders the interior cells at random (walls first) and puts its goal and agent
    on the next two. Drawing again with the same key on a fixed map made of those walls plus the
    first cell keeps the order of the remaining cells, so its goal and agent are the next two
    cells in the first draw's order: the red coin, the blue coin and the agent take three ranks
    in a row.
    """
    first = _draw_layout_once(key, params)
    fixed = first.walls.at[first.goal[0], first.goal[1]].set(True)
    second = _draw_layout_once(key, params.replace(fixed_walls=fixed, use_fixed_walls=jnp.bool_(True)))
    return TwoCoinState(first.walls, first.goal, second.goal, second.pos, first.dir, t)


def draw_layout(key: jax.Array, params: CoinParams, t: jax.Array | int = 0) -> TwoCoinState:
    """A fresh layout as a state at step ``t``; with ``reachable_only``, redrawn until the agent
    can reach both coins."""
    t = jnp.asarray(t, jnp.int32)
    if not params.reachable_only:
        return _draw_once(key, params, t)

    def both_reachable(s: TwoCoinState) -> jax.Array:
        return _reachable(s.walls, s.pos, s.red, params.size) & _reachable(s.walls, s.pos, s.blue, params.size)

    def redraw(carry):
        k = jax.random.fold_in(carry[0], 1)
        return k, _draw_once(k, params, t)

    k0 = jax.random.fold_in(key, 0)
    return jax.lax.while_loop(lambda c: ~both_reachable(c[1]), redraw, (k0, _draw_once(k0, params, t)))[1]


def layout_state(walls, red, blue, pos, direction, t: int = 0) -> TwoCoinState:
    """A hand-made state (walls ``bool [W, H]`` with the border; cells as (x, y))."""
    cell = lambda c: jnp.asarray(c, jnp.int32)  # noqa: E731
    return TwoCoinState(jnp.asarray(walls, bool), cell(red), cell(blue), cell(pos), jnp.int32(direction),
                        jnp.int32(t))


def _cells_like(walls: jax.Array) -> jax.Array:
    xs, ys = np.meshgrid(np.arange(walls.shape[0]), np.arange(walls.shape[1]), indexing="ij")
    return jnp.asarray(np.stack([xs, ys], -1))


def encode_grid(state: TwoCoinState) -> jax.Array:
    """MiniGrid encoding of the whole room, ``uint8 [W, H, 3]``: walls, the two coins (balls of
    their colour) and the agent."""
    cells = _cells_like(state.walls)
    on = lambda c: jnp.all(cells == c, -1)  # noqa: E731
    is_agent, is_red, is_blue = on(state.pos), on(state.red), on(state.blue)
    where = [is_agent, is_red, is_blue, state.walls]
    obj = jnp.select(where, [OBJ_AGENT, OBJ_BALL, OBJ_BALL, OBJ_WALL], OBJ_EMPTY)
    color = jnp.select(where, [COLOR_RED, COLOR_RED, COLOR_BLUE, COLOR_GREY], COLOR_RED)
    st = jnp.where(is_agent, state.dir, 0)
    return jnp.stack([obj, color, st], -1).astype(jnp.uint8)


def observe(state: TwoCoinState, params: CoinParams) -> jax.Array:
    """Egocentric, fully observable view ``uint8 [V, V, 5]``, laid out as the coin world's.

    Planes: object type, colour, state (MiniGrid; a coin is a ball, red or blue), 0/1 "is red
    coin" and 0/1 "is blue coin". Cells outside the room are zeros; the cell in front of the
    agent is ``view[size, size - 1]``.
    """
    seen = egocentric(encode_grid(state), state.pos, state.dir, params.size).astype(jnp.uint8)
    ball = seen[..., 0] == OBJ_BALL
    red = ball & (seen[..., 1] == COLOR_RED)
    blue = ball & (seen[..., 1] == COLOR_BLUE)
    return jnp.concatenate([seen, jnp.stack([red, blue], -1).astype(jnp.uint8)], -1)


def reset(key: jax.Array, params: CoinParams) -> tuple[jax.Array, TwoCoinState]:
    """Start an episode on a fresh layout."""
    state = draw_layout(key, params)
    return observe(state, params), state


def step(key: jax.Array, state: TwoCoinState, action: jax.Array, params: CoinParams):
    """One step. Returns ``(obs, state, reward, terminated, truncated, info)``.

    ``reward`` is R_e alone (minus the step cost on forward moves, as in the coin world).
    ``info``: ``red_reached``, ``blue_reached`` (stepped onto that coin; the layout was redrawn),
    ``goal_reached`` (either) and ``forward``.
    """
    action = jnp.asarray(action, jnp.int32)
    forward = action == FORWARD
    ahead = state.pos + jnp.asarray(DIR_VEC)[state.dir]
    moves = forward & ~state.walls[ahead[0], ahead[1]]
    pos = jnp.where(moves, ahead, state.pos)
    red_reached = moves & jnp.all(pos == state.red)
    blue_reached = moves & jnp.all(pos == state.blue)
    reached = red_reached | blue_reached
    t = state.t + 1
    # Reaching a coin draws a fresh layout; the step counter keeps running.
    stepped = state.replace(pos=pos, dir=(state.dir + jnp.asarray(_TURN)[action]) % 4, t=t)
    redrawn = draw_layout(key, params, t)
    next_state = jax.tree.map(lambda new, old: jnp.where(reached, new, old), redrawn, stepped)
    reward = jnp.where(forward, -params.step_cost, 0.0).astype(jnp.float32)
    info = {"goal_reached": reached, "red_reached": red_reached, "blue_reached": blue_reached, "forward": forward}
    return observe(next_state, params), next_state, reward, jnp.bool_(False), t >= params.max_steps, info


def auto_reset_step(key: jax.Array, state: TwoCoinState, action: jax.Array, params: CoinParams):
    """:func:`step` with a new episode after truncation (see :func:`internalize.env.auto_reset_step`)."""
    return env.auto_reset_step(TWO_COIN, key, state, action, params)


def compact_features(obs: jax.Array) -> jax.Array:
    """The ``fast`` preset's encoding: wall, red-coin and blue-coin planes of the view, flat.

    ``uint8 [..., V, V, 5] -> float32 [..., 3 * V * V]`` (per cell: wall, red, blue).
    """
    planes = jnp.stack([obs[..., 0] == OBJ_WALL, obs[..., 3] > 0, obs[..., 4] > 0], -1).astype(jnp.float32)
    return planes.reshape(planes.shape[:-3] + (-1,))


def sweep(layouts) -> tuple[TwoCoinState, np.ndarray, np.ndarray]:
    """Every (layout, agent cell, direction, action) exactly once, for value maps of a reward model.

    layouts: ``(walls bool [W, H], red (x, y), blue (x, y))`` triples. Agent cells are the free
    cells other than the coins. Returns (states [M] as a batched TwoCoinState, actions int32 [M],
    index int32 [M, 5] of (layout, x, y, direction, action)).
    """
    blocks = []
    for li, (walls, red, blue) in enumerate(layouts):
        free = ~np.asarray(walls, bool)
        free[tuple(np.asarray(red, int))] = free[tuple(np.asarray(blue, int))] = False
        cells = np.argwhere(free)  # x-major, then y
        n = len(cells) * 4 * N_ACTIONS
        d, a = np.divmod(np.arange(n) % (4 * N_ACTIONS), N_ACTIONS)
        blocks.append(np.column_stack([np.full(n, li), np.repeat(cells, 4 * N_ACTIONS, 0), d, a]))
    index = np.concatenate(blocks).astype(np.int32)
    per_row = lambda k: np.stack([np.asarray(layouts[i][k]) for i in index[:, 0]])  # noqa: E731
    states = TwoCoinState(jnp.asarray(per_row(0), bool), jnp.asarray(per_row(1), jnp.int32),
                          jnp.asarray(per_row(2), jnp.int32), jnp.asarray(index[:, 1:3]),
                          jnp.asarray(index[:, 3]), jnp.zeros(len(index), jnp.int32))
    return states, index[:, 4].copy(), index


# ---------------------------------------------------------------------------------------------
# Rendering (host side, for figures and GIFs)

_COLORS = {"red": (214, 39, 40), "blue": (31, 119, 180), "agent": (148, 103, 189)}


def _coin_mask(tile: int) -> np.ndarray:
    """A round coin filling most of a tile."""
    centre = (np.arange(tile) + 0.5) / tile - 0.5
    return np.hypot(centre[:, None], centre[None, :]) <= 0.33


def render(state: TwoCoinState, tile: int = 24) -> np.ndarray:
    """RGB image ``uint8 [H * tile, W * tile, 3]`` of one (unbatched) state: walls, the red and
    the blue coin (discs) and the agent (a purple triangle)."""
    img = draw_room(state.walls, tile)

    def cell(c):
        x, y = (int(v) for v in np.asarray(c))
        return img[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile]

    cell(state.red)[_coin_mask(tile)] = _COLORS["red"]
    cell(state.blue)[_coin_mask(tile)] = _COLORS["blue"]
    cell(state.pos)[_triangle_mask(tile, int(np.asarray(state.dir)))] = _COLORS["agent"]
    return img


TWO_COIN = env.Env(
    name="two_coin",
    reset=reset,
    step=step,
    n_actions=N_ACTIONS,
    obs_shape=lambda params: (params.view, params.view, N_CHANNELS),
    features=compact_features,
    events=("red_reached", "blue_reached"),
)


@dataclass(frozen=True)
class TwoCoinWorld:
    """The two-coin world: a red and a blue coin in the coin world's room."""

    n_walls: int = 3
    """Random interior walls per layout (at most size * size - 3: both coins and the agent need a cell)."""
    size: int = 5
    """Side of the square interior in cells, inside the outer wall (as the coin world: 5)."""
    reachable_only: bool = False
    """Redraw layouts where the agent cannot reach both coins (off: such layouts are kept)."""

    @property
    def env(self) -> env.Env:
        return TWO_COIN

    def params(self) -> CoinParams:
        return two_coin_params(self.n_walls, size=self.size, reachable_only=self.reachable_only)

    def caregiver(self) -> caregivers.GoalPraise:
        """+0.4 on either coin, paid instead of that step's cost; experiments that praise one
        colour name their own caregiver."""
        return caregivers.GoalPraise(0.4, waives_step_cost=True)

    def value_map_steps(self, key: jax.Array):
        """A fixed layout drawn with ``key`` and every forward step into its free cells
        (:func:`internalize.worlds.coin.value_map_steps`)."""
        return coin.value_map_steps(key, self.params(), reset, observe, lambda s: [s.red, s.blue])

    action_names = ACTION_NAMES

    def render(self, rec: dict, t: int, tile: int = 16) -> np.ndarray:
        """Step ``t`` of a recorded episode (:func:`internalize.phases.trace`) as an RGB image."""
        return render(TwoCoinState(**{f.name: rec[f.name][t] for f in dataclasses.fields(TwoCoinState)}), tile=tile)
