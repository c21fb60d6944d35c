"""Plug-ins (issue 13, item 4): a user's experiment in their own module or file runs, reports,
renders and lists from the command line, and an installed package registers experiments,
worlds, caregivers and reward models through entry points."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent('''
    """A user's experiment, outside the package: the paper's unlearning at a tiny budget, with
    a caregiver and a world spec of its own (to register them too)."""
    from dataclasses import dataclass, replace

    from flax import struct

    from internalize import caregivers
    from internalize.experiments import Budget, EXPERIMENTS
    from internalize.worlds import CoinWorld


    @struct.dataclass
    class Generous(caregivers.GoalPraise):
        """The paper's caregiver with a larger praise."""


    @dataclass(frozen=True)
    class SmallRoom(CoinWorld):
        """The coin world in a 4x4 room."""

        size: int = 4


    MY_EXP = replace(EXPERIMENTS["unlearning"], name="my_unlearning", title="My unlearning (a plug-in)",
                     caregiver=Generous(0.5), budget=Budget(4096, 4096), quick=Budget(4096, 4096), quick_seeds=2)
''')

ENTRY_POINTS = textwrap.dedent('''
    [internalize.experiments]
    mine = myplugin:MY_EXP

    [internalize.caregivers]
    generous = myplugin:Generous

    [internalize.worlds]
    small_room = myplugin:SmallRoom

    [internalize.reward_models]
    isr_too = internalize.reward_models:ISR
''')


class Done:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err


def cli(*args: str, env=None, cwd: Path | None = None) -> Done:
    """The command line in this process (an interpreter per call would cost seconds each); the
    plug-in is on ``sys.path`` (the ``plugin`` fixture), as an installed package would be."""
    from internalize import cli as cli_

    old = Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_.main(list(args))
    finally:
        os.chdir(old)
    return Done(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """``myplugin`` as an installed package would be: a module on the path and its dist-info
    with entry points (what ``pip install`` writes), without touching the environment."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "myplugin.py").write_text(PLUGIN)
    info = root / "myplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(root))
    results = root / "results"
    first = cli("run", "myplugin:MY_EXP", "--quick", "--results", str(results), "--no-progress")
    yield root, None, results, first
    sys.path.remove(str(root))


def test_a_module_experiment_runs_reports_renders_and_lists(plugin):
    root, env, results, first = plugin
    assert first.returncode == 0, first.stderr
    folder = results / "my_unlearning"
    config = json.loads((folder / "config.json").read_text())
    assert config["experiment_ref"] == "myplugin:MY_EXP" and config["settings"]["caregiver.goal_reward"] == 0.5
    assert config["declaration"]["caregiver"]["class"] == "myplugin.Generous"
    summary = json.loads((folder / "summary.json").read_text())
    assert {c["id"] for c in summary["claims"]} == {"none_unlearns", "isr_keeps"}

    rep = cli("report", "--results", str(results), env=env)
    assert rep.returncode == 0, rep.stderr
    assert "my_unlearning: rebuilt summary.json" in rep.stdout and (results / "report.md").exists()
    gif = root / "agent.gif"
    ren = cli("render", "myplugin:MY_EXP", "--results", str(results), "--gif", str(gif), env=env)
    assert ren.returncode == 0, ren.stderr
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    ls = cli("list", "--results", str(results), env=env)
    assert ls.returncode == 0 and "my_unlearning" in ls.stdout


def test_the_registered_name_finds_the_same_experiment_and_its_stored_run(plugin):
    _, env, results, first = plugin
    assert first.returncode == 0, first.stderr
    again = cli("run", "my_unlearning", "--quick", "--results", str(results), "--no-progress", env=env)
    assert again.returncode == 0, again.stderr
    assert "stored results match this configuration" in again.stdout


def test_a_file_experiment_runs_from_its_path(plugin, tmp_path):
    root, env, _, _ = plugin
    path = root / "myplugin.py"
    conf = cli("config", f"{path}:MY_EXP", "--quick", env=env)
    assert conf.returncode == 0, conf.stderr
    assert "goal_reward = 0.5" in conf.stdout
    out = tmp_path / "results"
    proc = cli("run", str(path), "--quick", "--results", str(out), "--no-progress", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "my_unlearning" / "config.json").read_text())
    assert config["experiment_ref"] == str(path.resolve())
    rep = cli("report", str(out), cwd=root)  # the file is found again from another folder
    assert rep.returncode == 0, rep.stderr


def test_registered_plugins_are_listed_and_a_broken_one_is_named(plugin):
    root, env, _, _ = plugin
    broken = ENTRY_POINTS.replace("small_room = myplugin:SmallRoom", "small_room = myplugin:SmallRoom\nbroken = myplugin:NOT_THERE")
    (root / "myplugin-0.1.dist-info" / "entry_points.txt").write_text(broken)
    exps = cli("list-experiments", env=env)
    assert exps.returncode == 0, exps.stderr
    lines = exps.stdout.strip().splitlines()
    assert "my_unlearning\tregistered (paper)\tMy unlearning (a plug-in)" in lines
    assert sum("\tbuilt in (paper)\t" in line for line in lines) == 6
    assert sum("\tbuilt in (open)\t" in line for line in lines) == 7  # issues 14, 15 and 16
    ls = cli("list", env=env)
    assert ls.returncode == 0, ls.stderr
    assert "small_room" in ls.stdout and "generous" in ls.stdout and "isr_too" in ls.stdout
    assert "internalize.worlds:broken failed to load" in ls.stderr


def test_bad_experiment_references_are_one_line_errors(tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n")
    (tmp_path / "boom.py").write_text("raise RuntimeError('no')\n")
    for ref, fragment in [("nosuchmodule_xyz:EXP", "cannot import 'nosuchmodule_xyz'"),
                          (f"{tmp_path}/missing.py", "does not exist"),
                          (f"{tmp_path}/empty.py", "declares 0 experiments"),
                          (f"{tmp_path}/empty.py:x", "has no Experiment named 'x'"),
                          (f"{tmp_path}/boom.py", "failed to import: RuntimeError: no"),
                          ("not_an_experiment", "unknown experiment")]:
        proc = cli("run", ref, "--results", str(tmp_path / "r"))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and fragment in proc.stderr, (ref, proc.stderr)
        assert not (tmp_path / "r").exists()
