"""Sweeps (issue 17): a grid in one command, points batched where only traced numbers differ,
each point a run folder; the same sweep on a local Ray instance; resuming; bad grids.

One tiny sweep (4 points: 2 learning rates x 2 leaving presences, 2 seeds, one update per
phase, 2 points per program) is shared by the module's tests."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import caregivers, cli, results
from internalize.config import FAST, PRESETS
from internalize.experiments import UNLEARNING, settings_for, sweep
from internalize.learner import TRACED, Learner, Transition
from internalize.phases import stack
from internalize.worlds import coin

DOC = ["unlearning", "--quick", "--seeds", "2", "--budget.socialize_steps", "2048", "--budget.autonomy_steps", "2048",
       "--grid", "ppo.lr=1e-3,3e-3", "--grid", "presence.leave.start=0,0.5"]  # docs/scaling.md's tiny sweep
TINY = DOC + ["--batch", "2", "--no-progress"]  # two batches of two points (one program: the same shapes)


def _sweep(out: Path, *extra: str) -> int:
    return cli.main(["sweep", *TINY, "--out", str(out), *extra])


def test_the_docs_tiny_sweep_is_the_one_tested_here():
    doc = " ".join((Path(__file__).parents[1] / "docs" / "scaling.md").read_text().replace("\\\n", " ").split())
    assert "internalize sweep " + " ".join(DOC) in doc


def _curves(folder: Path) -> dict:
    return results.read_npz(folder / "curves.npz")


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "local"
    assert _sweep(out) == 0
    return out


def _record(out: Path) -> dict:
    return json.loads((out / "sweep.json").read_text())


def test_every_point_is_a_run_folder_and_the_sweep_writes_its_three_files(local, capsys):
    rec = _record(local)
    assert rec["grid"] == {"ppo.lr": [1e-3, 3e-3], "presence.leave.start": [0.0, 0.5]}
    assert [p["settings"] for p in rec["points"]] == [
        {"ppo.lr": lr, "presence.leave.start": st} for lr in (1e-3, 3e-3) for st in (0.0, 0.5)]
    for p in rec["points"]:
        folder = local / p["folder"]
        assert not results.verify(folder), "a point's files must pass their checksums"
        config = json.loads((folder / "config.json").read_text())
        assert config["settings"]["ppo.lr"] == p["settings"]["ppo.lr"]
        assert config["settings"]["presence.leave.start"] == p["settings"]["presence.leave.start"]
        assert (folder / "summary.json").is_file()
    # Per point, `list` sees the runs.
    assert cli.main(["list", "--results", str(local)]) == 0
    listed = capsys.readouterr().out
    assert all(p["folder"] in listed for p in rec["points"])
    table = results.read_parquet(local / "sweep.parquet")
    assert {"ppo.lr", "presence.leave.start", "point", "seed", "metric", "value"} <= set(table)
    assert set(table["point"].tolist()) == {0, 1, 2, 3} and set(table["seed"].tolist()) == {0, 1}
    per_point = len(table["value"]) // 4
    assert per_point >= 2 and len(table["value"]) == 4 * per_point
    lr_of = {p["index"]: p["settings"]["ppo.lr"] for p in rec["points"]}
    assert all(table["ppo.lr"][i] == lr_of[table["point"][i]] for i in range(len(table["point"])))
    assert (local / "sweep.png").stat().st_size > 10_000


def test_report_rebuilds_a_sweeps_table_and_figure_from_the_points_files(local, tmp_path):
    out = tmp_path / "rebuilt"
    shutil.copytree(local, out)
    before = results.read_parquet(out / "sweep.parquet")
    (out / "sweep.parquet").unlink()
    (out / "sweep.png").unlink()
    assert cli.main(["report", "--results", str(out)]) == 0
    after = results.read_parquet(out / "sweep.parquet")
    assert set(after) == set(before)
    for k in before:
        if before[k].dtype.kind == "f":
            np.testing.assert_array_equal(before[k], after[k], err_msg=k)
        else:
            assert before[k].tolist() == after[k].tolist(), k
    assert (out / "sweep.png").is_file()


def test_points_that_differ_in_traced_numbers_share_a_program_and_each_learns_with_its_own(local):
    rec = _record(local)
    assert rec["traced"] == ["ppo.lr", "presence.leave.start"]
    assert [b["points"] for b in rec["batches"]] == [[0, 1], [2, 3]] and all(b["batched"] for b in rec["batches"])
    c = {p["index"]: _curves(local / p["folder"]) for p in rec["points"]}
    # Same seeds everywhere: the first rollout (before any learning) is the same for every point...
    np.testing.assert_array_equal(c[0]["socialize/goals_per_episode"][:, 0], c[2]["socialize/goals_per_episode"][:, 0])
    # ...but each point learned with its own rate, and left with its own presence.
    assert not np.allclose(c[0]["socialize/pg_loss"], c[2]["socialize/pg_loss"])
    assert np.all(c[0]["autonomy/presence"][:, 1:] == 0) and np.all(c[1]["autonomy/presence"][:, 1:] > 0)
    # A point of the second batch names the point it ran with.
    config = json.loads((local / rec["points"][3]["folder"] / "config.json").read_text())
    assert config["batch"]["with"] == [rec["points"][2]["folder"]] and config["batch"]["hyper"] == ["lr"]


def test_a_sweep_on_a_local_ray_instance_gives_bitwise_the_same_points(local, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    assert _sweep(out, "--ray") == 0  # a Ray instance on this machine (its 2 CPUs), loopback only
    rec, ref = _record(out), _record(local)
    assert rec["ray"] == "local"
    assert [p["folder"] for p in rec["points"]] == [p["folder"] for p in ref["points"]]
    for p in rec["points"]:
        a, b = _curves(out / p["folder"]), _curves(local / p["folder"])
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_stopped_sweep_computes_only_its_missing_and_damaged_points(local, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(local, out)
    rec = _record(local)
    shutil.rmtree(out / rec["points"][2]["folder"])  # stopped before this point was written
    damaged = out / rec["points"][3]["folder"] / "curves.npz"
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    kept = [out / p["folder"] / "curves.npz" for p in rec["points"][:2]]
    kept_times = [k.stat().st_mtime_ns for k in kept]
    assert _sweep(out) == 0
    again = _record(out)
    assert [p["reused"] for p in again["points"]] == [True, True, False, False]
    assert [k.stat().st_mtime_ns for k in kept] == kept_times  # intact points are not touched
    for p in again["points"]:
        assert not results.verify(out / p["folder"])
        a, b = _curves(out / p["folder"]), _curves(local / p["folder"])
        assert set(a) == set(b)
        for k in a:  # the missing and the damaged point reran as their batch first ran: bitwise
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_learning_rate_given_per_run_is_bitwise_the_configured_one():
    """PPO's learning step with its numbers given per run (RunSpec.hyper) against the config's
    constants, on one made-up rollout: bitwise the same; another rate changes that run only."""
    cfg = dataclasses.replace(FAST.ppo, n_envs=2, n_steps=16, minibatch_size=16, n_epochs=2)
    learner = Learner(cfg, coin.COIN)
    wp = coin.coin_params(3)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state = jax.vmap(learner.init, in_axes=(0, None))(keys, wp)
    rng = np.random.default_rng(0)
    t, e = cfg.n_steps, cfg.n_envs
    obs = rng.integers(0, 3, (2, t, e) + state.obs.shape[2:]).astype(np.uint8)
    traj = Transition(obs, rng.integers(0, 3, (2, t, e)).astype(np.int32), -rng.random((2, t, e), np.float32),
                      rng.random((2, t, e), np.float32), None, None, None, None, np.zeros((2, t, e), bool),
                      rng.random((2, t, e)) < 0.1, obs[:, ::-1], None, None, None, None, None)
    reward = rng.random((2, t, e), np.float32)
    learn = jax.jit(jax.vmap(learner.learn))

    def leaves(hyper):
        return [np.asarray(x) for x in jax.tree.leaves(learn(state, traj, reward, stack(hyper)))]

    own = {h: np.float32(getattr(cfg, h)) for h in TRACED}
    plain, traced = leaves([{}, {}]), leaves([own, own])
    for a, b in zip(plain, traced):
        np.testing.assert_array_equal(a, b)
    other = leaves([own, dict(own, lr=np.float32(cfg.lr * 3))])
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(plain, other))  # run 0: unchanged
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(plain, other))


def test_points_batch_by_what_they_change():
    base = settings_for(UNLEARNING, PRESETS["fast"], quick=True)

    def plan(*flags):
        axes, _ = sweep.parse_axes(list(flags), {}, base)
        points = sweep.plan(UNLEARNING, PRESETS["fast"], base, axes)
        return sweep.batches(UNLEARNING, PRESETS["fast"], base, axes, points, max_batch=8)

    assert plan("ppo.lr=1e-3,3e-3", "presence.socialize.start=1,0.5") == ([[0, 1, 2, 3]],
                                                                         ("ppo.lr", "presence.socialize.start"))
    # A network's width changes shapes: a program per width, the rates batched within each.
    assert plan("ppo.hidden=32,32;64,64", "ppo.lr=1e-3,3e-3")[0] == [[0, 1], [2, 3]]
    assert plan("ppo.n_epochs=2,4")[0] == [[0], [1]]
    assert plan("caregiver.goal_reward=0.4,1", "ppo.gamma=0.9,0.99")[0] == [[0, 1, 2, 3]]
    assert plan("isr.lr=1e-3,3e-3")[0] == [[0], [1]]  # the ISR's fit holds its settings as constants


def test_a_toml_file_of_lists_is_a_grid(tmp_path):
    base = settings_for(UNLEARNING, PRESETS["fast"], quick=True)
    path = tmp_path / "grid.toml"
    path.write_text("seeds = 3\n[ppo]\nlr = [1e-3, 3e-3]\nhidden = [[32, 32], [64]]\nn_epochs = 2\n")
    axes, fixed = sweep.parse_axes([], results_toml(path), base)
    assert [(a.name, a.values) for a in axes] == [("ppo.lr", (1e-3, 3e-3)), ("ppo.hidden", ((32, 32), (64,)))]
    assert fixed == {"seeds": 3, "ppo.n_epochs": 2}
    path.write_text("seeds = [2, 3]\n")
    with pytest.raises(ValueError, match="seeds is not swept"):
        sweep.parse_axes([], results_toml(path), base)


def results_toml(path):
    from internalize.config import load_toml

    return load_toml(path)


@pytest.mark.parametrize("grid, message", [
    (["ppo.lrr=1e-3,3e-3"], "unknown setting 'ppo.lrr' (did you mean ppo.lr?)"),
    (["ppo.lr=1e-3,fast"], "setting ppo.lr: expected a number, got 'fast'"),
    (["ppo.lr="], "--grid ppo.lr: no values"),
    (["ppo.lr"], "--grid 'ppo.lr': expected NAME=V1,V2,..."),
    (["ppo.lr=1e-3,1e-3"], "grid ppo.lr: a value is repeated"),
    (["ppo.lr=1e-3", "ppo.lr=3e-3"], "--grid ppo.lr: ppo.lr is swept twice"),
    (["seeds=1,2"], "seeds is not swept"),
    (["ppo.lr=1e-3,-1"], "grid point ppo.lr=-1.0: ppo.lr must be positive"),
    (["ppo.lr=" + ",".join(f"{i}e-4" for i in range(1, 10)), "ppo.clip=" + ",".join(f"0.{i}" for i in range(1, 9))],
     "the grid has 72 points (9 x 8), more than 64; pass --yes to run it"),
])
def test_a_bad_grid_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys, grid, message):
    out = tmp_path / "out"
    argv = ["sweep", "unlearning", "--quick", "--out", str(out), "--no-progress"]
    for g in grid:
        argv += ["--grid", g]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("internalize: error: ") and message in err and "\n" not in err
    assert not out.exists()


def test_another_sweep_into_the_same_folder_is_refused(local, tmp_path, capsys):
    out = tmp_path / "other"
    shutil.copytree(local, out)
    before = (out / "sweep.json").read_bytes()
    argv = ["sweep", *DOC[:8], "--grid", "ppo.lr=1e-3,2e-3", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 2
    assert "holds another sweep" in capsys.readouterr().err
    assert (out / "sweep.json").read_bytes() == before


def test_a_ray_address_where_nothing_answers_is_one_line_and_exit_2(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    argv = ["sweep", "unlearning", "--quick", "--grid", "ppo.lr=1e-3,3e-3", "--ray", "127.0.0.1:1", "--out", str(out)]
    assert cli.main(argv) == 2
    assert "--ray 127.0.0.1:1: could not start or join a Ray cluster" in capsys.readouterr().err
    assert not out.exists()


def test_points_that_differ_in_the_caregiver_are_each_judged_by_their_own(tmp_path):
    out = tmp_path / "cg"
    argv = ["sweep", "isr_accuracy", "--quick", "--seeds", "2", "--budget.socialize_steps", "2048",
            "--grid", "caregiver.goal_reward=0.4,1.0", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    rec = _record(out)
    assert [b["points"] for b in rec["batches"]] == [[0, 1]]
    for p in rec["points"]:
        c = _curves(out / p["folder"])
        want = p["settings"]["caregiver.goal_reward"]
        # What each point's ISR was fitted to, and the value map's truth, are its caregiver's.
        assert np.nanmax(c["isr/test_target"]) == pytest.approx(want)
        assert np.nanmax(c["valuemap/true"]) == pytest.approx(want)


def test_evaluation_with_a_caregiver_per_run_is_each_run_judged_alone():
    from internalize import phases

    learner = Learner(FAST.ppo, coin.COIN)
    wp = coin.coin_params(1)
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    params = jax.vmap(lambda k: learner.net.init(k, jnp.zeros((1,) + coin.COIN.obs_shape(wp), jnp.uint8)))(keys)
    cgs = [caregivers.caregiver(0.4), caregivers.caregiver(1.0)]
    both = phases.evaluate(learner, params, keys, [wp], stack(cgs), 8, int(wp.max_steps), per_run_caregiver=True)
    for i, cg in enumerate(cgs):
        alone = phases.evaluate(learner, jax.tree.map(lambda x: x[i:i + 1], params), keys[i:i + 1], [wp], cg, 8,
                                int(wp.max_steps))
        for a, b in zip(both, alone):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-6)
