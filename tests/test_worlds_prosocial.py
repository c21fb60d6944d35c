"""Tests of the prosocial two-agent world (internalize.prosocial, SPEC 8) and its PettingZoo adapter.

Long loops are jitted (and vmapped over layouts) once at module level, so the file stays fast
on a small CPU machine. Layout and observation checks use independent NumPy references written
from the spec, not the module's own helpers.
"""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts)

import subprocess
import sys
import warnings
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds import prosocial as ps

W = 7  # room side (5x5 interior)
V = 9  # egocentric view side
R = 4  # view centre
DIRS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])  # MiniGrid: right, down, left, up
LEFT, RIGHT, FORWARD, PICKUP, DROP = 0, 1, 2, 3, 4
STAY = 0
STEP_COST = np.float32(0.9 / 100)
SHARED = 0.4
PARAMS = ps.prosocial_params()
KEY = jax.random.PRNGKey(0)

_step = jax.jit(ps.step)
_step_agents = jax.jit(ps.step_agents)
_observe = jax.jit(ps.observe)
_draw = jax.jit(jax.vmap(ps.draw_layout))


# ---------------------------------------------------------------------------------------------
# Independent references


def neighbours(c):
    return [(c[0] + int(dx), c[1] + int(dy)) for dx, dy in DIRS]


def check_layout(walls, ball, learner, path, where: str = "") -> None:
    """Assert the SPEC 8 invariants of one layout (``path`` unpadded, cells as pairs)."""
    walls = np.asarray(walls, bool)
    assert walls.shape == (W, W), where
    assert walls[0, :].all() and walls[-1, :].all() and walls[:, 0].all() and walls[:, -1].all(), where
    assert 7 <= int(walls[1:-1, 1:-1].sum()) <= 9, where
    open_cells = {(x, y) for x in range(1, W - 1) for y in range(1, W - 1) if not walls[x, y]}
    first = min(open_cells)
    seen, queue = {first}, deque([first])
    while queue:
        for nb in neighbours(queue.popleft()):
            if not walls[nb] and nb not in seen:
                seen.add(nb)
                queue.append(nb)
    assert seen == open_cells, f"{where}: open cells not connected"
    deg = {c: sum(not walls[nb] for nb in neighbours(c)) for c in open_cells}
    ball = tuple(int(v) for v in ball)
    assert ball in open_cells, where
    assert deg[ball] == max(deg.values()) >= 3, f"{where}: ball degree {deg[ball]}"
    path = [tuple(int(v) for v in c) for c in path]
    assert all(c in open_cells for c in path), where
    assert deg[path[0]] == 1, f"{where}: partner start not a dead end"
    learner = tuple(int(v) for v in learner)
    assert learner in open_cells and deg[learner] == 1, f"{where}: learner start not a dead end"
    assert learner not in path, f"{where}: learner start on the partner's path"
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(path, path[1:])), f"{where}: not a walk"
    assert len(set(path)) == len(path), f"{where}: path revisits a cell"
    assert ball in path[1:-1], f"{where}: ball not strictly between start and goal"


def sym_map(g: int):
    """The g-th symmetry of the square (4 rotations, each with and without a mirror) on cells."""
    mirror, k = divmod(g, 4)

    def f(c):
        c = np.asarray(c)
        x, y = c[..., 0], c[..., 1]
        if mirror:
            x = W - 1 - x
        for _ in range(k):
            x, y = W - 1 - y, x
        return np.stack([x, y], -1)

    return f


def ref_encode(walls, ball, carrying, pos, direction, partner, goal) -> np.ndarray:
    """MiniGrid encoding [W, H, 3] of the room, cell by cell, indexed [x, y]."""
    g = np.zeros((W, W, 3), np.uint8)
    walls = np.asarray(walls)
    for x in range(W):
        for y in range(W):
            g[x, y] = (2, 5, 0) if walls[x, y] else (1, 0, 0)
    g[tuple(goal)] = (8, 1, 0)
    if not carrying:
        g[tuple(ball)] = (6, 3, 0)
    g[tuple(partner)] = (10, 2, 0)
    g[tuple(pos)] = (10, 0, direction)
    return g


def ref_view(state) -> np.ndarray:
    """The learner's 9x9x4 view: view[i, j] shows pos + (i - 4) * forward + (j - 4) * right."""
    s = jax.tree.map(np.asarray, state)
    progress, plen = int(s.progress), int(s.path_len)
    grid = ref_encode(s.walls, s.ball, bool(s.carrying), s.pos, int(s.dir), s.path[progress], s.path[plen - 1])
    d = int(s.dir)
    fwd, right = DIRS[d], DIRS[(d + 1) % 4]
    out = np.zeros((V, V, 4), np.uint8)
    for i in range(V):
        for j in range(V):
            x, y = s.pos + (i - R) * fwd + (j - R) * right
            if 0 <= x < W and 0 <= y < W:
                out[i, j, :3] = grid[x, y]
    out[R, R, 3] = int(bool(s.carrying))
    return out


def make_state(walls_cells=(), ball=(3, 3), pos=(2, 2), d=0, path=((1, 5), (2, 5), (3, 5), (4, 5), (5, 5)),
               carrying=False, progress=0, t=0) -> ps.ProsocialState:
    """A hand-made state in an open room (border walls plus ``walls_cells``)."""
    walls = np.zeros((W, W), bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    for c in walls_cells:
        walls[c] = True
    p = np.asarray(path, np.int32)
    padded = np.concatenate([p, np.repeat(p[-1:], ps.MAX_PATH - len(p), 0)])
    return ps.ProsocialState(walls=jnp.asarray(walls), ball=jnp.asarray(ball, jnp.int32),
                             carrying=jnp.bool_(carrying), pos=jnp.asarray(pos, jnp.int32), dir=jnp.int32(d),
                             path=jnp.asarray(padded), path_len=jnp.int32(len(p)), progress=jnp.int32(progress),
                             t=jnp.int32(t))


def layout_state(i: int, pos=None, d=0) -> ps.ProsocialState:
    """Shipped layout ``i`` untransformed (learner at its start unless ``pos`` is given)."""
    lay = ps.layouts()
    plen = int(lay["path_len"][i])
    return make_state(ball=lay["ball"][i], pos=lay["learner"][i] if pos is None else pos, d=d,
                      path=lay["path"][i][:plen]).replace(walls=jnp.asarray(lay["walls"][i]))


def layout_states(idx) -> ps.ProsocialState:
    """Shipped layouts ``idx`` untransformed, batched (learners at their starts, facing right)."""
    lay = {k: v[np.asarray(idx)].astype(np.int32) for k, v in ps.layouts().items()}
    n = len(idx)
    return ps.ProsocialState(walls=jnp.asarray(lay["walls"].astype(bool)), ball=jnp.asarray(lay["ball"]),
                             carrying=jnp.zeros(n, bool), pos=jnp.asarray(lay["learner"]),
                             dir=jnp.zeros(n, jnp.int32), path=jnp.asarray(lay["path"]),
                             path_len=jnp.asarray(lay["path_len"]), progress=jnp.zeros(n, jnp.int32),
                             t=jnp.zeros(n, jnp.int32))


def act(state, action, partner_action=None):
    """One step: the scripted partner when ``partner_action`` is None, else that action."""
    if partner_action is None:
        return _step(KEY, state, jnp.int32(action), PARAMS)
    return _step_agents(KEY, state, jnp.int32(action), jnp.int32(partner_action), PARAMS)


def cell(a) -> tuple[int, int]:
    return tuple(int(v) for v in np.asarray(a))


# ---------------------------------------------------------------------------------------------
# Layouts


def test_shipped_layouts_regenerate_bit_for_bit():
    shipped, fresh = ps.layouts(), ps.generate_layouts()
    assert set(shipped) == set(fresh) == {"walls", "ball", "learner", "path", "path_len"}
    for k in fresh:
        assert shipped[k].dtype == fresh[k].dtype, k
        assert shipped[k].shape == fresh[k].shape, k
        assert np.array_equal(shipped[k], fresh[k]), k
    assert shipped["walls"].shape[0] == ps.N_LAYOUTS


def test_every_shipped_layout_is_valid():
    lay = ps.layouts()
    for i in range(lay["walls"].shape[0]):
        plen = int(lay["path_len"][i])
        path = lay["path"][i]
        check_layout(lay["walls"][i], lay["ball"][i], lay["learner"][i], path[:plen], where=f"layout {i}")
        assert (path[plen:] == path[plen - 1]).all(), f"layout {i}: padding is not the goal"


def test_draw_layout_applies_all_8_symmetries_and_keeps_the_invariants():
    lay = ps.layouts()
    n = lay["walls"].shape[0]
    # Every shipped layout under every symmetry, keyed by its bytes -> the (index, symmetry) pairs.
    xs, ys = np.meshgrid(np.arange(W), np.arange(W), indexing="ij")
    table: dict[bytes, list[tuple[int, int]]] = {}
    for g in range(8):
        f = sym_map(g)
        t = f(np.stack([xs, ys], -1))
        walls = np.zeros_like(lay["walls"])
        walls[:, t[..., 0], t[..., 1]] = lay["walls"][:, xs, ys]
        parts = [walls.reshape(n, -1).astype(np.int8), f(lay["ball"]).astype(np.int8),
                 f(lay["learner"]).astype(np.int8), f(lay["path"]).reshape(n, -1).astype(np.int8)]
        rows = np.concatenate(parts, 1)
        for i in range(n):
            table.setdefault(rows[i].tobytes(), []).append((i, g))

    states = jax.tree.map(np.asarray, _draw(jax.random.split(jax.random.PRNGKey(1), 2048)))
    syms, dirs = set(), set()
    for k in range(states.walls.shape[0]):
        plen = int(states.path_len[k])
        check_layout(states.walls[k], states.ball[k], states.pos[k], states.path[k][:plen], where=f"draw {k}")
        row = np.concatenate([states.walls[k].reshape(-1).astype(np.int8), states.ball[k].astype(np.int8),
                              states.pos[k].astype(np.int8), states.path[k].reshape(-1).astype(np.int8)])
        matches = table.get(row.tobytes())
        assert matches, f"draw {k} is no shipped layout under any symmetry"
        if len({g for _, g in matches}) == 1:
            syms.add(matches[0][1])
        assert not states.carrying[k] and states.progress[k] == 0 and states.t[k] == 0
        dirs.add(int(states.dir[k]))
    assert syms == set(range(8))
    assert dirs == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------
# Observation


def test_observation_is_the_egocentric_view():
    states = _draw(jax.random.split(jax.random.PRNGKey(2), 12))
    for k in range(12):
        base = jax.tree.map(lambda a: a[k], states)
        # The partner at its start, and one step on when the ball does not block that step.
        for progress in (0, 1) if cell(base.path[1]) != cell(base.ball) else (0,):
            for carrying in (False, True):
                for d in range(4):
                    s = base.replace(dir=jnp.int32(d), carrying=jnp.bool_(carrying), progress=jnp.int32(progress))
                    view = np.asarray(_observe(s, PARAMS))
                    assert view.shape == (V, V, 4) and view.dtype == np.uint8
                    assert tuple(view[R, R, :3]) == (10, 0, d)  # the learner, red, facing d
                    np.testing.assert_array_equal(view, ref_view(s))
                    # The cell in front is view[5, 4], whatever the direction.
                    front = tuple(np.array(cell(s.pos)) + DIRS[d])
                    if np.asarray(s.walls)[front]:
                        assert view[R + 1, R, 0] == 2
                    elif front == cell(s.partner):
                        assert tuple(view[R + 1, R, :2]) == (10, 2)
                    elif front == cell(s.ball) and not carrying:
                        assert view[R + 1, R, 0] == 6
                    # The partner (blue agent) and the ball appear exactly once (the ball not while carried).
                    assert ((view[..., 0] == 10) & (view[..., 1] == 2)).sum() == 1
                    assert (view[..., 0] == 6).sum() == (0 if carrying else 1)
                    # Carrying plane: only at the centre, only when carrying.
                    expect = np.zeros((V, V), np.uint8)
                    expect[R, R] = carrying
                    np.testing.assert_array_equal(view[..., 3], expect)


def test_front_cell_is_view_5_4_in_a_hand_made_room():
    # Learner in the middle of an open room; put a distinct object in front for each direction.
    for d in range(4):
        front = tuple(np.array((3, 3)) + DIRS[d])
        for what in ("wall", "ball", "empty"):
            s = make_state(walls_cells=[front] if what == "wall" else [], ball=front if what == "ball" else (1, 1),
                           pos=(3, 3), d=d)
            view = np.asarray(_observe(s, PARAMS))
            assert tuple(view[R + 1, R, :3]) == {"wall": (2, 5, 0), "ball": (6, 3, 0), "empty": (1, 0, 0)}[what]
            np.testing.assert_array_equal(view, ref_view(s))


# ---------------------------------------------------------------------------------------------
# Learner mechanics (partner told to stay, so only the learner acts)


def test_pickup_only_when_the_ball_is_directly_in_front():
    for d in range(4):
        s = make_state(pos=(3, 3), d=d, ball=tuple(np.array((3, 3)) + DIRS[d]))
        obs, s2, reward, *_ , info = act(s, PICKUP, STAY)
        assert bool(s2.carrying) and bool(info["carrying"])
        assert np.asarray(obs)[R, R, 3] == 1 and not (np.asarray(obs)[..., 0] == 6).any()
        assert float(reward) == 0.0
    # Facing right from (3, 3): two cells ahead, to the side, behind, diagonal: no pickup.
    for ball in [(5, 3), (3, 4), (3, 2), (2, 3), (4, 4)]:
        s = make_state(pos=(3, 3), d=0, ball=ball)
        _, s2, *_ = act(s, PICKUP, STAY)
        assert not bool(s2.carrying), ball
        assert cell(s2.ball) == ball


def test_drop_rules():
    pos, front = (3, 3), (4, 3)
    cases = {
        "wall": make_state(walls_cells=[front], pos=pos, d=0, carrying=True),
        "partner": make_state(pos=pos, d=0, carrying=True, path=((4, 1), (4, 2), (4, 3), (4, 4), (4, 5)), progress=2),
        "goal": make_state(pos=pos, d=0, carrying=True, path=((1, 5), (2, 5), (3, 5), (4, 5), (4, 4), (4, 3))),
    }
    for name, s in cases.items():
        _, s2, reward, *_ = act(s, DROP, STAY)
        assert bool(s2.carrying), f"dropped onto the {name}"
        assert float(reward) == 0.0
    s = make_state(pos=pos, d=0, carrying=True, ball=(1, 1))
    obs, s2, *_ = act(s, DROP, STAY)
    assert not bool(s2.carrying) and cell(s2.ball) == front
    assert tuple(np.asarray(obs)[R + 1, R, :3]) == (6, 3, 0) and np.asarray(obs)[R, R, 3] == 0
    # Dropping while not carrying changes nothing.
    s = make_state(pos=pos, d=0, ball=(1, 1))
    _, s2, *_ = act(s, DROP, STAY)
    assert not bool(s2.carrying) and cell(s2.ball) == (1, 1)
    # The carried ball travels with the learner and is dropped in front of where it is now.
    s = make_state(pos=(2, 3), d=0, carrying=True, ball=(1, 1))
    for _ in range(2):
        _, s, *_ = act(s, FORWARD, STAY)
    _, s, *_ = act(s, RIGHT, STAY)  # face down
    _, s, *_ = act(s, DROP, STAY)
    assert cell(s.pos) == (4, 3) and cell(s.ball) == (4, 4) and not bool(s.carrying)


def test_forward_is_blocked_by_walls_ball_and_partner_and_always_costs():
    pos, front = (3, 3), (4, 3)
    blocked = {
        "wall": make_state(walls_cells=[front], pos=pos, d=0),
        "ball": make_state(pos=pos, d=0, ball=front),
        "partner": make_state(pos=pos, d=0, path=((4, 1), (4, 2), (4, 3), (4, 4), (4, 5)), progress=2),
        "border": make_state(pos=(5, 3), d=0),
    }
    for name, s in blocked.items():
        _, s2, reward, terminated, _, info = act(s, FORWARD, STAY)
        assert cell(s2.pos) == cell(s.pos), f"walked into the {name}"
        assert np.float32(reward) == -STEP_COST and bool(info["forward"])
        assert not bool(terminated)
    for d in range(4):
        s = make_state(pos=pos, d=d, ball=(1, 1))
        _, s2, reward, *_ = act(s, FORWARD, STAY)
        assert cell(s2.pos) == tuple(np.array(pos) + DIRS[d]) and int(s2.dir) == d
        assert np.float32(reward) == -STEP_COST


def test_turning_pickup_and_drop_cost_nothing():
    for d in range(4):
        s = make_state(pos=(3, 3), d=d)
        for action, new_dir in ((LEFT, (d + 3) % 4), (RIGHT, (d + 1) % 4), (PICKUP, d), (DROP, d)):
            _, s2, reward, _, _, info = act(s, action, STAY)
            assert int(s2.dir) == new_dir and cell(s2.pos) == (3, 3)
            assert float(reward) == 0.0 and not bool(info["forward"])


# ---------------------------------------------------------------------------------------------
# The partner


def test_partner_waits_for_the_ball_then_walks_to_its_goal_hand_made():
    # Partner walks along y = 1 to (5, 1); the ball blocks (3, 1); the learner stands below it.
    s = make_state(pos=(3, 2), d=3, ball=(3, 1), path=((1, 1), (2, 1), (3, 1), (4, 1), (5, 1)))
    progress = []
    for _ in range(5):
        _, s, _, _, _, info = act(s, DROP)  # not carrying: a no-op
        progress.append(int(s.progress))
    assert progress == [1, 1, 1, 1, 1]
    assert int(info["partner_action"]) == STAY
    _, s, _, _, _, info = act(s, PICKUP)
    assert bool(s.carrying)
    assert int(s.progress) == 2  # the scripted partner reacts to the learner's move of the same step
    assert int(info["partner_action"]) == 1  # right
    _, s, _, _, _, info = act(s, LEFT)
    assert int(s.progress) == 3 and not bool(info["goal_reached"])
    _, s, _, terminated, truncated, info = act(s, LEFT)
    assert bool(info["goal_reached"]) and not bool(terminated) and not bool(truncated)
    assert int(s.progress) == 0 and not bool(s.carrying) and int(s.t) == 8
    plen = int(s.path_len)  # the new layout is a valid one (the hand-made room is not)
    check_layout(s.walls, s.ball, s.pos, np.asarray(s.path)[:plen], where="redrawn")


def _scenario(i):
    """Layout i with the learner on a free neighbour of the ball, facing it."""
    lay = ps.layouts()
    plen = int(lay["path_len"][i])
    path = [cell(c) for c in lay["path"][i][:plen]]
    ball = cell(lay["ball"][i])
    for d in range(4):
        n = (ball[0] - int(DIRS[d][0]), ball[1] - int(DIRS[d][1]))
        if not lay["walls"][i][n] and n not in path:
            return layout_state(i, pos=n, d=d), path.index(ball), plen
    raise AssertionError(f"layout {i}: no free neighbour of the ball off the path")


PICKUP_STEP = 29  # 28 left turns bring the learner back to facing the ball


@jax.jit
@jax.vmap
def _run_scenario(state):
    actions = jnp.full(99, LEFT, jnp.int32).at[PICKUP_STEP - 1].set(PICKUP)

    def body(s, a):
        _, s, reward, terminated, truncated, info = ps.step(KEY, s, a, PARAMS)
        return s, (s.progress, reward, terminated, truncated, info["goal_reached"], info["partner_action"])

    return jax.lax.scan(body, state, actions)[1]


def test_partner_waits_then_arrives_once_on_shipped_layouts():
    idx = range(0, ps.N_LAYOUTS, 16)
    cases = [_scenario(i) for i in idx]
    states = jax.tree.map(lambda *a: jnp.stack(a), *[c[0] for c in cases])
    progress, reward, terminated, truncated, goal, partner_action = map(np.asarray, _run_scenario(states))
    assert not terminated.any() and not truncated.any()
    assert (reward == 0).all()  # turning and picking up cost nothing
    for row, (_, b, plen) in enumerate(cases):
        steps = np.arange(1, PICKUP_STEP)
        np.testing.assert_array_equal(progress[row, :PICKUP_STEP - 1], np.minimum(steps, b - 1))
        assert (partner_action[row, b - 1:PICKUP_STEP - 1] == STAY).all()
        arrival = PICKUP_STEP + (plen - 1) - b  # the partner moves every step after the pickup
        assert np.flatnonzero(goal[row]).tolist() == [arrival - 1], f"row {row}"
        assert progress[row, arrival - 1] == 0  # a new layout was drawn
        np.testing.assert_array_equal(progress[row, PICKUP_STEP - 1:arrival - 1], np.arange(b, plen - 1))


def test_truncation_at_100_steps_and_never_terminated():
    @jax.jit
    def run(state, params):
        def body(s, _):
            _, s, _, terminated, truncated, _ = ps.step(KEY, s, jnp.int32(LEFT), params)
            return s, (s.t, terminated, truncated)
        return jax.lax.scan(body, state, None, length=100)[1]

    state = layout_state(0)
    t, terminated, truncated = map(np.asarray, run(state, PARAMS))
    np.testing.assert_array_equal(t, np.arange(1, 101))
    assert not terminated.any()
    assert truncated.tolist() == [False] * 99 + [True]
    _, _, truncated = map(np.asarray, run(state, ps.prosocial_params(max_steps=7)))
    assert np.flatnonzero(truncated)[0] == 6


def test_learner_on_the_partners_next_cell_blocks_it():
    path = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1))
    s = make_state(pos=(2, 1), d=1, ball=(3, 4), path=path)
    for _ in range(3):
        _, s, _, _, _, info = act(s, LEFT)
        assert int(s.progress) == 0 and int(info["partner_action"]) == STAY
    s = s.replace(dir=jnp.int32(1))
    _, s2, *_ = act(s, LEFT, 1)  # told to move right, into the learner
    assert int(s2.progress) == 0
    _, s2, *_ = act(s, FORWARD)  # the learner steps down out of the way; the partner follows at once
    assert cell(s2.pos) == (2, 2) and int(s2.progress) == 1


def test_wrong_partner_actions_leave_it_in_place():
    s = make_state(pos=(3, 3), ball=(4, 4), path=((2, 2), (3, 2), (4, 2), (5, 2)), progress=1)
    for a in range(5):
        _, s2, _, _, _, info = act(s, LEFT, a)
        assert int(s2.progress) == (2 if a == 1 else 1), a
        assert int(info["partner_action"]) == a


def test_out_of_range_partner_actions_are_stay():
    s = make_state(pos=(3, 3), ball=(4, 4), path=((2, 2), (3, 2), (4, 2), (5, 2)), progress=1)
    for a in (-1, 5, 7, 100):
        _, s2, _, _, _, info = act(s, LEFT, a)
        assert int(s2.progress) == 1, a
        assert int(info["partner_action"]) == STAY and int(info["other_actions"][0]) == 0, a


def _model_step(walls, path, s, a):
    """The rules, written again over plain tuples (pos, dir, carrying, ball, progress)."""
    pos, d, carrying, ball, prog = s
    n = len(path)
    front = (pos[0] + int(DIRS[d][0]), pos[1] + int(DIRS[d][1]))
    front_ball = front == ball and not carrying
    nd = (d + 3) % 4 if a == LEFT else (d + 1) % 4 if a == RIGHT else d
    if a == FORWARD and not walls[front] and not front_ball and front != path[prog]:
        pos = front
    if a == PICKUP and front_ball:
        carrying = True
    elif a == DROP and carrying and not walls[front] and front != path[prog] and front != path[-1]:
        carrying, ball = False, front
    if prog < n - 1 and not (path[prog + 1] == ball and not carrying) and path[prog + 1] != pos:
        prog += 1
    return (pos, nd, carrying, ball, prog), prog >= n - 1


def _layout(i):
    lay = ps.layouts()
    n = int(lay["path_len"][i])
    return lay["walls"][i], [cell(c) for c in lay["path"][i][:n]], cell(lay["learner"][i]), cell(lay["ball"][i])


def _fewest_steps_to_help(i: int, d0: int) -> int | None:
    """Exhaustive search over (learner cell, direction, carrying, ball, partner progress) of
    shipped layout i: the fewest learner steps after which the partner arrives (None: never)."""
    walls, path, learner, ball = _layout(i)
    start = (learner, d0, False, ball, 0)
    dist, queue = {start: 0}, deque([start])
    while queue:
        s = queue.popleft()
        for a in range(5):
            nxt, arrived = _model_step(walls, path, s, a)
            if arrived:
                return dist[s] + 1
            if nxt not in dist:
                dist[nxt] = dist[s] + 1
                queue.append(nxt)
    return None


def test_every_sampled_episode_start_can_be_helped_within_an_episode():
    """No layout traps the learner (e.g. the waiting partner sealing its only way to the ball)."""
    for i in range(0, ps.N_LAYOUTS, 16):
        for d in range(4):
            steps = _fewest_steps_to_help(i, d)
            assert steps is not None and steps <= 100, (i, d, steps)


def test_the_search_model_follows_the_world():
    """The search above is only as good as its model: it must agree with ``step``."""
    rng = np.random.default_rng(0)
    step = jax.jit(ps.step)
    idx = np.arange(0, ps.N_LAYOUTS, 128)
    states = layout_states(idx)
    compared = 0
    for row, i in enumerate(idx):
        walls, path, learner, ball = _layout(i)
        state = jax.tree.map(lambda x: x[row], states)
        s = (cell(state.pos), int(state.dir), False, ball, 0)
        assert s[0] == learner
        for _ in range(40):
            a = int(rng.integers(5))
            s, arrived = _model_step(walls, path, s, a)
            _, state, _, _, _, info = step(KEY, state, a, PARAMS)
            assert bool(info["goal_reached"]) == arrived
            if arrived:
                break
            got = (cell(state.pos), int(state.dir), bool(state.carrying), cell(state.ball), int(state.progress))
            if s[2]:  # the ball's cell means nothing while carried
                got = got[:3] + (s[3],) + got[4:]
            assert got == s, (i, a)
            compared += 1
    assert compared > 500


@jax.jit
@jax.vmap
def _partner_moves(state):
    return jax.vmap(lambda a: ps.step_agents(KEY, state, jnp.int32(LEFT), a, PARAMS)[1].progress)(jnp.arange(5))


def test_only_the_path_step_moves_the_partner_on_shipped_layouts():
    lay = ps.layouts()
    idx = np.arange(0, ps.N_LAYOUTS, 8)
    progress = np.asarray(_partner_moves(layout_states(idx)))
    for row, i in enumerate(idx):
        step = lay["path"][i][1] - lay["path"][i][0]
        right = 1 + int(np.flatnonzero((DIRS == step).all(1))[0])
        free = cell(lay["path"][i][1]) != cell(lay["ball"][i])
        expect = [1 if (a == right and free) else 0 for a in range(5)]
        assert progress[row].tolist() == expect, f"layout {i}"


def test_other_actions_is_the_partner_move_in_the_learners_frame():
    s = make_state(pos=(3, 3), ball=(4, 4), path=((2, 2), (3, 2), (4, 2), (5, 2)), progress=1)
    for d in range(4):
        for a in range(5):
            _, _, _, _, _, info = act(s.replace(dir=jnp.int32((d + 1) % 4)), LEFT, a)  # LEFT turns back to d
            expect = 0 if a == 0 else 1 + (a - 1 - (d + 1) % 4) % 4
            assert np.asarray(info["other_actions"]).tolist() == [expect]


# ---------------------------------------------------------------------------------------------
# Rendering


def test_render_shape_and_it_shows_the_state():
    s = layout_state(3)
    img = ps.render(s)
    assert img.dtype == np.uint8 and img.shape == (W * 24, W * 24, 3)
    small = ps.render(s, tile=8)
    assert small.shape == (W * 8, W * 8, 3)
    assert not np.array_equal(img, ps.render(s.replace(dir=(s.dir + 1) % 4)))
    assert not np.array_equal(img, ps.render(layout_state(4)))
    assert not np.array_equal(img, ps.render(s.replace(carrying=jnp.bool_(True))))
