"""The PettingZoo adapter of the prosocial world (internalize.adapters.pettingzoo)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts)

import subprocess
import sys
import warnings

import numpy as np
import pytest

from internalize.worlds import prosocial as ps



from test_worlds_prosocial import LEFT, FORWARD, STAY, STEP_COST, SHARED, ref_view  # noqa: E402  (the world tests' references)

# ---------------------------------------------------------------------------------------------
# PettingZoo adapter


def assert_same(x, y):
    """Recursive equality of dicts / tuples / lists of arrays and python scalars."""
    assert type(x) is type(y)
    if isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            assert_same(x[k], y[k])
    elif isinstance(x, (tuple, list)):
        assert len(x) == len(y)
        for a, b in zip(x, y):
            assert_same(a, b)
    elif isinstance(x, np.ndarray):
        np.testing.assert_array_equal(x, y)
    else:
        assert x == y


@pytest.fixture(scope="module")
def pz():
    pytest.importorskip("pettingzoo")
    from internalize.adapters import pettingzoo as adapter
    return adapter


def test_adapter_passes_the_pettingzoo_api_tests(pz):
    from pettingzoo.test import parallel_api_test, parallel_seed_test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(pz.parallel_env(render_mode="rgb_array"), num_cycles=250)
        parallel_seed_test(pz.parallel_env, num_cycles=150)


def test_adapter_spaces_and_observations(pz):
    from gymnasium import spaces
    env = pz.parallel_env()
    assert env.possible_agents == ["learner", "partner"]
    assert env.metadata["name"] == "internalize_prosocial_v0" and env.metadata["is_parallelizable"]
    assert env.observation_space("learner") == spaces.Box(0, 255, (9, 9, 4), np.uint8)
    assert env.observation_space("partner") == spaces.Box(0, 255, (7, 7, 3), np.uint8)
    assert env.action_space("learner") == spaces.Discrete(5) == env.action_space("partner")
    obs, infos = env.reset(seed=11)
    assert set(obs) == set(infos) == {"learner", "partner"}
    for _ in range(5):
        ws = env.world_state
        np.testing.assert_array_equal(obs["learner"], ref_view(ws))  # the world test's reference view
        np.testing.assert_array_equal(obs["partner"], np.asarray(ps.encode_grid(ws)))
        np.testing.assert_array_equal(env.state(), obs["partner"])
        assert all(env.observation_space(a).contains(obs[a]) for a in obs)
        assert env.partner_action() == pz.scripted_partner_action(env) == int(ps.partner_policy(ws))
        obs, *_ = env.step({"learner": FORWARD, "partner": env.partner_action()})
    with pytest.raises(ValueError):
        env.step({"learner": 5, "partner": 0})


def test_adapter_seeded_reset_is_deterministic(pz):
    a, b = pz.parallel_env(), pz.parallel_env()
    rng = np.random.default_rng(0)
    actions = [{"learner": int(rng.integers(5)), "partner": int(rng.integers(5))} for _ in range(30)]
    for env in (a, b):
        env.reset(seed=123)
    trace = []
    for env in (a, b):
        obs, _ = env.reset(seed=7)
        out = [obs]
        for acts in actions:
            out.append(env.step(acts))
        trace.append(out)
    assert_same(trace[0], trace[1])
    first = [pz.parallel_env().reset(seed=s)[0]["partner"] for s in range(6)]
    assert any(not np.array_equal(first[0], f) for f in first[1:])  # the seed matters
    # Without a seed, resets continue the generator reseeded by the last seeded reset.
    a.reset(seed=5)
    b.reset(seed=5)
    np.testing.assert_array_equal(a.reset()[0]["learner"], b.reset()[0]["learner"])


def test_adapter_rewards_are_shared_on_partner_arrival(pz):
    env = pz.parallel_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    arrivals = 0
    for _ in range(20000):
        if not env.agents:
            env.reset()
        _, rewards, terminations, _, infos = env.step({"learner": int(rng.integers(5)),
                                                       "partner": pz.scripted_partner_action(env)})
        goal = infos["learner"]["goal_reached"]
        assert goal == infos["partner"]["goal_reached"]
        assert not any(terminations.values())
        shared = SHARED if goal else 0.0
        assert rewards["partner"] == pytest.approx(shared)
        cost = float(STEP_COST) if infos["learner"]["forward"] else 0.0
        assert rewards["learner"] == pytest.approx(shared - cost)
        assert isinstance(rewards["learner"], float) and isinstance(rewards["partner"], float)
        assert infos["learner"]["carrying"] == infos["partner"]["carrying"] == bool(env.world_state.carrying)
        if goal:  # a new layout: the partner back at its start, no ball in hand
            assert int(env.world_state.progress) == 0 and not infos["learner"]["carrying"]
        arrivals += goal
        if arrivals >= 2:
            break
    assert arrivals >= 2


def test_adapter_truncates_both_agents_at_100_steps(pz):
    env = pz.parallel_env()
    env.reset(seed=3)
    for k in range(1, 101):
        _, _, terminations, truncations, _ = env.step({"learner": LEFT, "partner": STAY})
        assert terminations == {"learner": False, "partner": False}
        assert truncations == {"learner": k == 100, "partner": k == 100}
        assert env.agents == ([] if k == 100 else ["learner", "partner"])
    with pytest.raises(RuntimeError):
        env.step({"learner": LEFT, "partner": STAY})


def test_adapter_render(pz):
    env = pz.parallel_env(render_mode="rgb_array")
    env.reset(seed=1)
    img = env.render()
    assert img.dtype == np.uint8 and img.shape == (7 * 24, 7 * 24, 3)
    env.step({"learner": LEFT, "partner": STAY})
    assert not np.array_equal(img, env.render())
    with pytest.raises(ValueError):
        pz.parallel_env(render_mode="human")
    quiet = pz.parallel_env()
    quiet.reset(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert quiet.render() is None


def test_importing_internalize_does_not_import_pettingzoo():
    code = ("import internalize, internalize.worlds.prosocial, internalize.adapters, sys; "
            "assert 'pettingzoo' not in sys.modules, 'pettingzoo imported'; "
            "assert 'internalize.adapters.pettingzoo' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
