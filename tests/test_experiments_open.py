"""The open-question suite (issue 14) through the command line: a tiny run of each experiment
(one shared ``reproduce --suite open``), its claims by id, figures and value maps, the report's
open section; and bad designs refused before anything is written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_registry import cli as cli_here

TINY = ["--seeds", "2", "--budget.socialize-steps", "4096", "--budget.autonomy-steps", "2048",
        "--eval-episodes", "4", "--no-progress"]
CLAIMS = {
    "noisy_caregiver": {"noise_averages_out", "omission_tolerated", "false_praise_misleads", "delay_breaks_credit"},
    "two_caregivers": {"preference_follows_exposure", "disagreement_keeps_both", "opposed_cancels"},
    "feedback_kinds": {"shaping_internalizes_sooner", "correction_alone_suffices"},
}


@pytest.fixture(scope="module")
def open_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("open")
    # issue 14's command, in this process (an interpreter and JAX's start would cost seconds)
    proc = cli_here("reproduce", "--suite", "open", "--only", ",".join(CLAIMS), *TINY, "--results", str(out))
    return out, proc


def test_the_open_suite_runs_each_experiment_with_its_claims_and_pictures(open_suite):
    out, proc = open_suite
    assert proc.returncode == 0, proc.stderr
    for name, ids in CLAIMS.items():
        summary = json.loads((out / name / "summary.json").read_text())
        assert {c["id"] for c in summary["claims"]} == ids
        for c in summary["claims"]:
            assert c["test"] and isinstance(c["holds"], bool)
        assert "value_map.png" in summary["figures"] and f"{name}.png" in summary["figures"]
        for fig in summary["figures"]:
            assert (out / name / fig).read_bytes()[:4] == b"\x89PNG"
    assert not (out / "unlearning").exists()  # the paper's suite is not part of it
    report = (out / "report.md").read_text()
    assert "# Open questions (SPEC 9)" in report and "hypothesis" in report
    for name in CLAIMS:
        assert f"## {name}:" in report and f"{name}/value_map.png" in report


def test_noisy_caregiver_runs_every_level_and_scores_the_isr_against_the_true_reward(open_suite):
    out, _ = open_suite
    config = json.loads((out / "noisy_caregiver" / "config.json").read_text())
    arms = config["arms"]
    assert len(arms) == 2 * 13 and "perfect/isr" in arms and "delay=4/none" in arms  # 1 perfect + 4 kinds x 3 levels
    with np.load(out / "noisy_caregiver" / "curves.npz") as c:
        assert c["socialize/goals_per_episode"].shape[:2] == (2, 13)  # seeds x caregivers
        assert c["isr/pearson_true"].shape[:2] == (2, 13)
        # the perfect caregiver's R_s is the true one: both correlations agree there
        g = int(c["arms/caregiver"][arms.index("perfect/isr")])
        np.testing.assert_allclose(c["isr/pearson_true"][:, g], c["isr/pearson"][:, g], rtol=1e-6)
        assert c["valuemap/pred"].shape[:2] == (2, 13) and c["valuemap/true"].shape[0] == 13


def test_two_caregivers_counts_each_coin(open_suite):
    out, _ = open_suite
    with np.load(out / "two_caregivers" / "curves.npz") as c:
        red, blue = c["autonomy/red_reached_per_episode"], c["autonomy/blue_reached_per_episode"]
        np.testing.assert_allclose(red + blue, c["autonomy/goals_per_episode"], rtol=1e-5, atol=1e-6)
    summary = json.loads((out / "two_caregivers" / "summary.json").read_text())
    assert set(summary["per_seed"]["end_of_autonomy"]) == {"agree", "opposed"}


def test_feedback_kinds_evaluates_on_five_walls(open_suite):
    out, _ = open_suite
    config = json.loads((out / "feedback_kinds" / "config.json").read_text())
    assert "shaping/isr@early" in config["arms"] and "correction/frozen" in config["arms"]
    with np.load(out / "feedback_kinds" / "curves.npz") as c:
        assert c["eval/goals"].shape == (2, len(config["arms"]), 1, 4)
        early = c["arms/socialized_steps"][config["arms"].index("praise/isr@early")]
        assert early < c["arms/socialized_steps"][config["arms"].index("praise/isr")]


@pytest.mark.parametrize("args, message", [
    (["run", "noisy_caregiver", "--design.noise", "0,-0.2"], "design.noise"),
    (["run", "noisy_caregiver", "--design.delay", "0,9"], "design.delay"),
    (["run", "noisy_caregiver", "--design.kinds", "noise,shouting"], "unknown caregiver kind 'shouting'"),
    (["run", "two_caregivers", "--design.w", "0.5,1.5"], "outside [0, 1]"),
    (["run", "feedback_kinds", "--design.kinds", "praise,bribes"], "unknown feedback kind 'bribes'"),
    (["reproduce", "--suite", "later"], "unknown suite 'later'"),
])
def test_bad_designs_are_refused_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "results"
    done = cli_here(*args, "--results", str(out))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
