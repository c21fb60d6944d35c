"""Tests of the benchmark's parts (internalize.bench): they measure what they say."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import sys

import pytest

from internalize import bench
from internalize.config import PRESETS


def test_training_throughput_counts_the_steps_of_every_batched_run():
    res = bench.training_throughput(PRESETS["fast"], seeds=3, updates=1, repeats=1)
    assert res["steps_per_repeat"] == 3 * PRESETS["fast"].ppo.batch_size  # padded runs not counted
    assert res["env_steps_per_s"] > 0 and res["compile_s"] > 0 and res["cpu_over_wall"] > 0
    assert res["spread"]["min"] <= res["env_steps_per_s"] <= res["spread"]["max"]


def test_profile_times_every_part_and_its_shares_add_up():
    res = bench.profile(PRESETS["fast"], seeds=2, repeats=1)
    assert set(res["seconds_per_update"]) == {"env", "rollout", "update", "isr_reward"}
    assert all(v > 0 for v in res["seconds_per_update"].values())
    assert set(res["shares"]) == {"environment", "policy_forward_and_sampling", "ppo_learning", "isr_reward"}
    assert sum(res["shares"].values()) == pytest.approx(1.0)
    assert res["isr_network"] == "mlp"


def test_anchor_figure_is_read_from_the_anchor_output(tmp_path):
    fake = tmp_path / "anchor.py"
    fake.write_text("print('trained 8192 steps = 1,234.5 env-steps/s')\n")
    res = bench.anchor_throughput(sys.executable, fake, steps=8192, repeats=2)
    assert res["env_steps_per_s"] == pytest.approx(1234.5)


def test_a_failing_anchor_is_an_error_not_a_number(tmp_path):
    fake = tmp_path / "anchor.py"
    fake.write_text("import sys; print('boom', file=sys.stderr); sys.exit(3)\n")
    with pytest.raises(RuntimeError, match="exit 3"):
        bench.anchor_throughput(sys.executable, fake, steps=10, repeats=1)
