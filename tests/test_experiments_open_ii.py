"""Issue 15's open questions through the command line: a tiny run of each of ``readiness``,
``leaving`` and ``scale`` (one shared module fixture, in this process), their claims by id,
figures and curves; and bad designs refused before anything is written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_registry import cli

TINY = ["--seeds", "2", "--no-progress"]
CLAIMS = {
    "readiness": {"readiness_saves_caregiver_time", "persistence_saturates"},
    "leaving": {"fading_delays_unlearning", "visits_sustain_without_isr", "isr_needs_no_visits"},
    "scale": {"isr_keeps_at_scale", "none_unlearns_at_scale"},
}
RUNS = {
    # two decision points (5k and 10k, the budget's end), two updates of autonomy
    "readiness": ["--budget.socialize-steps", "10000", "--budget.autonomy-steps", "4096"],
    # six updates of each phase: the weaning third, the fades and the visits all show
    "leaving": ["--budget.socialize-steps", "12288", "--budget.autonomy-steps", "12288"],
    # the paper's room and a longer horizon of it: two variants that share their compiled programs
    "scale": ["--budget.socialize-steps", "4096", "--budget.autonomy-steps", "2048", "--design.sizes", "5",
              "--design.horizons", "30", "--design.horizon-side", "5"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("open_ii")
    done = {name: cli("run", name, *TINY, *args, "--results", str(out)) for name, args in RUNS.items()}
    return out, done


def _load(out, name):
    config = json.loads((out / name / "config.json").read_text())
    summary = json.loads((out / name / "summary.json").read_text())
    with np.load(out / name / "curves.npz") as c:
        curves = dict(c)
    return config, summary, curves


@pytest.mark.parametrize("name", list(RUNS))
def test_each_runs_with_its_claims_and_figures(runs, name):
    out, done = runs
    assert done[name].returncode == 0, done[name].stderr
    _, summary, _ = _load(out, name)
    assert {c["id"] for c in summary["claims"]} == CLAIMS[name]
    for c in summary["claims"]:
        assert c["test"] and isinstance(c["holds"], bool)
    assert f"{name}.png" in summary["figures"]
    for fig in summary["figures"]:
        assert (out / name / fig).read_bytes()[:4] == b"\x89PNG"


def test_readiness_branches_each_seed_where_its_rule_fired(runs):
    out, _ = runs
    config, summary, c = _load(out, "readiness")
    arms = config["arms"]
    assert arms[:6] == ["isr@5k", "isr@10k", "isr@20k", "isr@40k", "isr@80k", "isr@120k"]
    assert arms[6:] == ["isr@isr_converged", "isr@marginal_value"]
    np.testing.assert_array_equal(c["readiness/steps"], [5000, 10000])
    assert c["readiness/error"].shape == (2, 2) and np.isfinite(c["readiness/error"]).all()
    steps, fired = c["arms/socialized_steps_per_seed"], c["arms/rule_fired"]
    assert steps.shape == (2, 8) and fired[:, :6].all()
    # fixed budgets in proportion to the 120k they are stated at (rounded up to whole updates of 2,048)
    np.testing.assert_array_equal(steps[0, :6], [2048, 2048, 2048, 4096, 8192, 10240])  # of 10k
    # a rule leaves at a decision point: 5k (3 updates) or the budget's end (5 updates)
    assert set(steps[:, 6:].ravel()) <= {6144, 10240}
    # where a rule fired, the curve it read says so (isr_converged needs 10k: never fires at 5k here)
    assert not fired[:, 6].any() and (steps[:, 6] == 10240).all()
    detail = next(x for x in summary["claims"] if x["id"] == "readiness_saves_caregiver_time")["detail"]
    assert detail["seeds_where_rule_never_fired"] == 2
    assert "readiness_error.png" in summary["figures"]


def test_leaving_socializes_weaning_apart_and_leaves_as_each_schedule_says(runs):
    out, _ = runs
    config, _, c = _load(out, "leaving")
    arms = config["arms"]
    assert arms == [f"{w}/{x}" for w in ("abrupt", "fade20k", "fade60k", "weaning", "visits") for x in ("isr", "none")]
    group = c["arms/caregiver"]
    assert set(group[[arms.index("weaning/isr"), arms.index("weaning/none")]]) == {1} and (np.delete(group, [6, 7]) == 0).all()
    soc = c["socialize/presence"]  # [S, G, U]: weaning is there in about half the episodes of its last third
    assert (soc[:, 0] == 1).all() and (soc[:, 1, :4] == 1).all() and (soc[:, 1, 4:] < 0.8).all()
    aut = c["autonomy/presence"]  # [S, A, U]
    assert (aut[:, arms.index("abrupt/none")] == 0).all()
    fade = aut[:, arms.index("fade60k/none")].mean(0)
    assert fade[0] > 0.5 and fade[-1] == 0 and (np.diff(fade) <= 0.05).all()
    assert 0 < aut[:, arms.index("visits/none")].mean() < 0.3


def test_scale_runs_each_variant_with_its_own_world(runs):
    out, _ = runs
    _, summary, c = _load(out, "scale")
    assert int(c["variant/side5/world/max_steps"]) == 20 and int(c["variant/side5_h30/world/max_steps"]) == 30
    for v in ("side5", "side5_h30"):
        assert c[f"variant/{v}/autonomy/goals_per_episode"].shape[:2] == (2, 3)  # seeds x (oracle, none, isr)
        assert c[f"variant/{v}/sweep/pred"].shape[0] == 2
        assert float(c[f"variant/{v}/seconds/wall"]) > 0 and int(c[f"variant/{v}/steps"]) > 0
    settings = summary["per_seed"]["settings"]
    assert set(settings) == {"side5", "side5_h30"} and settings["side5"]["env_steps_per_s"][0] > 0


@pytest.mark.parametrize("args, message", [
    (["run", "readiness", "--design.budgets", "5000,200000"], "design.budgets"),
    (["run", "readiness", "--design.improvement", "1.5"], "improvement"),
    (["run", "leaving", "--design.ways", "abrupt,vanish"], "unknown way of leaving 'vanish'"),
    (["run", "leaving", "--design.visits", "1.5"], "design.visits"),
    (["run", "scale", "--design.sizes", "5,1"], "room side 1"),
    (["run", "scale", "--design.cap", "0.5"], "design.cap"),
    (["run", "scale", "--world.socialize.size", "7"], "runs its own worlds"),
])
def test_bad_designs_are_refused_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "results"
    done = cli(*args, "--results", str(out))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
