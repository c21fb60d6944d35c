"""The prosocial two-agent world of the paper (SPEC 8), as pure functions over pytree state.

A 7x7 maze-like room (5x5 interior, about 8 interior walls, every open cell connected). A
ball sits on a junction of highest degree. A scripted *partner* starts at a dead end and walks
a fixed path to its goal on the other side of the ball; the path treats only walls as
obstacles, so the ball (or the learner) standing on its next cell makes it wait. The *learner*
starts at another dead end with actions left, right, forward, pick up, drop; it can carry the
ball out of the partner's way. When the partner reaches its goal, both agents earn the shared
+0.4 (the caregiver's social reward, read from ``info["goal_reached"]``) and a new layout is
drawn. Each forward move costs 0.9 / 100; episodes are truncated at 100 steps.

Layouts come from a set generated once by :func:`generate_layouts` from a fixed NumPy
``Generator`` seed (never global NumPy state) and shipped with the package
(``prosocial_layouts.npz``; a test regenerates it bit for bit). Inside the compiled program a
layout is drawn from the run's key: one of the set, under one of the 8 symmetries of the
square, with a random learner direction (SPEC 8 quirk: the authors pre-generated layouts and
seeded NumPy globally inside the environment).

Grids are indexed ``[x, y]`` and directions follow MiniGrid, as in :mod:`internalize.world`.
The partner's actions are 0 = stay and 1 + d = move in direction d. ``step`` moves the
learner first, then the partner by its scripted policy; :func:`step_agents` takes the
partner's action from outside (the PettingZoo adapter uses it).

What does not live here: the prosocial experiment (:mod:`internalize.experiments.prosocial`),
the PettingZoo adapter (:mod:`internalize.adapters.pettingzoo`).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from collections import deque
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .. import caregivers, env
from . import coin
from .coin import (COLOR_BLUE, COLOR_GREEN, COLOR_GREY, COLOR_PURPLE, COLOR_RED, DIR_VEC, OBJ_AGENT, OBJ_BALL,
                    OBJ_EMPTY, OBJ_GOAL, OBJ_WALL, _triangle_mask, draw_room, egocentric)

SIZE = 5  # interior side (SPEC 8: 5x5 interior, 7x7 room)
WIDTH = SIZE + 2
VIEW = 2 * SIZE - 1  # 9: the egocentric window covers the whole room from any cell
N_CHANNELS = 4  # object type, colour, state (MiniGrid), carrying (1 at the learner's cell)
MAX_PATH = SIZE * SIZE

LEFT, RIGHT, FORWARD, PICKUP, DROP = 0, 1, 2, 3, 4
N_ACTIONS = 5
ACTION_NAMES = ("left", "right", "forward", "pick up", "drop")
STAY = 0
N_PARTNER_ACTIONS = 5  # stay, or move in MiniGrid direction 0..3
PARTNER_ACTION_NAMES = ("stay", "right", "down", "left", "up")

LAYOUT_SEED = 20240601
N_LAYOUTS = 4096
N_WALLS = (7, 8, 9)  # "about 8" interior walls: drawn uniformly from these
LAYOUT_FILE = "prosocial_layouts.npz"


# ---------------------------------------------------------------------------------------------
# Layout generation (host side, NumPy; run once, shipped with the package)

def _neighbours(x: int, y: int):
    for dx, dy in DIR_VEC:
        yield x + int(dx), y + int(dy)


def _bfs(walls: np.ndarray, start: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int] | None]:
    """Parents of a breadth-first search over open cells (neighbours in MiniGrid direction order)."""
    parent: dict = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nb in _neighbours(*cell):
            if not walls[nb] and nb not in parent:
                parent[nb] = cell
                queue.append(nb)
    return parent


def _path(parent: dict, goal: tuple[int, int]) -> list[tuple[int, int]]:
    out = [goal]
    while parent[out[-1]] is not None:
        out.append(parent[out[-1]])
    return out[::-1]


def degrees(walls: np.ndarray) -> np.ndarray:
    """Open 4-neighbours of every open cell (``int [W, H]``; 0 on walls)."""
    open_ = ~walls
    deg = np.zeros(walls.shape, int)
    deg[1:-1, 1:-1] = (open_[:-2, 1:-1].astype(int) + open_[2:, 1:-1] + open_[1:-1, :-2] + open_[1:-1, 2:])
    return np.where(open_, deg, 0)


def _can_help(walls: np.ndarray, path: list, ball: tuple[int, int], learner: tuple[int, int]) -> bool:
    """Whether the learner can reach the ball from a cell off the partner's path without passing
    the cell where the partner waits (just before the ball). Without this, about 6.5% of episode
    starts could never be helped: the waiting partner sealed the learner's only way in."""
    waiting = path[path.index(ball) - 1]
    blocked = walls.copy()
    blocked[ball] = blocked[waiting] = True
    if blocked[learner]:
        return False
    reach = _bfs(blocked, learner)
    return any(nb in reach and nb not in path for nb in _neighbours(*ball))


def generate_layout(rng: np.random.Generator) -> dict:
    """One valid layout (SPEC 8), by rejection from ``rng``.

    Returns walls ``bool [W, H]``, ball, learner ``(x, y)`` and the partner's path (start at a
    dead end, ending at its goal, through the ball's cell). The learner starts at another dead
    end, off the path, from which it can reach the ball and carry it off the path (see
    :func:`_can_help`), so every episode start can be helped.
    """
    interior = [(x, y) for x in range(1, SIZE + 1) for y in range(1, SIZE + 1)]
    while True:
        walls = np.zeros((WIDTH, WIDTH), bool)
        walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
        n = int(rng.choice(N_WALLS))
        for i in rng.choice(len(interior), n, replace=False):
            walls[interior[i]] = True
        open_cells = [c for c in interior if not walls[c]]
        if len(_bfs(walls, open_cells[0])) != len(open_cells):
            continue  # not connected
        deg = degrees(walls)
        dead_ends = [c for c in open_cells if deg[c] == 1]
        top = max(deg[c] for c in open_cells)
        if len(dead_ends) < 2 or top < 3:
            continue
        junctions = [c for c in open_cells if deg[c] == top]
        ball = junctions[rng.integers(len(junctions))]
        options = []
        for start in dead_ends:
            parent = _bfs(walls, start)
            for goal in open_cells:
                if goal in (start, ball):
                    continue
                path = _path(parent, goal)
                if ball not in path:
                    continue  # the goal must lie beyond the ball
                learners = [d for d in dead_ends if d not in path and _can_help(walls, path, ball, d)]
                if learners:
                    options.append((path, learners))
        if not options:
            continue
        path, learners = options[rng.integers(len(options))]
        learner = learners[rng.integers(len(learners))]
        return {"walls": walls, "ball": ball, "learner": learner, "path": path}


def generate_layouts(n: int = N_LAYOUTS, seed: int = LAYOUT_SEED) -> dict[str, np.ndarray]:
    """The layout set: ``n`` layouts from ``np.random.default_rng(seed)`` (no global state)."""
    rng = np.random.default_rng(seed)
    walls = np.zeros((n, WIDTH, WIDTH), bool)
    ball = np.zeros((n, 2), np.int8)
    learner = np.zeros((n, 2), np.int8)
    path = np.zeros((n, MAX_PATH, 2), np.int8)
    path_len = np.zeros(n, np.int8)
    for i in range(n):
        lay = generate_layout(rng)
        walls[i], ball[i], learner[i] = lay["walls"], lay["ball"], lay["learner"]
        p = np.asarray(lay["path"], np.int8)
        path[i, :len(p)] = p
        path[i, len(p):] = p[-1]  # padded with the goal
        path_len[i] = len(p)
    return {"walls": walls, "ball": ball, "learner": learner, "path": path, "path_len": path_len}


@functools.lru_cache(maxsize=1)
def layouts() -> dict[str, np.ndarray]:
    """The shipped layout set (see :func:`generate_layouts`)."""
    with resources.files("internalize.worlds").joinpath(LAYOUT_FILE).open("rb") as f:
        with np.load(f) as data:
            return {k: data[k] for k in data.files}


def write_layouts(path) -> None:
    """Regenerate the shipped layout set (``python -m internalize.prosocial OUT``)."""
    np.savez_compressed(path, **generate_layouts())


# ---------------------------------------------------------------------------------------------
# The 8 symmetries of the square, applied to a layout inside the compiled program

def _symmetries() -> np.ndarray:
    """``int [8, 2, 2]``: rotations by 0..3 quarter turns, each with and without a mirror."""
    rot = np.array([[0, -1], [1, 0]])
    mats = []
    for flip in (np.eye(2, dtype=int), np.array([[-1, 0], [0, 1]])):
        m = flip
        for _ in range(4):
            mats.append(m)
            m = rot @ m
    return np.stack(mats)


SYMMETRIES = _symmetries()
_CENTRE = (WIDTH - 1) // 2


def _transform(cells: jax.Array, m: jax.Array) -> jax.Array:
    """Map ``(x, y)`` cells ``[..., 2]`` by the symmetry matrix ``m`` about the room's centre."""
    return (cells - _CENTRE) @ m.T + _CENTRE


# ---------------------------------------------------------------------------------------------
# The world


@struct.dataclass
class ProsocialParams:
    step_cost: jax.Array  # float32 [], paid by every forward action (SPEC 8: 0.9 / 100)
    max_steps: jax.Array  # int32 [], truncation length (SPEC 8: 100)
    size: int = struct.field(pytree_node=False, default=SIZE)

    @property
    def view(self) -> int:
        return 2 * self.size - 1


def prosocial_params(max_steps: int = 100, step_cost_total: float = 0.9) -> ProsocialParams:
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    return ProsocialParams(step_cost=jnp.float32(step_cost_total / 100.0), max_steps=jnp.int32(max_steps))


@struct.dataclass
class ProsocialState:
    walls: jax.Array  # bool [W, H]
    ball: jax.Array  # int32 [2], the ball's cell (meaningless while carried)
    carrying: jax.Array  # bool [], the learner holds the ball
    pos: jax.Array  # int32 [2], the learner
    dir: jax.Array  # int32 [], the learner's direction
    path: jax.Array  # int32 [MAX_PATH, 2], the partner's fixed path (padded with its goal)
    path_len: jax.Array  # int32 []
    progress: jax.Array  # int32 [], the partner stands on path[progress]
    t: jax.Array  # int32 [], steps taken this episode

    @property
    def partner(self) -> jax.Array:
        return self.path[self.progress]

    @property
    def goal(self) -> jax.Array:
        return self.path[self.path_len - 1]


def draw_layout(key: jax.Array) -> ProsocialState:
    """A layout of the shipped set under a random symmetry, learner facing a random way."""
    data = layouts()
    k_idx, k_sym, k_dir = jax.random.split(key, 3)
    i = jax.random.randint(k_idx, (), 0, data["walls"].shape[0])
    m = jnp.asarray(SYMMETRIES)[jax.random.randint(k_sym, (), 0, 8)]
    # Source cell of every target cell (the inverse map); symmetry matrices are orthogonal.
    xs, ys = np.meshgrid(np.arange(WIDTH), np.arange(WIDTH), indexing="ij")
    # Target cell q shows source cell m^-1 (q - c) + c; m is orthogonal, so m^-1 = m.T.
    src = (jnp.stack([xs, ys], -1) - _CENTRE) @ m + _CENTRE
    walls = jnp.asarray(data["walls"])[i][src[..., 0], src[..., 1]]
    cast = lambda a: jnp.asarray(a)[i].astype(jnp.int32)  # noqa: E731
    return ProsocialState(
        walls=walls,
        ball=_transform(cast(data["ball"]), m),
        carrying=jnp.bool_(False),
        pos=_transform(cast(data["learner"]), m),
        dir=jax.random.randint(k_dir, (), 0, 4),
        path=_transform(cast(data["path"]), m),
        path_len=cast(data["path_len"]),
        progress=jnp.int32(0),
        t=jnp.int32(0),
    )


def _at(cell: jax.Array, other: jax.Array) -> jax.Array:
    return jnp.all(cell == other, -1)


def ball_on_grid(state: ProsocialState) -> jax.Array:
    return ~state.carrying


def encode_grid(state: ProsocialState) -> jax.Array:
    """MiniGrid encoding of the room ``uint8 [W, H, 3]``: walls, goal, ball, partner, learner."""
    xs, ys = np.meshgrid(np.arange(WIDTH), np.arange(WIDTH), indexing="ij")
    cells = jnp.stack([jnp.asarray(xs), jnp.asarray(ys)], -1)
    is_goal = _at(cells, state.goal)
    is_ball = _at(cells, state.ball) & ball_on_grid(state)
    is_partner = _at(cells, state.partner)
    is_agent = _at(cells, state.pos)
    obj = jnp.select([is_agent, is_partner, is_ball, is_goal, state.walls],
                     [OBJ_AGENT, OBJ_AGENT, OBJ_BALL, OBJ_GOAL, OBJ_WALL], OBJ_EMPTY)
    color = jnp.select([is_agent, is_partner, is_ball, is_goal, state.walls],
                       [COLOR_RED, COLOR_BLUE, COLOR_PURPLE, COLOR_GREEN, COLOR_GREY], COLOR_RED)
    st = jnp.where(is_agent, state.dir, 0)
    return jnp.stack([obj, color, st], -1).astype(jnp.uint8)


def observe(state: ProsocialState, params: ProsocialParams) -> jax.Array:
    """The learner's egocentric view ``uint8 [V, V, 4]`` (SPEC 8).

    Planes: MiniGrid object type (wall 2, ball 6, goal 8, agent 10: the learner red at the
    centre, the partner blue), colour, state (the learner's direction), and "carrying" (1 at
    the centre while the learner holds the ball). The cell in front is ``view[r + 1, r]``.
    """
    view = egocentric(encode_grid(state), state.pos, state.dir, params.size)
    v = 2 * params.size - 1
    centre = np.zeros((v, v), bool)
    centre[v // 2, v // 2] = True
    carrying = (jnp.asarray(centre) & state.carrying).astype(jnp.uint8)
    return jnp.concatenate([view, carrying[..., None]], -1)


def reset(key: jax.Array, params: ProsocialParams) -> tuple[jax.Array, ProsocialState]:
    state = draw_layout(key)
    return observe(state, params), state


def partner_policy(state: ProsocialState) -> jax.Array:
    """The scripted partner: step along its path unless the ball or the learner is in the way."""
    nxt = state.path[jnp.minimum(state.progress + 1, MAX_PATH - 1)]
    arrived = state.progress >= state.path_len - 1
    blocked = (_at(nxt, state.ball) & ball_on_grid(state)) | _at(nxt, state.pos)
    delta = nxt - state.partner
    direction = jnp.argmax(jnp.all(jnp.asarray(DIR_VEC) == delta, -1))
    return jnp.where(arrived | blocked, STAY, 1 + direction).astype(jnp.int32)


def _learner_move(state: ProsocialState, action: jax.Array) -> tuple[ProsocialState, jax.Array]:
    forward = action == FORWARD
    new_dir = jnp.where(action == LEFT, (state.dir + 3) % 4, jnp.where(action == RIGHT, (state.dir + 1) % 4, state.dir))
    front = state.pos + jnp.asarray(DIR_VEC)[state.dir]
    front_wall = state.walls[front[0], front[1]]
    front_ball = _at(front, state.ball) & ball_on_grid(state)
    front_partner = _at(front, state.partner)
    front_goal = _at(front, state.goal)
    moves = forward & ~front_wall & ~front_ball & ~front_partner
    picks = (action == PICKUP) & front_ball
    drops = (action == DROP) & state.carrying & ~front_wall & ~front_partner & ~front_goal
    state = state.replace(
        pos=jnp.where(moves, front, state.pos),
        dir=new_dir,
        ball=jnp.where(drops, front, state.ball),
        carrying=(state.carrying | picks) & ~drops,
    )
    return state, forward


def _partner_move(state: ProsocialState, partner_action: jax.Array) -> tuple[ProsocialState, jax.Array]:
    """Apply the partner's action: it advances when the action is the next step of its path and
    that cell is free (no wall, ball or learner); any other action leaves it in place."""
    nxt = state.path[jnp.minimum(state.progress + 1, MAX_PATH - 1)]
    want = state.partner + jnp.asarray(DIR_VEC)[jnp.clip(partner_action - 1, 0, 3)]
    free = ~state.walls[nxt[0], nxt[1]] & ~(_at(nxt, state.ball) & ball_on_grid(state)) & ~_at(nxt, state.pos)
    valid = (partner_action >= 1) & (partner_action < N_PARTNER_ACTIONS)  # anything else: stay
    advances = valid & _at(want, nxt) & (state.progress < state.path_len - 1) & free
    progress = state.progress + advances.astype(jnp.int32)
    return state.replace(progress=progress), advances


def step_agents(key: jax.Array, state: ProsocialState, action: jax.Array, partner_action: jax.Array | None,
                params: ProsocialParams):
    """One step with both agents' actions: the learner moves first, then the partner.

    ``partner_action=None``: the scripted partner, choosing after the learner's move (:func:`step`).
    """
    action = jnp.asarray(action, jnp.int32)
    moved, forward = _learner_move(state, action)
    if partner_action is None:
        partner_action = partner_policy(moved)
    partner_action = jnp.asarray(partner_action, jnp.int32)
    moved, _ = _partner_move(moved, partner_action)
    arrived = moved.progress >= moved.path_len - 1
    t = state.t + 1
    # The partner's arrival pays both agents and draws a new layout; the episode goes on. (A
    # conditional: one world skips the draw, its costly part, on other steps; under vmap, as in
    # training, it is the elementwise select of both.)
    next_state = jax.lax.cond(arrived, lambda: draw_layout(key), lambda: moved).replace(t=t)
    reward = jnp.where(forward, -params.step_cost, 0.0).astype(jnp.float32)
    truncated = t >= params.max_steps
    # The ISR sees the partner's action in the learner's frame (the observation is egocentric):
    # 0 stay, 1 + k = a move k quarter turns clockwise from the learner's facing.
    valid = (partner_action >= 1) & (partner_action < N_PARTNER_ACTIONS)
    ego = jnp.where(valid, 1 + (partner_action - 1 - state.dir) % 4, 0)
    info = {"goal_reached": arrived, "forward": forward, "partner_action": jnp.where(valid, partner_action, STAY),
            "other_actions": ego[None].astype(jnp.int32), "carrying": next_state.carrying}
    return observe(next_state, params), next_state, reward, jnp.bool_(False), truncated, info


def step(key: jax.Array, state: ProsocialState, action: jax.Array, params: ProsocialParams):
    """One step with the scripted partner (the world the learner trains in).

    Returns ``(obs, state, reward, terminated, truncated, info)``; ``reward`` is R_e alone
    (the forward cost). ``info``: ``goal_reached`` (the partner arrived; both earn the shared
    reward and the layout was redrawn), ``forward``, ``partner_action``, ``other_actions``
    (the partner's action as the ISR sees it) and ``carrying``.
    """
    return step_agents(key, state, action, None, params)


def auto_reset_step(key: jax.Array, state: ProsocialState, action: jax.Array, params: ProsocialParams):
    return env.auto_reset_step(PROSOCIAL, key, state, action, params)


def compact_features(obs: jax.Array) -> jax.Array:
    """The ``fast`` preset's encoding: wall, ball, goal, partner and carrying planes, flat."""
    obj = obs[..., 0]
    planes = [obj == OBJ_WALL, obj == OBJ_BALL, obj == OBJ_GOAL, (obj == OBJ_AGENT) & (obs[..., 1] == COLOR_BLUE),
              obs[..., 3] > 0]
    flat = jnp.stack(planes, -1).astype(jnp.float32)
    return flat.reshape(flat.shape[:-3] + (-1,))


# ---------------------------------------------------------------------------------------------
# Rendering (host side)

_COLORS = {"goal": (46, 160, 67), "learner": (214, 39, 40), "partner": (31, 119, 180), "ball": (148, 103, 189)}


def _disc(tile: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:tile, 0:tile] + 0.5
    return (xx / tile - 0.5) ** 2 + (yy / tile - 0.5) ** 2 <= radius ** 2


def render(state: ProsocialState, tile: int = 24) -> np.ndarray:
    """RGB image ``uint8 [H * tile, W * tile, 3]`` of one state: walls, the partner's goal, the
    ball (a small disc in the learner's cell while carried), the partner (blue disc) and the
    learner (red triangle)."""
    img = draw_room(state.walls, tile)

    def cell(c):
        x, y = (int(v) for v in np.asarray(c))
        return img[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile]

    cell(state.goal)[2:-1, 2:-1] = _COLORS["goal"]
    cell(state.partner)[_disc(tile, 0.38)] = _COLORS["partner"]
    cell(state.pos)[_triangle_mask(tile, int(np.asarray(state.dir)))] = _COLORS["learner"]
    if bool(np.asarray(state.carrying)):
        cell(state.pos)[_disc(tile, 0.15)] = _COLORS["ball"]
    else:
        cell(state.ball)[_disc(tile, 0.3)] = _COLORS["ball"]
    return img


PROSOCIAL = env.Env(
    name="prosocial",
    reset=reset,
    step=step,
    n_actions=N_ACTIONS,
    obs_shape=lambda params: (params.view, params.view, N_CHANNELS),
    other_agents=1,
    features=compact_features,
)


@dataclass(frozen=True)
class ProsocialWorld:
    """The prosocial two-agent world (SPEC 8) as an experiment's world."""

    max_steps: int = 100
    """Steps per episode (SPEC 8: 100)."""
    step_cost_total: float = 0.9
    """Total cost of forward moves over a whole episode of them (SPEC 8: 0.9)."""

    @property
    def env(self) -> env.Env:
        return PROSOCIAL

    def params(self) -> ProsocialParams:
        return prosocial_params(self.max_steps, self.step_cost_total)

    def caregiver(self) -> caregivers.GoalPraise:
        """The shared +0.4 when the partner reaches its goal; forward costs are never waived."""
        return caregivers.GoalPraise(0.4, waives_step_cost=False)

    def value_map_steps(self, key: jax.Array):
        """A layout drawn with ``key`` and every forward step of the learner into its free cells,
        the partner where it starts (:func:`internalize.worlds.coin.value_map_steps`)."""
        return coin.value_map_steps(key, self.params(), reset, observe, lambda s: [s.partner, s.goal, s.ball])

    action_names = ACTION_NAMES

    def render(self, rec: dict, t: int, tile: int = 16) -> np.ndarray:
        """Step ``t`` of a recorded episode (:func:`internalize.phases.trace`) as an RGB image."""
        fields = dataclasses.fields(ProsocialState)
        return render(ProsocialState(**{f.name: rec[f.name][t] for f in fields}), tile=tile)


if __name__ == "__main__":  # pragma: no cover - regenerate the shipped set
    import sys

    write_layouts(sys.argv[1] if len(sys.argv) > 1 else LAYOUT_FILE)
