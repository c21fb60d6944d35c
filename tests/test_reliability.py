"""Issue 7's guarantees (README, "Guarantees"), each backed by a test named after it:
determinism, resuming after SIGKILL, damaged files detected, diverged runs isolated, and
incompatible results refused."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import experiments, phases, results
from internalize.checkpoints import Checkpoints
from internalize.config import PRESETS
from internalize.learner import Learner, RunSpec

TIMING = {"wall_seconds", "compile_seconds", "peak_rss_gib", "phase_seconds"}


def cli(*args: str):
    """The command line in this process (an interpreter and JAX's start per command would cost
    seconds; the killed run below is a process of its own)."""
    from test_registry import cli as cli_here

    return cli_here(*args)


def same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def same_run(f1: Path, f2: Path) -> None:
    """Two run folders hold bitwise-identical results (timings aside)."""
    same_arrays(results.read_npz(f1 / "curves.npz"), results.read_npz(f2 / "curves.npz"))
    t1, t2 = results.read_parquet(f1 / "curves.parquet"), results.read_parquet(f2 / "curves.parquet")
    assert t1.keys() == t2.keys() and all(np.array_equal(t1[k], t2[k]) for k in t1)
    assert (f1 / "params.msgpack").read_bytes() == (f2 / "params.msgpack").read_bytes()
    s1, s2 = (json.loads((f / "summary.json").read_text()) for f in (f1, f2))
    assert {k: v for k, v in s1.items() if k not in TIMING} == {k: v for k, v in s2.items() if k not in TIMING}


TINY = experiments.with_budget(experiments.EXPERIMENTS["unlearning"], 4096, 4096)


@pytest.fixture
def tiny_results(tiny_unlearning_run, tmp_path) -> Path:
    """A finished run of TINY (root seed 0), in a results folder of this test's own: a copy of
    the session's one tiny run (tests/conftest.py: ``internalize run unlearning`` at TINY's
    budgets, 2 seeds, the fast preset)."""
    shared, _, proc = tiny_unlearning_run
    assert proc.returncode == 0, proc.stderr
    config = json.loads((shared / "unlearning" / "config.json").read_text())
    assert (config["preset"], config["seeds"], config["root_seed"]) == ("fast", 2, 0)
    assert config["budget"] == {"socialize_steps": TINY.budget.socialize_steps,
                                "autonomy_steps": TINY.budget.autonomy_steps}
    out = tmp_path / "results"
    shutil.copytree(shared, out)
    return out


def test_guarantee_same_settings_and_seed_give_identical_results(tmp_path, tiny_results):
    a = experiments.run(TINY, PRESETS["fast"], 2, tmp_path / "a", root_seed=3)
    b = experiments.run(TINY, PRESETS["fast"], 2, tmp_path / "b", root_seed=3)
    same_run(Path(a["folder"]), Path(b["folder"]))
    config = json.loads((Path(a["folder"]) / "config.json").read_text())
    derived = np.asarray(jax.random.key_data(experiments.seed_keys(3, 2))).tolist()
    assert config["root_seed"] == 3 and config["seed_keys"] == derived  # every seed's key from one root key
    other = tiny_results / "unlearning"  # the same settings but the root seed (0)
    other_config = json.loads((other / "config.json").read_text())
    assert {k: v for k, v in other_config["settings"].items() if k != "seed"} == \
        {k: v for k, v in config["settings"].items() if k != "seed"} and other_config["root_seed"] != 3
    c1 = results.read_npz(Path(a["folder"]) / "curves.npz")["autonomy/true_return"]
    c2 = results.read_npz(other / "curves.npz")["autonomy/true_return"]
    assert not np.array_equal(c1, c2)  # the seed matters: the comparison above can fail


# TINY's seeds, socialization and chunk size (8 updates), so the same compiled programs (loaded
# from the compilation cache, not compiled again); 16 updates of autonomy are two chunks per
# batch, and a checkpoint after every chunk: the run is killed after the first chunk of autonomy,
# with a chunk of that batch and the whole reward-model batch still to do.
KILL_ARGS = ["--only", "unlearning", "--seeds", "2", "--socialize-steps", "4096", "--autonomy-steps", "32768",
             "--checkpoint-every", "0", "--no-progress"]


def listing(results_folder: Path) -> str:
    """What ``internalize list FOLDER`` prints (in this process: an interpreter costs seconds)."""
    import contextlib
    import io

    from internalize import cli as cli_

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_.main(["list", str(results_folder)]) == 0
    return out.getvalue()


def test_guarantee_a_killed_run_resumes_to_identical_results(tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "internalize.cli", "reproduce", *KILL_ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    marker = out / "unlearning" / "checkpoint" / "autonomy.msgpack"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed part-way"
    assert not (out / "unlearning" / "manifest.json").exists()  # it did not finish
    assert "unfinished (has checkpoints)" in listing(out)
    resumed = cli("reproduce", *KILL_ARGS, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoints" in resumed.stdout and "autonomy" in resumed.stdout
    assert not (out / "unlearning" / "checkpoint").exists()  # removed once the run is stored
    whole = cli("reproduce", *KILL_ARGS, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    same_run(out / "unlearning", tmp_path / "whole" / "unlearning")


def test_guarantee_damaged_files_are_detected_and_recomputed(tmp_path, capfd):
    exp, preset, budget = TINY, PRESETS["fast"], TINY.budget
    ckpt = Checkpoints(tmp_path / "run", every=0.0)
    first = experiments.run_pipeline(exp, preset, 2, budget, 0, ckpt=ckpt)
    names = {p.name for p in ckpt.dir.iterdir()}
    assert {"socialized.msgpack", "autonomy.msgpack"} <= names and "socialize.msgpack" not in names
    # A truncated phase checkpoint and a changed one: both are found out and computed again.
    soc = ckpt.dir / "socialized.msgpack"
    soc.write_bytes(soc.read_bytes()[:-100])
    aut = ckpt.dir / "autonomy.msgpack"
    raw = bytearray(aut.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    aut.write_bytes(bytes(raw))
    again = experiments.run_pipeline(exp, preset, 2, budget, 0, ckpt=Checkpoints(tmp_path / "run", every=0.0))
    err = capfd.readouterr().err
    assert "socialized.msgpack is damaged" in err and "autonomy.msgpack is damaged" in err
    same_arrays(first, again)
    # And an intact checkpoint is used: the same results without training again.
    ckpt3 = Checkpoints(tmp_path / "run", every=0.0)
    third = experiments.run_pipeline(exp, preset, 2, budget, 0, ckpt=ckpt3)
    assert ckpt3.resumed == ["socialized", "autonomy", "autonomy.rm"]
    same_arrays(first, third)


def test_guarantee_a_diverged_run_is_marked_and_isolated():
    from internalize import caregivers as caregiver
    from internalize import presence
    from internalize.worlds import coin as world

    learner = Learner(PRESETS["fast"].ppo, world.COIN)
    params = world.coin_params(3)

    def batch(poison: bool):
        specs = [RunSpec(params, caregiver.caregiver(float("nan") if (poison and i == 1) else 0.4), presence.present(),
                         jnp.float32(0.0), {}) for i in range(3)]
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        return phases.socialize(learner, keys, phases.stack(specs), 3 * 2048, 4)

    clean, poisoned = batch(False), batch(True)
    for r in (0, 2):  # the other runs of the batch are exactly what they would have been
        for k in clean.metrics:
            assert np.array_equal(clean.metrics[k][r], poisoned.metrics[k][r]), k
        for x, y in zip(jax.tree.leaves(clean.state.params), jax.tree.leaves(poisoned.state.params)):
            assert np.array_equal(np.asarray(x)[r], np.asarray(y)[r])
    curves = {f"socialize/{k}": v for k, v in poisoned.metrics.items()}
    failed = experiments.failures(curves, [])
    assert [f["seed"] for f in failed] == [1] and "not finite" in failed[0]["message"]
    assert experiments.failures({f"socialize/{k}": v for k, v in clean.metrics.items()}, []) == []


def test_guarantee_a_diverged_run_is_named_in_the_summary(tiny_results):
    folder = tiny_results / "unlearning"
    assert json.loads((folder / "summary.json").read_text())["failed_runs"] == []
    curves = results.read_npz(folder / "curves.npz")
    curves["autonomy/pg_loss"][1, 2, 1:] = np.nan  # seed 1, arm isr diverges at its second update
    results.write_npz(folder / "curves.npz", curves)
    proc = cli("report", str(tiny_results))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert [(f["seed"], f["arm"]) for f in summary["failed_runs"]] == [(1, "isr")]
    assert "from update 2" in summary["failed_runs"][0]["message"] and "FAILED RUN" in proc.stdout
    assert "**Failed run**" in (tiny_results / "report.md").read_text()


def test_guarantee_results_of_an_incompatible_version_are_refused_unchanged(tmp_path, capsys):
    """Through the command line in this process (an interpreter per command would cost seconds)."""
    from internalize import cli as cli_

    folder = tmp_path / "unlearning"
    folder.mkdir()
    old = {"schema": 1, "version": "0.0.1", "experiment": "unlearning"}
    (folder / "config.json").write_text(json.dumps(old))
    (folder / "curves.npz").write_bytes(b"old results")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for args in (["run", "unlearning", "--out", str(tmp_path), "--no-progress"], ["report", str(tmp_path)],
                 ["render", "unlearning", "--results", str(tmp_path)]):
        code = cli_.main(args)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert "results schema 1" in err and "0.0.1" in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unlearning"]


BAD_INPUTS = [
    (["run", "nosuch"], "unknown experiment 'nosuch'"),
    (["render", "unlearning", "--condition", "nosuch"], "no condition or arm 'nosuch'"),
    (["render", "unlearning", "--seed", "7"], "seed 7 is not in the run"),
    (["render", "unlearning", "--phase", "later"], "invalid choice"),
    (["run", "unlearning", "--preset", "turbo"], "unknown preset 'turbo'"),
    (["run", "unlearning", "--world.autonomy.map_name", "moon"], "unknown map 'moon'"),
    (["run", "unlearning", "--world.autonomy.n_walls", "99"], "n_walls must be in"),
    (["run", "unlearning", "--world.autonomy.size", "1"], "world size must be at least 2"),
    (["run", "unlearning", "--seeds", "0"], "must be at least 1"),
    (["run", "unlearning", "--ppo.gamma", "1.5"], "ppo.gamma must be in [0, 1]"),
    (["run", "unlearning", "--ppo.lr", "-1"], "ppo.lr must be positive"),
    (["run", "unlearning", "--ppo.lr", "nan"], "expected a finite number"),
    (["run", "unlearning", "--isr.train_fraction", "1"], "isr.train_fraction must be in (0, 1)"),
    (["run", "unlearning", "--presence.leave.mode", "sometimes"], "unknown presence mode 'sometimes'"),
    (["run", "unlearning", "--presence.leave.horizon", "0"], "presence horizon must be positive"),
    (["run", "unlearning", "--budget.autonomy_steps", "-5"], "budget.autonomy_steps must be at least 0"),
    (["run", "unlearning", "--checkpoint-every", "-1"], "must be a finite number at least 0"),
    (["reproduce", "--only", "unlearning,nosuch"], "--only: unknown experiment 'nosuch'"),
    (["reproduce", "--world.socialize.n_walls", "2"], "unrecognized arguments"),
    (["config", "unlearning", "--config", "missing.toml"], "config file 'missing.toml' does not exist"),
    (["report", "nowhere"], "results directory 'nowhere' does not exist"),
    (["list", "nowhere"], "results folder 'nowhere' does not exist"),
]


def test_guarantee_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path, tiny_results, capsys, monkeypatch):
    """Every bad input above, against a results folder that holds a finished run: one line on
    stderr naming the problem, exit status 2, and not a byte of the folder changed."""
    from internalize import cli as cli_

    assert tiny_results == tmp_path / "results" and (tiny_results / "unlearning" / "manifest.json").is_file()
    monkeypatch.chdir(tmp_path)
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    for args, fragment in BAD_INPUTS:
        extra = (["--results", "results"] if args[0] == "render" else
                 ["--out", "results"] if args[0] in ("run", "reproduce") else [])
        code = cli_.main([*args, *extra])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and err.startswith("internalize: error:") and fragment in err, (args, err)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before
