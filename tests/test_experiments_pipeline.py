"""The pipeline (internalize.experiments.pipeline): arms socialized by different caregivers in
one batch, and the reward model's R_i computed only in the arms that use it (issue 13, item 7)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import dataclasses

import jax
import numpy as np
import pytest

from internalize import caregivers, phases
from internalize.config import PRESETS
from internalize.experiments import EXPERIMENTS, Arm, Budget, run_pipeline

TINY_PPO = dataclasses.replace(PRESETS["fast"].ppo, n_envs=4, n_steps=64, minibatch_size=128)
PRESET = dataclasses.replace(PRESETS["fast"], ppo=TINY_PPO, updates_per_chunk=4)


@pytest.fixture(scope="module")
def piped():
    exp = dataclasses.replace(
        EXPERIMENTS["unlearning"],
        arms=(Arm("oracle"), Arm("none"), Arm("isr"), Arm("isr", caregiver=caregivers.GoalPraise(0.0), label="silent"),
              # another class: caregivers of different classes ride one batch as switches
              Arm("isr", caregiver=caregivers.Imperfect(omission=1.0), label="never")))
    calls = []
    original = phases.autonomy

    def spy(learner, state, keys, spec, *args, **kwargs):
        calls.append({"tag": kwargs.get("tag"), "reward_model": learner.reward_model,
                      "isr_params": jax.tree.leaves(spec.isr_params), "runs": len(keys)})
        return original(learner, state, keys, spec, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(phases, "autonomy", spy)
        curves = run_pipeline(exp, PRESET, 2, Budget(1024, 512), root_seed=0)
    return exp, curves, calls


def test_r_i_is_computed_only_in_the_arms_that_use_it(piped):
    _, curves, calls = piped
    by_tag = {c["tag"]: c for c in calls}
    assert set(by_tag) == {"autonomy", "autonomy.rm"}
    plain, with_rm = by_tag["autonomy"], by_tag["autonomy.rm"]
    assert plain["reward_model"] is None and plain["isr_params"] == [] and plain["runs"] == 2 * 2  # oracle, none
    assert with_rm["reward_model"] is not None and with_rm["isr_params"] and with_rm["runs"] == 2 * 3  # isr arms
    out = curves["autonomy/isr_output"]  # [seeds, arms, updates], arms in declared order
    assert np.all(out[:, :2] == 0.0) and np.all(out[:, 2:] != 0.0)


def test_arms_socialized_by_different_caregivers_share_one_batch(piped):
    _, curves, _ = piped
    np.testing.assert_array_equal(curves["arms/caregiver"], [0, 0, 0, 1, 2])
    assert curves["socialize/goals_per_episode"].shape == (2, 3, 4)  # seeds x caregivers x updates
    assert curves["isr/pearson"].shape[:2] == (2, 3)
    target, mask = curves["isr/test_target"], curves["isr/test_mask"]  # [seeds, caregivers, T]
    assert np.all(target[:, 1][mask[:, 1]] == 0.0)  # the silent caregiver never praised
    assert np.all(target[:, 2][mask[:, 2]] == 0.0)  # nor did the one who misses every goal (another class)
    assert np.any(target[:, 0][mask[:, 0]] > 0.0)  # the paper's did
    # Same seed keys for both caregivers: the learners start alike, and they act alike until the
    # first praise (an update's rollout comes before its learning step).
    np.testing.assert_array_equal(curves["socialize/goals_per_episode"][:, 0, 0],
                                  curves["socialize/goals_per_episode"][:, 1, 0])


def test_interleave_is_seed_major():
    a = {"v": np.array([0, 10])}  # arm 0 for seeds 0, 1
    b = {"v": np.array([1, 11])}  # arm 1
    from internalize.experiments import pipeline

    out = pipeline._interleave([a, b])
    assert np.asarray(out["v"]).tolist() == [0, 1, 10, 11]


def test_caregivers_socialize_in_batches_as_even_as_possible():
    """Issue 14: many caregivers at full budget socialize ``caregivers_per_batch`` at a time
    (memory), in as few distinct batch sizes as can be (each size is a program to compile)."""
    from dataclasses import replace

    from internalize.experiments import EXPERIMENTS
    from internalize.experiments.pipeline import caregiver_batches

    noisy = EXPERIMENTS["noisy_caregiver"]
    assert caregiver_batches(noisy) == [[0, 1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]  # 13 caregivers, at most 5
    assert caregiver_batches(replace(noisy, caregivers_per_batch=None)) == [list(range(13))]
    assert caregiver_batches(EXPERIMENTS["two_caregivers"]) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert caregiver_batches(EXPERIMENTS["unlearning"]) == [[0]]


def test_socializing_caregivers_in_batches_changes_no_behaviour(piped):
    """The same run with one caregiver per socialization batch: every goal count is bitwise the
    same; losses, ISR fits and value maps agree to float rounding (batches of another size
    reduce in another order)."""
    exp, curves, _ = piped
    batched = run_pipeline(dataclasses.replace(exp, caregivers_per_batch=1), PRESET, 2, Budget(1024, 512), root_seed=0)
    assert_same_behaviour(batched, curves)


def test_socializing_seeds_in_batches_changes_no_behaviour(piped):
    """``socialize_gib`` (scale's memory cap): seeds socialize a few at a time, here inside
    caregiver batches of unequal sizes (2 and 1); every goal count is bitwise the same as all at
    once, the rest agrees to float rounding.

    (One seed a batch of one or two caregivers is two runs, padded to two for the two devices:
    the programs of the test above, loaded from the compilation cache, not compiled again.)"""
    from internalize.experiments.pipeline import caregiver_batches, seeds_per_batch

    exp, curves, _ = piped
    small = dataclasses.replace(exp, socialize_gib=1e-6, caregivers_per_batch=2)
    assert caregiver_batches(small) == [[0, 1], [2]]
    assert seeds_per_batch(small, PRESET, 2, Budget(1024, 512), 2) == 1
    assert seeds_per_batch(small, PRESET, 2, Budget(1024, 512), 1) == 1
    assert seeds_per_batch(exp, PRESET, 2, Budget(1024, 512), 3) == 2
    batched = run_pipeline(small, PRESET, 2, Budget(1024, 512), root_seed=0)
    assert_same_behaviour(batched, curves)


def assert_same_behaviour(got: dict, want: dict) -> None:
    """The same curves: goal and forward counts bitwise, the rest to float rounding."""
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        if k.endswith(("goals_per_episode", "forward_per_episode")):
            assert np.array_equal(got[k], v, equal_nan=True), k
        else:
            np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
