"""The open questions' caregivers (internalize.caregivers, SPEC 9): :class:`Imperfect` (noisy,
forgetful, falsely praising, late), :class:`Feedback` (praise, shaping, correction) and
:class:`TwoCaregivers` (one of two per episode), each judged on hand-made transitions: real
world states stepped with chosen actions, or Steps whose ``info`` is written by hand."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import caregivers as cgs
from internalize.worlds import coin
from internalize.worlds import two_coin

KEY = jax.random.PRNGKey(0)
N_KEYS = 2000
OBS = jnp.zeros((1, 1, 1), jnp.uint8)  # a dummy observation: no caregiver here looks at it


def _info(goal=False, red=False, blue=False) -> dict:
    return {"goal_reached": jnp.bool_(goal or red or blue), "red_reached": jnp.bool_(red),
            "blue_reached": jnp.bool_(blue), "forward": jnp.bool_(True)}


def _step(goal=False, *, red=False, blue=False, truncated=False, terminated=False) -> cgs.Step:
    """A hand-made transition (no world state: the caregiver reads ``info`` and the flags)."""
    return cgs.Step((), OBS, jnp.int32(coin.FORWARD), (), jnp.float32(0.0), jnp.bool_(terminated),
                    jnp.bool_(truncated), _info(goal, red, blue))


def _keys(n=N_KEYS, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def _over_keys(cg, step, n=N_KEYS, seed=0):
    """``(r_s [n], waive [n])`` of one step from a fresh memory, under n different keys."""
    def one(k):
        _, r, w = cg.reward(k, cg.init_state(k), step)
        return r, w
    r, w = jax.vmap(one)(_keys(n, seed))
    return np.asarray(r), np.asarray(w)


def _run(cg, steps, state=None, seed=0):
    """Feed a sequence of transitions; ``(state, [r_s], [waive])`` as Python numbers."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(steps) + 1)
    state = cg.init_state(keys[0]) if state is None else state
    rs, ws = [], []
    for k, st in zip(keys[1:], steps):
        state, r, w = cg.reward(k, state, st)
        assert r.dtype == jnp.float32 and r.shape == () and jnp.asarray(w).shape == ()
        rs.append(float(r))
        ws.append(bool(w))
    return state, rs, ws


# ---------------------------------------------------------------------------------------------
# Coin-world helpers

_coin_step = jax.jit(coin.step)
_two_coin_step = jax.jit(two_coin.step)
_goal_distance = coin.goal_distance  # eager on purpose: compiling the unrolled BFS costs seconds
_distances = coin.distances
EMPTY = coin.coin_params(n_walls=0)  # 7x7 room, 5x5 interior (x, y in 1..5), max_steps 20


def _empty_walls(width=7) -> np.ndarray:
    walls = np.zeros((width, width), bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    return walls


def _coin_state(goal, pos, direction, walls=None, t=0) -> coin.CoinState:
    walls = _empty_walls() if walls is None else walls
    return coin.CoinState(jnp.asarray(walls), jnp.asarray(goal, jnp.int32), jnp.asarray(pos, jnp.int32),
                          jnp.int32(direction), jnp.int32(t))


class CoinDriver:
    """Steps a coin world with chosen actions and hands each transition over as a Step."""

    def __init__(self, state, params=EMPTY, seed=1):
        self.state, self.params, self.key = state, params, jax.random.PRNGKey(seed)

    def act(self, action) -> cgs.Step:
        self.key, k = jax.random.split(self.key)
        obs = coin.observe(self.state, self.params)
        _, nxt, r_e, term, trunc, info = _coin_step(k, self.state, jnp.int32(action), self.params)
        step = cgs.Step(self.state, obs, jnp.int32(action), nxt, r_e, term, trunc, info)
        self.state = nxt
        return step

    def shortest_path_actions(self) -> list[int]:
        """Turns and forward moves along one shortest path to the goal (turning right until the
        cell ahead is one step nearer, then forward)."""
        d = np.asarray(_distances(self.state.walls, self.state.goal))
        pos, direction = np.asarray(self.state.pos), int(self.state.dir)
        assert np.isfinite(d[pos[0], pos[1]])
        actions = []
        while d[pos[0], pos[1]] > 0:
            turns = 0
            while True:
                ahead = pos + coin.DIR_VEC[direction]
                if d[ahead[0], ahead[1]] == d[pos[0], pos[1]] - 1:
                    break
                direction = (direction + 1) % 4
                turns += 1
                assert turns < 4
            actions += [coin.RIGHT] * turns + [coin.FORWARD]
            pos = ahead
        return actions


# ---------------------------------------------------------------------------------------------
# Imperfect

def test_imperfect_at_zero_is_the_papers_caregiver():
    perfect, paper = cgs.Imperfect(), cgs.GoalPraise(0.4, True)
    for goal in (True, False):
        st = _step(goal)
        _, r, w = perfect.reward(KEY, perfect.init_state(KEY), st)
        _, r0, w0 = paper.reward(KEY, paper.init_state(KEY), st)
        assert float(r) == float(r0) == pytest.approx(0.4 if goal else 0.0)
        assert bool(w) == bool(w0) == goal
        assert float(perfect.intended(st)) == pytest.approx(0.4 if goal else 0.0)
    # over many keys too, from a fresh memory (nothing random at zero)
    r, w = _over_keys(perfect, _step(True))
    assert np.all(r == np.float32(0.4)) and w.all()
    r, w = _over_keys(perfect, _step(False))
    assert np.all(r == 0.0) and not w.any()


def test_imperfect_memory_is_max_delay_zeros():
    owed = cgs.Imperfect().init_state(KEY)
    assert owed.shape == (cgs.MAX_DELAY,) and not np.asarray(owed).any()


def test_imperfect_noise():
    noisy = cgs.Imperfect(noise=0.2)
    r, _ = _over_keys(noisy, _step(False))
    assert abs(r.mean()) < 0.03 and 0.18 < r.std() < 0.22
    assert len(np.unique(r)) > N_KEYS // 2  # different keys, different values
    r_goal, w_goal = _over_keys(noisy, _step(True), seed=1)
    assert abs(r_goal.mean() - 0.4) < 0.03 and 0.18 < r_goal.std() < 0.22
    assert w_goal.all()  # noise does not stop the goal's praise being given on the goal step
    k1, k2 = _keys(2, seed=7)
    assert float(noisy.reward(k1, noisy.init_state(k1), _step(False))[1]) != float(
        noisy.reward(k2, noisy.init_state(k2), _step(False))[1])
    quiet, _ = _over_keys(cgs.Imperfect(noise=0.0), _step(False))
    assert np.all(quiet == 0.0)


def test_imperfect_omission():
    r, w = _over_keys(cgs.Imperfect(omission=1.0), _step(True))
    assert np.all(r == 0.0) and not w.any()
    r, w = _over_keys(cgs.Imperfect(omission=0.5), _step(True))
    paid = r > 0
    assert set(np.round(r, 6)) == {0.0, np.float32(0.4).round(6)}
    assert 0.45 < paid.mean() < 0.55
    np.testing.assert_array_equal(w, paid)  # waived exactly when the goal is praised on the spot
    for q in (0.5, 1.0):
        r, w = _over_keys(cgs.Imperfect(omission=q), _step(False))
        assert np.all(r == 0.0) and not w.any()  # omission never creates praise
    assert float(cgs.Imperfect(omission=1.0).intended(_step(True))) == pytest.approx(0.4)


def test_imperfect_false_praise():
    r, w = _over_keys(cgs.Imperfect(false_praise=1.0), _step(False))
    assert np.all(r == np.float32(0.4)) and not w.any()  # a non-goal step has no goal cost to waive
    r, _ = _over_keys(cgs.Imperfect(false_praise=0.1), _step(False))
    assert set(np.unique(r)) <= {0.0, np.float32(0.4)}
    assert 0.075 < (r > 0).mean() < 0.125
    for f in (0.1, 1.0):
        r, w = _over_keys(cgs.Imperfect(false_praise=f), _step(True))
        assert np.all(r == np.float32(0.4)) and w.all()  # the goal is paid once, not twice
    assert float(cgs.Imperfect(false_praise=1.0).intended(_step(False))) == 0.0


def test_imperfect_delay_pays_late_across_a_layout_redraw():
    """A goal reached in a real coin world: the layout is redrawn at once, the praise arrives two
    steps later, on a turn in the new layout."""
    late = cgs.Imperfect(delay=2)
    drv = CoinDriver(_coin_state(goal=(3, 3), pos=(2, 3), direction=0))  # the coin right in front
    steps = [drv.act(coin.FORWARD), drv.act(coin.LEFT), drv.act(coin.LEFT), drv.act(coin.LEFT)]
    assert bool(steps[0].info["goal_reached"])
    assert not any(bool(s.info["goal_reached"]) for s in steps[1:])
    redrawn = steps[0].next_state
    assert not (np.array_equal(redrawn.goal, [3, 3]) and np.array_equal(redrawn.pos, [3, 3]))
    assert np.array_equal(np.asarray(steps[2].state.goal), np.asarray(redrawn.goal))  # still the new layout
    _, rs, ws = _run(late, steps)
    assert rs == pytest.approx([0.0, 0.0, 0.4, 0.0])
    assert ws == [False, False, False, False]  # late praise waives nothing
    # intended does not move with the delay: the goal step is what is meant
    assert [float(late.intended(s)) for s in steps] == pytest.approx([0.4, 0.0, 0.0, 0.0])


def test_imperfect_delay_zero_pays_at_once_and_waives():
    drv = CoinDriver(_coin_state(goal=(3, 3), pos=(2, 3), direction=0))
    _, rs, ws = _run(cgs.Imperfect(delay=0), [drv.act(coin.FORWARD), drv.act(coin.LEFT)])
    assert rs == pytest.approx([0.4, 0.0]) and ws == [True, False]


def test_imperfect_delay_one_two_goals_in_a_row():
    _, rs, ws = _run(cgs.Imperfect(delay=1), [_step(True), _step(True), _step(False), _step(False)])
    assert rs == pytest.approx([0.0, 0.4, 0.4, 0.0]) and not any(ws)
    _, rs, _ = _run(cgs.Imperfect(delay=2), [_step(True), _step(True), _step(False), _step(False), _step(False)])
    assert rs == pytest.approx([0.0, 0.0, 0.4, 0.4, 0.0])


def test_imperfect_delay_praise_owed_at_truncation_is_lost():
    late = cgs.Imperfect(delay=2)
    # A real coin world at step 18 of 20: the goal on step 19, truncation on step 20.
    assert int(EMPTY.max_steps) == 20
    drv = CoinDriver(_coin_state(goal=(3, 3), pos=(2, 3), direction=0, t=18))
    goal_step, last = drv.act(coin.FORWARD), drv.act(coin.LEFT)
    assert bool(goal_step.info["goal_reached"]) and not bool(goal_step.truncated) and bool(last.truncated)
    owed, rs, ws = _run(late, [goal_step, last])
    assert rs == pytest.approx([0.0, 0.0]) and ws == [False, False]
    assert not np.asarray(owed).any()  # the memory is empty for the next episode
    # the next episode's first steps pay nothing
    _, fresh = coin.reset(jax.random.PRNGKey(5), EMPTY)
    drv.state = fresh
    _, rs, _ = _run(late, [drv.act(coin.LEFT) for _ in range(4)], state=owed)
    assert rs == pytest.approx([0.0] * 4)
    # the same with hand-made steps: truncated one step after the goal
    _, rs, ws = _run(late, [_step(True), _step(False, truncated=True), _step(False), _step(False), _step(False)])
    assert rs == pytest.approx([0.0] * 5) and not any(ws)
    # terminated ends the episode too
    _, rs, _ = _run(late, [_step(True), _step(False, terminated=True), _step(False), _step(False)])
    assert rs == pytest.approx([0.0] * 4)
    # praise that falls due on the last step itself is paid on it
    _, rs, _ = _run(late, [_step(True), _step(False), _step(False, truncated=True), _step(False)])
    assert rs == pytest.approx([0.0, 0.0, 0.4, 0.0])


def test_imperfect_batched_arms_ride_one_vmap():
    """Imperfect caregivers with different delays stack as arrays (``as_arrays``) into one batch."""
    arms = [cgs.as_arrays(cgs.Imperfect(delay=d)) for d in (0, 1, 3)]
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *arms)
    keys = _keys(3)
    state = jax.vmap(lambda c, k: c.init_state(k))(batch, keys)
    paid = []
    for st in [_step(True), _step(False), _step(False), _step(False), _step(False)]:
        state, r, _ = jax.vmap(lambda c, k, s: c.reward(k, s, st))(batch, keys, state)
        paid.append(np.asarray(r))
    np.testing.assert_allclose(np.stack(paid).T, [[0.4, 0, 0, 0, 0], [0, 0.4, 0, 0, 0], [0, 0, 0, 0.4, 0]],
                               atol=1e-7)


@pytest.mark.parametrize("field, kwargs", [
    ("noise", {"noise": -1.0}),
    ("noise", {"noise": -1e-9}),
    ("omission", {"omission": -0.1}),
    ("omission", {"omission": 1.5}),
    ("false_praise", {"false_praise": -0.01}),
    ("false_praise", {"false_praise": 2.0}),
    ("delay", {"delay": -1}),
    ("delay", {"delay": cgs.MAX_DELAY + 1}),
    ("delay", {"delay": 1.5}),
    ("delay", {"delay": 2.0}),
])
def test_imperfect_validate_rejects(field, kwargs):
    with pytest.raises(ValueError) as err:
        cgs.Imperfect(**kwargs).validate()
    msg = str(err.value)
    assert field in msg and "\n" not in msg
    with pytest.raises(ValueError, match=field):
        cgs.check(cgs.Imperfect(**kwargs))


def test_imperfect_validate_accepts_the_edges():
    for cg in (cgs.Imperfect(), cgs.Imperfect(noise=3.0, omission=1.0, false_praise=1.0, delay=cgs.MAX_DELAY),
               cgs.Imperfect(omission=0.0, false_praise=0.0, delay=0)):
        cg.validate()
        cgs.check(cg)
    with pytest.raises(ValueError, match="noise"):
        cgs.check(cgs.Imperfect(noise=-1.0))


def test_imperfect_longest_delay():
    late = cgs.Imperfect(delay=cgs.MAX_DELAY)
    _, rs, _ = _run(late, [_step(True)] + [_step(False)] * (cgs.MAX_DELAY + 1))
    expect = [0.0] * (cgs.MAX_DELAY + 2)
    expect[cgs.MAX_DELAY] = 0.4
    assert rs == pytest.approx(expect)


# ---------------------------------------------------------------------------------------------
# Feedback

SHAPING = cgs.Feedback(goal_reward=0.0, shaping=0.4, distance=coin.goal_distance)
CORRECTION = cgs.Feedback(goal_reward=0.0, correction=-0.1, distance=coin.goal_distance)
PRAISE = cgs.Feedback(distance=coin.goal_distance)  # goal_reward 0.4 only


def _straight_run():
    """Empty room, the goal 3 cells ahead of the agent: two turns on the spot, then 3 forward."""
    drv = CoinDriver(_coin_state(goal=(4, 3), pos=(1, 3), direction=0))
    assert float(_goal_distance(drv.state)) == 3.0
    steps = [drv.act(coin.LEFT), drv.act(coin.RIGHT)] + [drv.act(coin.FORWARD) for _ in range(3)]
    assert [bool(s.info["goal_reached"]) for s in steps] == [False] * 4 + [True]
    return drv, steps


def test_distances_in_an_empty_room_and_an_unreachable_goal():
    walls = _empty_walls()
    d = np.asarray(_distances(jnp.asarray(walls), jnp.asarray([4, 3])))
    assert d[4, 3] == 0 and d[1, 3] == 3 and d[1, 1] == 5 and d[5, 5] == 3
    assert np.isinf(d[walls]).all()
    walls[4, 5] = walls[5, 4] = True  # the corner (5, 5) is cut off
    d = np.asarray(_distances(jnp.asarray(walls), jnp.asarray([5, 5])))
    assert d[5, 5] == 0 and np.isinf(d[1, 1]) and np.isinf(d[3, 3])
    assert np.isinf(float(_goal_distance(_coin_state(goal=(5, 5), pos=(2, 3), direction=0, walls=walls))))


def test_feedback_shaping_pays_along_the_shortest_path():
    _, steps = _straight_run()
    state, rs, ws = _run(SHAPING, steps)
    assert rs == pytest.approx([0.0, 0.0, 0.4 / 3, 0.4 / 3, 0.4 / 3], abs=1e-6)
    assert sum(rs) == pytest.approx(0.4, abs=1e-6)
    assert not any(ws)  # no goal praise, nothing waived
    _, fresh = state
    assert bool(fresh)  # the goal redrew the layout: its D is measured afresh


def test_feedback_shaping_measures_the_next_layout_afresh():
    drv, steps = _straight_run()
    state, rs, _ = _run(SHAPING, steps)
    for seed in range(2):  # two more layouts, each walked along a shortest path
        d_new = float(_goal_distance(drv.state))
        assert np.isfinite(d_new) and d_new >= 1
        path = drv.shortest_path_actions()
        nxt = [drv.act(a) for a in path]
        assert bool(nxt[-1].info["goal_reached"]) and not any(bool(s.info["goal_reached"]) for s in nxt[:-1])
        state, rs, _ = _run(SHAPING, nxt, state=state, seed=seed + 1)
        assert float(state[0]) == d_new
        forward = [r for a, r in zip(path, rs) if a == coin.FORWARD]
        assert forward == pytest.approx([0.4 / d_new] * int(d_new), abs=1e-6)
        assert sum(rs) == pytest.approx(0.4, abs=1e-6)
        assert all(r == 0.0 for a, r in zip(path, rs) if a != coin.FORWARD)


def test_feedback_moving_away_pays_no_shaping_and_is_corrected():
    def away():
        drv = CoinDriver(_coin_state(goal=(4, 3), pos=(2, 3), direction=0))
        return [drv.act(coin.LEFT), drv.act(coin.LEFT), drv.act(coin.FORWARD)]  # (2,3) -> (1,3): 2 -> 3

    steps = away()
    assert float(_goal_distance(steps[2].next_state)) == 3.0
    _, rs, ws = _run(SHAPING, steps)
    assert rs == pytest.approx([0.0, 0.0, 0.0]) and not any(ws)
    _, rs, ws = _run(CORRECTION, steps)
    assert rs == pytest.approx([0.0, 0.0, -0.1]) and not any(ws)
    both = cgs.Feedback(goal_reward=0.0, shaping=0.4, correction=-0.1, distance=coin.goal_distance)
    _, rs, _ = _run(both, steps)
    assert rs == pytest.approx([0.0, 0.0, -0.1])
    # bumping into a wall neither shortens nor lengthens it
    drv = CoinDriver(_coin_state(goal=(4, 3), pos=(1, 3), direction=2))
    _, rs, _ = _run(both, [drv.act(coin.FORWARD)])
    assert rs == [0.0]


def test_feedback_correction_alone_pays_nothing_for_progress_and_never_waives():
    _, steps = _straight_run()
    _, rs, ws = _run(CORRECTION, steps)
    assert rs == pytest.approx([0.0] * 5) and not any(ws)


def test_feedback_praise_only_pays_and_waives_the_goal_step():
    _, steps = _straight_run()
    _, rs, ws = _run(PRAISE, steps)
    assert rs == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.4]) and ws == [False] * 4 + [True]
    nowaive = cgs.Feedback(waives_step_cost=False, distance=coin.goal_distance)
    _, rs, ws = _run(nowaive, steps)
    assert rs == pytest.approx([0.0] * 4 + [0.4]) and not any(ws)


def test_feedback_intended_is_the_value_on_goal_steps():
    _, steps = _straight_run()
    for cg in (SHAPING, CORRECTION, PRAISE):
        assert [float(cg.intended(s)) for s in steps] == pytest.approx([0.0] * 4 + [0.4])
    assert float(cgs.Feedback(value=1.0, distance=coin.goal_distance).intended(steps[-1])) == 1.0


def test_feedback_pays_no_shaping_or_correction_when_the_goal_is_unreachable():
    walls = _empty_walls()
    walls[4, 5] = walls[5, 4] = True  # the goal in the corner (5, 5), cut off
    drv = CoinDriver(_coin_state(goal=(5, 5), pos=(2, 3), direction=0, walls=walls))
    steps = [drv.act(coin.FORWARD), drv.act(coin.LEFT), drv.act(coin.LEFT), drv.act(coin.FORWARD),
             drv.act(coin.FORWARD)]
    assert not any(bool(s.info["goal_reached"]) for s in steps)
    assert np.array_equal(np.asarray(drv.state.pos), [1, 3])  # it did move: (2,3) -> (3,3) -> (2,3) -> (1,3)
    both = cgs.Feedback(goal_reward=0.4, shaping=0.4, correction=-0.1, distance=coin.goal_distance)
    for cg in (SHAPING, CORRECTION, both):
        _, rs, ws = _run(cg, steps)
        assert rs == [0.0] * 5 and not any(ws)
        assert all(np.isfinite(rs))


def test_feedback_after_truncation_measures_the_next_episode_afresh():
    # One step from the goal at D = 3 (the start of this layout), then the episode is cut.
    drv = CoinDriver(_coin_state(goal=(4, 3), pos=(1, 3), direction=0, t=18))
    steps = [drv.act(coin.FORWARD), drv.act(coin.FORWARD)]
    assert bool(steps[1].truncated)
    state, rs, _ = _run(SHAPING, steps)
    assert rs == pytest.approx([0.4 / 3, 0.4 / 3]) and bool(state[1])
    # a new episode: agent 2 cells from the goal; D = 2 now, so each step is worth 0.4 / 2
    drv.state = _coin_state(goal=(3, 2), pos=(1, 2), direction=0)
    _, rs, _ = _run(SHAPING, [drv.act(coin.FORWARD), drv.act(coin.FORWARD)], state=state)
    assert rs == pytest.approx([0.2, 0.2])


# ---------------------------------------------------------------------------------------------
# TwoCaregivers

TWO_EMPTY = two_coin.two_coin_params(n_walls=0)


def _two_coin_transition(coin_ahead: str) -> cgs.Step:
    """A real two-coin step forward onto the coin of that colour."""
    red, blue = ((3, 3), (5, 5)) if coin_ahead == "red" else ((5, 5), (3, 3))
    state = two_coin.layout_state(_empty_walls(), red, blue, (2, 3), 0)
    obs = two_coin.observe(state, TWO_EMPTY)
    _, nxt, r_e, term, trunc, info = _two_coin_step(jax.random.PRNGKey(3), state, jnp.int32(coin.FORWARD),
                                                    TWO_EMPTY)
    return cgs.Step(state, obs, jnp.int32(coin.FORWARD), nxt, r_e, term, trunc, info)


def test_two_coin_world_reports_which_coin():
    red = _two_coin_transition("red")
    assert bool(red.info["red_reached"]) and not bool(red.info["blue_reached"]) and bool(red.info["goal_reached"])
    blue = _two_coin_transition("blue")
    assert bool(blue.info["blue_reached"]) and not bool(blue.info["red_reached"])


def test_two_caregivers_a_and_b_on_real_transitions():
    red, blue = _two_coin_transition("red"), _two_coin_transition("blue")
    nothing = _step(False)
    a_only, b_only = cgs.TwoCaregivers(w=1.0), cgs.TwoCaregivers(w=0.0)
    for k in _keys(20):
        assert bool(a_only.init_state(k)) and not bool(b_only.init_state(k))
    for cg, want_red, want_blue in ((a_only, 0.4, 0.0), (b_only, 0.0, 0.4)):
        is_a = cg.init_state(KEY)
        s, r, w = cg.reward(KEY, is_a, red)
        assert float(r) == pytest.approx(want_red) and bool(w) == (want_red > 0) and bool(s) == bool(is_a)
        s, r, w = cg.reward(KEY, is_a, blue)
        assert float(r) == pytest.approx(want_blue) and bool(w) == (want_blue > 0)
        s, r, w = cg.reward(KEY, is_a, nothing)
        assert float(r) == 0.0 and not bool(w)
    # w = 1 (0): a new episode's caregiver is always A (B)
    for k in _keys(20, seed=3):
        assert bool(a_only.reward(k, jnp.bool_(False), _step(False, truncated=True))[0])
        assert not bool(b_only.reward(k, jnp.bool_(True), _step(False, truncated=True))[0])


def test_two_caregivers_drawn_per_episode():
    cg = cgs.TwoCaregivers(w=0.5)
    keys = _keys()
    drawn = np.asarray(jax.vmap(cg.init_state)(keys))
    assert drawn.dtype == bool and 0.45 < drawn.mean() < 0.55
    for is_a in (True, False):
        for st in (_step(False), _step(red=True), _step(blue=True), _two_coin_transition("red")):
            kept = np.asarray(jax.vmap(lambda k: cg.reward(k, jnp.bool_(is_a), st)[0])(keys))
            assert np.all(kept == is_a)  # within an episode, the caregiver stays
        for st in (_step(False, truncated=True), _step(False, terminated=True), _step(red=True, truncated=True)):
            new = np.asarray(jax.vmap(lambda k: cg.reward(k, jnp.bool_(is_a), st)[0])(keys))
            assert 0.45 < new.mean() < 0.55  # a new episode draws again, whoever was there
    # the step that ends the episode is still paid by the caregiver who was there
    _, r, _ = cg.reward(KEY, jnp.bool_(True), _step(red=True, truncated=True))
    assert float(r) == pytest.approx(0.4)
    _, r, _ = cg.reward(KEY, jnp.bool_(False), _step(red=True, truncated=True))
    assert float(r) == 0.0


def test_two_caregivers_over_a_sequence():
    cg = cgs.TwoCaregivers(w=0.5)
    seq = [_step(red=True), _step(False), _step(blue=True), _step(False, truncated=True)] * 50
    keys = _keys(len(seq), seed=11)
    is_a = cg.init_state(jax.random.PRNGKey(99))
    episodes = []
    for k, st in zip(keys, seq):
        before = bool(is_a)
        is_a, r, w = cg.reward(k, is_a, st)
        want = (0.4 if before else 0.0) if bool(st.info["red_reached"]) else (
            (0.0 if before else 0.4) if bool(st.info["blue_reached"]) else 0.0)
        assert float(r) == pytest.approx(want) and bool(w) == (want > 0)
        if not bool(st.truncated):
            assert bool(is_a) == before
        else:
            episodes.append(before)
    assert 0.25 < np.mean(episodes) < 0.75 and len(set(episodes)) == 2


def test_two_caregivers_opposed():
    opposed = cgs.TwoCaregivers(w=0.0, b_red=-0.4, b_blue=0.0)
    red, blue = _two_coin_transition("red"), _two_coin_transition("blue")
    _, r, w = opposed.reward(KEY, jnp.bool_(False), red)
    assert float(r) == pytest.approx(-0.4) and not bool(w)
    _, r, w = opposed.reward(KEY, jnp.bool_(False), blue)
    assert float(r) == 0.0 and not bool(w)
    _, r, w = opposed.reward(KEY, jnp.bool_(True), red)
    assert float(r) == pytest.approx(0.4) and bool(w)  # A still praises red


def test_two_caregivers_intended_is_the_weighted_mean():
    red, blue, nothing = _two_coin_transition("red"), _two_coin_transition("blue"), _step(False)
    for w in (0.0, 0.25, 0.5, 1.0):
        cg = cgs.TwoCaregivers(w=w)
        assert float(cg.intended(red)) == pytest.approx(w * 0.4)
        assert float(cg.intended(blue)) == pytest.approx((1 - w) * 0.4)
        assert float(cg.intended(nothing)) == 0.0
        opp = cgs.TwoCaregivers(w=w, b_red=-0.4, b_blue=0.0)
        assert float(opp.intended(red)) == pytest.approx(w * 0.4 - (1 - w) * 0.4)
        assert float(opp.intended(blue)) == 0.0


@pytest.mark.parametrize("w", [-0.1, 1.5, 2])
def test_two_caregivers_validate_rejects_w(w):
    with pytest.raises(ValueError) as err:
        cgs.TwoCaregivers(w=w).validate()
    msg = str(err.value)
    assert "\n" not in msg and " w " in msg
    with pytest.raises(ValueError):
        cgs.check(cgs.TwoCaregivers(w=w))


def test_two_caregivers_validate_accepts():
    for w in (0.0, 0.5, 1.0, 1):
        cgs.TwoCaregivers(w=w).validate()
        cgs.check(cgs.TwoCaregivers(w=w))


def test_open_caregivers_are_known_and_checked():
    known = cgs.known()
    assert known["imperfect"] is cgs.Imperfect and known["feedback"] is cgs.Feedback
    assert known["two_caregivers"] is cgs.TwoCaregivers
    for cg in (cgs.Imperfect(), cgs.Feedback(distance=coin.goal_distance), cgs.TwoCaregivers()):
        cgs.check(cg)
