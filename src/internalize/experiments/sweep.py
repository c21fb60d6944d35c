"""Sweeps: a grid of settings of one experiment, each point an ordinary run folder.

A grid is a product of axes (``ppo.lr = 1e-3, 3e-3`` x ``presence.leave.start = 0, 0.5``).
Points that differ only in numbers a run is given as arrays (:data:`TRACED`: PPO's learning rate
and loss coefficients, every presence setting, the caregiver's numbers) share one compiled,
vmapped program, as seeds and arms do (:class:`.pipeline.Points`); points that differ in
anything else (a network's width, the number of environments, a world, the ISR's settings,
the budget) run as programs of their own. A
batch is also cut where its runs would not fit in memory together (:mod:`.capacity`).

Points run here one batch after another, or as Ray tasks (a local instance, or an existing
cluster; ``pip install 'internalize[ray]'``), every worker writing its points' folders into the
sweep's results folder (a file system the workers share with the driver: docs/scaling.md).
A point already stored there (its checksums intact) is never recomputed, so a sweep that was
stopped resumes where it was: only the missing or damaged points run.

The sweep's own files, made from the points' stored files: ``sweep.json`` (the grid, each point's
settings, folder and batch), ``sweep.parquet`` (one row per point, seed and per-seed summary
value, a column per swept setting) and ``sweep.png`` (each claim's value against each swept
setting, with a 95% bootstrap interval over seeds).

What does not live here: a run's pipeline (:mod:`.pipeline`), its files (:mod:`.store`,
:mod:`.runner`), the command line (:mod:`internalize.cli`).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import time
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import config as cfg
from .. import results
from ..config import Preset
from ..learner import TRACED as TRACED_PPO
from . import capacity, pipeline, store
from .report import report
from .runner import run_batch
from .spec import Experiment, Settings, configure

MAX_POINTS = 64
"""A grid of more points than this runs only when asked to (``--yes``)."""

TRACED = tuple(f"ppo.{h}" for h in TRACED_PPO) + ("presence.*", "caregiver.*")
"""Settings whose points can share one program (their values reach a run as arrays)."""

NOT_SWEPT = ("seeds",)  # --seeds sets every point's number of seeds
BOOTSTRAP = 200  # resamples of seeds for each claim's interval in sweep.png


def is_traced(name: str) -> bool:
    return name.startswith(("presence.", "caregiver.")) or name in TRACED


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple


def _is_list_setting(typ: Any) -> bool:
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    return typing.get_origin(typ) is tuple or any(typing.get_origin(a) is tuple for a in args)


def parse_axes(flags: list[str], table: dict[str, Any], base: Settings) -> tuple[tuple[Axis, ...], dict[str, Any]]:
    """The grid's axes from ``--grid NAME=V1,V2`` flags (values of a list setting, such as
    ``ppo.hidden``, are separated by ``;``: ``ppo.hidden=32,32;64,64``) and a TOML table (a list
    is an axis; a list of lists, for a list setting), and the TOML's other values (fixed
    settings). ValueError (one line) naming the problem."""
    known = {st.name: st for st in cfg.settings(base)}
    axes: dict[str, tuple] = {}
    fixed: dict[str, Any] = {}

    def check_name(name: str, where: str) -> Any:
        if name in NOT_SWEPT:
            raise ValueError(f"{where}: {name} is not swept (--seeds sets every point's number of seeds)")
        if name not in known:
            cfg.override(base, {name: None})  # raises the one-line "unknown setting" (with a close match)
        if name in axes:
            raise ValueError(f"{where}: {name} is swept twice")
        return known[name].type

    for flag in flags:
        name, eq, text = flag.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"--grid {flag!r}: expected NAME=V1,V2,... (e.g. ppo.lr=1e-3,3e-3)")
        typ = check_name(name, f"--grid {name}")
        parts = [p.strip() for p in text.split(";" if _is_list_setting(typ) else ",")]
        if not any(parts):
            raise ValueError(f"--grid {name}: no values")
        if "" in parts:
            raise ValueError(f"--grid {name}: an empty value in {text!r}")
        axes[name] = tuple(cfg.parse_text(name, p, typ) for p in parts)
    for name, value in table.items():
        if name in NOT_SWEPT and isinstance(value, list):
            raise ValueError(f"config: {name} is not swept (--seeds sets every point's number of seeds)")
        if name not in known:
            cfg.override(base, {name: value})  # the one-line unknown-setting error
        typ = known[name].type
        listy = _is_list_setting(typ)
        is_axis = isinstance(value, list) and (not listy or (value and all(isinstance(v, list) for v in value)))
        if not is_axis:
            fixed[name] = value
            continue
        if name in axes:
            raise ValueError(f"config: {name} is swept both in the file and by --grid")
        if not value:
            raise ValueError(f"config: {name}: an empty list of values")
        axes[name] = tuple(cfg.coerce(name, v, typ) for v in value)
    for name, values in axes.items():
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"grid {name}: a value is repeated ({', '.join(map(_show, values))})")
    if not axes:
        raise ValueError("no grid: give --grid NAME=V1,V2,... or a --config file whose values are lists")
    return tuple(Axis(n, v) for n, v in axes.items()), fixed


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return str(v)


@dataclass(frozen=True)
class Point:
    index: int
    values: dict  # {setting: value} of the swept settings
    settings: Settings


def plan(exp: Experiment, preset: Preset, base: Settings, axes: tuple[Axis, ...], *,
         max_points: int | None = MAX_POINTS) -> list[Point]:
    """Every point of the grid, in product order (the last axis fastest), each one's settings
    configured and checked; ValueError (one line) naming the first bad point."""
    n = math.prod(len(a.values) for a in axes)
    if max_points is not None and n > max_points:
        raise ValueError(f"the grid has {n} points ({' x '.join(str(len(a.values)) for a in axes)}), more than "
                         f"{max_points}; pass --yes to run it")
    out = []
    for i, combo in enumerate(itertools.product(*(a.values for a in axes))):
        values = dict(zip((a.name for a in axes), combo))
        try:
            s = cfg.override(base, values, parsed=True)
            configure(exp, preset, s)
        except (ValueError, TypeError) as e:
            where = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
            raise ValueError(f"grid point {where}: {e}") from None
        out.append(Point(i, values, s))
    return out


def signature(exp: Experiment, preset: Preset, point: Point, traced: tuple[str, ...], base: Settings) -> str:
    """What a point's program depends on: its settings with the traced ones set to the base's, and
    the shape of its socialization (which arms socialize together)."""
    own = settings_values(base)
    canon = cfg.override(point.settings, {n: own[n] for n in traced}, parsed=True)
    run_exp, _ = configure(exp, preset, point.settings)
    shape = [run_exp.socializations()[1], [v.label for v in run_exp.variants]]
    return json.dumps([store.describe(canon), shape], sort_keys=True, default=str)


def batches(exp: Experiment, preset: Preset, base: Settings, axes: tuple[Axis, ...], points: list[Point], *,
            max_batch: int | None = None) -> tuple[list[list[int]], tuple[str, ...]]:
    """Points grouped into batches that run as one program each (``max_batch``: at most this many
    points per batch; 1: one after another), and the traced settings the sweep varies."""
    traced = tuple(a.name for a in axes if is_traced(a.name))
    groups: dict[str, list[int]] = {}
    for p in points:
        groups.setdefault(signature(exp, preset, p, traced, base), []).append(p.index)
    out = []
    for idx in groups.values():
        per = max_batch or _fits_in_memory(exp, preset, points[idx[0]].settings, len(idx))
        out += [idx[i:i + per] for i in range(0, len(idx), per)]
    return out, traced


def _fits_in_memory(exp: Experiment, preset: Preset, s: Settings, n: int) -> int:
    """How many points (at most ``n``) fit in the memory available now, batched."""
    avail = capacity.available_bytes()
    if avail is None:
        return n
    run_exp, run_preset = configure(exp, preset, s)
    for k in range(n, 1, -1):
        if capacity.estimate(run_exp, run_preset, replace(s, seeds=s.seeds * k)).total <= 0.8 * avail:
            return k
    return 1


def hyper_names(traced: tuple[str, ...]) -> tuple[str, ...]:
    """The PPO numbers a batch gives each run (presence reaches runs as arrays anyway)."""
    return tuple(n.split(".", 1)[1] for n in traced if n.startswith("ppo."))


# ---------------------------------------------------------------------------------------------
# Running


SAME_SWEEP = ("experiment", "preset", "quick", "seeds", "grid", "fixed_settings")


def _identity(exp: Experiment, preset: Preset, base: Settings, axes: tuple[Axis, ...], quick: bool) -> dict:
    """What makes two sweeps in one folder the same (a rerun resumes it; another is refused)."""
    return {"experiment": exp.name, "preset": preset.name, "quick": quick, "seeds": base.seeds,
            "grid": {a.name: [_plain(v) for v in a.values] for a in axes},
            "fixed_settings": store.run_id({"settings": store.describe(base)})}


def check_out(out: Path, exp: Experiment, preset: Preset, base: Settings, axes: tuple[Axis, ...], quick: bool) -> None:
    """ValueError (one line) when ``out`` holds another sweep (its sweep.json would be lost), or a
    point's folder holds something else."""
    path = Path(out) / "sweep.json"
    if path.exists():
        try:
            old = results.read_json(path)
        except (OSError, ValueError):
            raise ValueError(f"{str(path)!r} is not a readable sweep record; move it away or choose another --out") from None
        want = results._jsonable(_identity(exp, preset, base, axes, quick))
        if not isinstance(old, dict) or any(old.get(k) != want[k] for k in SAME_SWEEP):
            raise ValueError(f"{str(out)!r} holds another sweep ({old.get('experiment') if isinstance(old, dict) else '?'}"
                             f", grid {', '.join(old.get('grid', {})) if isinstance(old, dict) else '?'}); "
                             "choose another --out")


def check_ray() -> None:
    """ValueError (one line) when Ray is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'internalize[ray]'") from None


def settings_values(s: Settings) -> dict:
    """A point's settings as plain values (what a Ray worker is sent; config.json's ``settings``)."""
    return {st.name: st.default for st in cfg.settings(s)}


def run_batch_task(task: dict) -> list[dict]:
    """One batch of points, as a Ray worker runs it: the experiment found again by name or
    reference, each point's settings rebuilt from plain values. Returns each point's folder and
    whether it was reused (the summaries stay in the folders)."""
    from .. import devices
    from ..config import PRESETS
    from .registry import resolve
    from .spec import settings_for

    devices.enable_compilation_cache()
    exp = resolve(task["experiment"])[0]
    preset = PRESETS[task["preset"]]
    base = settings_for(exp, preset, quick=task["quick"])
    points = [cfg.override(base, values, parsed=True) for values in task["settings"]]
    got = run_batch(exp, preset, points, Path(task["out"]), quick=task["quick"], hyper=tuple(task["hyper"]),
                    per_run_caregiver=task["caregivers"], ref=task["ref"], report_runs=False)
    return [{"folder": g["folder"], "reused": g["reused"], "host": os.uname().nodename} for g in got]


def run_sweep(exp: Experiment, preset: Preset, base: Settings, axes: tuple[Axis, ...], out: Path, *,
              quick: bool = False, ref: str | None = None, ray: str | None = None, max_batch: int | None = None,
              max_points: int | None = MAX_POINTS, ray_cpus: int | None = None, progress=None,
              on_batch=None, fixed: dict | None = None) -> dict:
    """Run a grid (every point not already stored in ``out``) and write the sweep's files.

    ``ray``: None (here, one batch after another), ``"local"`` (a Ray instance started on this
    machine) or a cluster's address. ``progress(description, total)`` (optional) gives a
    callback for a batch's environment steps; ``on_batch(batch, summaries)`` is told as each
    batch ends. Returns what ``sweep.json`` holds.
    """
    out = Path(out)
    t0 = time.perf_counter()
    points = plan(exp, preset, base, axes, max_points=max_points)
    groups, traced = batches(exp, preset, base, axes, points, max_batch=max_batch)
    hyper = hyper_names(traced)
    per_run_caregiver = any(n.startswith("caregiver.") for n in traced)
    name = ref or exp.name
    for p in points:  # every folder is checked before any work starts
        store.run_folder(out, exp, preset, p.settings, unique=True)
    done: dict[int, dict] = {}
    if ray is None:
        for b, idx in enumerate(groups):
            s0 = points[idx[0]].settings
            run_exp, run_preset = configure(exp, preset, s0)
            todo = sum(store.run_folder(out, exp, preset, points[i].settings, unique=True)[1] != "stored" for i in idx)
            total = pipeline.total_steps(run_exp, run_preset, s0.seeds, s0.budget) * todo
            cb = progress(f"{exp.name} batch {b + 1}/{len(groups)}", total) if progress else None
            got = run_batch(exp, preset, [points[i].settings for i in idx], out, quick=quick, hyper=hyper,
                            per_run_caregiver=per_run_caregiver, progress=cb, ref=ref)
            for i, g in zip(idx, got):
                done[i] = {"folder": g["folder"], "reused": g["reused"]}
            if on_batch:
                on_batch(idx, [done[i] for i in idx])
    else:
        tasks = [{"experiment": name, "ref": ref, "preset": preset.name, "quick": quick, "out": str(out.resolve()),
                  "hyper": list(hyper), "caregivers": per_run_caregiver,
                  "settings": [settings_values(points[i].settings) for i in idx]}
                 for idx in groups]
        for idx, got in zip(groups, _run_on_ray(tasks, ray, ray_cpus, on_batch, groups)):
            for i, g in zip(idx, got):
                done[i] = g
        for i, g in done.items():  # the workers' folders must be visible here
            folder = Path(g["folder"])
            if not (folder / results.MANIFEST).is_file():
                raise ValueError(f"point {i}'s results ({folder}) are not visible here: Ray workers write into the "
                                 "sweep's folder, which must be on a file system they share with the driver")
    record = {
        **_identity(exp, preset, base, axes, quick),
        "experiment_ref": ref,
        "fixed": {k: _plain(v) for k, v in (fixed or {}).items()},
        "traced": list(traced),
        "batches": [{"points": idx, "batched": len(idx) > 1,
                     "program": "one vmapped program" if len(idx) > 1 else "a program of its own"} for idx in groups],
        "points": [{"index": p.index, "settings": {k: _plain(v) for k, v in p.values.items()},
                    "folder": Path(done[p.index]["folder"]).name, "reused": done[p.index]["reused"],
                    "batch": next(b for b, idx in enumerate(groups) if p.index in idx)} for p in points],
        "ray": ray,
        "wall_seconds": time.perf_counter() - t0,
        "versions": results.versions(),
    }
    write_files(out, record, exp)
    return record


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _run_on_ray(tasks: list[dict], address: str, cpus: int | None, on_batch, groups) -> list[list[dict]]:
    """Each task (a batch of points) as a Ray task; results in the order of ``tasks``."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'internalize[ray]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        try:
            if address == "local":  # this machine only, on the loopback interface
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1", configure_logging=False)
            else:
                _reachable(address)
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"--ray {address}: could not start or join a Ray cluster ({first})") from None
    try:
        remote = ray.remote(num_cpus=cpus or os.cpu_count() or 1, max_retries=1)(run_batch_task)
        refs = [remote.remote(t) for t in tasks]
        index = {r: k for k, r in enumerate(refs)}
        got: list = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            k = index[ready[0]]
            got[k] = ray.get(ready[0])
            if on_batch:
                on_batch(groups[k], got[k])
        return got
    finally:
        if started:
            ray.shutdown()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """ConnectionError unless a ``host:port`` address answers within ``timeout`` seconds (Ray
    itself retries an unreachable head for minutes); other forms (``auto``, ``ray://``) pass."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {address} ({e.strerror or type(e).__name__})") from None


# ---------------------------------------------------------------------------------------------
# The sweep's files


def write_files(out: Path, record: dict, exp: Experiment | None = None) -> list[Path]:
    """sweep.json, sweep.parquet and sweep.png from the points' stored files."""
    out = Path(out)
    rows, claims = _collect(out, record, exp)
    results.write_json(out / "sweep.json", record)
    results.write_parquet(out / "sweep.parquet", rows)
    figs = [out / "sweep.json", out / "sweep.parquet"]
    from .. import figures

    figs.append(figures.sweep_panels(out / "sweep.png", record["grid"], claims,
                                     f"{record['experiment']} sweep ({record['preset']} preset, {record['seeds']} seeds "
                                     "per point): each claim's value, 95% bootstrap interval over seeds; filled: holds"))
    return figs


def _collect(out: Path, record: dict, exp: Experiment | None):
    """The tidy table (a row per point, seed and per-seed value) and each claim's value and
    interval per point."""
    from .registry import experiment_of

    grid = list(record["grid"])
    cols: dict[str, list] = {**{g: [] for g in grid}, "point": [], "folder": [], "seed": [], "index": [], "metric": [],
                             "value": []}
    claims: list[dict] = []
    for p in record["points"]:
        folder = out / p["folder"]
        summary = results.read_json(folder / "summary.json") if (folder / "summary.json").is_file() else None
        if summary is None:
            summary = report(folder, exp)
        for metric, values in _flat(summary["per_seed"]):
            for seed, index, v in _rows(values, int(summary["seeds"])):
                for g in grid:
                    cols[g].append(_cell(p["settings"][g]))
                cols["point"].append(p["index"])
                cols["folder"].append(p["folder"])
                cols["seed"].append(seed)
                cols["index"].append(index)
                cols["metric"].append(metric)
                cols["value"].append(float(v) if v is not None else math.nan)
        config = store.read_config(folder)
        declared = exp or experiment_of(config, folder)
        lo, hi = bootstrap_claims(results.read_npz(folder / "curves.npz"), config, declared)
        for c in summary["claims"]:
            claims.append({"point": p["index"], "settings": p["settings"], "id": c["id"], "value": c["value"],
                           "holds": c["holds"], "lo": lo.get(c["id"], math.nan), "hi": hi.get(c["id"], math.nan)})
    table = {k: np.asarray(v, dtype=object if k in ("folder", "metric") or k in grid else None)
             for k, v in cols.items()}
    for g in grid:  # a column of one type where it can be
        try:
            table[g] = np.asarray(cols[g], dtype=float) if all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                                for x in cols[g]) else table[g]
        except (TypeError, ValueError):
            pass
    return table, claims


def _rows(values: list, seeds: int):
    """(seed, index, value) rows of a summary's list: one per seed (a seed's own list, e.g. one
    value per budget, gives a row per value, ``index`` its position), or, for a list that is not
    one per seed (e.g. the budgets themselves), seed -1 and its position."""
    if len(values) != seeds:
        for j, v in enumerate(values):
            yield -1, j, v
        return
    for seed, v in enumerate(values):
        if isinstance(v, (list, tuple)):
            for j, x in enumerate(v):
                yield seed, j, x
        else:
            yield seed, 0, v


def _cell(v: Any) -> Any:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def _flat(per_seed: dict, prefix: str = ""):
    for k, v in per_seed.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}/")
        elif isinstance(v, list):
            yield f"{prefix}{k}", v


def bootstrap_claims(curves: dict, config: dict, exp: Experiment, n: int = BOOTSTRAP,
                     seed: int = 0) -> tuple[dict, dict]:
    """Each claim's 95% percentile interval over ``n`` resamples of the run's seeds (the claim
    judged again on each resample's curves): ``({id: low}, {id: high})``."""
    seeds = int(config["seeds"])
    if seeds < 2:
        return {}, {}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n):
        idx = rng.integers(0, seeds, seeds)
        resampled = {k: (np.asarray(v)[idx] if _per_seed(k, v, seeds) else v) for k, v in curves.items()}
        try:
            claims, _ = exp.analyze(resampled, config)
        except Exception:  # noqa: BLE001 - a resample an analysis cannot judge (e.g. one seed drawn n times)
            continue
        for c in claims:
            values.setdefault(c.id, []).append(c.value)
    lo = {k: float(np.nanpercentile(v, 2.5)) for k, v in values.items() if np.isfinite(v).any()}
    hi = {k: float(np.nanpercentile(v, 97.5)) for k, v in values.items() if np.isfinite(v).any()}
    return lo, hi


def _per_seed(name: str, v, seeds: int) -> bool:
    if name.startswith("variant/"):
        name = name.split("/", 2)[2]
    return (name.startswith(pipeline.PER_SEED) and name not in pipeline.SHARED and np.ndim(v) >= 1
            and np.shape(v)[0] == seeds)


def describe_batches(record: dict) -> str:
    """One line: how the points ran."""
    b = record["batches"]
    batched = [x for x in b if x["batched"]]
    text = f"{len(record['points'])} points in {len(b)} batch(es)"
    if batched:
        text += (f"; {sum(len(x['points']) for x in batched)} of them batched, one vmapped program per batch "
                 f"({', '.join(str(len(x['points'])) for x in batched)} points)")
    return text


__all__ = ["Axis", "MAX_POINTS", "TRACED", "batches", "bootstrap_claims", "describe_batches", "parse_axes", "plan",
           "run_batch_task", "run_sweep", "write_files"]
