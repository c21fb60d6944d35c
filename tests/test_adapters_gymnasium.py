import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import collections
import subprocess
import sys

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from internalize.worlds import coin as world  # noqa: E402
from internalize.adapters import gymnasium as gym_adapter  # noqa: E402
from internalize.adapters.gymnasium import CaregiverWrapper, CoinEnv  # noqa: E402


def _layout(env):
    s = env.unwrapped.world_state
    return np.asarray(s.walls), np.asarray(s.goal), np.asarray(s.pos), int(s.dir)


def _goal_policy(env) -> int:
    """Shortest-path action from the world state: BFS distances to the goal over free cells."""
    walls, goal, pos, d = _layout(env)
    dist = np.full(walls.shape, np.inf)
    dist[tuple(goal)] = 0
    queue = collections.deque([tuple(goal)])
    while queue:
        x, y = queue.popleft()
        for dx, dy in world.DIR_VEC:
            n = (x + dx, y + dy)
            if not walls[n] and dist[n] == np.inf:
                dist[n] = dist[x, y] + 1
                queue.append(n)
    here = dist[tuple(pos)]
    assert np.isfinite(here), "goal unreachable"
    for k in (0, 1, 3, 2):  # straight first, then right, left, back (quarter turns clockwise)
        nd = (d + k) % 4
        n = tuple(pos + world.DIR_VEC[nd])
        if not walls[n] and dist[n] < here:
            return world.FORWARD if k == 0 else (world.LEFT if k == 3 else world.RIGHT)
    raise AssertionError("no step towards the goal")


def test_registered_ids():
    for env_id in ["internalize/Coin-v0"] + [f"internalize/Coin-{m}-v0" for m in world.NAMED_MAPS]:
        assert env_id in gymnasium.envs.registry
    gym_adapter.register()  # re-registering is a no-op, not an error


@pytest.mark.parametrize("env_id", ["internalize/Coin-v0", "internalize/Coin-4rooms-v0"])
def test_check_env(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (9, 9, 4), np.uint8)


def test_check_env_wrapped():
    env = CaregiverWrapper(gymnasium.make("internalize/Coin-v0", render_mode="rgb_array"), presence=0.5)
    with pytest.warns(UserWarning, match="different from the unwrapped"):
        check_env(env)


def test_make_kwargs_and_named_map():
    env = gymnasium.make("internalize/Coin-v0", n_walls=3)
    assert int(env.unwrapped.params.n_walls) == 3
    env = gymnasium.make("internalize/Coin-plus-v0")
    env.reset(seed=0)
    walls = _layout(env)[0]
    np.testing.assert_array_equal(walls, world.NAMED_MAPS["plus"])
    env = gymnasium.make("internalize/Coin-v0", size=4)
    assert env.observation_space.shape == (7, 7, 4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (7, 7, 4) and obs.dtype == np.uint8


def _episode(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        observations.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.stack(observations), np.array(rewards)


def test_seeding():
    actions = np.random.default_rng(1).integers(0, 3, 20)
    env = gymnasium.make("internalize/Coin-v0")
    o1, r1 = _episode(env, 7, actions)
    o2, r2 = _episode(gymnasium.make("internalize/Coin-v0"), 7, actions)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
    # Different seeds give different layouts.
    layouts = set()
    for seed in range(5):
        env.reset(seed=seed)
        walls, goal, pos, _ = _layout(env)
        layouts.add((walls.tobytes(), tuple(goal), tuple(pos)))
    assert len(layouts) == 5
    # Without a seed the generator continues (a new episode, not a repeat).
    env.reset(seed=3)
    first = _layout(env)
    env.reset()
    second = _layout(env)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def test_random_episode_truncates():
    env = gymnasium.make("internalize/Coin-v0")
    base = env.unwrapped
    rng = np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        n = 0
        while True:
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(0, 3)))
            n += 1
            t = int(base.world_state.t)
            assert t == n
            assert terminated is False  # the coin world never terminates
            assert truncated is (t >= base.max_steps)
            assert isinstance(info["goal_reached"], bool)
            assert isinstance(reward, float)
            assert obs.dtype == np.uint8 and obs.shape == (9, 9, 4)
            if truncated:
                break
        assert n == base.max_steps == 20
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(0)


def test_render():
    env = gymnasium.make("internalize/Coin-v0", render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (7 * 24, 7 * 24, 3)
    np.testing.assert_array_equal(img, world.render(env.unwrapped.world_state))


@pytest.mark.parametrize("p", [1.0, 0.0])
def test_caregiver_reward(p):
    seed = 0
    base = gymnasium.make("internalize/Coin-v0", n_walls=0)
    wrapped = CaregiverWrapper(gymnasium.make("internalize/Coin-v0", n_walls=0), presence=p)
    base.reset(seed=seed)
    _, info = wrapped.reset(seed=seed)  # same first episode: the key is drawn before presence
    assert info["caregiver_present"] is (p == 1.0)
    cost = base.unwrapped.step_cost
    goals = 0
    while True:
        a = _goal_policy(base)
        assert a == _goal_policy(wrapped)
        _, r_e, _, trunc_b, info_b = base.step(a)
        _, u, _, trunc_w, info_w = wrapped.step(a)
        assert trunc_b == trunc_w and info_b["goal_reached"] == info_w["goal_reached"]
        if info_w["goal_reached"]:
            goals += 1
            assert r_e == pytest.approx(-cost)  # the goal step is a forward move
            if p == 1.0:
                assert u == pytest.approx(0.4)  # +0.4, step cost waived
                assert info_w["social_reward"] == pytest.approx(0.4)
            else:
                assert u == r_e
                assert info_w["social_reward"] == 0.0
        else:
            assert u == r_e and info_w["social_reward"] == 0.0
        if trunc_w:
            break
    assert goals >= 1


def test_caregiver_presence_draw():
    env = CaregiverWrapper(CoinEnv(), presence=0.5)
    draws = [env.reset(seed=s)[1]["caregiver_present"] for s in range(40)]
    assert 0 < sum(draws) < 40
    assert draws == [env.reset(seed=s)[1]["caregiver_present"] for s in range(40)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown map 'nope'"):
        gymnasium.make("internalize/Coin-v0", map_name="nope")
    with pytest.raises(ValueError, match="presence must be a probability in \\[0, 1\\], got 1.5"):
        CaregiverWrapper(CoinEnv(), presence=1.5)
    with pytest.raises(ValueError, match="presence"):
        CaregiverWrapper(CoinEnv(), presence=float("nan"))
    with pytest.raises(ValueError, match="render_mode"):
        CoinEnv(render_mode="human")
    with pytest.raises(ValueError, match="invalid action"):
        env = CoinEnv()
        env.reset(seed=0)
        env.step(3)


def test_import_does_not_import_gymnasium():
    code = "import internalize, sys; assert 'gymnasium' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
