"""Tests of the two-coin world (internalize.worlds.two_coin): the coin world with a red and a
blue coin. Jitted functions are built once at module level and vmapped over small batches."""
from __future__ import annotations

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from internalize import caregivers, worlds
from internalize.worlds import coin
from internalize.worlds import two_coin as world

STEP_COST = np.float32(0.9 / 20)
BALL, RED, BLUE = 6, 0, 2
FRONT = (5, 4)  # the view cell in front of the agent (size 5)
BEHIND = (3, 4)


def border_mask(width: int = 7) -> np.ndarray:
    b = np.ones((width, width), bool)
    b[1:-1, 1:-1] = False
    return b


def hand_state(red, blue, pos, direction, t=0, walls_xy=()):
    walls = border_mask()
    for x, y in walls_xy:
        walls[x, y] = True
    return world.layout_state(walls, red, blue, pos, direction, t)


def stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def view_cell(pos, direction, cell, size=5):
    """Where ``cell`` shows in the egocentric view, worked out from the view's definition."""
    o = np.asarray(cell) - np.asarray(pos)
    fwd = coin.DIR_VEC[direction]
    right = coin.DIR_VEC[(direction + 1) % 4]
    return size - 1 + int(o @ fwd), size - 1 + int(o @ right)


def bfs_reachable(walls, start, target) -> bool:
    start, target = tuple(int(v) for v in start), tuple(int(v) for v in target)
    seen, queue = {start}, deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == target:
            return True
        for n in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if not walls[n] and n not in seen:
                seen.add(n)
                queue.append(n)
    return False


def assert_valid_layouts(s, n_walls):
    """Layout invariants over a batch of (numpy) TwoCoinStates."""
    walls, red, blue, pos = s.walls, s.red, s.blue, s.pos
    b = np.arange(len(walls))
    assert walls[:, border_mask()].all(), "border must be walls"
    np.testing.assert_array_equal(walls[:, 1:-1, 1:-1].sum((1, 2)), np.broadcast_to(n_walls, b.shape))
    for name, c in (("red coin", red), ("blue coin", blue), ("agent", pos)):
        assert ((c >= 1) & (c <= 5)).all(), f"{name} outside the room"
        assert not walls[b, c[:, 0], c[:, 1]].any(), f"{name} on a wall"
    assert not (red == blue).all(-1).any(), "coins coincide"
    assert not (pos == red).all(-1).any() and not (pos == blue).all(-1).any(), "agent on a coin"
    assert ((s.dir >= 0) & (s.dir <= 3)).all()


reset_batch = jax.jit(jax.vmap(world.reset, in_axes=(0, None)))
step_batch = jax.jit(jax.vmap(world.step, in_axes=(0, 0, 0, None)))
observe_batch = jax.jit(jax.vmap(world.observe, in_axes=(0, None)))
PARAMS = world.two_coin_params()


def test_reset_draws_a_valid_layout_and_view():
    obs, s = jax.tree.map(np.asarray, reset_batch(jax.random.split(jax.random.PRNGKey(0), 128), PARAMS))
    assert obs.shape == (128, 9, 9, 5) and obs.dtype == np.uint8
    assert_valid_layouts(s, 3)
    assert set(np.unique(s.dir)) == {0, 1, 2, 3}
    assert len({tuple(c) for c in s.red}) > 10 and len({tuple(c) for c in s.blue}) > 10
    np.testing.assert_array_equal(s.t, 0)
    # The whole interior is in view: each coin shows exactly once, where it lies.
    assert (obs[..., 3].sum((1, 2)) == 1).all() and (obs[..., 4].sum((1, 2)) == 1).all()
    for i in range(0, 128, 7):
        r, b = view_cell(s.pos[i], s.dir[i], s.red[i]), view_cell(s.pos[i], s.dir[i], s.blue[i])
        np.testing.assert_array_equal(obs[i][r], (BALL, RED, 0, 1, 0))
        np.testing.assert_array_equal(obs[i][b], (BALL, BLUE, 0, 0, 1))
        np.testing.assert_array_equal(obs[i][4, 4], (10, 0, s.dir[i], 0, 0))  # the agent
    # Walls, the agent and off-room cells (zeros) show as in the coin world's view of the room.
    as_coin = coin.CoinState(*(jnp.asarray(a) for a in (s.walls, s.red, s.pos, s.dir, s.t)))
    coin_obs = np.asarray(jax.vmap(coin.observe, in_axes=(0, None))(as_coin, PARAMS))
    not_coin = (obs[..., 0] != BALL) & (coin_obs[..., 0] != 8)
    np.testing.assert_array_equal(obs[..., :3][not_coin], coin_obs[..., :3][not_coin])
    assert (obs[..., 0] == 0).any() and (obs[..., 0] == 2).any()


def test_view_shows_the_coin_in_front_and_behind_in_every_direction():
    behind = {0: (2, 3), 1: (3, 2), 2: (4, 3), 3: (3, 4)}
    front = {d: tuple(np.array([3, 3]) + coin.DIR_VEC[d]) for d in range(4)}
    states = stack([hand_state(red=front[d], blue=behind[d], pos=(3, 3), direction=d) for d in range(4)]
                   + [hand_state(red=behind[d], blue=front[d], pos=(3, 3), direction=d) for d in range(4)])
    obs = np.asarray(observe_batch(states, PARAMS))
    for d in range(4):
        np.testing.assert_array_equal(obs[d][FRONT], (BALL, RED, 0, 1, 0))
        np.testing.assert_array_equal(obs[d][BEHIND], (BALL, BLUE, 0, 0, 1))
        np.testing.assert_array_equal(obs[4 + d][FRONT], (BALL, BLUE, 0, 0, 1))
        np.testing.assert_array_equal(obs[4 + d][BEHIND], (BALL, RED, 0, 1, 0))
    # compact features tell the colours apart at the same cell
    f = np.asarray(world.compact_features(jnp.asarray(obs)))
    assert f.shape == (8, 3 * 81) and f.dtype == np.float32
    cells = f.reshape(8, 9, 9, 3)
    np.testing.assert_array_equal(cells[0][FRONT], (0, 1, 0))
    np.testing.assert_array_equal(cells[4][FRONT], (0, 0, 1))
    assert not np.array_equal(f[0], f[4])
    np.testing.assert_array_equal(cells[0][..., 1], cells[4][..., 2])  # colours swapped
    np.testing.assert_array_equal(cells[0][..., 0], cells[4][..., 0])  # same walls
    assert cells[0][..., 0].sum() == 24


def test_step_reaches_each_coin_redraws_and_truncates():
    # Agent at (1, 1): red to the right (+x, dir 0), blue below (+y, dir 1), wall to the left (dir 2).
    base = dict(red=(2, 1), blue=(1, 2), pos=(1, 1))
    cases = [  # (direction, action, t)
        (0, 2, 4),  # forward onto red
        (1, 2, 4),  # forward onto blue
        (2, 2, 4),  # forward into the wall
        (3, 0, 4),  # turn left
        (0, 2, 19),  # onto red on the truncating step
        (1, 1, 18),  # turn right, not yet truncated
        (3, 2, 7),  # forward into the top wall
        (0, 1, 0),  # turn right
    ]
    states = stack([hand_state(**base, direction=d, t=t) for d, _, t in cases])
    actions = jnp.asarray([a for _, a, _ in cases], jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(1), len(cases))
    obs, s, r, term, trunc, info = jax.tree.map(np.asarray, step_batch(keys, states, actions, PARAMS))
    info = {k: np.asarray(v) for k, v in info.items()}
    np.testing.assert_array_equal(info["red_reached"], [1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(info["blue_reached"], [0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(info["goal_reached"], info["red_reached"] | info["blue_reached"])
    np.testing.assert_array_equal(info["forward"], np.asarray(actions) == 2)
    np.testing.assert_array_equal(r, np.where(np.asarray(actions) == 2, -STEP_COST, np.float32(0)))
    np.testing.assert_array_equal(s.t, [t + 1 for _, _, t in cases])
    np.testing.assert_array_equal(trunc, s.t >= 20)
    assert not term.any()
    # Reaching a coin redraws the layout (3 interior walls where the hand-made room had none).
    reached = info["goal_reached"]
    redrawn = jax.tree.map(lambda a: a[reached], s)
    assert_valid_layouts(redrawn, 3)
    # Otherwise the room stays and the agent turns or stays put (walls block).
    np.testing.assert_array_equal(s.walls[~reached], np.broadcast_to(border_mask(), (5, 7, 7)))
    np.testing.assert_array_equal(s.red[~reached], np.broadcast_to((2, 1), (5, 2)))
    np.testing.assert_array_equal(s.blue[~reached], np.broadcast_to((1, 2), (5, 2)))
    np.testing.assert_array_equal(s.pos[~reached], np.broadcast_to((1, 1), (5, 2)))
    np.testing.assert_array_equal(s.dir[~reached], [2, 2, 2, 3, 1])
    np.testing.assert_array_equal(obs, np.asarray(observe_batch(jax.tree.map(jnp.asarray, s), PARAMS)))


def test_reachable_only_layouts_reach_both_coins():
    params = world.two_coin_params(n_walls=10, reachable_only=True)
    _, s = jax.tree.map(np.asarray, reset_batch(jax.random.split(jax.random.PRNGKey(2), 48), params))
    assert_valid_layouts(s, 10)
    for i in range(48):
        assert bfs_reachable(s.walls[i], s.pos[i], s.red[i]) and bfs_reachable(s.walls[i], s.pos[i], s.blue[i])


def _rollout(params, key, actions):
    def one(state, x):
        k, a = x
        obs, nxt, r, term, trunc, info = world.auto_reset_step(k, state, a, params)
        return nxt, (state, nxt, obs, r, term, trunc, info)

    k0, k1 = jax.random.split(key)
    _, state = world.reset(k0, params)
    return jax.lax.scan(one, state, (jax.random.split(k1, actions.shape[0]), actions))[1]


ROLL = jax.jit(_rollout)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.integers(0, 2), min_size=40, max_size=40),
       st.sampled_from([None, "plus", "4rooms"]), st.integers(0, 12))
def test_two_coin_invariants_hold_over_random_keys_and_actions(seed, actions, map_name, n_walls):
    params = world.two_coin_params(n_walls=n_walls, map_name=map_name)
    prev, s, obs, r, term, trunc, info = jax.tree.map(
        np.asarray, ROLL(params, jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32)))
    assert_valid_layouts(s, 5 if map_name else n_walls)
    if map_name:
        assert (s.walls == coin.NAMED_MAPS[map_name][None]).all()
    assert not term.any(), "episodes end by truncation only"
    np.testing.assert_array_equal(trunc, np.arange(1, 41) % 20 == 0)
    a = np.asarray(actions)
    np.testing.assert_allclose(r, np.where(a == 2, -float(params.step_cost), 0.0), rtol=1e-6)
    # A coin is reached exactly when moving forward onto it; never both at once.
    ahead = prev.pos + coin.DIR_VEC[prev.dir]
    np.testing.assert_array_equal(info["red_reached"], (a == 2) & (ahead == prev.red).all(-1))
    np.testing.assert_array_equal(info["blue_reached"], (a == 2) & (ahead == prev.blue).all(-1))
    np.testing.assert_array_equal(info["goal_reached"], info["red_reached"] | info["blue_reached"])
    assert obs.dtype == np.uint8 and obs.shape == (40, 9, 9, 5)
    assert (obs[..., 3].sum((1, 2)) == 1).all() and (obs[..., 4].sum((1, 2)) == 1).all()


def test_sweep_covers_every_cell_direction_action_once():
    layouts = []
    for k in jax.random.split(jax.random.PRNGKey(3), 2):
        s = world.draw_layout(k, PARAMS)
        layouts.append((np.asarray(s.walls), np.asarray(s.red), np.asarray(s.blue)))
    states, actions, index = world.sweep(layouts)
    expected = {(li, x, y, d, a) for li, (w, red, blue) in enumerate(layouts) for x in range(7) for y in range(7)
                if not w[x, y] and (x, y) not in (tuple(red), tuple(blue)) for d in range(4) for a in range(3)}
    assert len(index) == len(expected) == 2 * (25 - 3 - 2) * 12
    assert {tuple(r) for r in index.tolist()} == expected
    np.testing.assert_array_equal(actions, index[:, 4])
    keys = jax.random.split(jax.random.PRNGKey(0), len(index))
    info = step_batch(keys, states, jnp.asarray(actions), PARAMS)[5]
    ahead = index[:, 1:3] + coin.DIR_VEC[index[:, 3]]
    red = np.stack([layouts[i][1] for i in index[:, 0]])
    onto_red = (actions == 2) & (ahead == red).all(-1)
    np.testing.assert_array_equal(np.asarray(info["red_reached"]), onto_red)
    assert onto_red.sum() > 0


@pytest.mark.parametrize("n_walls", [23, 25, -1])
def test_invalid_n_walls_is_a_one_line_value_error(n_walls):
    with pytest.raises(ValueError, match="n_walls must be in 0..22") as e:
        world.TwoCoinWorld(n_walls=n_walls).params()
    assert "\n" not in str(e.value)


def test_registered_world_spec():
    spec = worlds.known()["two_coin"]()
    assert spec == worlds.TwoCoinWorld() and spec.action_names == ("left", "right", "forward")
    assert world.two_coin_params(n_walls=22).size == 5  # the most walls that leave 3 cells
    e, p = spec.env, spec.params()
    assert e.name == "two_coin" and e.n_actions == 3 and e.events == ("red_reached", "blue_reached")
    assert e.obs_shape(p) == (9, 9, 5) and e.features is world.compact_features
    assert int(p.max_steps) == 20 and np.float32(p.step_cost) == STEP_COST
    assert spec.caregiver() == caregivers.GoalPraise(0.4, waives_step_cost=True)
    # render draws both coins and the agent of a recorded step
    rec = {k: np.stack([v, v]) for k, v in vars(hand_state((2, 1), (4, 4), (3, 3), 1)).items()}
    img = spec.render(rec, 1, tile=16)
    assert img.shape == (112, 112, 3) and img.dtype == np.uint8
    for colour, (x, y) in ((world._COLORS["red"], (2, 1)), (world._COLORS["blue"], (4, 4)),
                           (world._COLORS["agent"], (3, 3))):
        assert (img[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16] == colour).all(-1).sum() > 30
