"""A tiny reproduction of every built-in experiment through the command line (one shared run):
its outputs, its reuse of stored results, and the numbers unchanged since the redesign (issue 13)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_cli import cli
from test_registry import cli as cli_here

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_ARGS = ["--seeds", "2", "--socialize-steps", "8192", "--autonomy-steps", "4096", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_reproduction(tmp_path_factory):
    """The reproduction in a process of its own (the command as a user types it), then the same
    command again in this process (it finds every result stored: an interpreter and JAX's start
    would cost seconds, for no work)."""
    out = tmp_path_factory.mktemp("reproduce")
    first = cli("reproduce", *GOLDEN_ARGS, "--out", str(out))
    second = cli_here("reproduce", *GOLDEN_ARGS, "--out", str(out))
    return out, first, second


EXPERIMENT_CLAIMS = {
    "unlearning": {"none_unlearns", "isr_keeps"},
    "isr_accuracy": {"isr_error_falls", "isr_correlates"},
    "ood_walls": {"ood_isr_beats_frozen", "ood_isr_near_oracle"},
    "ood_maps": {"ood_isr_beats_frozen", "ood_isr_near_oracle"}
    | {f"{c}/{m}" for c in ("ood_isr_beats_frozen", "ood_isr_near_oracle") for m in ("plus", "x", "U", "T", "4rooms")},
    "reward_hacking": {"undertrained_isr_is_hacked", "hacking_gap_shrinks"},
    "prosocial": {"prosocial_isr_keeps_helping", "prosocial_none_stops"},
}


def test_reproduce_runs_every_experiment_end_to_end(tiny_reproduction):
    out, first, _ = tiny_reproduction
    assert first.returncode == 0, first.stderr
    for name, claim_ids in EXPERIMENT_CLAIMS.items():
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["experiment"] == name and summary["seeds"] == 2
        assert {c["id"] for c in summary["claims"]} == claim_ids
        for c in summary["claims"]:
            assert isinstance(c["holds"], bool) and isinstance(c["statement"], str) and c["statement"]
        assert summary["figures"], name
        assert "value_map.png" in summary["figures"], name  # issue 14: what the ISR learned, as a picture
        for fig in summary["figures"]:
            assert (out / name / fig).read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    for name in EXPERIMENT_CLAIMS:
        assert f"## {name}:" in report
    assert "cores" in report and "| claim | statement | test (margin) | our value | p-value | holds |" in report
    assert "report.md" in first.stdout


def test_reproduce_skips_work_whose_stored_results_match(tiny_reproduction):
    out, _, second = tiny_reproduction
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("stored results match this configuration") == len(EXPERIMENT_CLAIMS)


def test_ood_evaluation_and_isr_outputs_have_the_declared_shapes(tiny_reproduction):
    out, _, _ = tiny_reproduction
    with np.load(out / "ood_maps" / "curves.npz") as c:
        assert c["eval/return"].shape == (2, 11, 5, 100)  # seeds x arms x maps x episodes
    with np.load(out / "isr_accuracy" / "curves.npz") as c:
        assert c["isr/test_mse"].shape[:2] == (2, 6)  # seeds x socialization budgets
        assert c["sweep/pred"].shape == (2, len(c["sweep/target"]))
    with np.load(out / "reward_hacking" / "curves.npz") as c:
        assert c["autonomy/internal_return"].shape[:2] == (2, 6)
        assert c["trace/0/pos"].shape == (20, 2)


def test_reproduction_records_where_each_experiments_time_went(tiny_reproduction):
    """Issue 5: wall, compile and per-phase seconds and peak memory per experiment, in the
    results and in the report."""
    out, _, _ = tiny_reproduction
    for name in EXPERIMENT_CLAIMS:
        summary = json.loads((out / name / "summary.json").read_text())
        phases = summary["phase_seconds"]
        assert {"socialize", "internalize"} <= set(phases), name
        for rec in phases.values():
            assert 0 <= rec["compile"] and 0 < rec["wall"]
        assert sum(r["wall"] for r in phases.values()) <= summary["wall_seconds"] + 1e-6
        assert summary["compile_seconds"] >= 0 and summary["peak_rss_gib"] > 0
    assert "autonomy" in json.loads((out / "unlearning" / "summary.json").read_text())["phase_seconds"]
    report = (out / "report.md").read_text()
    assert "Where the time went" in report and "| unlearning | " in report


def test_value_map_sets_the_caregivers_reward_beside_the_isrs(tiny_reproduction):
    """Issue 14: on one layout, the reward of stepping into each free cell from each side: the
    paper's caregiver pays 0.4 exactly for stepping onto the coin; the ISR's map covers the same
    steps (NaN where no such step exists)."""
    out, _, _ = tiny_reproduction
    with np.load(out / "unlearning" / "curves.npz") as c:
        true, pred, goal = c["valuemap/true"][0], c["valuemap/pred"], c["valuemap/layout/goal"]
        walls = c["valuemap/layout/walls"]
    steps = np.isfinite(true)
    assert steps.any() and not steps[walls].any()
    assert np.array_equal(np.isfinite(pred[0]), steps) and pred.shape[0] == 2
    onto_goal = np.zeros_like(steps)
    onto_goal[goal[0], goal[1]] = True
    assert np.all(true[steps & onto_goal] == np.float32(0.4)) and (steps & onto_goal).any()
    assert np.all(true[steps & ~onto_goal] == 0)


def test_fast_preset_isr_is_an_mlp_except_out_of_distribution():
    """The fast preset's ISR is the MLP; the out-of-distribution experiments keep SPEC 5's conv
    ISR (their claims need it); the paper preset uses SPEC 5's everywhere."""
    from internalize.config import PRESETS
    from internalize.experiments import EXPERIMENTS

    def net(exp, preset):
        return (exp.isr_config(preset) if exp.isr_config else preset.isr).network

    for name, exp in EXPERIMENTS.items():
        assert net(exp, PRESETS["paper"]) == "cnn", name
        assert net(exp, PRESETS["fast"]) == ("cnn" if name.startswith("ood_") else "mlp"), name


def test_list_dir_shows_every_stored_run(tiny_reproduction):
    out, _, _ = tiny_reproduction
    proc = cli_here("list", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["run", "experiment", "preset"]
    for name, claim_ids in EXPERIMENT_CLAIMS.items():
        row = next(line for line in lines[1:] if line.split()[0] == name)
        summary = json.loads((out / name / "summary.json").read_text())
        held = sum(c["holds"] for c in summary["claims"])
        assert f"{held}/{len(claim_ids)}" in row.split() and " 2 " in row  # claims held, seeds


ADDED_SINCE = ("isr/pearson_true", "valuemap/")
"""Curves added since the golden files were made (issue 14: the ISR against what the caregiver
meant to reward; value maps). They are new arrays; every stored one is unchanged."""


def _split_autonomy(name: str) -> bool:
    """Whether an experiment's autonomy runs as two programs (arms with and without the reward model)."""
    from internalize import conditions
    from internalize.experiments import EXPERIMENTS

    return len({conditions.get(a.condition).uses_isr for a in EXPERIMENTS[name].arms}) == 2


def test_the_redesign_changed_no_number(tiny_reproduction):
    """Issue 13, item 1: every array of every built-in experiment's curves.npz is what the package
    computed before the redesign (tests/golden, README there), for the same command.

    Bitwise, with one stated exception: since R_i is computed only where it is used (item 7), an
    experiment whose arms mix conditions with and without the ISR runs its autonomy as two
    programs, and each run's per-update sums (losses, returns) are reduced in batches of another
    size, which rounds differently in the last bits. There the autonomy curves must agree to float
    rounding, and the goals reached (the learner's behaviour) bitwise.
    """
    out, first, _ = tiny_reproduction
    assert first.returncode == 0, first.stderr
    for name in EXPERIMENT_CLAIMS:
        with np.load(GOLDEN / f"{name}.npz") as want, np.load(out / name / "curves.npz") as got:
            added = sorted(set(got.files) - set(want.files))
            assert set(want.files) <= set(got.files), name
            assert all(k.startswith(ADDED_SINCE) for k in added), (name, added)
            for key in want.files:
                a, b = want[key], got[key]
                assert a.dtype == b.dtype and a.shape == b.shape, (name, key)
                if _split_autonomy(name) and key.startswith("autonomy/") and key != "autonomy/goals_per_episode":
                    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")
                else:
                    assert a.tobytes() == b.tobytes(), f"{name}: {key} differs from the stored array"
