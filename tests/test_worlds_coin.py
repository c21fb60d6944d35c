"""Tests of the coin gridworld (internalize.world, SPEC 3).

Everything heavy is jitted once at module level and vmapped over keys (and params), so the
whole file stays fast on a small CPU machine.
"""
from __future__ import annotations

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import caregivers as caregiver
from internalize.worlds import coin as world

STEP_COST = np.float32(0.9 / 20)  # SPEC 3: 0.9 spread over the 20-step episode


# ---------------------------------------------------------------------------------------------
# Independent numpy references (written from the spec, not from the module)


def ref_encode(walls, goal, pos, direction) -> np.ndarray:
    """MiniGrid encoding [W, H, 3] of one state, indexed [x, y], built cell by cell."""
    walls = np.asarray(walls)
    w, h = walls.shape
    g = np.zeros((w, h, 3), np.uint8)
    for x in range(w):
        for y in range(h):
            if walls[x, y]:
                g[x, y] = (2, 5, 0)
            elif (x, y) == tuple(int(v) for v in goal):
                g[x, y] = (8, 1, 0)
            else:
                g[x, y] = (1, 0, 0)
    px, py = (int(v) for v in pos)
    g[px, py] = (10, 0, int(direction))
    return g


def ref_obs(walls, goal, pos, direction, size: int = 5) -> np.ndarray:
    """The MiniGrid egocentric view (the authors' reference code, generalised to any size)."""
    r = size - 1
    v = 2 * size - 1
    g = ref_encode(walls, goal, pos, direction)
    x, y = (int(c) for c in pos)
    g = np.pad(g, ((r, r), (r, r), (0, 0)))
    crop = np.rot90(g[x:x + v, y:y + v], k=(4 - int(direction)) % 4).copy()
    return np.concatenate([crop, (crop[..., :1] == 8)], -1).astype(np.uint8)


def bfs_reachable(walls, start, target) -> bool:
    walls = np.asarray(walls)
    start, target = tuple(int(v) for v in start), tuple(int(v) for v in target)
    seen, queue = {start}, deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == target:
            return True
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (x + dx, y + dy)
            if 0 <= n[0] < walls.shape[0] and 0 <= n[1] < walls.shape[1] and not walls[n] and n not in seen:
                seen.add(n)
                queue.append(n)
    return False


def border_mask(width: int) -> np.ndarray:
    b = np.ones((width, width), bool)
    b[1:-1, 1:-1] = False
    return b


def make_state(walls_xy=(), goal=(1, 1), pos=(3, 3), direction=0, width=7, t=0) -> world.CoinState:
    """A hand-made state: border walls plus the given interior wall cells (x, y)."""
    walls = border_mask(width)
    for x, y in walls_xy:
        walls[x, y] = True
    return world.CoinState(
        walls=jnp.asarray(walls),
        goal=jnp.asarray(goal, jnp.int32),
        pos=jnp.asarray(pos, jnp.int32),
        dir=jnp.int32(direction),
        t=jnp.int32(t),
    )


def stack_trees(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def assert_valid_layouts(walls, goal, pos, direction, n_walls):
    """Layout invariants over a batch: walls [B, W, W], goal/pos [B, 2], direction [B]."""
    walls, goal, pos, direction = (np.asarray(a) for a in (walls, goal, pos, direction))
    b = np.arange(walls.shape[0])
    width = walls.shape[-1]
    assert walls[:, border_mask(width)].all(), "border must always be walls"
    np.testing.assert_array_equal(walls[:, 1:-1, 1:-1].sum((1, 2)), np.broadcast_to(n_walls, b.shape))
    for p in (goal, pos):
        assert ((p >= 1) & (p <= width - 2)).all(), "goal and agent must be inside the room"
    assert not walls[b, pos[:, 0], pos[:, 1]].any(), "agent on a wall"
    assert not walls[b, goal[:, 0], goal[:, 1]].any(), "goal on a wall"
    assert not (goal == pos).all(-1).any(), "agent on the goal"
    assert ((direction >= 0) & (direction <= 3)).all()


# ---------------------------------------------------------------------------------------------
# Jitted helpers, compiled once per params structure and reused

reset_batch = jax.jit(jax.vmap(world.reset, in_axes=(0, None)))
observe_batch = jax.jit(jax.vmap(world.observe, in_axes=(0, None)))
encode_batch = jax.jit(jax.vmap(world.encode_grid))
step_batch = jax.jit(jax.vmap(world.step, in_axes=(0, 0, 0, None)))
# reset vmapped over params (outer) and keys (inner)
reset_params_keys = jax.jit(jax.vmap(jax.vmap(world.reset, in_axes=(0, None)), in_axes=(None, 0)))

N_WALLS = (0, 1, 3, 5)
N_ENVS, N_STEPS = 64, 200


def _rollout(key, params):
    """Random-action rollouts with auto_reset_step; vmapped over params [P] and envs."""

    def one_env(key, params):
        k0, k1 = jax.random.split(key)
        obs0, s0 = world.reset(k0, params)

        def body(s, k):
            ka, ks = jax.random.split(k)
            a = jax.random.choice(ka, 3, p=jnp.array([0.25, 0.25, 0.5]))
            obs, s2, r, term, trunc, info = world.auto_reset_step(ks, s, a, params)
            out = dict(prev=s, action=a, state=s2, obs=obs, reward=r, term=term, trunc=trunc,
                       goal=info["goal_reached"], fwd=info["forward"], final_obs=info["final_obs"])
            return s2, out

        _, outs = jax.lax.scan(body, s0, jax.random.split(k1, N_STEPS))
        return obs0, s0, outs

    keys = jax.random.split(key, N_ENVS)
    return jax.vmap(lambda p: jax.vmap(one_env, in_axes=(0, None))(keys, p))(params)


@pytest.fixture(scope="module")
def rollout():
    params = stack_trees([world.coin_params(n_walls=n) for n in N_WALLS])
    obs0, s0, outs = jax.jit(_rollout)(jax.random.PRNGKey(0), params)
    return jax.tree.map(np.asarray, (obs0, s0, outs))


@pytest.fixture(scope="module")
def default_params():
    return world.coin_params()


# ---------------------------------------------------------------------------------------------
# 1. Egocentric view == the MiniGrid rot90 reference


def test_view_matches_minigrid_reference_on_resets(default_params):
    obs, st = reset_batch(jax.random.split(jax.random.PRNGKey(1), 256), default_params)
    obs, st = jax.tree.map(np.asarray, (obs, st))
    assert obs.shape == (256, 9, 9, 4) and obs.dtype == np.uint8
    assert set(np.unique(st.dir)) == {0, 1, 2, 3}
    for i in range(256):
        np.testing.assert_array_equal(obs[i], ref_obs(st.walls[i], st.goal[i], st.pos[i], st.dir[i]))
    # encode_grid agrees with the independent encoding too
    enc = np.asarray(encode_batch(jax.tree.map(jnp.asarray, st)))
    for i in range(0, 256, 8):
        np.testing.assert_array_equal(enc[i], ref_encode(st.walls[i], st.goal[i], st.pos[i], st.dir[i]))


def test_view_matches_minigrid_reference_after_steps(rollout):
    _, _, outs = rollout
    st, obs = outs["state"], outs["obs"]
    rng = np.random.default_rng(0)
    idx = [tuple(rng.integers(0, n) for n in st.dir.shape) for _ in range(400)]
    dirs = set()
    for i in idx:
        dirs.add(int(st.dir[i]))
        np.testing.assert_array_equal(obs[i], ref_obs(st.walls[i], st.goal[i], st.pos[i], st.dir[i]))
    assert dirs == {0, 1, 2, 3}
    # final_obs on truncated steps without a goal is the view of the state the step ended on
    trunc_idx = np.argwhere(outs["trunc"] & ~outs["goal"])[:100]
    assert len(trunc_idx) > 0
    prev = outs["prev"]
    for i in map(tuple, trunc_idx):
        a, d, p = int(outs["action"][i]), int(prev.dir[i]), prev.pos[i]
        new_dir = {0: (d + 3) % 4, 1: (d + 1) % 4, 2: d}[a]
        new_pos = p
        if a == 2:
            front = p + world.DIR_VEC[d]
            new_pos = p if prev.walls[i][front[0], front[1]] else front
        expected = ref_obs(prev.walls[i], prev.goal[i], new_pos, new_dir)
        np.testing.assert_array_equal(outs["final_obs"][i], expected)


# ---------------------------------------------------------------------------------------------
# 2. Hand-made rotation cases (expected view coordinates worked out by hand)

WALL = (2, 5, 0, 0)
GOAL = (8, 1, 0, 1)
EMPTY = (1, 0, 0, 0)
UNSEEN = (0, 0, 0, 0)

# Agent at (3, 3); per direction: the cell in front, to the right, behind and to the left.
# Facing +x (0): right is +y (down). Facing +y (1): right is -x. Facing -x (2): right is -y.
# Facing -y (3): right is +x.
RELATIVE_CELLS = {
    0: dict(front=(4, 3), right=(3, 4), behind=(2, 3), left=(3, 2)),
    1: dict(front=(3, 4), right=(2, 3), behind=(3, 2), left=(4, 3)),
    2: dict(front=(2, 3), right=(3, 2), behind=(4, 3), left=(3, 4)),
    3: dict(front=(3, 2), right=(4, 3), behind=(3, 4), left=(2, 3)),
}


@pytest.mark.parametrize("direction", [0, 1, 2, 3])
def test_view_relative_positions(direction, default_params):
    c = RELATIVE_CELLS[direction]
    st = make_state(walls_xy=[c["front"], c["right"]], goal=c["behind"], pos=(3, 3), direction=direction)
    view = np.asarray(world.observe(st, default_params))
    assert view.shape == (9, 9, 4) and view.dtype == np.uint8
    np.testing.assert_array_equal(view[4, 4], (10, 0, direction, 0))  # the agent itself
    np.testing.assert_array_equal(view[5, 4], WALL)  # in front
    np.testing.assert_array_equal(view[4, 5], WALL)  # to the right
    np.testing.assert_array_equal(view[3, 4], GOAL)  # behind
    np.testing.assert_array_equal(view[4, 3], EMPTY)  # to the left
    assert view[..., 3].sum() == 1  # exactly one goal cell in the goal plane


# Agent at (3, 3), interior walls (4, 3) and (1, 5), goal at (3, 1). The view cell of an
# object at offset o from the agent is (4 + o.forward, 4 + o.right).
#   (4,3): o=(1,0)   (1,5): o=(-2,2)   (3,1): o=(0,-2)
FIXED_LAYOUT_EXPECTED = {
    0: dict(wall_e=(5, 4), wall_sw=(2, 6), goal=(4, 2)),  # fwd (1,0),  right (0,1)
    1: dict(wall_e=(4, 3), wall_sw=(6, 6), goal=(2, 4)),  # fwd (0,1),  right (-1,0)
    2: dict(wall_e=(3, 4), wall_sw=(6, 2), goal=(4, 6)),  # fwd (-1,0), right (0,-1)
    3: dict(wall_e=(4, 5), wall_sw=(2, 2), goal=(6, 4)),  # fwd (0,-1), right (1,0)
}


@pytest.mark.parametrize("direction", [0, 1, 2, 3])
def test_view_fixed_layout_rotations(direction, default_params):
    st = make_state(walls_xy=[(4, 3), (1, 5)], goal=(3, 1), pos=(3, 3), direction=direction)
    view = np.asarray(world.observe(st, default_params))
    e = FIXED_LAYOUT_EXPECTED[direction]
    np.testing.assert_array_equal(view[e["wall_e"]], WALL)
    np.testing.assert_array_equal(view[e["wall_sw"]], WALL)
    np.testing.assert_array_equal(view[e["goal"]], GOAL)
    np.testing.assert_array_equal(view[4, 4], (10, 0, direction, 0))
    # The 5x5 interior is seen at offsets -2..2 around the agent: 25 cells minus 2 walls,
    # the goal and the agent are empty; the border ring at distance 3 is walls (24 cells);
    # the 49 - 1 cells beyond it at distance 4 (off the room) are all zeros.
    inner = view[2:7, 2:7].reshape(-1, 4)
    assert (inner == EMPTY).all(-1).sum() == 25 - 4
    ring = np.concatenate([view[1, 1:8], view[7, 1:8], view[2:7, 1], view[2:7, 7]])
    assert (ring == WALL).all()
    outer = np.concatenate([view[0], view[8], view[1:8, 0], view[1:8, 8]])
    assert (outer == UNSEEN).all()


def test_view_outside_cells_are_zero_at_corner(default_params):
    # Agent in the top-left interior corner (1, 1) facing +x: view cell (i, j) is grid cell
    # (i - 3, j - 3), so view rows i <= 2 and columns j <= 2 are off the room (zeros).
    st = make_state(goal=(5, 5), pos=(1, 1), direction=0)
    view = np.asarray(world.observe(st, default_params))
    assert (view[:3] == 0).all() and (view[:, :3] == 0).all()
    assert (view[3, 3:] == WALL).all() and (view[3:, 3] == WALL).all()
    np.testing.assert_array_equal(view[3, 4], WALL)  # behind: x = 0 border
    np.testing.assert_array_equal(view[4, 3], WALL)  # left: y = 0 border
    np.testing.assert_array_equal(view[8, 8], GOAL)  # (5, 5) = offset (4, 4)


# ---------------------------------------------------------------------------------------------
# 3. Invariants over random rollouts with auto_reset_step


def test_rollout_layout_invariants(rollout):
    obs0, s0, outs = rollout
    st = outs["state"]
    for p, n in enumerate(N_WALLS):
        assert_valid_layouts(s0.walls[p], s0.goal[p], s0.pos[p], s0.dir[p], n)
        flat = lambda a: a[p].reshape((-1,) + a.shape[3:])  # noqa: E731
        assert_valid_layouts(flat(st.walls), flat(st.goal), flat(st.pos), flat(st.dir), n)
        assert set(np.unique(st.dir[p])) == {0, 1, 2, 3}
    np.testing.assert_array_equal(s0.t, 0)


def test_rollout_termination_and_truncation(rollout):
    _, _, outs = rollout
    prev, st = outs["prev"], outs["state"]
    assert not outs["term"].any(), "episodes are never terminated"
    assert (prev.t < 20).all()
    np.testing.assert_array_equal(outs["trunc"], prev.t + 1 == 20)
    np.testing.assert_array_equal(outs["trunc"].sum(-1), N_STEPS // 20)  # per env
    np.testing.assert_array_equal(st.t, np.where(outs["trunc"], 0, prev.t + 1))
    # On a truncated step obs is the new episode's first view (final_obs the old one's).
    tr = outs["trunc"]
    new_states = jax.tree.map(lambda a: jnp.asarray(a[tr]), st)
    np.testing.assert_array_equal(outs["obs"][tr], np.asarray(observe_batch(new_states, world.coin_params())))
    assert (outs["obs"][tr] != outs["final_obs"][tr]).any((-1, -2, -3)).mean() > 0.9


def test_rollout_rewards_and_goal_events(rollout):
    _, _, outs = rollout
    a, prev, st, goal = outs["action"], outs["prev"], outs["state"], outs["goal"]
    assert outs["reward"].dtype == np.float32
    np.testing.assert_array_equal(outs["reward"], np.where(a == 2, -STEP_COST, np.float32(0)))
    assert (outs["reward"][a == 2] == np.float32(-0.045)).all()
    np.testing.assert_array_equal(outs["fwd"], a == 2)
    assert not goal[a != 2].any(), "goal reached only by moving forward"
    # Goal reached exactly when moving forward onto the goal cell.
    front = prev.pos + world.DIR_VEC[prev.dir]
    onto_goal = (a == 2) & (front == prev.goal).all(-1)
    np.testing.assert_array_equal(goal, onto_goal)
    assert goal.sum() >= 100, "too few goal events to test the redraw"
    # The episode goes on after the goal: t counts on (unless it was also the truncating step).
    cont = goal & ~outs["trunc"]
    assert cont.sum() > 0
    np.testing.assert_array_equal(st.t[cont], prev.t[cont] + 1)
    # ... and the layout is redrawn (agent no longer on the old goal; walls/goal usually new).
    changed = (st.walls != prev.walls).any((-1, -2)) | (st.goal != prev.goal).any(-1) | (st.pos != prev.goal).any(-1)
    assert changed[cont].all()
    assert (st.goal[cont] != prev.goal[cont]).any(-1).mean() > 0.8


def test_rollout_movement_without_goal(rollout):
    _, _, outs = rollout
    a, prev, st = outs["action"], outs["prev"], outs["state"]
    plain = ~outs["goal"] & ~outs["trunc"]
    np.testing.assert_array_equal(st.walls[plain], prev.walls[plain])
    np.testing.assert_array_equal(st.goal[plain], prev.goal[plain])
    exp_dir = np.where(a == 0, (prev.dir + 3) % 4, np.where(a == 1, (prev.dir + 1) % 4, prev.dir))
    np.testing.assert_array_equal(st.dir[plain], exp_dir[plain])
    front = prev.pos + world.DIR_VEC[prev.dir]
    blocked = np.take_along_axis(
        prev.walls.reshape(prev.walls.shape[:3] + (-1,)), (front[..., 0] * 7 + front[..., 1])[..., None], -1
    )[..., 0]
    exp_pos = np.where(((a == 2) & ~blocked)[..., None], front, prev.pos)
    np.testing.assert_array_equal(st.pos[plain], exp_pos[plain])
    assert ((a == 2) & blocked & plain).sum() > 0 and ((a == 2) & ~blocked & plain).sum() > 0
    # obs and final_obs coincide except on done steps
    not_done = ~outs["trunc"]
    np.testing.assert_array_equal(outs["obs"][not_done], outs["final_obs"][not_done])


def test_step_without_auto_reset_keeps_counting(default_params):
    # Plain step does not reset: t keeps growing and truncated stays true from t=20 on.
    st = make_state(goal=(5, 5), pos=(1, 1), direction=2, t=19)
    _, s1, r, term, trunc, _ = world.step(jax.random.PRNGKey(0), st, 0, default_params)
    assert int(s1.t) == 20 and bool(trunc) and not bool(term) and float(r) == 0.0
    _, s2, _, _, trunc2, _ = world.step(jax.random.PRNGKey(1), s1, 1, default_params)
    assert int(s2.t) == 21 and bool(trunc2)
    st = make_state(goal=(5, 5), pos=(1, 1), direction=2, t=18)
    _, _, _, _, trunc, _ = world.step(jax.random.PRNGKey(0), st, 0, default_params)
    assert not bool(trunc)


# ---------------------------------------------------------------------------------------------
# 4. Named maps

NAMED_WALLS = {
    "plus": {(3, 2), (2, 3), (3, 3), (4, 3), (3, 4)},
    "x": {(2, 2), (2, 4), (3, 3), (4, 2), (4, 4)},
    "U": {(2, 2), (2, 3), (3, 4), (4, 3), (4, 2)},
    "T": {(2, 2), (3, 2), (4, 2), (3, 3), (3, 4)},
    "4rooms": {(3, 1), (1, 3), (3, 3), (5, 3), (3, 5)},
}


def _interior_cells(walls) -> set:
    walls = np.asarray(walls)
    return {(int(x), int(y)) for x, y in np.argwhere(walls[1:-1, 1:-1]) + 1}


def test_named_maps_exact_walls():
    assert set(world.NAMED_MAPS) == set(NAMED_WALLS)
    for name, cells in NAMED_WALLS.items():
        m = world.NAMED_MAPS[name]
        assert m.shape == (7, 7) and m.dtype == bool
        assert m[border_mask(7)].all()
        assert _interior_cells(m) == cells, name
        p = world.coin_params(map_name=name)
        assert bool(p.use_fixed_walls)
        np.testing.assert_array_equal(np.asarray(p.fixed_walls), m)


@pytest.mark.parametrize("name", sorted(NAMED_WALLS))
def test_named_map_resets(name):
    params = world.coin_params(map_name=name)
    _, st = reset_batch(jax.random.split(jax.random.PRNGKey(2), 128), params)
    st = jax.tree.map(np.asarray, st)
    expected = np.broadcast_to(world.NAMED_MAPS[name], st.walls.shape)
    np.testing.assert_array_equal(st.walls, expected)
    assert_valid_layouts(st.walls, st.goal, st.pos, st.dir, 5)
    assert len({tuple(g) for g in st.goal}) >= 10, "goal position should vary across keys"
    assert len({tuple(p) for p in st.pos}) >= 10, "agent position should vary across keys"


def test_named_map_walls_survive_goal_redraw():
    params = world.coin_params(map_name="4rooms")
    # Agent at (1, 1) facing +x with the goal at (2, 1): forward reaches the goal.
    st = make_state(walls_xy=NAMED_WALLS["4rooms"], goal=(2, 1), pos=(1, 1), direction=0, t=3)
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (64,) + a.shape), st)
    _, s2, r, _, _, info = step_batch(keys, batch, jnp.full(64, 2), params)
    assert np.asarray(info["goal_reached"]).all()
    np.testing.assert_array_equal(np.asarray(s2.walls), np.broadcast_to(world.NAMED_MAPS["4rooms"], (64, 7, 7)))
    np.testing.assert_array_equal(np.asarray(s2.t), 4)
    np.testing.assert_array_equal(np.asarray(r), -STEP_COST)
    assert_valid_layouts(s2.walls, s2.goal, s2.pos, s2.dir, 5)


def test_coin_params_validation():
    with pytest.raises(ValueError):
        world.coin_params(map_name="nope")
    with pytest.raises(ValueError):
        world.coin_params(map_name="plus", size=7)
    with pytest.raises(ValueError):
        world.coin_params(n_walls=24)
    with pytest.raises(ValueError):
        world.coin_params(n_walls=-1)
    p = world.coin_params()
    assert int(p.max_steps) == 20 and np.float32(p.step_cost) == STEP_COST
    assert p.size == 5 and p.width == 7 and p.view == 9


# ---------------------------------------------------------------------------------------------
# 5. parse_map


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n  \n",
        "#####\n#..#\n#####",  # ragged rows
        "#####\n#.x.#\n#####",  # bad character
        "#####\n#. .#\n#####",  # inner space is a bad character
        "#####\n#...#\n##.##",  # open border (bottom)
        "#####\n....#\n#####",  # open border (left)
        "###\n#.#\n###",  # one free cell only
        "#####\n#####\n#####",  # no free cells
        "##\n##",  # too small
    ],
)
def test_parse_map_rejects(text):
    with pytest.raises(world.MapError):
        world.parse_map(text)


def test_parse_map_rejects_non_string():
    with pytest.raises(world.MapError):
        world.parse_map(None)  # type: ignore[arg-type]
    assert issubclass(world.MapError, ValueError)


def test_parse_map_accepts_and_indexes_x_y():
    text = """
        #####
        #..##
        #...#
        #####"""
    walls = world.parse_map(text)
    assert walls.shape == (5, 4) and walls.dtype == bool  # [x, y]: 5 columns, 4 rows
    assert walls[3, 1] and not walls[1, 1] and not walls[3, 2]
    assert (~walls).sum() == 5


# ---------------------------------------------------------------------------------------------
# 6. Movement and turning (hand-made states, one vmapped step)

FREE_FRONT = {0: (4, 3), 1: (3, 4), 2: (2, 3), 3: (3, 2)}  # from (3, 3), worked out by hand


def test_movement_and_turns(default_params):
    cases = []  # (state, action, expected pos, expected dir)
    for d in range(4):
        # forward into a free cell
        cases.append((make_state(goal=(1, 1) if d != 2 else (5, 5), pos=(3, 3), direction=d), 2, FREE_FRONT[d], d))
        # forward into an interior wall
        cases.append((make_state(walls_xy=[FREE_FRONT[d]], goal=(5, 1), pos=(3, 3), direction=d), 2, (3, 3), d))
        # turns
        cases.append((make_state(goal=(5, 5), pos=(3, 3), direction=d), 0, (3, 3), (d - 1) % 4))
        cases.append((make_state(goal=(5, 5), pos=(3, 3), direction=d), 1, (3, 3), (d + 1) % 4))
    # forward into the border from the corners
    cases.append((make_state(goal=(3, 3), pos=(1, 1), direction=2), 2, (1, 1), 2))
    cases.append((make_state(goal=(3, 3), pos=(1, 1), direction=3), 2, (1, 1), 3))
    cases.append((make_state(goal=(3, 3), pos=(5, 5), direction=0), 2, (5, 5), 0))
    cases.append((make_state(goal=(3, 3), pos=(5, 5), direction=1), 2, (5, 5), 1))
    states = stack_trees([c[0] for c in cases])
    actions = jnp.asarray([c[1] for c in cases], jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(4), len(cases))
    obs, s2, r, term, trunc, info = jax.tree.map(np.asarray, step_batch(keys, states, actions, default_params))
    np.testing.assert_array_equal(s2.pos, np.array([c[2] for c in cases]))
    np.testing.assert_array_equal(s2.dir, np.array([c[3] for c in cases]))
    np.testing.assert_array_equal(s2.t, 1)
    np.testing.assert_array_equal(r, np.where(np.asarray(actions) == 2, -STEP_COST, 0).astype(np.float32))
    assert not info["goal_reached"].any() and not term.any() and not trunc.any()
    np.testing.assert_array_equal(s2.walls, np.asarray(states.walls))
    np.testing.assert_array_equal(s2.goal, np.asarray(states.goal))
    for i in range(len(cases)):
        np.testing.assert_array_equal(obs[i], ref_obs(s2.walls[i], s2.goal[i], s2.pos[i], s2.dir[i]))


def test_forward_onto_goal_redraws_and_continues(default_params):
    # Agent at (3, 3) facing -y (up) with the goal right in front at (3, 2).
    st = make_state(walls_xy=[(1, 1), (5, 5), (2, 4)], goal=(3, 2), pos=(3, 3), direction=3, t=7)
    keys = jax.random.split(jax.random.PRNGKey(5), 64)
    batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (64,) + a.shape), st)
    obs, s2, r, term, trunc, info = jax.tree.map(
        np.asarray, step_batch(keys, batch, jnp.full(64, 2), world.coin_params(n_walls=3))
    )
    assert info["goal_reached"].all() and info["forward"].all()
    assert not term.any() and not trunc.any()
    np.testing.assert_array_equal(s2.t, 8)
    np.testing.assert_array_equal(r, -STEP_COST)
    assert_valid_layouts(s2.walls, s2.goal, s2.pos, s2.dir, 3)
    assert len(np.unique(s2.walls.reshape(64, -1), axis=0)) > 10  # fresh walls
    for i in range(0, 64, 8):
        np.testing.assert_array_equal(obs[i], ref_obs(s2.walls[i], s2.goal[i], s2.pos[i], s2.dir[i]))


# ---------------------------------------------------------------------------------------------
# 7. reachable_only


def test_reachable_only_goal_always_reachable():
    keys = jax.random.split(jax.random.PRNGKey(6), 256)
    _, st = jax.tree.map(np.asarray, reset_batch(keys, world.coin_params(n_walls=12, reachable_only=True)))
    assert_valid_layouts(st.walls, st.goal, st.pos, st.dir, 12)
    for i in range(256):
        assert bfs_reachable(st.walls[i], st.pos[i], st.goal[i]), i
    # Without the option, 12 walls do cut the goal off sometimes (so the test can tell).
    _, st0 = jax.tree.map(np.asarray, reset_batch(keys, world.coin_params(n_walls=12)))
    assert_valid_layouts(st0.walls, st0.goal, st0.pos, st0.dir, 12)
    assert not all(bfs_reachable(st0.walls[i], st0.pos[i], st0.goal[i]) for i in range(256))


# ---------------------------------------------------------------------------------------------
# 8. jit and vmap over keys and params


def test_vmap_over_params_and_keys():
    ns = [0, 1, 3, 5, 12, 23]
    plist = [world.coin_params(n_walls=n) for n in ns] + [world.coin_params(map_name="plus")]
    params = stack_trees(plist)
    keys = jax.random.split(jax.random.PRNGKey(7), 32)
    obs, st = jax.tree.map(np.asarray, reset_params_keys(keys, params))
    assert obs.shape == (len(plist), 32, 9, 9, 4)
    for p, n in enumerate(ns):
        assert_valid_layouts(st.walls[p], st.goal[p], st.pos[p], st.dir[p], n)
    np.testing.assert_array_equal(st.walls[-1], np.broadcast_to(world.NAMED_MAPS["plus"], (32, 7, 7)))
    assert_valid_layouts(st.walls[-1], st.goal[-1], st.pos[-1], st.dir[-1], 5)
    # Each element equals the unbatched reset with its own params.
    for p in (1, 4, 6):
        o1, s1 = world.reset(keys[5], plist[p])
        np.testing.assert_array_equal(np.asarray(s1.walls), st.walls[p, 5])
        np.testing.assert_array_equal(np.asarray(o1), obs[p, 5])


def test_n_walls_is_traced_not_static():
    traces = []

    def f(key, params):
        traces.append(1)
        return world.reset(key, params)[1].walls

    jf = jax.jit(f)
    for n in (2, 7):
        w = np.asarray(jf(jax.random.PRNGKey(8), world.coin_params(n_walls=n)))
        assert w[1:-1, 1:-1].sum() == n
    assert len(traces) == 1


# ---------------------------------------------------------------------------------------------
# 9. render

AGENT_RGB = np.array([214, 39, 40], np.uint8)


def _tile(img, x, y, tile):
    return img[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile]


def test_render():
    tile = 24
    st = make_state(walls_xy=[(2, 4)], goal=(5, 1), pos=(3, 3), direction=0)
    img = world.render(st, tile=tile)
    assert img.shape == (7 * tile, 7 * tile, 3) and img.dtype == np.uint8
    for x, y in [(0, 0), (6, 3), (2, 4)]:  # walls: uniform grey
        t = _tile(img, x, y, tile).reshape(-1, 3).astype(int)
        assert (t == t[0]).all() and t[0, 0] == t[0, 1] == t[0, 2] and 50 <= t[0, 0] <= 180
    g = _tile(img, 5, 1, tile)[tile // 2, tile // 2].astype(int)  # goal: green-ish
    assert g[1] > g[0] + 50 and g[1] > g[2] + 50
    free = _tile(img, 4, 2, tile)[tile // 2, tile // 2].astype(int)  # a free floor cell: light
    assert free.min() > 200
    imgs = [world.render(make_state(walls_xy=[(2, 4)], goal=(5, 1), pos=(3, 3), direction=d), tile=tile) for d in range(4)]
    for d in range(4):
        a = _tile(imgs[d], 3, 3, tile)
        is_agent = (a == AGENT_RGB).all(-1)
        assert is_agent.any()
        assert (imgs[d] == AGENT_RGB).all(-1).sum() == is_agent.sum()  # nowhere else
        # The triangle points along DIR_VEC[d]: its apex half (ahead of the tile centre) is
        # narrower than its base half.
        rows, cols = np.nonzero(is_agent)
        dx, dy = world.DIR_VEC[d]
        ahead = (cols + 0.5 - tile / 2) * dx + (rows + 0.5 - tile / 2) * dy
        assert (ahead > 0).sum() < (ahead < 0).sum()
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(imgs[i], imgs[j])


# ---------------------------------------------------------------------------------------------
# 10. Other sizes

SIZE7_FRONT = {0: (5, 4), 1: (4, 5), 2: (3, 4), 3: (4, 3)}  # from (4, 4), by hand


def test_size7_shapes_and_reference():
    params = world.coin_params(size=7, n_walls=6)
    assert params.width == 9 and params.view == 13
    assert int(params.max_steps) == 4 * 49 // 5
    obs, st = jax.tree.map(np.asarray, reset_batch(jax.random.split(jax.random.PRNGKey(9), 64), params))
    assert obs.shape == (64, 13, 13, 4) and st.walls.shape == (64, 9, 9)
    assert_valid_layouts(st.walls, st.goal, st.pos, st.dir, 6)
    for i in range(64):
        np.testing.assert_array_equal(obs[i], ref_obs(st.walls[i], st.goal[i], st.pos[i], st.dir[i], size=7))


@pytest.mark.parametrize("direction", [0, 1, 2, 3])
def test_size7_front_cell(direction):
    params = world.coin_params(size=7)
    st = make_state(walls_xy=[SIZE7_FRONT[direction]], goal=(1, 1) if direction != 2 else (7, 7),
                    pos=(4, 4), direction=direction, width=9)
    view = np.asarray(world.observe(st, params))
    assert view.shape == (13, 13, 4)
    np.testing.assert_array_equal(view[6, 6], (10, 0, direction, 0))
    np.testing.assert_array_equal(view[7, 6], WALL)  # [size, size - 1]
    assert (view[..., 0] == 2).sum() == 32 + 1  # the 9x9 border ring (32) + the one wall


def test_coin_env_interface():
    assert world.COIN.n_actions == world.N_ACTIONS == 3
    assert world.COIN.reset is world.reset and world.COIN.step is world.step
    assert tuple(world.COIN.obs_shape(world.coin_params())) == (9, 9, 4)
    assert tuple(world.COIN.obs_shape(world.coin_params(size=7))) == (13, 13, 4)


# ---------------------------------------------------------------------------------------------
# Layout draws whose random keys tie (two equal uniforms among the interior cells)


def test_layout_valid_when_uniform_draws_tie():
    """Cells are ordered by ranking uniform floats; float32 uniforms tie with probability
    ~2e-5 per draw, and then two cells share a rank and the next rank is missing. The layout
    must still have exactly n_walls walls and the agent and goal on distinct free cells.

    We find such keys by drawing the same uniforms as the world does (the cells key is the
    first half of split(key)); with n_walls equal to the tied rank, or one more, the tie
    falls right on the goal/agent ranks.
    """
    keys = jax.random.split(jax.random.PRNGKey(0), 400_000)

    @jax.jit
    def uniforms(keys):
        return jax.vmap(lambda k: jax.random.uniform(jax.random.split(k)[0], (25,)))(keys)

    u = np.asarray(uniforms(keys))
    s = np.sort(u, 1)
    tied = np.nonzero((np.diff(s, axis=1) == 0).any(1))[0][:4]
    if len(tied) == 0:
        pytest.skip("no tied uniform draw among the searched keys")
    cases = []
    for i in tied:
        rank = (u[i][None, :] < u[i][:, None]).sum(-1)
        vals, counts = np.unique(rank, return_counts=True)
        j = int(vals[counts > 1][0])
        cases += [(int(i), n) for n in (j, j + 1) if n <= 23]
    params = stack_trees([world.coin_params(n_walls=n) for _, n in cases])
    _, st = jax.jit(jax.vmap(world.reset))(keys[np.array([i for i, _ in cases])], params)
    st = jax.tree.map(np.asarray, st)
    assert_valid_layouts(st.walls, st.goal, st.pos, st.dir, np.array([n for _, n in cases]))


def test_sweep_covers_every_cell_direction_action_exactly_once():
    layouts = []
    for k in jax.random.split(jax.random.PRNGKey(3), 4):
        lay = world.draw_layout(k, world.coin_params(3))
        layouts.append((np.asarray(lay.walls), np.asarray(lay.goal)))
    states, actions, index = world.sweep(layouts)
    rows = {tuple(r) for r in index.tolist()}
    assert len(rows) == len(index)  # no repeats
    expected = set()
    for li, (walls, goal) in enumerate(layouts):
        for x in range(7):
            for y in range(7):
                if not walls[x, y] and (x, y) != tuple(goal):
                    expected |= {(li, x, y, d, a) for d in range(4) for a in range(3)}
    assert rows == expected
    assert len(index) == sum((~w).sum() - 1 for w, _ in layouts) * 12
    # The caregiver's reward in the sweep: 0.4 exactly when moving forward onto the goal.
    info = jax.vmap(world.step, in_axes=(None, 0, 0, None))(jax.random.PRNGKey(0), states, actions,
                                                             world.coin_params(3))[5]
    r_s = np.asarray(caregiver.social_reward(caregiver.caregiver(), info))
    front = index[:, 1:3] + world.DIR_VEC[index[:, 3]]
    goals = np.stack([layouts[i][1] for i in index[:, 0]])
    onto_goal = (index[:, 4] == world.FORWARD) & np.all(front == goals, 1)
    np.testing.assert_allclose(r_s, np.where(onto_goal, 0.4, 0.0), atol=1e-7)
    assert onto_goal.sum() > 0


# ---------------------------------------------------------------------------------------------
# 11. The scale experiment's worlds (issue 15): every room side and horizon it runs


def _scale_variants():
    from internalize.experiments import scale

    return {v.label: v for v in scale.variants_of(scale.Design())}


@pytest.mark.parametrize("label", ["side5", "side7", "side9", "side13", "side9_h100", "side9_h200"])
def test_scale_worlds_keep_the_rooms_invariants_and_views(label):
    v = _scale_variants()[label]
    p = v.world.params()
    n = p.size
    walls_expected = round(3 * n * n / 25)
    steps_expected = {"side9_h100": 100, "side9_h200": 200}.get(label, 4 * n)
    assert (p.view, p.width, int(p.n_walls), int(p.max_steps)) == (2 * n - 1, n + 2, walls_expected, steps_expected)
    assert float(p.step_cost) * int(p.max_steps) == pytest.approx(0.9, rel=1e-6)  # an episode's cost, any length
    assert v.scale == pytest.approx(min(n * n / 25, 2.0))
    # Resets: valid layouts, and the egocentric view equals MiniGrid's rot90 crop in every direction.
    obs, st = jax.tree.map(np.asarray, reset_batch(jax.random.split(jax.random.PRNGKey(n), 48), p))
    assert obs.shape == (48, 2 * n - 1, 2 * n - 1, 4)
    assert_valid_layouts(st.walls, st.goal, st.pos, st.dir, walls_expected)
    for i in range(0, 48, 3):
        np.testing.assert_array_equal(obs[i], ref_obs(st.walls[i], st.goal[i], st.pos[i], st.dir[i], size=n))
    # Turning right four times visits the four rotations of the view and comes back to the first.
    s = jax.tree.map(lambda x: jnp.asarray(x[0]), st)
    views = [np.asarray(world.observe(s, p))]
    for _ in range(4):
        _, s, *_ = world.step(jax.random.PRNGKey(0), s, jnp.int32(1), p)
        views.append(np.asarray(world.observe(s, p)))
        np.testing.assert_array_equal(views[-1], ref_obs(s.walls, s.goal, s.pos, s.dir, size=n))
    np.testing.assert_array_equal(views[0], views[4])
    assert len({v.tobytes() for v in views[:4]}) > 1
    # Episodes truncate at the world's length, never before.
    s = jax.tree.map(lambda x: jnp.asarray(x[1]), st)
    for t in range(int(p.max_steps)):
        _, s, _, term, trunc, _ = world.step(jax.random.PRNGKey(t), s, jnp.int32(0), p)  # turning: no goal
        assert not bool(term) and bool(trunc) == (t + 1 == int(p.max_steps))
