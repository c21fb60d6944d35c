"""Running an experiment into its results folder: find the folder (reusing a stored run of the
same computation, resuming an unfinished one), run the pipeline with checkpoints, write the
files, report.

What does not live here: the computation (:mod:`.pipeline`), identity and folders
(:mod:`.store`), the claims and figures (:mod:`.report`).
"""
from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from .. import config as cfg
from .. import phases, results
from ..checkpoints import DEFAULT_EVERY, Checkpoints
from ..config import Preset
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
    }
    # Written first: a crash leaves a folder that names its computation, so a rerun of the same
    # command finds it (unfinished: no manifest) and computes it again in place.
    for name in (*store.STORED_FILES, results.MANIFEST):
        (folder / name).unlink(missing_ok=True)
    results.write_json(folder / "config.json", config)
    ckpt = Checkpoints(folder, checkpoint_every)
    if state == "free":
        ckpt.clear()
    t0, c0 = time.perf_counter(), pipeline.compile_seconds()
    clock = pipeline.PhaseClock()
    params: dict = {}
    curves = pipeline.run_pipeline(run_exp, run_preset, s.seeds, s.budget, s.seed, progress, clock, params_out=params,
                                   ckpt=ckpt)
    config.update(resumed_from=ckpt.resumed,  # checkpoints a crashed run was resumed from (none: one go)
                  wall_seconds=time.perf_counter() - t0, compile_seconds=pipeline.compile_seconds() - c0,
                  phase_seconds=clock.seconds,  # {phase: {"wall", "compile"}}
                  peak_rss_gib=peak_rss_gib())  # of the process so far (experiments in one process share it)
    results.write_npz(folder / "curves.npz", curves)
    results.write_parquet(folder / "curves.parquet", store.curve_table(curves, config))
    results.write_msgpack(folder / "params.msgpack", params)
    results.write_json(folder / "config.json", config)
    results.write_manifest(folder, list(store.STORED_FILES))
    ckpt.clear()
    return dict(report(folder, exp), folder=str(folder), reused=False, resumed=ckpt.resumed)
