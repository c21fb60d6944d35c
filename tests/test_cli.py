"""The command line, end to end: a tiny real pipeline run, its output contract, and bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TINY = ["--seeds", "2", "--socialize-steps", "4096", "--autonomy-steps", "4096", "--no-progress"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "internalize.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=dict(os.environ))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(tiny_unlearning_run, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``internalize run unlearning`` with TINY (the session's one tiny run, tests/conftest.py:
    the same command, also writing TensorBoard logs), in a folder of this module's own."""
    results, _, proc = tiny_unlearning_run
    at = proc.args.index("run")
    assert proc.args[at:at + 2 + len(TINY)] == ["run", "unlearning", *TINY], proc.args
    out = tmp_path_factory.mktemp("results")
    shutil.copytree(results, out, dirs_exist_ok=True)
    return out, proc


def test_tiny_pipeline_run_writes_the_output_contract(tiny_run):
    out, proc = tiny_run
    assert proc.returncode == 0, proc.stderr
    folder = out / "unlearning"
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("experiment", "preset", "seeds", "budget", "wall_seconds", "claims", "per_seed"):
        assert key in summary, key
    assert summary["experiment"] == "unlearning" and summary["preset"] == "fast" and summary["seeds"] == 2
    assert summary["budget"] == {"socialize_steps": 4096, "autonomy_steps": 4096}
    assert summary["wall_seconds"] > 0
    assert {c["id"] for c in summary["claims"]} == {"none_unlearns", "isr_keeps"}
    for c in summary["claims"]:
        assert set(c) >= {"id", "statement", "holds", "value", "p_value"}
        assert isinstance(c["holds"], bool)
    end = summary["per_seed"]["end_of_autonomy_goals_per_episode"]
    assert set(end) == {"oracle", "none", "isr"} and all(len(v) == 2 for v in end.values())
    assert (folder / "unlearning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((folder / "config.json").read_text())
    assert config["versions"]["jax"] and config["root_seed"] == 0 and len(config["seed_keys"]) == 2
    assert config["preset_config"]["ppo"]["network"] == "mlp"
    with np.load(folder / "curves.npz") as curves:
        assert curves["socialize/goals_per_episode"].shape == (2, 2)  # seeds x updates (4096 / 2048)
        assert curves["autonomy/goals_per_episode"].shape == (2, 3, 2)  # seeds x conditions x updates
        assert curves["isr/pearson"].shape == (2, 1)  # seeds x socialization prefixes
    assert "unlearning:" in proc.stdout and "results in" in proc.stdout


def test_report_rebuilds_summary_from_files(tiny_run, capsys):
    out, _ = tiny_run
    folder = out / "unlearning"
    before = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").unlink()
    (folder / "unlearning.png").unlink()
    code, _, err = run_main(capsys, "report", str(out))
    assert code == 0, err
    after = json.loads((folder / "summary.json").read_text())
    assert after == before
    assert (folder / "unlearning.png").exists()


BAD_ARGUMENTS = [
    (["run", "nosuch"], "unknown experiment 'nosuch'"),
    (["run", "unlearning", "--preset", "turbo"], "unknown preset 'turbo'"),
    (["run", "unlearning", "--seeds", "0"], "must be at least 1"),
    (["run", "unlearning", "--seeds", "ten"], "expected a whole number"),
    (["run", "unlearning", "--seed", "-3"], "must be in 0..2^32-1"),
    (["run", "unlearning", "--autonomy-steps", "0"], "must be at least 1"),
    (["run", "unlearning", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.parametrize("args, fragment", BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_and_status_2(tmp_path, capsys, args, fragment):
    """In this process (an interpreter per case cost seconds each); the next test checks the
    same through the command line's own process, its exit status and all it writes to stderr."""
    code, _, err = run_main(capsys, *args, "--out", str(tmp_path / "out")) if args and args[0] == "run" else \
        run_main(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("internalize: error:") and fragment in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, fragment", [BAD_ARGUMENTS[2], BAD_ARGUMENTS[7], BAD_ARGUMENTS[8]])
def test_bad_arguments_end_the_process_with_status_2_and_one_line(tmp_path, args, fragment):
    proc = cli(*args, "--out", str(tmp_path / "out")) if args and args[0] == "run" else cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("internalize: error:") and fragment in lines[0]
    assert not (tmp_path / "out").exists()


def test_output_dir_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("precious")
    code, _, err = run_main(capsys, "run", "unlearning", *TINY, "--out", str(target))
    assert code == 2 and "is not a directory" in err
    assert len(err.strip().splitlines()) == 1
    assert target.read_text() == "precious"


def test_output_dir_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run_main(capsys, "run", "unlearning", *TINY, "--out", str(tmp_path / "file" / "sub"))
    assert code == 2 and "not a directory" in err


def test_unwritable_output_dir_is_refused(capsys):
    # /sys refuses new files even to root (permission bits alone do not stop root).
    code, _, err = run_main(capsys, "run", "unlearning", *TINY, "--out", "/sys/internalize-results")
    assert code == 2 and "not writable" in err
    assert not Path("/sys/internalize-results").exists()


def test_bad_input_leaves_existing_results_untouched(tiny_run, capsys):
    out, _ = tiny_run
    before = snapshot(out)
    code, _, _ = run_main(capsys, "run", "unlearning", "--preset", "nosuch", "--out", str(out))
    assert code == 2
    assert snapshot(out) == before


def test_report_of_missing_dir_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_main(capsys, "report", str(tmp_path / "nothing"))
    assert code == 2 and "does not exist" in err


def test_list_names_experiments_presets_conditions_and_maps(capsys):
    code, out, _ = run_main(capsys, "list")
    assert code == 0
    for word in ("unlearning", "fast", "paper", "oracle", "none", "isr", "plus", "4rooms"):
        assert word in out


@pytest.mark.parametrize("make_path", [lambda t: t / "missing", lambda t: (t / "f.txt", (t / "f.txt").write_text("x"))[0]])
def test_list_of_a_bad_dir_is_a_usage_error(tmp_path, capsys, make_path):
    path = make_path(tmp_path)
    code, _, err = run_main(capsys, "list", str(path))
    assert code == 2 and err.count("\n") == 1 and str(path) in err


def test_output_into_a_closed_pipe_ends_quietly(monkeypatch):
    """`internalize list | head -1`: the reader has gone; no traceback, status 0."""
    from internalize import cli as cli_

    r, w = os.pipe()
    os.close(r)  # the reader went away: every write now fails with EPIPE
    out = os.fdopen(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", out)
    try:
        assert cli_.main(["list"]) == 0
    finally:
        monkeypatch.undo()
        try:
            out.close()
        except BrokenPipeError:
            pass


def test_version_license_and_citation():
    import internalize

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"internalize {internalize.__version__}"
    root = Path(__file__).resolve().parent.parent
    assert "MIT License" in (root / "LICENSE").read_text()
    citation = (root / "CITATION.cff").read_text()
    assert "cff-version" in citation and "Value Internalization" in citation and "Kleiman-Weiner" in citation


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The command line in this process (no interpreter to start): (status, stdout, stderr)."""
    from internalize import cli as cli_

    code = cli_.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_results_folder_has_one_name_in_every_command_and_the_old_spellings_still_work(tiny_run, capsys):
    out, proc = tiny_run
    assert proc.returncode == 0, proc.stderr
    for args in (["list", "--results", str(out)], ["list", str(out)]):
        code, stdout, _ = run_main(capsys, *args)
        assert code == 0 and "unlearning" in stdout, args
    for args in (["report", "--results", str(out)], ["report", str(out)]):
        code, stdout, _ = run_main(capsys, *args)
        assert code == 0 and "unlearning: rebuilt summary.json" in stdout, args
    code, stdout, _ = run_main(capsys, "run", "unlearning", *TINY, "--results", str(out))  # --out: the old spelling
    assert code == 0 and "stored results match" in stdout
    code, _, err = run_main(capsys, "report", str(out), "--results", str(out / "elsewhere"))
    assert code == 2 and "two results folders named" in err
    from internalize import cli as cli_

    for argv in (["run", "unlearning"], ["reproduce"], ["render", "unlearning"], ["report"], ["list"]):
        parser = cli_._build_parser(argv)
        sub = next(a for a in parser._actions if a.dest == "command").choices[argv[0]]
        assert "--results DIR" in sub.format_help(), argv[0]


def test_the_experiment_is_found_for_help_whatever_the_order_of_flags():
    from internalize import cli as cli_

    assert cli_._prescan(["run", "--preset", "paper", "unlearning"])[:2] == ("unlearning", "paper")
    assert cli_._prescan(["run", "--quick", "ood_walls", "--seeds", "2"]) == ("ood_walls", "fast", True)
    parser = cli_._build_parser(["run", "--preset", "paper", "unlearning", "--ppo.lr", "1e-3"])
    args = parser.parse_args(["run", "--preset", "paper", "unlearning", "--ppo.lr", "1e-3"])
    assert vars(args)["set:ppo.lr"] == "1e-3"


def test_a_declared_caregiver_that_is_not_one_is_refused_before_the_run():
    import dataclasses

    from internalize.config import PRESETS
    from internalize.experiments import EXPERIMENTS, configure, settings_for

    exp, preset = EXPERIMENTS["unlearning"], PRESETS["fast"]
    s = dataclasses.replace(settings_for(exp, preset), caregiver=lambda info: 0.4)
    with pytest.raises(TypeError, match="is not a caregiver"):
        configure(exp, preset, s)
