"""The ``internalize`` command line.

    internalize run EXPERIMENT [--quick] [--seeds N] [--preset fast|paper] [--out DIR]
    internalize reproduce [--quick] [--seeds N] [--preset fast|paper] [--out DIR]
    internalize report DIR
    internalize bench [--json]
    internalize list

Bad input gets one line on stderr that names the problem and exit status 2; it is checked
before any work starts, so nothing is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
DEFAULT_SEEDS = 10


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


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"must be in 0..2^32-1, got {v}")
    return v


def _build_parser() -> _Parser:
    from .config import PRESETS
    from .experiments import EXPERIMENTS

    p = _Parser(prog="internalize", description="Value internalization from social reward (Rong & "
                "Kleiman-Weiner, 2024): socialize, internalize, go autonomous.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    sub.required = True

    def common(sp):
        sp.add_argument("--quick", action="store_true", help="the quick budget (shows every effect in minutes)")
        sp.add_argument("--seeds", type=_positive_int, default=None,
                        help="seeds (default 10; some experiments' quick budgets use fewer)")
        sp.add_argument("--preset", default="fast", help=f"learner preset: {' | '.join(PRESETS)} (default fast)")
        sp.add_argument("--out", type=Path, default=Path("results"), help="results folder (default results/)")
        sp.add_argument("--seed", type=_seed, default=0, help="root seed of the run (default 0)")
        sp.add_argument("--no-progress", action="store_true", help="no live progress bar")
        sp.add_argument("--socialize-steps", type=_positive_int, default=None,
                        help="override the socialization budget (steps per seed)")
        sp.add_argument("--autonomy-steps", type=_positive_int, default=None,
                        help="override the autonomy budget (steps per seed)")

    r = sub.add_parser("run", help="run one experiment")
    r.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    common(r)

    rp = sub.add_parser("reproduce", help="run every experiment (skipping stored, matching results); write report.md")
    common(rp)

    rep = sub.add_parser("report", help="rebuild summaries and figures from stored results")
    rep.add_argument("dir", type=Path)

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
    b.add_argument("--out", type=Path, default=None, help="write bench.json (and the scaling figure) here")

    ls = sub.add_parser("list", help="experiments, presets, conditions and maps; with DIR, the runs stored there")
    ls.add_argument("dir", nargs="?", type=Path, default=None,
                    help="a results folder: list the runs stored in it (one per experiment folder)")
    return p


def _check_common(args) -> None:
    from .config import PRESETS
    from .results import check_writable_dir

    if args.preset not in PRESETS:
        raise UsageError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    try:
        check_writable_dir(args.out)
    except ValueError as e:
        raise UsageError(str(e)) from None
    sub = args.out / args.experiment if getattr(args, "experiment", None) else None
    if sub is not None and sub.exists() and not sub.is_dir():
        raise UsageError(f"results path {str(sub)!r} exists and is not a directory")


def setup_jax() -> None:
    """Persistent compilation cache, so a rerun does not compile again."""
    import jax

    cache = os.environ.get("INTERNALIZE_JAX_CACHE", str(Path.home() / ".cache" / "internalize" / "jax"))
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except OSError:
        pass  # no cache is slower, not wrong


class _ProgressBar:
    """A live progress bar (Rich) over environment steps, with ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("env-steps"), TimeElapsedColumn(), TextColumn("ETA"),
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
    for c in summary["claims"]:
        mark = "holds" if c["holds"] else "DOES NOT HOLD"
        p = c["p_value"]
        p_text = f"p={p:.2g}" if p is not None else "p=n/a"
        print(f"  {c['id']}: {mark} (value {c['value']:.3g}, {p_text})")


def _run_experiments(names: list[str], args, skip_current: bool = False) -> list[dict]:
    from . import experiments
    from .config import PRESETS

    preset = PRESETS[args.preset]
    out_summaries = []
    with _ProgressBar(not args.no_progress) as bar:
        for name in names:
            exp = experiments.EXPERIMENTS[name]
            if getattr(args, "socialize_steps", None) or getattr(args, "autonomy_steps", None):
                exp = experiments.with_budget(exp, args.socialize_steps, args.autonomy_steps, quick=args.quick)
            budget = exp.quick if args.quick else exp.budget
            seeds = args.seeds or (exp.quick_seeds if args.quick and exp.quick_seeds else DEFAULT_SEEDS)
            total = experiments.total_steps(exp, preset, seeds, budget)
            t0 = time.perf_counter()
            folder = args.out / name
            if skip_current and experiments.stored_matches(folder, exp, preset, seeds, budget, args.seed):
                summary = experiments.report(folder)
                print(f"{name}: stored results match this configuration; not rerun (results in {folder}/)")
            else:
                summary = experiments.run(exp, preset, seeds, args.out, quick=args.quick, root_seed=args.seed,
                                          progress=bar.task(name, total))
                print(f"{name}: {time.perf_counter() - t0:.1f}s wall ({summary.get('compile_seconds', 0):.1f}s "
                      f"compiling), peak memory {summary.get('peak_rss_gib', 0):.2f} GiB; results in {folder}/ "
                      f"(summary.json, {', '.join(summary['figures'])})")
            _print_claims(summary)
            out_summaries.append(summary)
    return out_summaries


def _cmd_list() -> None:
    from . import conditions, world
    from .config import PRESETS
    from .experiments import EXPERIMENTS

    print("experiments:")
    for e in EXPERIMENTS.values():
        print(f"  {e.name}: {e.title}")
    print("presets: " + ", ".join(PRESETS))
    print("conditions:")
    for c in conditions.CONDITIONS.values():
        print(f"  {c.name}: {c.description}")
    print("maps: " + ", ".join(world.NAMED_MAPS))


def _cmd_list_runs(root: Path) -> None:
    """One line per stored run under ``root``: its folder, experiment, preset, seeds, budget,
    claims holding and wall time (read from its summary.json; nothing is recomputed)."""
    import json

    if not root.exists():
        raise UsageError(f"results folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise UsageError(f"results path {str(root)!r} is not a directory")
    found = sorted({p.parent for p in [*root.glob("summary.json"), *root.glob("*/summary.json")]})
    if not found:
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


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # per-experiment lines appear as they happen, even in a log
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "list":
            if args.dir is None:
                _cmd_list()
            else:
                _cmd_list_runs(args.dir)
            return 0
        if args.command == "run":
            from .experiments import EXPERIMENTS

            if args.experiment not in EXPERIMENTS:
                raise UsageError(f"unknown experiment {args.experiment!r}; known: {', '.join(EXPERIMENTS)}")
            _check_common(args)
            setup_jax()
            _run_experiments([args.experiment], args)
            return 0
        if args.command == "reproduce":
            from .experiments import EXPERIMENTS

            from . import report

            _check_common(args)
            setup_jax()
            t0 = time.perf_counter()
            summaries = _run_experiments(list(EXPERIMENTS), args, skip_current=True)
            path = report.write(args.out, total_wall=time.perf_counter() - t0)
            failed = [c["id"] for s in summaries for c in s["claims"] if not c["holds"]]
            print(f"figures and summaries: {args.out}/<experiment>/; report: {path}")
            if failed:
                print(f"claims that do not hold: {', '.join(failed)}")
            return 0
        if args.command == "report":
            from . import report as report_md
            from .experiments import report

            if not args.dir.is_dir():
                raise UsageError(f"results directory {str(args.dir)!r} does not exist")
            found = sorted(p.parent for p in args.dir.glob("*/config.json"))
            if not found:
                raise UsageError(f"no experiment results (*/config.json) under {str(args.dir)!r}")
            for folder in found:
                summary = report(folder)
                print(f"{folder.name}: rebuilt summary.json and {', '.join(summary['figures'])}")
                _print_claims(summary)
            print(f"report: {report_md.write(args.dir)}")
            return 0
        if args.command == "bench":
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
            try:
                bench.main(json_out=args.json, repeats=args.repeats, seeds=args.seeds, anchor=args.anchor,
                           anchor_steps=args.anchor_steps, scale=args.scaling, out=args.out,
                           prof=args.profile)
            except RuntimeError as e:
                raise UsageError(str(e)) from None
            return 0
    except UsageError as e:
        print(f"internalize: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("internalize: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
