"""Issue 16: reward learners behind one interface, side by side in one pipeline run.

One tiny run (module fixture, in this process) of arms that learn the caregiver's values four
ways (the ISR, a pessimistic ensemble, AIRL from demonstrations, behaviour cloning); the
interface, parametrized over every built-in learner; the ``reward_model`` setting; bad settings;
the experiment's analysis on made-up curves whose answers are known.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_experiments_pipeline import PRESET
from test_registry import cli

from internalize import reward_models
from internalize.config import ISRConfig
from internalize.experiments import EXPERIMENTS, Budget, run_pipeline
from internalize.experiments.spec import Arm

LEARNERS = ("isr", "isr_ensemble", "preference", "irl", "bc")


@pytest.fixture(scope="module")
def side_by_side():
    # (two seeds, these budgets and the tiny preset of test_experiments_pipeline)
    exp = dataclasses.replace(
        EXPERIMENTS["unlearning"],
        arms=(Arm("isr"), Arm("isr", label="irl", reward_model="irl"), Arm("none", label="bc", reward_model="bc")),
        trace=False)
    return run_pipeline(exp, PRESET, 2, Budget(1024, 512), root_seed=0)


def test_arms_learn_with_their_own_models_in_one_run(side_by_side):
    c = side_by_side
    assert c["autonomy/goals_per_episode"].shape[:2] == (2, 3)
    internal = c["autonomy/internal_return"]
    assert np.isfinite(internal).all()
    # R_i where the condition uses a model (the ISR, AIRL's g); bc's autonomy has none
    assert (internal[:, 2] == 0).all() and (np.abs(internal[:, :2]) > 0).any(axis=(0, 2)).all()
    # the held-out r of each praise model's fit; NaN where the model learned from demonstrations
    pear = c["arms/isr_pearson"]
    assert pear.shape == (2, 3) and np.isnan(pear[:, 1:]).all() and np.isfinite(pear[:, 0]).any()
    # a value map of each arm's R_i: the ISR's, AIRL's g, and bc's reward of zero
    maps = c["valuemap/arm_pred"]
    assert maps.shape[:2] == (2, 3) and np.isfinite(maps[:, :2]).any() and (maps[:, 2][np.isfinite(maps[:, 2])] == 0).all()
    # the demonstration arms report how they learned: the generator's goals and the discriminator
    # (irl), the clone's held-out accuracy (bc)
    assert c["demonstrate/1/disc_loss"].shape[0] == 2 and "demonstrate/1/goals_per_episode" in c
    assert 0 <= c["demonstrate/2/bc_accuracy"].min() <= c["demonstrate/2/bc_accuracy"].max() <= 1
    # the ISR arm is socialized by praise as ever: its curves are the unlearning experiment's
    assert c["isr/pearson"].shape[0] == 2 and c["socialize/goals_per_episode"].shape[0] == 2


@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_has_the_same_interface(name):
    model = reward_models.known()[name]
    assert model.name == name
    model.validate()
    assert tuple(model.needs) in (reward_models.DATA, reward_models.DEMONSTRATIONS)
    cfg = ISRConfig(batch_size=8, epochs=1.0, network="mlp", hidden=(8,))
    from internalize.worlds import CoinWorld

    world = CoinWorld(n_walls=1)
    bound = reward_models.bind(model, cfg, world.env, world.params(), n_envs=4)
    params = bound.init(jax.random.PRNGKey(0))
    obs = jnp.zeros((6,) + bound.spec.obs_shape, jnp.uint8)
    r = bound.reward(params, obs, jnp.zeros((6, 1), jnp.int32))
    assert r.shape == (6,) and r.dtype == jnp.float32 and np.isfinite(np.asarray(r)).all()
    if tuple(model.needs) == reward_models.DATA:
        # The fit's signature and what it returns, traced (not compiled: each learner's own tests
        # run their fits, on problems whose answers are known).
        n = 2000
        data = (jax.ShapeDtypeStruct((n,) + bound.spec.obs_shape, jnp.uint8), jax.ShapeDtypeStruct((n, 1), jnp.int32),
                jax.ShapeDtypeStruct((n,), jnp.float32))
        fit = jax.eval_shape(bound.fit, jax.random.PRNGKey(2), data, jnp.int32(n), params)
        assert isinstance(fit, reward_models.Fit)
        assert fit.test_mse.shape == fit.train_loss.shape == fit.samples_seen.shape == (reward_models.N_EVALS,)
        assert fit.test_pred.shape == fit.test_target.shape == fit.test_mask.shape and fit.test_pred.ndim == 1
        assert jax.tree.structure(fit.params) == jax.tree.structure(params)  # what reward reads


@pytest.mark.parametrize("args, message", [
    (["config", "unlearning", "--reward-model", "oracle_of_delphi"], "unknown reward model 'oracle_of_delphi'"),
    (["config", "unlearning", "--reward-model", "isr_ensemble", "--learners.isr_ensemble.k", "0"],
     "learners.isr_ensemble.k"),
    (["config", "unlearning", "--learners.preference.segment", "0"], "learners.preference.segment"),
    (["run", "reward_learners", "--learners.isr_ensemble.beta", "-1"], "learners.isr_ensemble.beta"),
])
def test_bad_learner_settings_exit_2_with_one_line(tmp_path, args, message):
    out = tmp_path / "results"
    done = cli(*args, *(["--results", str(out)] if args[0] == "run" else []))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_the_reward_model_is_a_setting_with_its_own_settings_documented():
    done = cli("config", "unlearning", "--reward-model", "preference", "--learners.preference.segment", "10")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert 'reward_model = "preference"' in text
    assert "[learners.preference]" in text and "segment = 10" in text
    assert "[learners.isr_ensemble]" in text and "beta = " in text
    # every learner setting carries its description
    block = text[text.index("[learners.isr_ensemble]"):]
    assert block.splitlines()[1].startswith("# ")


def _curves(values: dict[str, dict[str, float]], seeds: int = 10, updates: int = 20, noise: float = 0.01):
    """Curves of the experiment's two variants whose end values are ``values[test][learner]``."""
    from internalize.experiments.reward_learners import HACK_SUFFIX, VARIANTS

    rng = np.random.default_rng(0)
    c = {}
    for v in VARIANTS:
        names = [a.name for a in v.arms]
        goals = np.zeros((seeds, len(names), updates))
        internal = np.zeros_like(goals)
        ret = np.zeros((seeds, len(names), 1, 5))
        for i, n in enumerate(names):
            base = n[:-len(HACK_SUFFIX)] if n.endswith(HACK_SUFFIX) else n
            if v.label == "walls3" and n.endswith(HACK_SUFFIX):
                goals[:, i] = 1.0
                internal[:, i] = 0.4 + values["hacking"][base] + rng.normal(0, noise, (seeds, 1))
            elif v.label == "walls3":
                goals[:, i] = values["persistence"][base] + rng.normal(0, noise, (seeds, 1))
            else:
                ret[:, i] = values["generalization"][base] + rng.normal(0, noise, (seeds, 1, 1))
        c[f"variant/{v.label}/autonomy/goals_per_episode"] = goals
        c[f"variant/{v.label}/autonomy/internal_return"] = internal
        c[f"variant/{v.label}/eval/return"] = ret
    return c


def test_the_claims_follow_the_measured_values():
    from internalize.experiments.reward_learners import analyze

    base = {"isr": 1.0, "isr_ensemble_b0": 1.0, "isr_ensemble_b1": 1.0, "preference": 1.0, "irl": 1.0, "bc": 1.0}
    good = {"persistence": dict(base), "generalization": {**base, "bc": 0.2},
            "hacking": {**base, "isr": 2.0, "isr_ensemble_b1": 0.5}}
    claims, per_seed = analyze(_curves(good), {"arms": []})
    got = {c.id: c.holds for c in claims}
    assert got == {"pessimism_resists_hacking": True, "preferences_internalize": True,
                   "demonstrations_generalize": True, "values_beat_imitation": True}
    bad = {"persistence": {**base, "preference": 0.3}, "generalization": {**base, "irl": 0.3, "bc": 1.5},
           "hacking": {**base, "isr": 0.5, "isr_ensemble_b1": 2.0}}
    claims, _ = analyze(_curves(bad), {"arms": []})
    assert not any(c.holds for c in claims)
    assert set(per_seed["persistence"]) == set(base) and len(per_seed["hacking"]["isr"]) == 10
