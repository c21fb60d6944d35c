"""Running an experiment into its results folder: find the folder (reusing a stored run of the
same computation, resuming an unfinished one), run the pipeline with checkpoints, write the
files, report.

What does not live here: the computation (:mod:`.pipeline`), identity and folders
(:mod:`.store`), the claims and figures (:mod:`.report`).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from .. import config as cfg
from .. import phases, results
from ..checkpoints import DEFAULT_EVERY, Checkpoints
from ..config import PPOConfig, Preset
from . import pipeline, store
from .report import report
from .spec import Experiment, Settings, configure


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (GiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # kB on Linux


def run(exp: Experiment, preset: Preset, seeds: int | None, out: Path, *, quick: bool = False, root_seed: int = 0,
        progress: phases.Progress | None = None, settings: Settings | None = None,
        checkpoint_every: float = DEFAULT_EVERY, ref: str | None = None) -> dict:
    """Run an experiment (a declaration, with ``settings`` applied) into its run folder (see
    :func:`run_folder`) and report it.

    When the folder already holds this computation, complete and intact, nothing is run: the
    summary and figures are rebuilt from the stored files. When it holds this computation
    unfinished (a crash), the run resumes from its last checkpoint. Returns the summary; its
    ``folder`` names where the results are, ``resumed`` what was picked up. Checkpoints are
    taken every ``checkpoint_every`` seconds of work (at chunk boundaries) and at the end of
    each phase, and removed once the run is stored. ``ref``: how to find a user's experiment
    again (``module:ATTRIBUTE`` or ``path.py:ATTRIBUTE``), recorded for ``report`` and ``render``.
    """
    s = store.resolve_settings(exp, preset, seeds, quick=quick, root_seed=root_seed, settings=settings)
    folder, state = store.run_folder(out, exp, preset, s)
    if state == "stored":
        return dict(report(folder, exp), folder=str(folder), reused=True)
    run_exp, run_preset = configure(exp, preset, s)
    config = start_folder(folder, exp, preset, s, run_exp, quick, ref)
    ckpt = Checkpoints(folder, checkpoint_every)
    if state == "free":
        ckpt.clear()
    t0, c0 = time.perf_counter(), pipeline.compile_seconds()
    clock = pipeline.PhaseClock()
    params: dict = {}
    curves = pipeline.run_pipeline(run_exp, run_preset, s.seeds, s.budget, s.seed, progress, clock, params_out=params,
                                   ckpt=ckpt)
    config.update(resumed_from=ckpt.resumed)  # checkpoints a crashed run was resumed from (none: one go)
    store_files(folder, config, curves, params, clock, t0, c0)
    ckpt.clear()
    return dict(report(folder, exp), folder=str(folder), reused=False, resumed=ckpt.resumed)


def start_folder(folder: Path, exp: Experiment, preset: Preset, s: Settings, run_exp: Experiment, quick: bool,
           ref: str | None, **more) -> dict:
    """A run's config.json, written first: a crash leaves a folder that names its computation, so
    a rerun of the same command finds it (unfinished: no manifest) and computes it again in place."""
    ident = store.identity(exp, preset, s)
    config = {
        **ident,
        "run_id": store.run_id(ident),
        "experiment_ref": ref,
        "preset": preset.name,
        "seeds": s.seeds,
        "root_seed": s.seed,
        "budget": cfg.to_dict(s.budget),
        "settings": {st.name: st.default for st in cfg.settings(s)},
        "seed_keys": np.asarray(jax.random.key_data(pipeline.seed_keys(s.seed, s.seeds))).tolist(),
        "quick": quick,
        "conditions": list(run_exp.conditions),
        "arms": [a.name for a in run_exp.arms],
        "devices": [str(d) for d in jax.devices()],
        "versions": results.versions(),
        **more,
    }
    for name in (*store.STORED_FILES, results.MANIFEST):
        (folder / name).unlink(missing_ok=True)
    results.write_json(folder / "config.json", config)
    return config


def store_files(folder: Path, config: dict, curves: dict, params: dict, clock, t0: float, c0: float) -> None:
    """A finished run's files, its manifest (checksums) last."""
    config.update(wall_seconds=time.perf_counter() - t0, compile_seconds=pipeline.compile_seconds() - c0,
                  phase_seconds=clock.seconds,  # {phase: {"wall", "compile"}}
                  peak_rss_gib=peak_rss_gib())  # of the process so far (experiments in one process share it)
    results.write_npz(folder / "curves.npz", curves)
    results.write_parquet(folder / "curves.parquet", store.curve_table(curves, config))
    results.write_msgpack(folder / "params.msgpack", params)
    results.write_json(folder / "config.json", config)
    results.write_manifest(folder, list(store.STORED_FILES))


def run_batch(exp: Experiment, preset: Preset, points: list[Settings], out: Path, *, quick: bool = False,
              hyper: tuple[str, ...] = (), per_run_caregiver: bool = False, progress: phases.Progress | None = None,
              ref: str | None = None, report_runs: bool = True) -> list[dict]:
    """Run points of a sweep (one experiment's settings that differ only in traced numbers, with
    the same seeds and budget) as one batch: one program for all of them
    (:class:`.pipeline.Points`), each point into a run folder of its own (named by its run id,
    ``out/<experiment>-<run id>``), as :func:`run` would store it.

    Points already stored (complete, checksums intact) are not rerun; the others run together.
    A batch is not checkpointed within (a sweep resumes point by point). ``hyper``: the PPO
    numbers each run is given as an array (:data:`internalize.learner.TRACED`; those the sweep
    varies, so that a point's results do not depend on the points batched with it);
    ``per_run_caregiver``: the sweep varies the caregiver's numbers (each run is judged by its
    own). Returns each point's summary, in order.
    """
    out = Path(out)
    folders = [store.run_folder(out, exp, preset, s, unique=True) for s in points]
    todo = [i for i, (_, state) in enumerate(folders) if state != "stored"]
    configured = [configure(exp, preset, s) for s in points]
    configs = {}
    if todo:
        first = points[todo[0]]
        for i in todo:
            others = [folders[j][0].name for j in todo if j != i]
            configs[i] = start_folder(folders[i][0], exp, preset, points[i], configured[i][0], quick, ref,
                                batch={"points": len(todo), "with": others, "hyper": list(hyper),
                                       "per_run_caregiver": per_run_caregiver})
            Checkpoints(folders[i][0]).clear()
        t0, c0 = time.perf_counter(), pipeline.compile_seconds()
        clock = pipeline.PhaseClock()
        params: dict = {}
        batch = pipeline.Points(tuple(configured[i][0] for i in todo), tuple(configured[i][1] for i in todo),
                                tuple(hyper), per_run_caregiver)
        run_exp, run_preset = configured[todo[0]]
        # The numbers every run is given (hyper) are never read from the batch's config: set them
        # to the defaults, so that batches of a sweep share their compiled programs (phases._cached).
        default = PPOConfig()
        run_preset = dataclasses.replace(run_preset, ppo=dataclasses.replace(
            run_preset.ppo, **{h: getattr(default, h) for h in hyper}))
        curves = pipeline.run_pipeline(run_exp, run_preset, first.seeds, first.budget, first.seed, progress, clock,
                                       params_out=params, points=batch)
        for i, c, p in zip(todo, curves, pipeline.split_params(params, len(todo))):
            configs[i].update(resumed_from=[])
            store_files(folders[i][0], configs[i], c, p, clock, t0, c0)
    summaries = []
    for i, (folder, state) in enumerate(folders):
        summary = report(folder, exp) if report_runs or i in configs else {}
        summaries.append(dict(summary, folder=str(folder), reused=i not in configs))
    return summaries
