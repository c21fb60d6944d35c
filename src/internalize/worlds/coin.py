"""The coin gridworld of the paper (SPEC 3), as pure functions over pytree state.

A (size+2) x (size+2) room with a wall border (size 5 gives the paper's 7x7 room with a 5x5
interior). Each layout has interior walls (random, or one of the named maps), one goal and
the agent. Actions: 0 turn left, 1 turn right, 2 forward. Stepping onto the goal draws a
fresh layout without ending the episode; episodes end by truncation only (SPEC 3).

Grids are indexed ``[x, y]`` like MiniGrid (x to the right, y down); directions follow
MiniGrid: 0 = +x (right), 1 = +y (down), 2 = -x (left), 3 = -y (up).

The world follows the gymnax pattern: ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``.
``step`` does not reset at truncation; :func:`auto_reset_step` does, returning the final
observation so that a learner can bootstrap a truncated episode.

A scripted demonstrator (:func:`demonstrator_action`, ``CoinWorld.demonstrator()``) walks a
shortest way to the goal, turns counted, for socialization by demonstration
(:mod:`internalize.demonstrations`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .. import caregivers, env

# MiniGrid's integer encoding (object type, colour, state).
OBJ_UNSEEN, OBJ_EMPTY, OBJ_WALL, OBJ_BALL, OBJ_GOAL, OBJ_AGENT = 0, 1, 2, 6, 8, 10
COLOR_RED, COLOR_GREEN, COLOR_BLUE, COLOR_PURPLE, COLOR_YELLOW, COLOR_GREY = 0, 1, 2, 3, 4, 5

LEFT, RIGHT, FORWARD = 0, 1, 2
N_ACTIONS = 3
DIR_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.int32)

# The named 5-wall maps of SPEC 3, as readable strings ('#' wall, '.' free); rows are y.
MAP_STRINGS: dict[str, str] = {
    "plus": """
        #######
        #.....#
        #..#..#
        #.###.#
        #..#..#
        #.....#
        #######""",
    "x": """
        #######
        #.....#
        #.#.#.#
        #..#..#
        #.#.#.#
        #.....#
        #######""",
    "U": """
        #######
        #.....#
        #.#.#.#
        #.#.#.#
        #..#..#
        #.....#
        #######""",
    "T": """
        #######
        #.....#
        #.###.#
        #..#..#
        #..#..#
        #.....#
        #######""",
    "4rooms": """
        #######
        #..#..#
        #.....#
        ##.#.##
        #.....#
        #..#..#
        #######""",
}


class MapError(ValueError):
    """A map string that does not describe a valid room."""


def parse_map(text: str) -> np.ndarray:
    """Parse a map string into a wall mask ``bool[W, H]`` indexed ``[x, y]``.

    Rows are y (top first), columns x; '#' is a wall, '.' free. The border must be walls and
    at least two interior cells free (for the goal and the agent).
    """
    if not isinstance(text, str):
        raise MapError(f"map must be a string, got {type(text).__name__}")
    rows = [r.strip() for r in text.strip().splitlines() if r.strip()]
    if not rows:
        raise MapError("map is empty")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise MapError(f"map rows differ in length: {[len(r) for r in rows]}")
    if len(rows) < 3 or width < 3:
        raise MapError(f"map is {width}x{len(rows)}; it needs at least 3x3 with its border")
    bad = sorted({c for r in rows for c in r} - {"#", "."})
    if bad:
        raise MapError(f"map has characters other than '#' and '.': {''.join(bad)!r}")
    walls = np.array([[c == "#" for c in r] for r in rows], dtype=bool).T  # -> [x, y]
    border = np.ones_like(walls)
    border[1:-1, 1:-1] = False
    if not walls[border].all():
        raise MapError("map border must be all walls")
    if (~walls).sum() < 2:
        raise MapError("map needs at least two free cells (goal and agent)")
    return walls


NAMED_MAPS: dict[str, np.ndarray] = {name: parse_map(s) for name, s in MAP_STRINGS.items()}


@struct.dataclass
class CoinParams:
    """World parameters. Array fields may differ across a vmapped batch; static ones may not."""

    n_walls: jax.Array  # int32 [], random interior walls (ignored with a fixed map)
    fixed_walls: jax.Array  # bool [W, H], the fixed map's walls (border included)
    use_fixed_walls: jax.Array  # bool [], draw only goal and agent on fixed_walls
    step_cost: jax.Array  # float32 [], paid by every forward action (SPEC 3: 0.9 / 20)
    max_steps: jax.Array  # int32 [], truncation length (SPEC 3: 4 * size^2 / 5 = 20)
    size: int = struct.field(pytree_node=False, default=5)  # interior side
    # Our option (SPEC 3 quirk): redraw layouts until the goal is reachable from the agent.
    reachable_only: bool = struct.field(pytree_node=False, default=False)

    @property
    def width(self) -> int:
        return self.size + 2

    @property
    def view(self) -> int:
        """Side of the egocentric window: it covers the whole interior from any cell."""
        return 2 * self.size - 1


def coin_params(
    n_walls: int = 3,
    map_name: str | None = None,
    size: int = 5,
    max_steps: int | None = None,
    step_cost_total: float = 0.9,
    reachable_only: bool = False,
) -> CoinParams:
    """Build world parameters. ``map_name`` picks a named map (SPEC 3) instead of random walls."""
    if size < 2:
        raise ValueError(f"world size must be at least 2, got {size}")
    width = size + 2
    if max_steps is None:
        max_steps = max(1, 4 * size * size // 5)
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if map_name is not None:
        if map_name not in NAMED_MAPS:
            raise ValueError(f"unknown map {map_name!r}; known maps: {', '.join(NAMED_MAPS)}")
        fixed = NAMED_MAPS[map_name]
        if fixed.shape != (width, width):
            raise ValueError(f"map {map_name!r} is {fixed.shape[0]}x{fixed.shape[1]}, world is {width}x{width}")
    else:
        if not 0 <= n_walls <= size * size - 2:
            raise ValueError(f"n_walls must be in 0..{size * size - 2} for size {size}, got {n_walls}")
        fixed = np.zeros((width, width), bool)
        fixed[0, :] = fixed[-1, :] = fixed[:, 0] = fixed[:, -1] = True
    return CoinParams(
        n_walls=jnp.int32(n_walls),
        fixed_walls=jnp.asarray(fixed),
        use_fixed_walls=jnp.bool_(map_name is not None),
        step_cost=jnp.float32(step_cost_total / max_steps),
        max_steps=jnp.int32(max_steps),
        size=size,
        reachable_only=reachable_only,
    )


@struct.dataclass
class CoinState:
    walls: jax.Array  # bool [W, H]
    goal: jax.Array  # int32 [2], (x, y)
    pos: jax.Array  # int32 [2], (x, y)
    dir: jax.Array  # int32 [], 0..3
    t: jax.Array  # int32 [], steps taken this episode


class Layout(NamedTuple):
    walls: jax.Array
    goal: jax.Array
    pos: jax.Array
    dir: jax.Array


def _border(width: int) -> np.ndarray:
    b = np.ones((width, width), bool)
    b[1:-1, 1:-1] = False
    return b


def _reachable(walls: jax.Array, start: jax.Array, target: jax.Array, size: int) -> jax.Array:
    """Flood fill from start over free cells; whether target is reached."""
    reach = jnp.zeros_like(walls).at[start[0], start[1]].set(True)
    free = ~walls

    def grow(_, r):
        n = r | jnp.roll(r, 1, 0) | jnp.roll(r, -1, 0) | jnp.roll(r, 1, 1) | jnp.roll(r, -1, 1)
        return n & free

    reach = jax.lax.fori_loop(0, size * size, grow, reach)
    return reach[target[0], target[1]]


def distances(walls: jax.Array, goal: jax.Array) -> jax.Array:
    """Shortest-path (BFS) distances ``float32 [W, H]`` from every cell to ``goal`` over free
    cells, moving between 4-neighbours; inf where the goal cannot be reached (and on walls)."""
    free = ~walls
    xs, ys = np.meshgrid(np.arange(walls.shape[0]), np.arange(walls.shape[1]), indexing="ij")
    d0 = jnp.where((xs == goal[0]) & (ys == goal[1]), 0.0, jnp.inf).astype(jnp.float32)

    def relax(_, d):
        near = jnp.minimum(jnp.minimum(jnp.roll(d, 1, 0), jnp.roll(d, -1, 0)),
                           jnp.minimum(jnp.roll(d, 1, 1), jnp.roll(d, -1, 1)))
        return jnp.where(free, jnp.minimum(d, near + 1.0), jnp.inf)

    # A path visits each interior cell at most once; the border walls stop the rolls from
    # wrapping. A loop, not unrolled: unrolled, the vmapped program ran about 100x slower
    # (1.38 s against 11.9 ms for 4,096 maps, measured on this machine); cells are chosen by
    # masks rather than indexed, which vmaps into elementwise work instead of gathers.
    return jax.lax.fori_loop(0, (walls.shape[0] - 2) * (walls.shape[1] - 2), relax, d0)


def goal_distance(state: "CoinState") -> jax.Array:
    """The agent's shortest-path distance to the goal (float32 [], inf when unreachable): what a
    shaping or correcting caregiver measures progress by (:class:`internalize.caregivers.Feedback`)."""
    d = distances(state.walls, state.goal)
    xs, ys = np.meshgrid(np.arange(d.shape[0]), np.arange(d.shape[1]), indexing="ij")
    return jnp.min(jnp.where((xs == state.pos[0]) & (ys == state.pos[1]), d, jnp.inf))


def turn_distances(walls: jax.Array, goal: jax.Array) -> jax.Array:
    """Shortest numbers of steps ``float32 [W, H, 4]`` from every (cell, direction) to stepping
    onto ``goal``, counting turns as steps (left and right turn in place, forward moves to the
    cell in front); 0 on the goal itself, inf where it cannot be reached (and on walls).

    A relaxation like :func:`distances`: each iteration relaxes every forward move once, then
    closes the turns (a quarter turn costs 1, a half turn 2), so after k iterations every path
    of at most k forward moves is counted; a shortest path visits each interior cell at most
    once. Masks and rolls, a loop not unrolled (see :func:`distances`).
    """
    free = ~walls
    xs, ys = np.meshgrid(np.arange(walls.shape[0]), np.arange(walls.shape[1]), indexing="ij")
    at_goal = (xs == goal[0]) & (ys == goal[1])
    d0 = jnp.where(at_goal[..., None], 0.0, jnp.inf) * jnp.ones(4, jnp.float32)

    def relax(_, d):
        # Forward in direction k from (x, y) lands on (x, y) + DIR_VEC[k]: the value there is
        # d[..., k] rolled back by DIR_VEC[k] (the border walls stop the rolls from wrapping).
        ahead = jnp.stack([jnp.roll(d[..., k], tuple(-DIR_VEC[k]), (0, 1)) for k in range(4)], -1)
        d = jnp.where(free[..., None], jnp.minimum(d, ahead + 1.0), jnp.inf)
        turned = jnp.minimum(jnp.minimum(jnp.roll(d, 1, 2), jnp.roll(d, -1, 2)) + 1.0, jnp.roll(d, 2, 2) + 2.0)
        return jnp.where(at_goal[..., None], 0.0, jnp.minimum(d, turned))

    return jax.lax.fori_loop(0, (walls.shape[0] - 2) * (walls.shape[1] - 2), relax, d0)


def demonstrator_action(key: jax.Array, state: CoinState, params: CoinParams | None = None,
                        epsilon: float = 0.1) -> jax.Array:
    """A scripted demonstrator's action (int32 []): with probability ``epsilon`` a uniformly
    random action, else one on a shortest path to the goal counting turns as steps
    (:func:`turn_distances`; ties go to forward, then left, then right). Where the goal cannot
    be reached it acts at random. ``params`` is not read (the state holds the layout)."""
    k_explore, k_random = jax.random.split(key)
    d = turn_distances(state.walls, state.goal)
    xs, ys = np.meshgrid(np.arange(d.shape[0]), np.arange(d.shape[1]), indexing="ij")
    dirs = jnp.arange(4)

    def at(cell, direction):  # d at one (cell, direction), by masks rather than a gather
        mask = (xs == cell[0])[..., None] & (ys == cell[1])[..., None] & (dirs == direction)
        return jnp.min(jnp.where(mask, d, jnp.inf))

    front = state.pos + jnp.asarray(DIR_VEC)[state.dir]
    costs = jnp.stack([at(front, state.dir), at(state.pos, (state.dir + 3) % 4), at(state.pos, (state.dir + 1) % 4)])
    best = jnp.asarray([FORWARD, LEFT, RIGHT], jnp.int32)[jnp.argmin(costs)]
    random_action = jax.random.randint(k_random, (), 0, N_ACTIONS, jnp.int32)
    explore = (jax.random.uniform(k_explore) < epsilon) | ~jnp.isfinite(at(state.pos, state.dir))
    return jnp.where(explore, random_action, best)


@struct.dataclass
class Demonstrator:
    """:func:`demonstrator_action` as a callable ``(key, state, world_params) -> action``; a
    pytree whose leaf is ``epsilon``, so demonstrators of any epsilon share one compiled program."""

    epsilon: jax.Array  # float32 [], the chance of a uniformly random action

    def __call__(self, key: jax.Array, state: CoinState, params: CoinParams | None = None) -> jax.Array:
        return demonstrator_action(key, state, params, self.epsilon)


def _draw_layout_once(key: jax.Array, params: CoinParams) -> Layout:
    size, width = params.size, params.width
    k_cells, k_dir = jax.random.split(key)
    interior = np.stack(np.meshgrid(np.arange(1, size + 1), np.arange(1, size + 1), indexing="ij"), -1)
    interior = jnp.asarray(interior.reshape(-1, 2))  # [size*size, 2]
    fixed_interior = params.fixed_walls[interior[:, 0], interior[:, 1]]
    fixed = params.use_fixed_walls
    # A random order of the interior cells; on a fixed map its walls go last. Ranks by
    # pairwise comparison avoid a sort (cheap for 25 cells, and n_walls may be traced).
    u = jax.random.uniform(k_cells, (size * size,)) + 2.0 * (fixed & fixed_interior)
    idx = jnp.arange(size * size)
    # Ties between float32 draws (about 1 in 60k layouts) are broken by cell index.
    below = (u[None, :] < u[:, None]) | ((u[None, :] == u[:, None]) & (idx[None, :] < idx[:, None]))
    rank = below.sum(-1)
    n_first = jnp.where(fixed, 0, params.n_walls)
    wall_interior = jnp.where(fixed, fixed_interior, rank < params.n_walls)
    walls = jnp.asarray(_border(width)).at[interior[:, 0], interior[:, 1]].set(wall_interior)
    goal = interior[jnp.argmax(rank == n_first)]
    pos = interior[jnp.argmax(rank == n_first + 1)]
    direction = jax.random.randint(k_dir, (), 0, 4)
    return Layout(walls, goal, pos, direction)


def draw_layout(key: jax.Array, params: CoinParams) -> Layout:
    """Draw walls, goal, agent position and direction (SPEC 3)."""
    if not params.reachable_only:
        return _draw_layout_once(key, params)

    def cond(carry):
        _, lay = carry
        return ~_reachable(lay.walls, lay.pos, lay.goal, params.size)

    def body(carry):
        k, _ = carry
        k, sub = jax.random.split(k)
        return k, _draw_layout_once(sub, params)

    k, sub = jax.random.split(key)
    return jax.lax.while_loop(cond, body, (k, _draw_layout_once(sub, params)))[1]


def _view_offsets(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``[4, V, V]`` (x and y) of each view cell from the agent, per direction.

    View cell (i, j) shows the grid at pos + (i - r) * forward + (j - r) * right, with
    r = size - 1 and right = DIR_VEC[(dir + 1) % 4]: the cell in front of the agent is always
    view[r + 1, r] (the same as MiniGrid's grid crop rotated by np.rot90(k=(4 - dir) % 4)).
    """
    r = size - 1
    di, dj = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    fwd = DIR_VEC
    right = DIR_VEC[(np.arange(4) + 1) % 4]
    ox = di[None] * fwd[:, 0, None, None] + dj[None] * right[:, 0, None, None]
    oy = di[None] * fwd[:, 1, None, None] + dj[None] * right[:, 1, None, None]
    return ox.astype(np.int32), oy.astype(np.int32)


def egocentric(grid: jax.Array, pos: jax.Array, direction: jax.Array, size: int) -> jax.Array:
    """The egocentric view ``[V, V, C]`` (V = 2 * size - 1) of a room's encoded grid ``[W, W, C]``
    from ``pos`` facing ``direction``: view cell (i, j) is the grid at pos + (i - r) * forward +
    (j - r) * right, r = size - 1 (:func:`_view_offsets`, the definition), zeros outside the room.

    Computed as the crop of the zero-padded grid around the agent, turned to its facing: facing
    +x the crop is the view, and each quarter turn of the facing turns the view the other way
    (``rot90``). Bitwise the gather by :func:`_view_offsets` (tested on every world), without a
    gather: about a fifth faster for a batch of worlds on this CPU.
    """
    r = size - 1
    v = 2 * r + 1
    padded = jnp.pad(grid, ((r, r), (r, r), (0, 0)))
    crop = jax.lax.dynamic_slice(padded, (pos[0], pos[1], jnp.int32(0)), (v, v, grid.shape[-1]))
    views = jnp.stack([crop, jnp.rot90(crop, -1), jnp.rot90(crop, 2), jnp.rot90(crop, 1)])
    return views[direction]


def encode_grid(state: CoinState) -> jax.Array:
    """MiniGrid encoding of the whole room, ``uint8 [W, H, 3]``, agent drawn in."""
    width = state.walls.shape[0]
    xs, ys = np.meshgrid(np.arange(width), np.arange(width), indexing="ij")
    is_goal = (xs == state.goal[0]) & (ys == state.goal[1])
    is_agent = (xs == state.pos[0]) & (ys == state.pos[1])
    obj = jnp.where(state.walls, OBJ_WALL, jnp.where(is_goal, OBJ_GOAL, OBJ_EMPTY))
    color = jnp.where(state.walls, COLOR_GREY, jnp.where(is_goal, COLOR_GREEN, COLOR_RED))
    obj = jnp.where(is_agent, OBJ_AGENT, obj)
    color = jnp.where(is_agent, COLOR_RED, color)
    st = jnp.where(is_agent, state.dir, 0)
    return jnp.stack([obj, color, st], -1).astype(jnp.uint8)


def observe_by_crop(state: CoinState, params: CoinParams) -> jax.Array:
    """:func:`observe` from the encoded room (:func:`encode_grid`) by :func:`egocentric`: the
    definition that :func:`observe` computes cell by cell (bitwise the same, tested)."""
    view = egocentric(encode_grid(state), state.pos, state.dir, params.size)
    is_goal = (view[..., 0] == OBJ_GOAL).astype(jnp.uint8)
    return jnp.concatenate([view, is_goal[..., None]], -1)


def observe(state: CoinState, params: CoinParams) -> jax.Array:
    """Egocentric, fully observable view ``uint8 [V, V, 4]`` (SPEC 3).

    Planes: object type, colour, state (MiniGrid), and 0/1 "is goal". Cells outside the room
    are zeros. V = 2 * size - 1 (9 for the paper's room).

    Bitwise :func:`observe_by_crop` (the encoded room cropped and turned), computed cell by cell
    instead (:func:`observe_packed`). Elementwise work only, about a third faster than the crop
    for a batch of worlds on this CPU.
    """
    if params.width > 31:
        return observe_by_crop(state, params)
    packed = jax.lax.optimization_barrier(observe_packed(state, params))  # each cell computed once
    if np.little_endian:
        return jax.lax.bitcast_convert_type(packed, jnp.uint8)
    return jnp.stack([(packed >> s) & 0xFF for s in (0, 8, 16, 24)], -1).astype(jnp.uint8)


def observe_packed(state: CoinState, params: CoinParams) -> jax.Array:
    """:func:`observe` with each cell's four bytes in one ``uint32 [V, V]`` (byte k, from the
    least significant, is plane k): what a batch returned to the host reads as bytes
    (``.astype("<u4").view(np.uint8)``) without a byte-wise pass on the device.

    Each view cell's room cell comes from the agent's position and facing (:func:`_view_offsets`),
    its wall bit from a per-column bit mask of the walls. Rooms up to 31 cells wide (interior 29).
    """
    size, w = params.size, params.width
    if w > 31:
        raise ValueError(f"observe_packed: rooms up to 31 cells wide, got {w}; use observe")
    r = size - 1
    di, dj = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    d = state.dir
    fx = (d == 0).astype(jnp.int32) - (d == 2)  # forward = DIR_VEC[d]
    fy = (d == 1).astype(jnp.int32) - (d == 3)
    rx, ry = -fy, fx  # right = DIR_VEC[(d + 1) % 4]
    columns = (state.walls.astype(jnp.int32) << jnp.arange(w, dtype=jnp.int32)).sum(-1)  # [W]: bit y of x
    # Materialized before the per-cell work, which would otherwise recompute them for every cell.
    columns, pos, goal = jax.lax.optimization_barrier((columns, state.pos, state.goal))
    x = pos[0] + di * fx + dj * rx
    y = pos[1] + di * fy + dj * ry
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < w)
    column = jnp.zeros_like(x)
    for i in range(w):
        column = jnp.where(x == i, columns[i], column)
    wall = inside & (((column >> jnp.clip(y, 0, w - 1)) & 1) == 1)
    is_goal = inside & (x == goal[0]) & (y == goal[1])
    agent = (di == 0) & (dj == 0)  # the centre cell
    obj = jnp.where(agent, OBJ_AGENT, jnp.where(wall, OBJ_WALL, jnp.where(is_goal, OBJ_GOAL,
                                                                          jnp.where(inside, OBJ_EMPTY, 0))))
    color = jnp.where(agent, COLOR_RED, jnp.where(wall, COLOR_GREY, jnp.where(is_goal, COLOR_GREEN, COLOR_RED)))
    color = jnp.where(inside, color, 0)
    st = jnp.where(agent, d, 0)
    return (obj.astype(jnp.uint32) | (color.astype(jnp.uint32) << 8) | (st.astype(jnp.uint32) << 16)
            | ((obj == OBJ_GOAL).astype(jnp.uint32) << 24))


def reset(key: jax.Array, params: CoinParams) -> tuple[jax.Array, CoinState]:
    """Start an episode on a fresh layout."""
    lay = draw_layout(key, params)
    state = CoinState(lay.walls, lay.goal, lay.pos, lay.dir, jnp.int32(0))
    return observe(state, params), state


def step(key: jax.Array, state: CoinState, action: jax.Array, params: CoinParams):
    """One step. Returns ``(obs, state, reward, terminated, truncated, info)``.

    ``reward`` is the environment reward R_e alone (minus the step cost on forward moves);
    the caregiver's social reward is computed from ``info`` by :mod:`internalize.caregiver`.
    ``info``: ``goal_reached`` (stepped onto the goal; the layout was redrawn), ``forward``.
    """
    return step_onto(draw_layout(key, params), state, action, params)


def reaches_goal(state: CoinState, action: jax.Array) -> jax.Array:
    """Whether ``action`` steps onto the goal (bool []): the steps that redraw the layout."""
    action = jnp.asarray(action, jnp.int32)
    front = state.pos + jnp.asarray(DIR_VEC)[state.dir]
    return (action == FORWARD) & ~state.walls[front[0], front[1]] & jnp.all(front == state.goal)


def move(state: CoinState, action: jax.Array, params: CoinParams):
    """The part of a step that draws nothing: turn or walk, count the step.

    Returns ``(moved, reward, truncated, info)``: ``moved`` is the next state unless the agent
    reached the goal (``info["goal_reached"]``), when :func:`step_onto` puts the drawn layout in."""
    action = jnp.asarray(action, jnp.int32)
    forward = action == FORWARD
    new_dir = jnp.where(action == LEFT, (state.dir + 3) % 4, jnp.where(action == RIGHT, (state.dir + 1) % 4, state.dir))
    front = state.pos + jnp.asarray(DIR_VEC)[state.dir]
    blocked = state.walls[front[0], front[1]]
    new_pos = jnp.where(forward & ~blocked, front, state.pos)
    goal_reached = reaches_goal(state, action)
    # Reaching the goal draws a fresh layout; the step counter keeps running (SPEC 3).
    t = state.t + 1
    moved = CoinState(state.walls, state.goal, new_pos, new_dir, t)
    reward = jnp.where(forward, -params.step_cost, 0.0).astype(jnp.float32)
    truncated = t >= params.max_steps
    return moved, reward, truncated, {"goal_reached": goal_reached, "forward": forward}


def step_onto(lay: Layout, state: CoinState, action: jax.Array, params: CoinParams):
    """:func:`step` with the layout it draws given: ``step(key, ...)`` is
    ``step_onto(draw_layout(key, params), ...)``: :func:`move`, then the layout ``lay`` in place
    of the room if the agent reached the goal. A batch of worlds that knows which of them reach
    the goal (:func:`reaches_goal`) can draw layouts for those alone (the adapters' vector env)."""
    moved, reward, truncated, info = move(state, action, params)
    redrawn = CoinState(lay.walls, lay.goal, lay.pos, lay.dir, moved.t)
    next_state = jax.tree.map(lambda a, b: jnp.where(info["goal_reached"], a, b), redrawn, moved)
    return observe(next_state, params), next_state, reward, jnp.bool_(False), truncated, info


def auto_reset_step(key: jax.Array, state: CoinState, action: jax.Array, params: CoinParams):
    """:func:`step` with a new episode after truncation (see :func:`internalize.env.auto_reset_step`)."""
    return env.auto_reset_step(COIN, key, state, action, params)


def sweep(layouts: list[tuple[np.ndarray, tuple[int, int]]]) -> tuple[CoinState, np.ndarray, np.ndarray]:
    """Every (layout, agent cell, direction, action) exactly once, for exhaustive ISR checks.

    layouts: ``(walls bool [W, H], goal (x, y))`` pairs. Agent cells are the free cells other
    than the goal. Returns (states [M] as a batched CoinState, actions int32 [M], index int32
    [M, 5] of (layout, x, y, direction, action)).
    """
    rows = []
    for li, (walls, goal) in enumerate(layouts):
        walls = np.asarray(walls, bool)
        for x in range(walls.shape[0]):
            for y in range(walls.shape[1]):
                if walls[x, y] or (x, y) == tuple(int(g) for g in goal):
                    continue
                for d in range(4):
                    for a in range(N_ACTIONS):
                        rows.append((li, x, y, d, a))
    index = np.asarray(rows, np.int32)
    walls = np.stack([np.asarray(layouts[i][0], bool) for i in index[:, 0]])
    goals = np.stack([np.asarray(layouts[i][1], np.int32) for i in index[:, 0]])
    states = CoinState(jnp.asarray(walls), jnp.asarray(goals), jnp.asarray(index[:, 1:3]), jnp.asarray(index[:, 3]),
                       jnp.zeros(len(index), jnp.int32))
    return states, index[:, 4].copy(), index


def entering_steps(state, occupied: list) -> tuple[object, np.ndarray, np.ndarray]:
    """Every way of stepping forward into a free cell of one layout: for each free cell c and
    facing f, the agent stands at c - f facing f (on a free cell not in ``occupied``, the
    goals) and moves forward. For value maps: R(s, forward) per (cell entered, facing).

    ``state``: one (unbatched) world state with ``walls``, ``pos`` and ``dir``. Returns
    (states [M] batched, actions int32 [M] (all forward), cells int32 [M, 3] of (x, y, facing)).
    """
    walls = np.asarray(state.walls, bool)
    taken = {tuple(int(v) for v in np.asarray(c)) for c in occupied}
    rows = []
    for x in range(walls.shape[0]):
        for y in range(walls.shape[1]):
            if walls[x, y]:
                continue
            for f in range(4):
                px, py = x - DIR_VEC[f][0], y - DIR_VEC[f][1]
                if 0 <= px < walls.shape[0] and 0 <= py < walls.shape[1] and not walls[px, py] \
                        and (px, py) not in taken:
                    rows.append((x, y, f, px, py))
    rows = np.asarray(rows, np.int32).reshape(-1, 5)
    m = len(rows)
    states = jax.tree.map(lambda v: np.repeat(np.asarray(v)[None], m, 0), state)
    states = states.replace(pos=rows[:, 3:5].copy(), dir=rows[:, 2].copy())
    return states, np.full(m, FORWARD, np.int32), rows[:, :3].copy()


def value_map_steps(key: jax.Array, params, reset_fn, observe_fn, occupied):
    """A layout drawn by ``reset_fn`` with ``key`` and every forward step into its free cells
    (:func:`entering_steps`; ``occupied(state)``: the cells the agent cannot stand on):
    ``(layout state, states [M], obs [M], actions [M], cells [M, 3])``."""
    _, state = jax.jit(reset_fn)(key, params)
    state = jax.tree.map(np.asarray, state)
    states, actions, cells = entering_steps(state, occupied(state))
    obs = jax.jit(jax.vmap(observe_fn, in_axes=(0, None)))(states, params)
    return state, states, obs, actions, cells


# ---------------------------------------------------------------------------------------------
# Rendering (host side, for figures and GIFs)

_COLORS = {
    "floor": (245, 245, 245),
    "grid": (200, 200, 200),
    "wall": (100, 100, 100),
    "goal": (46, 160, 67),
    "agent": (214, 39, 40),
}


def _triangle_mask(tile: int, direction: int) -> np.ndarray:
    """A triangle pointing in MiniGrid direction ``direction`` inside a tile."""
    yy, xx = np.mgrid[0:tile, 0:tile] + 0.5
    u, v = xx / tile, yy / tile  # u right, v down, in [0, 1]
    # Pointing right: apex at (0.9, 0.5), base from (0.15, 0.15) to (0.15, 0.85).
    mask = (u >= 0.15) & (np.abs(v - 0.5) <= 0.35 * (0.9 - u) / 0.75)
    return np.rot90(mask, k=-direction)  # rot90 with negative k turns clockwise (y is down)


def draw_room(walls: np.ndarray, tile: int) -> np.ndarray:
    """Floor, grid lines and walls of a room ``bool [W, H]``: RGB ``uint8 [H * tile, W * tile, 3]``."""
    walls = np.asarray(walls)
    width = walls.shape[0]
    img = np.empty((width * tile, width * tile, 3), np.uint8)
    img[:] = _COLORS["floor"]
    for x in range(width):
        for y in range(width):
            cell = img[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile]
            cell[0, :] = cell[:, 0] = _COLORS["grid"]
            if walls[x, y]:
                cell[:] = _COLORS["wall"]
    return img


def render(state: CoinState, tile: int = 24) -> np.ndarray:
    """RGB image ``uint8 [H * tile, W * tile, 3]`` of one (unbatched) state."""
    img = draw_room(state.walls, tile)
    gx, gy = (int(v) for v in np.asarray(state.goal))
    img[gy * tile + 2:(gy + 1) * tile - 1, gx * tile + 2:(gx + 1) * tile - 1] = _COLORS["goal"]
    ax, ay = (int(v) for v in np.asarray(state.pos))
    cell = img[ay * tile:(ay + 1) * tile, ax * tile:(ax + 1) * tile]
    cell[_triangle_mask(tile, int(np.asarray(state.dir)))] = _COLORS["agent"]
    return img


def compact_features(obs: jax.Array) -> jax.Array:
    """The ``fast`` preset's encoding: wall and goal planes of the egocentric view, flat.

    The view is egocentric, so the agent's position and direction are implicit; walls and the
    goal are all that varies. ``uint8 [..., V, V, 4] -> float32 [..., 2 * V * V]``.
    """
    walls = (obs[..., 0] == OBJ_WALL).astype(jnp.float32)
    goal = obs[..., 3].astype(jnp.float32)
    flat = jnp.stack([walls, goal], -1)
    return flat.reshape(flat.shape[:-3] + (-1,))


COIN = env.Env(
    name="coin",
    reset=reset,
    step=step,
    n_actions=N_ACTIONS,
    obs_shape=lambda params: (params.view, params.view, 4),
    features=compact_features,
)


@dataclass(frozen=True)
class CoinWorld:
    """A coin world setting (SPEC 3): what an experiment names as its world."""

    n_walls: int = 3
    """Random interior walls per episode (ignored with a named map)."""
    map_name: str | None = None
    """A named map (plus, x, U, T, 4rooms) instead of random walls; none for random walls."""
    size: int = 5
    """Side of the square interior in cells, inside the outer wall (paper: 5)."""
    reachable_only: bool = False
    """Redraw layouts whose goal the agent cannot reach (ours; the paper keeps them)."""
    max_steps: int | None = None
    """Episode length (truncation); none: the paper's 4 * size^2 / 5 (20 at size 5). The step
    cost is 0.9 / max_steps, so a whole episode of forward steps costs 0.9 at any length."""

    @property
    def env(self) -> env.Env:
        return COIN

    def params(self) -> CoinParams:
        return coin_params(self.n_walls, self.map_name, self.size, self.max_steps, reachable_only=self.reachable_only)

    def caregiver(self) -> caregivers.GoalPraise:
        """+0.4 on the goal, paid instead of the goal step's cost (SPEC 3)."""
        return caregivers.GoalPraise(0.4, waives_step_cost=True)

    def value_map_steps(self, key: jax.Array):
        """A fixed layout drawn with ``key`` and every forward step into its free cells
        (:func:`value_map_steps`)."""
        return value_map_steps(key, self.params(), reset, observe, lambda s: [s.goal])

    def demonstrator(self, epsilon: float = 0.1) -> "Demonstrator":
        """A scripted demonstrator (:func:`demonstrator_action`): ``(key, state, world_params) ->
        action``, a shortest way to the goal with an ``epsilon`` chance of a random action."""
        return Demonstrator(jnp.float32(epsilon))

    action_names = ("left", "right", "forward")

    def render(self, rec: dict, t: int, tile: int = 16) -> np.ndarray:
        """Step ``t`` of a recorded episode (:func:`internalize.phases.trace`) as an RGB image."""
        return render(CoinState(**{f.name: rec[f.name][t] for f in dataclasses.fields(CoinState)}), tile=tile)
