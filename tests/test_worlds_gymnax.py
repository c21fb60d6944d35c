"""Tests of bringing your own world (internalize.worlds.gymnax, examples/cartpole_centre.py).

The adapter is checked on gymnax's CartPole against the environment's own physics: what resets
and steps return, terminated kept apart from truncated, the learner's auto reset, and the
caregiver function's R_s reaching the learner only as far as the caregiver is present. One tiny
end-to-end run of the example's experiment (socialize -> ISR -> oracle / none / isr, with its
own presence schedules) checks the pipeline, its files and the schedules; the example's
analysis is checked on synthetic curves whose answer is known.
"""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gymnax = pytest.importorskip("gymnax")

from internalize import env as env_  # noqa: E402
from internalize import experiments, networks, presence, results  # noqa: E402
from internalize import learner as L  # noqa: E402
from internalize.worlds.gymnax import GymnaxWorld, Transition, from_gymnax  # noqa: E402
from internalize.config import PRESETS, PresenceSpec, to_dict  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("cartpole_centre", ROOT / "examples" / "cartpole_centre.py")
example = sys.modules.setdefault("cartpole_centre", importlib.util.module_from_spec(_spec))
if not hasattr(example, "experiment"):
    _spec.loader.exec_module(example)

CARTPOLE, CP_PARAMS = gymnax.make("CartPole-v1")
KEY = jax.random.PRNGKey(0)
PAY = 0.25  # a caregiver that pays the same on every step, so sums are exact


def pay_always(t: Transition):
    return jnp.float32(PAY) + 0.0 * t.reward


def near_centre(t: Transition):
    return jnp.where(jnp.abs(t.next_state.x) < 0.5, 1.0, 0.0)


@pytest.fixture(scope="module")
def cp():
    return from_gymnax(CARTPOLE, CP_PARAMS, caregiver=near_centre)


@pytest.fixture(scope="module")
def step(cp):
    return jax.jit(cp.env.step)


def _state(**kw):
    """A CartPole state at rest at the centre, with the fields in ``kw`` changed."""
    z = jnp.float32(0.0)
    st = gymnax.environments.classic_control.cartpole.EnvState(x=z, x_dot=z, theta=z, theta_dot=z, time=jnp.int32(0))
    return st.replace(**{k: jnp.asarray(v, jnp.int32 if k == "time" else jnp.float32) for k, v in kw.items()})


# ---------------------------------------------------------------------------------------------
# The adapter


def test_import_internalize_does_not_import_gymnax():
    code = "import sys, internalize; assert 'gymnax' not in sys.modules, 'gymnax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reset_and_step_shapes(cp, step):
    env, p = cp.env, cp.params()
    assert env.n_actions == 2 and env.obs_shape(p) == (1, 1, 4)
    obs, st = env.reset(KEY, p)
    assert obs.shape == (1, 1, 4) and obs.dtype == jnp.float32
    # The observation is gymnax's own, seen as one cell with 4 channels.
    own, _ = CARTPOLE.reset_env(KEY, CP_PARAMS)
    np.testing.assert_array_equal(np.asarray(obs).ravel(), np.asarray(own))
    assert np.all(np.abs(np.asarray(obs)) <= 0.05)
    obs2, st2, r, term, trunc, info = step(KEY, st, jnp.int32(1), p)
    assert obs2.shape == (1, 1, 4) and r.shape == () and r.dtype == jnp.float32
    assert term.dtype == jnp.bool_ and trunc.dtype == jnp.bool_
    assert float(r) == 1.0 and not bool(term) and not bool(trunc)
    assert float(st2.x_dot) > float(st.x_dot)  # action 1 pushes right
    assert set(info) >= {"social_reward", "goal_reached"}
    assert float(info["social_reward"]) == 1.0 and bool(info["goal_reached"])
    assert np.asarray(env.features(obs2[None])).shape == (1, 4)


def test_terminated_and_truncated_are_kept_apart(cp, step):
    p = cp.params()
    # The cart runs off the track: terminated, not truncated.
    _, _, _, term, trunc, info = step(KEY, _state(x=2.39, x_dot=2.0), jnp.int32(1), p)
    assert bool(term) and not bool(trunc)
    assert float(info["social_reward"]) == 0.0 and not bool(info["goal_reached"])
    # The time limit with the pole up: truncated, not terminated.
    _, st, _, term, trunc, _ = step(KEY, _state(time=499), jnp.int32(0), p)
    assert int(st.time) == 500 and bool(trunc) and not bool(term)
    # A shorter time limit is honoured, and recorded for the learner's per-episode metrics.
    short = from_gymnax(CARTPOLE, CP_PARAMS, caregiver=near_centre, max_steps=10)
    assert int(short.params().max_steps) == 10 and short.max_steps == 10
    _, _, _, term, trunc, _ = jax.jit(short.env.step)(KEY, _state(time=9), jnp.int32(0), short.params())
    assert bool(trunc) and not bool(term)


def test_auto_reset_starts_a_new_episode_and_keeps_the_final_obs(cp):
    p = cp.params()
    fn = jax.jit(lambda k, s, a: env_.auto_reset_step(cp.env, k, s, a, p))
    obs, st, _, term, trunc, info = fn(KEY, _state(x=2.39, x_dot=2.0), jnp.int32(1))
    assert bool(term) and not bool(trunc)
    assert float(np.asarray(info["final_obs"]).ravel()[0]) > 2.4  # where the step ended
    assert np.all(np.abs(np.asarray(obs)) <= 0.05) and int(st.time) == 0  # a fresh episode
    obs, st, _, term, trunc, info = fn(KEY, _state(time=499, x=0.3), jnp.int32(0))
    assert bool(trunc) and int(st.time) == 0
    assert abs(float(np.asarray(info["final_obs"]).ravel()[0]) - 0.3) < 0.01


def test_caregiver_sees_the_transition_and_features_see_the_own_shape():
    seen = {}

    def spy(t: Transition):
        seen.update(t._asdict())
        return jnp.float32(0.5)

    def feats(obs):
        seen["features_shape"] = obs.shape
        return obs * 2.0

    w = from_gymnax(CARTPOLE, CP_PARAMS, caregiver=spy, features=feats, name="cp")
    out = w.env.step(KEY, _state(x=0.1), jnp.int32(0), w.params())
    assert float(seen["state"].x) == pytest.approx(0.1) and float(seen["next_state"].x) == pytest.approx(0.1)
    assert int(seen["action"]) == 0 and seen["next_obs"].shape == (4,) and float(seen["reward"]) == 1.0
    assert seen["params"] is CP_PARAMS or seen["params"] == CP_PARAMS
    assert float(out[5]["social_reward"]) == 0.5
    f = w.env.features(jnp.ones((3, 1, 1, 4)))
    assert seen["features_shape"] == (3, 4) and f.shape == (3, 4) and float(f[0, 0]) == 2.0
    with pytest.raises(ValueError, match="one number"):
        bad = from_gymnax(CARTPOLE, CP_PARAMS, caregiver=lambda t: jnp.zeros(2))
        bad.env.step(KEY, _state(), jnp.int32(0), bad.params())


def test_world_is_recorded_as_plain_numbers(cp):
    rec = json.loads(json.dumps(to_dict(cp)))
    assert rec["name"] == "CartPole-v1" and rec["max_steps"] == 500
    assert rec["env_params"]["x_threshold"] == pytest.approx(2.4)
    assert rec["caregiver_fn"].endswith("near_centre")
    with pytest.raises(TypeError, match="from_gymnax"):
        dataclasses.replace(cp, name="other")
    longer = cp.with_env_params(CP_PARAMS.replace(length=1.0, max_steps_in_episode=200))
    assert isinstance(longer, GymnaxWorld) and longer.max_steps == 200 and longer.env is cp.env
    assert float(longer.params().env_params.length) == 1.0 and longer != cp


def test_conv_networks_refuse_one_cell_observations():
    with pytest.raises(ValueError, match="mlp"):
        networks.actor_critic("paper_cnn", 2, (8,)).init(KEY, jnp.zeros((1, 1, 1, 4)))
    with pytest.raises(ValueError, match="mlp"):
        networks.ISRNetwork().init(KEY, jnp.zeros((1, 1, 1, 6)))


def test_social_reward_reaches_the_learner_only_as_far_as_the_caregiver_is_present():
    w = from_gymnax(CARTPOLE, CP_PARAMS, caregiver=pay_always, max_steps=20)
    cfg = dataclasses.replace(PRESETS["fast"].ppo, n_envs=4, n_steps=30, minibatch_size=60)
    learner = L.Learner(cfg, w.env)
    blank = {"params": {}}
    update = jax.jit(learner.update)
    state = learner.init(KEY, w.params())
    per_episode = cfg.batch_size / 20
    for sched, p in ((presence.present(), 1.0), (presence.absent(), 0.0), (presence.schedule(0.5), 0.5)):
        spec = L.RunSpec(w.params(), w.caregiver(), sched, jnp.float32(0.0), blank)
        _, m, traj = update(state, spec)
        np.testing.assert_allclose(np.asarray(traj.r_s), PAY)  # the caregiver function's R_s, every step
        np.testing.assert_allclose(np.asarray(traj.presence), p)
        r_e = float(np.asarray(traj.r_e).sum()) / per_episode
        # Utility = R_e + P R_s: nothing of R_s when the caregiver is absent.
        assert float(m["utility_return"]) == pytest.approx(r_e + p * PAY * 20, rel=1e-5)
        assert float(m["true_return"]) == pytest.approx(r_e + PAY * 20, rel=1e-5)
        assert float(m["goals_per_episode"]) == pytest.approx(20.0)  # every step praised
    assert bool(np.asarray(traj.terminated).any() or np.asarray(traj.truncated).any())


# ---------------------------------------------------------------------------------------------
# End to end: the example's experiment, tiny, with its own presence schedules


def test_pipeline_on_cartpole_end_to_end(tmp_path):
    exp = dataclasses.replace(
        example.experiment(budget=experiments.Budget(2048, 2048)),
        socialize_presence=PresenceSpec(0.5, 0.5),  # the caregiver is there half the time...
        leave_presence=PresenceSpec(1.0, 0.0, horizon=1024, mode="expected"))  # ...and fades out in autonomy
    preset = dataclasses.replace(PRESETS["fast"], ppo=dataclasses.replace(
        PRESETS["fast"].ppo, n_envs=8, n_steps=64, minibatch_size=256), updates_per_chunk=4)
    summary = experiments.run(exp, preset, 2, tmp_path)
    folder = Path(summary["folder"])
    assert (folder / "cartpole_centre.png").stat().st_size > 0 and (folder / "summary.json").is_file()
    curves = results.read_npz(folder / "curves.npz")
    soc, aut = curves["socialize/goals_per_episode"], curves["autonomy/goals_per_episode"]
    assert soc.shape == (2, 4) and aut.shape == (2, 3, 4)
    for k, v in curves.items():
        if k.startswith(("socialize/", "autonomy/", "isr/train_loss", "isr/test_mse")):
            assert np.all(np.isfinite(v)), k
    # The presence schedules were followed: P = 0.5 in socialization; in autonomy oracle stays,
    # none and isr fade from 1 to 0 over the first 1,024 steps of the phase (8 environments x
    # 128 steps: two updates of 64).
    np.testing.assert_allclose(curves["socialize/presence"], 0.5)
    assert np.all(curves["autonomy/presence"][:, 0] == 1.0)
    fading = curves["autonomy/presence"][:, 1:]
    assert np.all(fading[..., 0] > 0.6) and np.all(fading[..., 2:] == 0.0)
    # The ISR was fitted on the caregiver's praise (targets 0 or 1), and only isr gets R_i.
    target = curves["isr/test_target"][curves["isr/test_mask"]]
    assert set(np.unique(target)) <= {0.0, 1.0} and target.max() == 1.0
    assert np.all(curves["autonomy/isr_output"][:, :2] == 0.0)
    assert np.any(curves["autonomy/isr_output"][:, 2] != 0.0)
    # The stored summary holds the example's claims and numbers.
    assert [c["id"] for c in summary["claims"]] == ["none_drifts", "isr_holds"]
    assert set(summary["per_seed"]["end_of_autonomy_near_centre"]) == {"oracle", "none", "isr"}
    assert "end of autonomy, isr" in example.describe(summary)


# ---------------------------------------------------------------------------------------------
# The example's analysis, on synthetic curves


def _synthetic(none_end: float, isr_end: float, seeds: int = 6, max_steps: int = 500):
    rng = np.random.default_rng(0)
    u = 20
    soc = np.full((seeds, u), 0.95) + rng.normal(0, 0.01, (seeds, u))
    aut = np.stack([np.full((seeds, u), 1.0), np.linspace(0.95, none_end, u)[None].repeat(seeds, 0),
                    np.linspace(0.95, isr_end, u)[None].repeat(seeds, 0)], 1) + rng.normal(0, 0.02, (seeds, 3, u))
    curves = {"socialize/goals_per_episode": soc * max_steps, "autonomy/goals_per_episode": aut * max_steps,
              "env_steps/socialize": 2048 * np.arange(1, u + 1), "env_steps/autonomy": 2048 * np.arange(1, u + 1),
              "isr/test_mse": np.full((seeds, 1, 20), 1e-3)}
    config = {"settings": {"world.socialize.max_steps": max_steps}, "arms": ["oracle", "none", "isr"], "seeds": seeds}
    return curves, config


def test_example_analysis_on_synthetic_curves(tmp_path):
    curves, config = _synthetic(none_end=0.1, isr_end=0.95)
    claims, per_seed = example.analyze(curves, config)
    by = {c.id: c for c in claims}
    assert by["none_drifts"].holds and by["isr_holds"].holds and by["none_drifts"].p_value < 1e-6
    assert by["none_drifts"].value == pytest.approx(0.1, abs=0.03)  # the fraction itself, not praised steps
    assert per_seed["socialized_near_centre"] == pytest.approx(np.full(6, 0.95), abs=0.02)
    # No drift: neither claim holds.
    claims, _ = example.analyze(*_synthetic(none_end=0.95, isr_end=0.95))
    assert not any(c.holds for c in claims)
    # The ISR learner drifts too: isr does not hold, and none is not below it.
    claims, _ = example.analyze(*_synthetic(none_end=0.1, isr_end=0.1))
    assert not any(c.holds for c in claims)
    (path,) = example.plot(curves, config, tmp_path)
    assert path.stat().st_size > 0
