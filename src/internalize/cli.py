"""The ``internalize`` command line: parsing and dispatch only.

    internalize run EXPERIMENT [--quick] [--preset fast|paper] [--config FILE] [--SETTING VALUE ...]
    internalize reproduce [--quick] [--preset fast|paper] [--config FILE] [--SETTING VALUE ...]
    internalize config EXPERIMENT [--quick] [--preset ...] [--config FILE] [--SETTING VALUE ...]
    internalize sweep EXPERIMENT --grid NAME=V1,V2 [--grid ...] [--config FILE] [--ray [ADDRESS]] [--quick] ...
    internalize render EXPERIMENT [--condition isr] [--seed 0] [--phase autonomy]
    internalize report [--results DIR] [--tensorboard DIR]
    internalize bench [--json]
    internalize list [--results DIR]
    internalize list-experiments
    internalize --version

EXPERIMENT is a built-in or registered name (``internalize list-experiments``), or a user's
experiment: ``mypkg.mymod:EXPERIMENT``, ``path/to/file.py:EXPERIMENT`` or ``path/to/file.py``.
The results folder is ``--results DIR`` in every command (default ``results``); the older
spellings stay as aliases (``run --out``, ``report DIR``, ``list DIR``).

Every setting of a run (``internalize config EXPERIMENT`` prints them all) can be given as
``--ppo.lr 3e-3`` or in a TOML file (``--config FILE``); the command line wins over the file.

Bad input gets one line on stderr that names the problem and exit status 2; it is checked
before any work starts, so nothing is written.

What does not live here: any computation, file layout or claim (the package's modules).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
NOT_SETTINGS = ("seeds", "seed")  # have their own flags (--seeds, --seed)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _nonnegative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number at least 0, got {text}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be in 0..2^32-1, got {v}")
    return v


def _prescan(argv: list[str]) -> tuple[str | None, str, bool]:
    """The experiment, preset and quick flag named on a command line, before parsing it (so that
    ``--help`` can show each setting's default for them)."""
    name = None
    if argv and argv[0] in ("run", "config", "sweep"):
        # The first word that is neither a flag nor a flag's value (`run --preset paper unlearning`).
        switches = {"--quick", "--no-progress", "--ignore-memory-check", "-h", "--help", "--yes", "--ray"}
        takes_value = False
        for a in argv[1:]:
            if a.startswith("-"):
                takes_value = a not in switches and "=" not in a
            elif takes_value:
                takes_value = False
            else:
                name = a
                break
    preset = "fast"
    for i, a in enumerate(argv):
        if a == "--preset" and i + 1 < len(argv):
            preset = argv[i + 1]
        elif a.startswith("--preset="):
            preset = a.split("=", 1)[1]
    return name, preset, "--quick" in argv


def _find(name: str):
    """``(experiment, reference)`` a command line names; UsageError (one line) if none."""
    from .experiments import registry

    try:
        return registry.resolve(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _setting_defaults(name: str | None, preset_name: str, quick: bool) -> dict[str, tuple]:
    """{dotted setting: (type, default text, help)} for one experiment, or common to all (reproduce)."""
    from . import config as cfg
    from .config import PRESETS
    from .experiments import EXPERIMENTS, settings_for

    preset = PRESETS.get(preset_name, PRESETS["fast"])
    if name:
        try:
            exps = [_find(name)[0]]
        except UsageError:
            return {}  # reported when the arguments are parsed
    else:
        exps = list(EXPERIMENTS.values())
    per_exp = [{st.name: st for st in cfg.settings(settings_for(e, preset, quick=quick))} for e in exps]
    out = {}
    for key, st in per_exp[0].items():
        if key in NOT_SETTINGS or not all(key in d for d in per_exp):
            continue
        if not name and key.startswith(("world.", "caregiver.")):
            continue  # worlds and caregivers differ in kind between experiments: set them per experiment (run)
        same = all(d[key].default == st.default for d in per_exp)
        default = _show(st.default) if same else "per experiment, see internalize config EXPERIMENT"
        out[key] = (st.type, default, st.help)
    return out


def _show(v) -> str:
    if isinstance(v, tuple):
        return ",".join(str(x) for x in v) or "(empty)"
    if v is None:
        return "none"
    return str(v).lower() if isinstance(v, bool) else str(v)


EXPERIMENT_HELP = ("a built-in or registered experiment (internalize list-experiments), or your own: "
                   "module:EXPERIMENT, path/to/file.py:EXPERIMENT or path/to/file.py")


def _build_parser(argv: list[str] | None = None) -> _Parser:
    from . import __version__
    from . import config as cfg
    from .config import PRESETS
    from .experiments import EXPERIMENTS

    argv = list(sys.argv[1:] if argv is None else argv)
    exp_name, preset_name, quick = _prescan(argv)
    p = _Parser(prog="internalize", description="Value internalization from social reward (Rong & "
                "Kleiman-Weiner, 2024): socialize, internalize, go autonomous.")
    p.add_argument("--version", action="version", version=f"internalize {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    def settings_flags(sp, name: str | None):
        sp.add_argument("--preset", default="fast", help=f"learner preset: {' | '.join(PRESETS)} (default fast)")
        sp.add_argument("--quick", action="store_true", help="the quick budget (shows every effect in minutes)")
        sp.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="a TOML file of settings (as `internalize config` prints); flags win over it")
        sp.add_argument("--seeds", type=_positive_int, default=None,
                        help="independent runs (default 10; some experiments' quick budgets use fewer)")
        sp.add_argument("--seed", type=_seed, default=None, help="root seed of the run (default 0)")
        sp.add_argument("--socialize-steps", type=_positive_int, default=None,
                        help="same as --budget.socialize_steps")
        sp.add_argument("--autonomy-steps", type=_positive_int, default=None,
                        help="same as --budget.autonomy_steps")
        g = sp.add_argument_group("settings", "each setting of the run; defaults shown are for "
                                  + (f"{name}, " if name else "every experiment, ")
                                  + f"preset {preset_name}{', quick budget' if quick else ''}")
        for key, (typ, default, help_) in _setting_defaults(name, preset_name, quick).items():
            flags = [f"--{key}"] + ([f"--{key.replace('_', '-')}"] if "_" in key else [])
            g.add_argument(*flags, dest=f"set:{key}", default=None, metavar=cfg.type_name(typ),
                           help=f"{help_} (default: {default})".replace("%", "%%"))

    def results_flag(sp, *aliases: str):
        sp.add_argument("--results", *aliases, dest="results", type=Path, default=None, metavar="DIR",
                        help="the results folder (default results/)"
                        + (f"; {' and '.join(aliases)} is the same" if aliases else ""))

    def output_flags(sp):
        results_flag(sp, "--out")
        sp.add_argument("--no-progress", action="store_true", help="no live progress bar")
        sp.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                        help="also write TensorBoard event files of every run's curves here (needs tensorboardX)")
        sp.add_argument("--checkpoint-every", type=_nonnegative_float, default=60.0, metavar="SECONDS",
                        help="checkpoint a run in progress this often (at chunk boundaries; default 60); "
                             "a rerun of a crashed run resumes from its last checkpoint")
        sp.add_argument("--ignore-memory-check", action="store_true",
                        help="run even when the run's estimated peak memory exceeds the memory available")

    r = sub.add_parser("run", help="run one experiment (reusing stored results of the same settings)")
    r.add_argument("experiment", help=EXPERIMENT_HELP)
    settings_flags(r, exp_name)
    output_flags(r)

    rp = sub.add_parser("reproduce", help="run every experiment (skipping stored, matching results); write report.md")
    rp.add_argument("--suite", default="paper", metavar="SUITE",
                    help="paper (the paper's experiments, SPEC 7; default), open (the open questions, SPEC 9) or all")
    rp.add_argument("--only", default=None, metavar="NAMES",
                    help=f"only these experiments, comma-separated (any suite: {', '.join(EXPERIMENTS)})")
    settings_flags(rp, None)
    output_flags(rp)

    c = sub.add_parser("config", help="print an experiment's resolved settings as TOML (defaults, file, flags)")
    c.add_argument("experiment", help=EXPERIMENT_HELP)
    settings_flags(c, exp_name)

    sw = sub.add_parser("sweep", help="run a grid of settings (points batched where only traced numbers differ), "
                                      "each point a run folder; write sweep.json, sweep.parquet, sweep.png")
    sw.add_argument("experiment", help=EXPERIMENT_HELP)
    sw.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                    help="a swept setting and its values (several --grid: their product); values of a list "
                         "setting are separated by ';' (ppo.hidden=32,32;64,64)")
    settings_flags(sw, exp_name)
    results_flag(sw, "--out")
    sw.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="run the batches as Ray tasks: alone, on a Ray instance started on this machine; with an "
                         "address (host:port, or auto), on that cluster (needs pip install 'internalize[ray]')")
    sw.add_argument("--ray-cpus", type=_positive_int, default=None, metavar="N",
                    help="CPUs each Ray task asks for (default: this machine's count, one batch per node of its size)")
    sw.add_argument("--batch", type=_positive_int, default=None, metavar="N",
                    help="at most N points per program (default: as many as fit in memory; 1: one after another)")
    sw.add_argument("--yes", action="store_true", help="run a grid of more points than "
                    "the 64 a sweep runs unasked")
    sw.add_argument("--no-progress", action="store_true", help="no live progress bar")

    rd = sub.add_parser("render", help="write a GIF of a stored run's agent acting (drawn from state)")
    rd.add_argument("experiment", help=EXPERIMENT_HELP)
    rd.add_argument("--condition", default="isr", help="condition or arm name (default isr)")
    rd.add_argument("--seed", type=_seed, default=0, help="which seed's policy (default 0)")
    rd.add_argument("--phase", choices=("socialize", "autonomy"), default="autonomy",
                    help="the policy at the end of this phase (default autonomy)")
    results_flag(rd)
    rd.add_argument("--run", default=None, help="run folder name in it (default: the experiment's newest run)")
    rd.add_argument("--episodes", type=_positive_int, default=1, help="episodes in the GIF (default 1)")
    rd.add_argument("--gif", "--out", dest="gif", type=Path, default=None,
                    help="GIF path (default <run folder>/render_<condition>_<phase>_seed<seed>.gif); --out is the same")

    ca = sub.add_parser("caregiver-app", help="a browser app where a person is the caregiver (serve), "
                                              "or all its sessions as one Parquet table (export)")
    ca.add_argument("action", nargs="?", choices=("serve", "export"), default="serve",
                    help="serve (default): start the app; export: write every judgement as Parquet")
    ca.add_argument("--data", type=Path, default=Path("caregiver-data"), metavar="DIR",
                    help="the study's folder: study.sqlite and each finished session's results (default caregiver-data)")
    ca.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    ca.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1, this machine only)")
    ca.add_argument("--out", type=Path, default=None, metavar="FILE",
                    help="export: the Parquet file (default DIR/judgements.parquet; an existing file is not overwritten)")
    from .caregiver_app.study import StudyConfig

    study_defaults = StudyConfig()
    for f in dataclasses.fields(StudyConfig):
        if f.name in ("isr_hidden",):
            continue
        kind = type(getattr(study_defaults, f.name))
        ca.add_argument(f"--{f.name.replace('_', '-')}", dest=f"study:{f.name}", type=kind, default=None,
                        help=f"study setting (default {getattr(study_defaults, f.name)}); a --data folder keeps "
                             "the settings it was made with")

    rep = sub.add_parser("report", help="rebuild summaries and figures from stored results")
    rep.add_argument("dir", nargs="?", type=Path, default=None, metavar="DIR", help="same as --results DIR")
    results_flag(rep)
    rep.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                     help="also write TensorBoard event files of every run's curves here (needs tensorboardX)")

    b = sub.add_parser("bench", help="training throughput per preset")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--repeats", type=_positive_int, default=3)
    b.add_argument("--seeds", type=_positive_int, default=10, help="runs batched together (default 10)")
    b.add_argument("--anchor", metavar="PYTHON", default=None,
                   help="also time the authors' stack (../shared/anchors/sb3_coin.py) with this Python, side by side")
    b.add_argument("--anchor-steps", type=_positive_int, default=8192, help="env steps per anchor repeat (default 8192)")
    b.add_argument("--scaling", action="store_true",
                   help="also measure throughput against runs batched (1-64) and world size (5-19)")
    b.add_argument("--profile", action="store_true",
                   help="also time one update by parts: environment, policy forward, PPO learning, ISR reward")
    b.add_argument("--adapters", action="store_true",
                   help="instead: the Gymnasium adapter (bare, wrapped), its vector env (N = 1, 16, 64) and the "
                        "PettingZoo env, random actions; with --anchor, beside MiniGrid's coin world")
    b.add_argument("--steps", type=_positive_int, default=25_600, help="--adapters: env steps per case and repeat")
    b.add_argument("--no-sweep", action="store_true",
                   help="skip the sweep case (8 learning rates batched against one after another)")
    b.add_argument("--out", type=Path, default=None, help="write bench.json (and the scaling figure) here")

    ls = sub.add_parser("list", help="experiments, presets, conditions, worlds, caregivers, reward models and maps; "
                                     "with --results DIR, the runs stored there")
    ls.add_argument("dir", nargs="?", type=Path, default=None, metavar="DIR", help="same as --results DIR")
    results_flag(ls)

    sub.add_parser("list-experiments", help="built-in and registered experiments, a line each")
    return p


def _results_dir(args, default: Path | None = Path("results")) -> Path | None:
    """The results folder a command names (--results, or an old spelling), or ``default``."""
    given = [d for d in (getattr(args, "results", None), getattr(args, "dir", None)) if d is not None]
    if len(given) == 2 and given[0] != given[1]:
        raise UsageError(f"two results folders named: {str(given[0])!r} and {str(given[1])!r}; name one")
    return given[0] if given else default


def setup_jax() -> None:
    """Persistent compilation cache, so a rerun does not compile again."""
    from . import devices

    devices.enable_compilation_cache()


class _ProgressBar:
    """A live progress bar (Rich) with ETA, over environment steps (or another ``unit``)."""

    def __init__(self, enabled: bool, unit: str = "env-steps"):
        self.enabled = enabled
        self.unit = unit
        self.progress = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn(self.unit), TimeElapsedColumn(), TextColumn("ETA"),
                                     TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.progress.__enter__()
        return self

    def task(self, description: str, total: int):
        if self.progress is None:
            return lambda n: None
        tid = self.progress.add_task(description, total=total)
        return lambda n: self.progress.advance(tid, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)


def _print_claims(summary: dict) -> None:
    for f in summary.get("failed_runs", []):
        print(f"  FAILED RUN: {f['message']}")
    for c in summary["claims"]:
        mark = "holds" if c["holds"] else "DOES NOT HOLD"
        p = c["p_value"]
        p_text = f"p={p:.2g}" if p is not None else "p=n/a"
        print(f"  {c['id']}: {mark} (value {c['value']:.3g}, {p_text})")


def _setting_flags(args) -> dict[str, str]:
    """The settings a command line names ({dotted name: text}): every --SETTING flag, and the
    shorthands (--seeds, --seed, --socialize-steps, --autonomy-steps)."""
    flags = {k[4:]: v for k, v in vars(args).items() if k.startswith("set:") and v is not None}
    for key, value in (("seeds", args.seeds), ("seed", args.seed), ("budget.socialize_steps", args.socialize_steps),
                       ("budget.autonomy_steps", args.autonomy_steps)):
        if value is not None:
            flags[key] = str(value)
    return flags


def _resolve(names: list[str], args) -> list[tuple]:
    """Each experiment's ``(declaration, preset, settings, reference)`` from its defaults, the
    TOML file and the flags, all checked (the memory check included, for commands that run)
    before any work starts. Raises UsageError naming the first problem."""
    from . import config as cfg
    from .config import PRESETS
    from .experiments import capacity, configure, settings_for

    if args.preset not in PRESETS:
        raise UsageError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    try:
        from_file = cfg.load_toml(args.config) if args.config else {}
    except ValueError as e:
        raise UsageError(str(e)) from None
    flags = _setting_flags(args)
    if len(names) > 1:
        worldly = [k for k in from_file if k.startswith(("world.", "caregiver."))]
        if worldly:
            raise UsageError(f"{args.config}: {worldly[0]} differs in kind between experiments; "
                             "set worlds and caregivers per experiment with `internalize run EXPERIMENT`")
    out = []
    for name in names:
        exp, ref = _find(name)
        preset = PRESETS[args.preset]
        where = f" (experiment {exp.name})" if len(names) > 1 else ""
        try:
            s = settings_for(exp, preset, quick=args.quick)
            s = cfg.override(s, from_file, parsed=True)
            s = cfg.override(s, flags, parsed=False)
            exp2, preset2 = configure(exp, preset, s)
            if not getattr(args, "ignore_memory_check", True):
                capacity.check_memory(exp2, preset2, s)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{e}{where}") from None
        out.append((exp, preset, s, ref))
    return out


def _check_out(args) -> None:
    from .results import check_writable_dir

    try:
        check_writable_dir(args.results)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.tensorboard is not None:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise UsageError("--tensorboard needs tensorboardX: pip install 'internalize[tensorboard]'") from None
        try:
            check_writable_dir(args.tensorboard)
        except ValueError as e:
            raise UsageError(str(e)) from None


def _run_experiments(resolved: list[tuple], args) -> list[dict]:
    """Run (or find stored) each resolved experiment; print where its results are and its claims."""
    from . import experiments
    from .results import check_writable_dir

    for exp, preset, s, _ in resolved:  # every run folder is checked before any work starts
        try:
            folder, _ = experiments.run_folder(args.results, exp, preset, s)
            check_writable_dir(folder)
        except ValueError as e:
            raise UsageError(str(e)) from None
    out_summaries = []
    with _ProgressBar(not args.no_progress) as bar:
        for exp, preset, s, ref in resolved:
            configured, preset2 = experiments.configure(exp, preset, s)
            total = experiments.total_steps(configured, preset2, s.seeds, s.budget)
            t0 = time.perf_counter()
            summary = experiments.run(exp, preset, s.seeds, args.results, quick=args.quick, root_seed=s.seed,
                                      progress=bar.task(exp.name, total), settings=s,
                                      checkpoint_every=args.checkpoint_every, ref=ref)
            if summary.get("resumed"):
                print(f"{exp.name}: resumed from checkpoints {', '.join(summary['resumed'])}")
            folder = Path(summary["folder"])
            if summary["reused"]:
                print(f"{exp.name}: stored results match this configuration; not rerun (results in {folder}/)")
            else:
                print(f"{exp.name}: {time.perf_counter() - t0:.1f}s wall ({summary.get('compile_seconds', 0):.1f}s "
                      f"compiling), peak memory {summary.get('peak_rss_gib', 0):.2f} GiB; results in {folder}/ "
                      f"(summary.json, {', '.join(summary['figures'])})")
            _print_claims(summary)
            if args.tensorboard is not None:
                from . import logs

                print(f"  TensorBoard: {logs.write_tensorboard(folder, args.tensorboard)}")
            out_summaries.append(summary)
    return out_summaries


def _cmd_config(args) -> None:
    from . import config as cfg

    (exp, preset, s, _), = _resolve([args.experiment], args)
    flags = " ".join(sys.argv[1:]) if sys.argv[1:2] == ["config"] else f"config {args.experiment}"
    print(f"# internalize {flags}")
    print(f"# experiment {exp.name}, preset {preset.name}{', quick budget' if args.quick else ''}. "
          "Use it with: internalize run EXPERIMENT --config FILE")
    print(cfg.to_toml(s), end="")


def _cmd_render(args) -> None:
    from . import replay

    exp, ref = _find(args.experiment)
    try:
        folder = replay.find_run(_results_dir(args), exp.name, args.run)
        out = args.gif or folder / f"render_{args.condition.replace('/', '_')}_{args.phase}_seed{args.seed}.gif"
        path = replay.render_gif(folder, args.condition, args.seed, args.phase, out, episodes=args.episodes)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    print(f"wrote {path}")


def _cmd_list() -> None:
    from . import caregivers, conditions, reward_models, worlds
    from .config import PRESETS
    from .experiments import known

    print("experiments:")
    for e in known().values():
        print(f"  {e.name}: {e.title}")
    print("presets: " + ", ".join(PRESETS))
    print("conditions:")
    for c in conditions.CONDITIONS.values():
        print(f"  {c.name}: {c.description}")
    print("worlds: " + ", ".join(worlds.known()))
    print("caregivers: " + ", ".join(caregivers.known()))
    print("reward models: " + ", ".join(reward_models.known()))
    print("maps: " + ", ".join(worlds.coin.NAMED_MAPS))
    _print_plugin_problems()


def _print_plugin_problems() -> None:
    from . import registry

    for where, why in registry.problems().items():
        print(f"  plug-in {where} failed to load: {why}", file=sys.stderr)


def _cmd_list_experiments() -> None:
    from .experiments import registry

    builtin = registry.BUILTIN
    for name, e in registry.known().items():
        origin = f"built in ({e.suite})" if name in builtin else f"registered ({e.suite})"
        print(f"{name}\t{origin}\t{e.title}")
    _print_plugin_problems()


def _cmd_list_runs(root: Path) -> None:
    """One line per stored run under ``root``: its folder, experiment, preset, seeds, budget,
    claims holding and wall time (read from its summary.json; nothing is recomputed)."""
    import json

    if not root.exists():
        raise UsageError(f"results folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise UsageError(f"results path {str(root)!r} is not a directory")
    found = sorted({p.parent for p in [*root.glob("summary.json"), *root.glob("*/summary.json")]})
    unfinished = sorted(p.parent for p in root.glob("*/config.json")
                        if not (p.parent / "manifest.json").exists() and p.parent not in found)
    if not found and not unfinished:
        print(f"no runs in {root} (no */summary.json)")
        return
    print(f"{'run':<24} {'experiment':<16} {'preset':<6} {'seeds':>5} {'socialize':>10} {'autonomy':>9} "
          f"{'claims':>7} {'wall s':>8}")
    for folder in found:
        try:
            s = json.loads((folder / "summary.json").read_text())
            claims = f"{sum(bool(c['holds']) for c in s['claims'])}/{len(s['claims'])}"
            b = s["budget"]
            print(f"{folder.name:<24} {s['experiment']:<16} {s.get('preset', '?'):<6} {s['seeds']:>5} "
                  f"{b['socialize_steps']:>10,} {b['autonomy_steps']:>9,} {claims:>7} {s['wall_seconds']:>8.1f}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"{folder.name:<24} unreadable summary.json ({type(e).__name__}: {e})")
    for folder in unfinished:
        try:
            c = json.loads((folder / "config.json").read_text())
            what = f"{c.get('experiment', '?'):<16} {c.get('preset', '?'):<6} {c.get('seeds', '?'):>5}"
        except (OSError, ValueError, AttributeError):
            what = "?"
        ckpt = " (has checkpoints)" if (folder / "checkpoint").is_dir() else ""
        print(f"{folder.name:<24} {what} unfinished{ckpt}: the same command resumes it")


def _cmd_report(args) -> None:
    from .experiments import check_schema, markdown, report
    from .results import read_json

    root = _results_dir(args)
    if not root.is_dir():
        raise UsageError(f"results directory {str(root)!r} does not exist")
    found = sorted(p.parent for p in root.glob("*/config.json"))
    if not found:
        raise UsageError(f"no experiment results (*/config.json) under {str(root)!r}")
    if args.tensorboard is not None:
        args.results = root
        _check_out(args)
    for folder in found:  # every folder is checked before anything is rewritten
        try:
            check_schema(folder, read_json(folder / "config.json"))
        except (OSError, ValueError) as e:
            raise UsageError(str(e) if "schema" in str(e) else f"{folder}/config.json is unreadable: {e}") from None
    with _ProgressBar(sys.stderr.isatty(), unit="runs") as bar:
        tick = bar.task("rebuilding", len(found))
        for folder in found:
            try:
                summary = report(folder)
            except ValueError as e:
                raise UsageError(str(e)) from None
            tick(1)
            print(f"{folder.name}: rebuilt summary.json and {', '.join(summary['figures'])}")
            _print_claims(summary)
            if args.tensorboard is not None:
                from . import logs

                print(f"  TensorBoard: {logs.write_tensorboard(folder, args.tensorboard)}")
    print(f"report: {markdown.write(root)}")
    if (root / "sweep.json").is_file():  # a sweep's folder: its table and figure too, from the points' files
        from .experiments import sweep

        try:
            files = sweep.write_files(root, read_json(root / "sweep.json"))
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"{root}/sweep.json: {e}") from None
        print(f"sweep: rebuilt {', '.join(p.name for p in files[1:])}")


def _cmd_reproduce(args) -> None:
    from .experiments import EXPERIMENTS, markdown
    from .experiments.registry import suite

    try:
        names = list(suite(args.suite))
    except ValueError as e:
        raise UsageError(f"--suite: {e}") from None
    if args.only is not None:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in EXPERIMENTS]
        if unknown or not names:
            raise UsageError(f"--only: unknown experiment {(unknown or [''])[0]!r}; "
                             f"known: {', '.join(EXPERIMENTS)}")
    resolved = _resolve(names, args)
    _check_out(args)
    setup_jax()
    t0 = time.perf_counter()
    summaries = _run_experiments(resolved, args)
    path = markdown.write(args.results, total_wall=time.perf_counter() - t0,
                          folders=[Path(s["folder"]) for s in summaries])
    failed = [c["id"] for s in summaries for c in s["claims"] if not c["holds"]]
    print(f"figures and summaries: {args.results}/<experiment>/; report: {path}")
    if failed:
        print(f"claims that do not hold: {', '.join(failed)}")


def _cmd_sweep(args) -> None:
    from . import config as cfg
    from .config import PRESETS
    from .experiments import configure, settings_for
    from .experiments import sweep
    from .results import check_writable_dir

    exp, ref = _find(args.experiment)
    if args.preset not in PRESETS:
        raise UsageError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    preset = PRESETS[args.preset]
    out = args.results if args.results is not None else Path("results") / f"sweep-{exp.name}"
    try:
        table = cfg.load_toml(args.config) if args.config else {}
        base = settings_for(exp, preset, quick=args.quick)
        flags = _setting_flags(args)
        axes, fixed = sweep.parse_axes(args.grid, table, base)
        both = [a.name for a in axes if a.name in flags]
        if both:
            raise ValueError(f"{both[0]} is both swept (--grid) and set (--{both[0]})")
        base = cfg.override(cfg.override(base, fixed, parsed=True), flags, parsed=False)
        configure(exp, preset, base)
        sweep.plan(exp, preset, base, axes, max_points=None if args.yes else sweep.MAX_POINTS)  # checks every point
        check_writable_dir(out)
        sweep.check_out(out, exp, preset, base, axes, args.quick)
        if args.ray is not None:
            sweep.check_ray()
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    setup_jax()
    t0 = time.perf_counter()

    def told(idx, got):
        reused = sum(1 for g in got if g["reused"])
        print(f"points {', '.join(map(str, idx))}: "
              + ("stored, not rerun" if reused == len(got) else f"done ({time.perf_counter() - t0:.0f}s so far)"))

    with _ProgressBar(not args.no_progress and args.ray is None) as bar:
        try:
            record = sweep.run_sweep(exp, preset, base, axes, out, quick=args.quick, ref=ref, ray=args.ray,
                                     max_batch=args.batch, max_points=None, ray_cpus=args.ray_cpus,
                                     progress=bar.task, on_batch=told, fixed=fixed)
        except ValueError as e:
            raise UsageError(str(e)) from None
    print(f"{exp.name} sweep: {sweep.describe_batches(record)}; {time.perf_counter() - t0:.1f}s wall"
          + (f" on Ray ({args.ray})" if args.ray else ""))
    print(f"results: {out}/ (sweep.json, sweep.parquet, sweep.png; a run folder per point)")


def _cmd_bench(args) -> None:
    from . import bench
    from .results import check_writable_dir

    if args.anchor is not None:
        anchor = Path(args.anchor)
        if not (anchor.is_file() and os.access(anchor, os.X_OK)):
            raise UsageError(f"--anchor {args.anchor!r} is not an executable Python "
                             "(set it up with ../shared/anchors/setup.sh)")
        if bench.find_anchor_script() is None:
            raise UsageError(f"anchor script sb3_coin.py not found; set {bench.ANCHOR_SCRIPT_ENV}")
    if args.out is not None:
        try:
            check_writable_dir(args.out)
        except ValueError as e:
            raise UsageError(str(e)) from None
    setup_jax()
    if args.adapters:
        _bench_adapters(args, bench)
        return
    try:
        bench.main(json_out=args.json, repeats=args.repeats, seeds=args.seeds, anchor=args.anchor,
                   anchor_steps=args.anchor_steps, scale=args.scaling, out=args.out, prof=args.profile,
                   sweep=not args.no_sweep)
    except RuntimeError as e:
        raise UsageError(str(e)) from None


def _bench_adapters(args, bench) -> None:
    try:
        from .adapters import speed
    except ImportError as e:
        raise UsageError(f"--adapters needs the gymnasium and pettingzoo extras ({e})") from None
    log = (lambda *a, **k: None) if args.json else print  # noqa: E731
    script = bench.find_anchor_script() if args.anchor else None
    log(f"adapters: random actions, {args.steps} env steps per case, median of {args.repeats} "
        f"({os.cpu_count()} CPU cores)" + ("" if args.anchor else "; add --anchor PYTHON for MiniGrid beside them"))
    try:
        res = speed.measure(args.steps, args.repeats, args.anchor, script, log=log)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    if args.out is not None:
        from .results import write_json
        write_json(Path(args.out) / "bench_adapters.json", res)
    print(json.dumps(res, indent=2) if args.json else speed.render_table(res))


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in 1..65535, got {text!r}")
    return v


def _cmd_caregiver_app(args) -> None:
    from .caregiver_app import db, study
    from .results import check_writable_dir

    if args.action == "export":
        if not (args.data / db.FILE).is_file():
            raise UsageError(f"no study in {str(args.data)!r} (no {db.FILE})")
        out = args.out or args.data / "judgements.parquet"
        if out.exists():
            raise UsageError(f"{str(out)!r} exists; name another file with --out")
        store = db.Store.open_existing(args.data)
        n = store.export(out)
        print(f"{n} judgements of {len(store.sessions())} sessions: {out}")
        return
    given = {k.split(":", 1)[1]: v for k, v in vars(args).items() if k.startswith("study:") and v is not None}
    try:
        cfg = study.StudyConfig(**given)
        cfg.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None
    stored = db.Store.stored_study(args.data)
    if stored is not None and not given:  # a study goes on with the settings it was made with
        cfg = study.StudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
    try:
        check_writable_dir(args.data)
    except ValueError as e:
        raise UsageError(str(e)) from None
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.host, args.port))
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"internalize: warning: listening on {args.host}: anyone who can reach this machine on that "
              "network can open the app and the study's data", file=sys.stderr)
    setup_jax()
    from .caregiver_app import server

    try:
        app = server.CaregiverApp(args.data, cfg)
    except db.StudyMismatch as e:
        raise UsageError(str(e)) from None
    print(f"caregiver app: http://{args.host}:{args.port}/ (participants), http://{args.host}:{args.port}/study "
          f"(researcher); data in {args.data}/", flush=True)
    server.run(app, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # per-experiment lines appear as they happen, even in a log
    try:
        args = _build_parser(argv).parse_args(argv)
        if args.command in ("run", "reproduce"):
            args.results = _results_dir(args)
        if args.command == "list":
            root = _results_dir(args, default=None)
            if root is None:
                _cmd_list()
            else:
                _cmd_list_runs(root)
        elif args.command == "list-experiments":
            _cmd_list_experiments()
        elif args.command == "config":
            _cmd_config(args)
        elif args.command == "render":
            setup_jax()
            _cmd_render(args)
        elif args.command == "run":
            resolved = _resolve([args.experiment], args)
            _check_out(args)
            setup_jax()
            _run_experiments(resolved, args)
        elif args.command == "reproduce":
            _cmd_reproduce(args)
        elif args.command == "report":
            _cmd_report(args)
        elif args.command == "bench":
            _cmd_bench(args)
        elif args.command == "sweep":
            _cmd_sweep(args)
        elif args.command == "caregiver-app":
            _cmd_caregiver_app(args)
    except UsageError as e:
        print(f"internalize: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("internalize: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`internalize list | head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
