"""The fast adapters (issue 19): the single env stepped from layout tables gives the JAX world's
episodes for the same keys; the vector env steps N worlds in one compiled call with same-step
autoreset; Stable-Baselines3 trains through SB3VecEnv; PettingZoo's step matches the world."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import jax
import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.vector import AutoresetMode  # noqa: E402

from internalize import caregivers, presence  # noqa: E402
from internalize.adapters.gymnasium import CaregiverWrapper, CoinEnv, CoinVectorEnv  # noqa: E402
from internalize.worlds import coin as world  # noqa: E402

PARAMS = world.coin_params()
_reset = jax.jit(world.reset)
_step = jax.jit(world.step)
_demo = jax.jit(world.demonstrator_action)


def world_episode(key, actions_of, steps):
    """The JAX world's episode from a reset key, as the adapters split it; ``actions_of(state, t)``."""
    k_reset, key = jax.random.split(key)
    obs, state = _reset(k_reset, PARAMS)
    out = [(np.asarray(obs), None)]
    for t in range(steps):
        k_step, key = jax.random.split(key)
        a = actions_of(state, t)
        obs, state, r_e, term, trunc, info = _step(k_step, state, np.int32(a), PARAMS)
        out.append((np.asarray(obs), (a, float(r_e), bool(term), bool(trunc), bool(info["goal_reached"]),
                                      bool(info["forward"]))))
    return out


def seeking(epsilon):
    """A demonstrator that mostly walks to the goal: many steps reach it (and redraw the layout)."""
    keys = iter(jax.random.split(jax.random.PRNGKey(7), 10_000))
    return lambda state, t: int(_demo(next(keys), state, PARAMS, epsilon))


def test_the_single_env_gives_the_jax_worlds_episodes_for_the_same_key():
    env = CoinEnv()
    goals = 0
    for seed in range(6):
        obs, _ = env.reset(seed=seed)
        key = np.random.default_rng(seed).integers(0, 2 ** 32, size=(1, 2), dtype=np.uint32)[0]
        # The same actions in both: the demonstrator's, chosen on the JAX world's states.
        ref = world_episode(jax.numpy.asarray(key), seeking(0.2), env.max_steps)
        np.testing.assert_array_equal(obs, ref[0][0])
        for t, (ref_obs, (a, r_e, term, trunc, goal, fwd)) in enumerate(ref[1:]):
            obs, r, terminated, truncated, info = env.step(a)
            np.testing.assert_array_equal(obs, ref_obs, err_msg=f"seed {seed} step {t}")
            assert (np.float32(r), terminated, truncated, info["goal_reached"], info["forward"]) == \
                (np.float32(r_e), term, trunc, goal, fwd)
            goals += goal
    assert goals >= 10  # the layouts redrawn on the goal were compared too


def test_the_wrapped_env_pays_the_caregivers_utility_from_the_same_step():
    for p in (1.0, 0.0):
        env = CaregiverWrapper(CoinEnv(), goal_reward=0.7, presence=p)
        env.reset(seed=3)
        cg = caregivers.caregiver(goal_reward=0.7)
        seen = 0
        for _ in range(200):
            obs, reward, term, trunc, info = env.step(2 if seen % 3 else env.action_space.sample())
            g = {"goal_reached": np.bool_(info["goal_reached"])}
            r_e = -env.unwrapped.step_cost if info["forward"] else 0.0
            want = float(presence.utility(np.float32(r_e), caregivers.social_reward(cg, g), 0.0, p,
                                          caregivers.waived(cg, g)))
            assert reward == pytest.approx(want, abs=1e-6)
            assert info["social_reward"] == pytest.approx(0.7 * p * info["goal_reached"])
            seen += 1
            if term or trunc:
                env.reset()


def test_make_vec_gives_the_compiled_vector_env_with_same_step_autoreset():
    env = gymnasium.make_vec("internalize/Coin-v0", num_envs=3)
    assert isinstance(env, CoinVectorEnv) and env.num_envs == 3
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, 9, 9, 4) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    maps = gymnasium.make_vec("internalize/Coin-plus-v0", num_envs=2)
    maps.reset(seed=1)
    assert np.array_equal(maps.unwrapped.world_state(0).walls, world.NAMED_MAPS["plus"])
    with pytest.raises(ValueError, match="actions must be 3 integers"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="actions must be 3 integers"):
        env.step(np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="num_envs"):
        CoinVectorEnv(num_envs=0)


def test_one_vector_world_is_the_single_env_and_resets_in_the_same_step():
    """num_envs=1: the single env's episodes for the same seed, across two episodes; the step
    that ends an episode returns the next episode's first observation, the last in final_obs."""
    vec, single = CoinVectorEnv(num_envs=1), CoinEnv()
    v_obs, _ = vec.reset(seed=11)
    s_obs, _ = single.reset(seed=11)
    np.testing.assert_array_equal(v_obs[0], s_obs)
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(2 * single.max_steps):
        a = int(rng.integers(3))
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(np.array([a]))
        s_obs, s_r, s_term, s_trunc, s_info = single.step(a)
        assert (v_r[0], v_term[0], v_trunc[0], v_info["goal_reached"][0]) == \
            (np.float32(s_r), s_term, s_trunc, s_info["goal_reached"])
        if s_trunc:
            ended += 1
            assert v_info["_final_obs"][0] and v_info["_final_info"][0]
            np.testing.assert_array_equal(v_info["final_obs"][0], s_obs)
            assert v_info["final_info"]["goal_reached"][0] == s_info["goal_reached"]
            s_obs, _ = single.reset()  # the single env's generator gives the next key, as the vector env's does
        else:
            assert "final_obs" not in v_info
        np.testing.assert_array_equal(v_obs[0], s_obs)
    assert ended == 2


def test_many_vector_worlds_step_as_the_jax_world_with_a_caregiver():
    n = 8
    env = CoinVectorEnv(num_envs=n, presence=0.5, goal_reward=0.4)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    present_seen = set()
    for t in range(60):
        states = [env.world_state(i) for i in range(n)]
        present = env._present.copy()
        a = rng.integers(3, size=n)
        obs, r, term, trunc, info = env.step(a)
        for i in range(n):
            present_seen.add(bool(present[i]))
            g = {"goal_reached": np.bool_(info["goal_reached"][i])}
            cg = caregivers.caregiver(0.4)
            r_e = -float(PARAMS.step_cost) if a[i] == world.FORWARD else 0.0
            want = presence.utility(np.float32(r_e), caregivers.social_reward(cg, g), 0.0, float(present[i]),
                                    caregivers.waived(cg, g))
            assert r[i] == pytest.approx(float(want), abs=1e-6)
            moved = world.step_onto(world.draw_layout(jax.random.PRNGKey(0), PARAMS), states[i], a[i], PARAMS)
            if not info["goal_reached"][i] and not trunc[i]:
                np.testing.assert_array_equal(obs[i], np.asarray(moved[0]))
        assert trunc.all() == (t % 20 == 19) and not term.any()
    assert present_seen == {True, False}


def test_vector_worlds_redraw_the_jax_worlds_layouts_however_many_reach_the_goal_at_once():
    """Each world of a vector env is the JAX world's episode for the key it drew at reset, also
    when one, a few, or more than ``_FEW`` worlds reach the goal in the same step (the step draws
    layouts for the worlds that reach the goal alone, or for every world)."""
    from internalize.adapters import gymnasium as adapter

    n = 32
    env = CoinVectorEnv(num_envs=n)
    obs, _ = env.reset(seed=3)
    keys = np.random.default_rng(3).integers(0, 2 ** 32, size=(n, 2), dtype=np.uint32)
    refs = [world_episode(jax.numpy.asarray(k), seeking(0.0), env.params.max_steps.item()) for k in keys]
    np.testing.assert_array_equal(obs, np.stack([ref[0][0] for ref in refs]))
    hits_per_step = []
    for t in range(int(env.params.max_steps)):
        a = np.array([ref[t + 1][1][0] for ref in refs])
        obs, r, term, trunc, info = env.step(a)
        last = obs if t + 1 < int(env.params.max_steps) else np.stack(info["final_obs"])
        np.testing.assert_array_equal(last, np.stack([ref[t + 1][0] for ref in refs]), err_msg=f"step {t}")
        np.testing.assert_array_equal(info["goal_reached"], [ref[t + 1][1][4] for ref in refs])
        hits_per_step.append(int(info["goal_reached"].sum()))
    assert any(1 <= h <= adapter._FEW for h in hits_per_step) and any(h > adapter._FEW for h in hits_per_step), \
        hits_per_step


def test_stable_baselines3_trains_on_the_vector_env():
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import VecMonitor

    from internalize.adapters.sb3 import SB3VecEnv

    venv = VecMonitor(SB3VecEnv(gymnasium.make_vec("internalize/Coin-v0", num_envs=4, presence=1.0)))
    model = sb3.PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps >= 256
    obs = venv.reset()
    obs, rewards, dones, infos = venv.step(model.predict(obs, deterministic=True)[0])
    assert obs.shape == (4, 9, 9, 4) and rewards.shape == (4,) and len(infos) == 4
    for _ in range(19):
        obs, rewards, dones, infos = venv.step(model.predict(obs)[0])
    assert dones.all() and all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)
    assert all("episode" in i for i in infos)  # VecMonitor saw whole episodes


def test_the_pettingzoo_step_is_the_worlds_step():
    from internalize.adapters.pettingzoo import parallel_env
    from internalize.worlds import prosocial

    env = parallel_env()
    obs, _ = env.reset(seed=2)
    key = np.random.default_rng(2).integers(0, 2 ** 32, size=2, dtype=np.uint32)
    k_reset, key = jax.random.split(jax.numpy.asarray(key))
    w_obs, state = prosocial.reset(k_reset, env.params)
    np.testing.assert_array_equal(obs["learner"], np.asarray(w_obs))
    rng = np.random.default_rng(3)
    for t in range(60):
        a, b = int(rng.integers(5)), int(rng.integers(5))
        k_step, key = jax.random.split(key)
        w_obs, state, r, term, trunc, info = prosocial.step_agents(k_step, state, np.int32(a), np.int32(b), env.params)
        obs, rewards, terms, truncs, infos = env.step({"learner": a, "partner": b})
        np.testing.assert_array_equal(obs["learner"], np.asarray(w_obs))
        np.testing.assert_array_equal(obs["partner"], np.asarray(prosocial.encode_grid(state)))
        shared = 0.4 if bool(info["goal_reached"]) else 0.0
        assert rewards["learner"] == pytest.approx(float(r) + shared) and rewards["partner"] == shared
        assert infos["learner"]["carrying"] == bool(state.carrying)
        if truncs["learner"]:
            break


def test_importing_the_adapters_runs_jaxs_cpu_computations_inline_unless_told_or_too_late():
    """Importing the adapters turns JAX's CPU async dispatch off (their calls are waited for at
    once); ``INTERNALIZE_CPU_ASYNC_DISPATCH=1`` keeps it, and once JAX's backend has started the
    flag is left as it is (it would no longer apply). Each case in a fresh Python."""
    import os
    import subprocess
    import sys

    show = "import jax; print(jax.config.read('jax_cpu_enable_async_dispatch'))"
    cases = {"default": ("import internalize.adapters; " + show, {}),
             "kept": ("import internalize.adapters; " + show, {"INTERNALIZE_CPU_ASYNC_DISPATCH": "1"}),
             "late": ("import jax.numpy as jnp; jnp.ones(2).block_until_ready(); import internalize.adapters; "
                      + show, {})}
    env = {k: v for k, v in os.environ.items() if k != "INTERNALIZE_CPU_ASYNC_DISPATCH"}
    procs = {name: subprocess.Popen([sys.executable, "-c", code], env={**env, **extra, "JAX_PLATFORMS": "cpu"},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (code, extra) in cases.items()}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        out[name] = stdout.split()[-1]
    assert out == {"default": "False", "kept": "True", "late": "True"}
