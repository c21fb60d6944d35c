"""The results store (issue 6): layout, Parquet curves, reuse and never overwriting, settings
from the command line and TOML files, GIFs of stored policies, stills, TensorBoard logs."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TINY = ["--seeds", "2", "--socialize-steps", "4096", "--autonomy-steps", "4096", "--no-progress"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "internalize.cli", *args], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ))


def main(capsys, *args: str) -> subprocess.CompletedProcess:
    """The command line in this process (an interpreter per call would cost seconds each)."""
    from internalize import cli as cli_

    code = cli_.main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def stored(tiny_unlearning_run, tmp_path_factory):
    """``internalize run unlearning`` with TINY and ``--tensorboard`` (the session's one tiny run,
    tests/conftest.py), copied into this module's own folders."""
    results, logs, proc = tiny_unlearning_run
    at = proc.args.index("run")
    assert proc.args[at:at + 2 + len(TINY)] == ["run", "unlearning", *TINY] and "--tensorboard" in proc.args, proc.args
    assert proc.returncode == 0, proc.stderr
    root = tmp_path_factory.mktemp("store")
    out, tb = root / "results", root / "tb"
    shutil.copytree(results, out)
    shutil.copytree(logs, tb)
    return out, tb


def test_a_run_stores_config_versions_seeds_curves_parameters_and_checksums(stored):
    from internalize import results

    out, _ = stored
    folder = out / "unlearning"
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "curves.npz", "curves.parquet", "params.msgpack", "manifest.json", "summary.json",
            "unlearning.png"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["versions"]["jax"] and len(config["seed_keys"]) == 2 and config["settings"]["ppo.lr"] == 3e-3
    assert config["run_id"] and config["settings"]["seeds"] == 2
    assert results.verify(folder) == []
    params = results.read_msgpack(folder / "params.msgpack")
    first = lambda tree: next(iter(jax_leaves(tree)))  # noqa: E731
    assert first(params["socialize"]).shape[0] == 2 and first(params["autonomy"]).shape[0] == 2 * 3


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def test_parquet_curves_hold_every_per_update_metric_in_tidy_rows(stored):
    from internalize import results

    folder = stored[0] / "unlearning"
    table = results.read_parquet(folder / "curves.parquet")
    curves = results.read_npz(folder / "curves.npz")
    config = json.loads((folder / "config.json").read_text())
    soc = table["phase"] == "socialize"
    aut = table["phase"] == "autonomy"
    assert soc.sum() == 2 * 2 and aut.sum() == 2 * 3 * 2  # seeds x updates; seeds x arms x updates
    for s in range(2):
        rows = soc & (table["seed"] == s)
        np.testing.assert_allclose(table["goals_per_episode"][rows], curves["socialize/goals_per_episode"][s])
        for a, arm in enumerate(config["arms"]):
            rows = aut & (table["seed"] == s) & (table["arm"] == arm)
            np.testing.assert_allclose(table["true_return"][rows], curves["autonomy/true_return"][s, a], rtol=1e-6)
            assert list(table["update"][rows]) == [1, 2] and list(table["env_steps"][rows]) == [2048, 4096]


def test_same_settings_reuse_and_changed_settings_get_a_new_run(stored, tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(stored[0], out)
    before = snapshot(out / "unlearning")
    again = main(capsys, "run", "unlearning", *TINY, "--out", str(out))
    assert again.returncode == 0 and "stored results match this configuration; not rerun" in again.stdout
    # Another root seed: a different computation, with the same compiled programs (loaded from the
    # compilation cache; a changed learning rate would compile them again).
    changed = main(capsys, "run", "unlearning", *TINY, "--out", str(out), "--seed", "5")
    assert changed.returncode == 0, changed.stderr
    new = [p for p in out.iterdir() if p.name.startswith("unlearning-")]
    assert len(new) == 1 and json.loads((new[0] / "config.json").read_text())["settings"]["seed"] == 5
    after = snapshot(out / "unlearning")
    assert {k: v for k, v in after.items() if k.endswith((".npz", ".parquet", ".msgpack", "config.json"))} == \
        {k: v for k, v in before.items() if k.endswith((".npz", ".parquet", ".msgpack", "config.json"))}
    listing = main(capsys, "list", str(out))
    assert listing.returncode == 0 and new[0].name in listing.stdout and "\nunlearning " in listing.stdout
    shutil.rmtree(out / "unlearning")  # the changed run is found again where it is, not redone
    found = main(capsys, "run", "unlearning", *TINY, "--out", str(out), "--seed", "5")
    assert "not rerun" in found.stdout and str(new[0]) in found.stdout and not (out / "unlearning").exists()


def test_a_damaged_stored_file_is_detected_and_recomputed(stored, tmp_path, capsys):
    from internalize import results

    out = tmp_path / "results"
    shutil.copytree(stored[0], out)
    curves = out / "unlearning" / "curves.npz"
    good = curves.read_bytes()
    curves.write_bytes(good[: len(good) // 2])  # truncated
    assert results.verify(out / "unlearning")
    proc = main(capsys, "run", "unlearning", *TINY, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "not rerun" not in proc.stdout and results.verify(out / "unlearning") == []
    assert not [p for p in out.iterdir() if p.name.startswith("unlearning-")]  # recomputed in place


def test_config_prints_every_setting_as_toml_that_reads_back(tmp_path, capsys):
    shown = main(capsys, "config", "unlearning", "--quick", "--ppo.lr", "0.002", "--isr.hidden", "32,32",
                 "--presence.leave.end", "0.5")
    assert shown.returncode == 0, shown.stderr
    path = tmp_path / "u.toml"
    path.write_text(shown.stdout)
    import tomllib

    data = tomllib.loads(shown.stdout)
    assert data["ppo"]["lr"] == 0.002 and data["isr"]["hidden"] == [32, 32] and data["seeds"] == 6
    assert data["presence"]["leave"]["end"] == 0.5 and data["world"]["socialize"]["n_walls"] == 3
    again = main(capsys, "config", "unlearning", "--quick", "--config", str(path))
    assert again.stdout.splitlines()[1:] == shown.stdout.splitlines()[1:]
    flag_wins = main(capsys, "config", "unlearning", "--config", str(path), "--ppo.lr", "0.005")
    assert tomllib.loads(flag_wins.stdout)["ppo"]["lr"] == 0.005


def test_help_lists_each_setting_with_its_description_and_default():
    from internalize import config as cfg
    from internalize.config import PRESETS
    from internalize.experiments import EXPERIMENTS, settings_for

    proc = cli("run", "ood_walls", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for st in cfg.settings(settings_for(EXPERIMENTS["ood_walls"], PRESETS["fast"])):
        if st.name in ("seeds", "seed"):
            continue
        assert f"--{st.name}" in text, st.name
        assert st.help, f"{st.name} has no description"
        assert " ".join(st.help.split())[:30] in text, st.name
    assert "(default: 1)" in text and "--world.autonomy.n_walls" in text and "(default: 5)" in text
    assert "--ppo.lr" in text and "(default: 0.003)" in text


@pytest.mark.parametrize("toml, fragment", [
    ("[ppo]\nlr = 'fast'\n", "setting ppo.lr: expected float"),
    ("[ppo]\nlearning_rate = 0.1\n", "unknown setting 'ppo.learning_rate'"),
    ("seeds = 2.5\n", "setting seeds: expected int"),
    ("[ppo\nlr = 1\n", "is not valid TOML"),
    ("[world.socialize]\nmap_name = 'moon'\n", "unknown map 'moon'"),
    ("[presence.leave]\nstart = 1.5\n", "presence start must be in [0, 1]"),
    ("[ppo]\nminibatch_size = 1000\n", "must divide"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, toml, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    out = tmp_path / "results"
    proc = main(capsys, "run", "unlearning", "--config", str(path), "--out", str(out), "--no-progress")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert fragment in proc.stderr and not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--ppo.lr", "abc"], "setting ppo.lr: expected a number"),
    (["--ppo.normalize_advantage", "maybe"], "expected true or false"),
    (["--isr.network", "transformer"], "unknown isr.network"),
    (["--ppo.n_envs", "2.5"], "expected a whole number"),
])
def test_bad_setting_flags_are_one_line_errors(tmp_path, capsys, args, fragment):
    proc = main(capsys, "run", "unlearning", *args, "--out", str(tmp_path / "r"), "--no-progress")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and fragment in proc.stderr, proc.stderr


def test_render_writes_a_gif_of_a_stored_policy_acting(stored, tmp_path, capsys):
    from PIL import Image

    out = stored[0]
    gif = tmp_path / "isr.gif"
    proc = cli("render", "unlearning", "--condition", "isr", "--seed", "1", "--phase", "autonomy",
               "--results", str(out), "--out", str(gif))
    assert proc.returncode == 0, proc.stderr
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 20  # one greedy coin-world episode
    bad = main(capsys, "render", "unlearning", "--condition", "frozen", "--results", str(out))
    assert bad.returncode == 2 and "no condition or arm 'frozen'" in bad.stderr
    missing = main(capsys, "render", "prosocial", "--results", str(out))
    assert missing.returncode == 2 and "no stored run of prosocial" in missing.stderr


def test_report_embeds_one_still_per_condition(stored, tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(stored[0], out)
    for p in out.glob("unlearning/still_*.png"):
        p.unlink()
    proc = main(capsys, "report", str(out))
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    for cond in ("oracle", "none", "isr"):
        assert (out / "unlearning" / f"still_{cond}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"(unlearning/still_{cond}.png)" in report


def _events(path: Path) -> list:
    """Records of a TensorBoard event file (TFRecord framing), parsed with tensorboardX's protos."""
    from tensorboardX.proto import event_pb2

    data, events, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
        i += 12 + n + 4
    return events


def test_tensorboard_event_files_hold_every_run_curve(stored):
    tb = stored[1] / "unlearning"
    runs = sorted(p.name for p in tb.iterdir())
    assert runs == sorted([f"seed{s}_{a}" for s in range(2) for a in ("socialize", "oracle", "none", "isr")]
                          + ["summary"])
    events = _events(next((tb / "seed1_isr").glob("events.out.tfevents.*")))
    tags = {(v.tag, e.step) for e in events for v in e.summary.value}
    assert ("autonomy/goals_per_episode", 4096 + 2048) in tags and ("autonomy/true_return", 4096 + 4096) in tags


# ---------------------------------------------------------------------------------------------
# Identity from the whole declaration (issue 13, item 3)


def _other_analyze(curves, config):
    return [], {}


def _other_plot(curves, config, folder):
    return []


def _changed(name: str, value):
    """Another value of the same kind, for every kind of field a declaration has."""
    import dataclasses

    from internalize import caregivers
    from internalize.config import PresenceSpec
    from internalize.experiments import scale
    from internalize.experiments.ood import conv_isr
    from internalize.experiments.spec import Variant
    from internalize.readiness import IsrConverged
    from internalize.worlds import CoinWorld

    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        from internalize.experiments import noisy_caregiver

        return {"caregiver": caregivers.GoalPraise(0.5), "isr_config": conv_isr, "world": CoinWorld(n_walls=2),
                "label": "other", "quick_seeds": 3, "map_name": "plus", "design": noisy_caregiver.Design(),
                "arms_of": noisy_caregiver.arms_of, "caregivers_per_batch": 2, "max_steps": 30,
                "presence": PresenceSpec(0.1, 0.1), "socialize_presence": PresenceSpec(0.5, 0.5),
                "leave_when": IsrConverged(), "variants_of": scale.variants_of, "socialize_gib": 1.0,
                "reward_model": "irl", "autonomy_world": CoinWorld(n_walls=4), "arms": (), "isr_network": "cnn"}[name]
    if isinstance(value, tuple):
        if not value and name == "variants":
            return (Variant("side6", CoinWorld(size=6)),)
        return value[:-1] if value else ((0.5,) if name == "isr_prefixes" else (CoinWorld(n_walls=2),))
    if dataclasses.is_dataclass(value):
        first = dataclasses.fields(value)[0]
        return dataclasses.replace(value, **{first.name: _changed(first.name, getattr(value, first.name))})
    if callable(value):
        return {"analyze": _other_analyze, "plot": _other_plot}[name]
    raise AssertionError(f"no change known for {name}={value!r}")


def test_changing_any_field_of_a_declaration_gets_a_new_folder(tmp_path):
    """Every field of the experiment, of its arms, worlds, caregiver and reward model, and every
    setting, is part of a run's identity: changing any one of them finds another folder."""
    import dataclasses

    from internalize import caregivers, config as cfg, results
    from internalize.config import PRESETS
    from internalize.experiments import EXPERIMENTS, Arm, identity, run_folder, settings_for

    preset = PRESETS["fast"]
    base = dataclasses.replace(EXPERIMENTS["unlearning"], caregiver=caregivers.GoalPraise(0.4),
                               arms=(Arm("oracle"), Arm("isr", caregiver=caregivers.GoalPraise(0.3), label="x")))
    s = settings_for(base, preset)
    folder = tmp_path / base.name
    results.write_json(folder / "config.json", identity(base, preset, s))
    assert run_folder(tmp_path, base, preset, s)[0] == folder  # the same declaration finds its folder

    variants = {}
    for f in dataclasses.fields(base):
        variants[f.name] = dataclasses.replace(base, **{f.name: _changed(f.name, getattr(base, f.name))})
    for f in dataclasses.fields(Arm):
        arm = base.arms[1]
        variants[f"arms[1].{f.name}"] = dataclasses.replace(
            base, arms=(base.arms[0], dataclasses.replace(arm, **{f.name: _changed(f.name, getattr(arm, f.name))})))
    for part in ("socialize_world", "autonomy_world", "caregiver", "reward_model"):
        obj = getattr(base, part)
        for f in dataclasses.fields(obj):
            changed = dataclasses.replace(obj, **{f.name: _changed(f.name, getattr(obj, f.name))})
            variants[f"{part}.{f.name}"] = dataclasses.replace(base, **{part: changed})
    assert len(variants) > 35
    for what, exp in variants.items():
        assert run_folder(tmp_path, exp, preset, s)[0] != folder, f"changing {what} kept the folder"
    for st in cfg.settings(s):
        s2 = cfg.override(s, {st.name: _changed(st.name.rsplit(".", 1)[-1], st.default)})
        assert run_folder(tmp_path, base, preset, s2)[0] != folder, f"changing setting {st.name} kept the folder"
