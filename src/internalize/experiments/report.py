"""A run's report: its claims judged and its figures drawn from its stored files (summary.json),
diverged runs named, and one still per condition.

What does not live here: the claims of each experiment (its module, :mod:`.claims`), the
whole reproduction's report.md (:mod:`.markdown`), the files' formats (:mod:`internalize.results`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures, results
from .pipeline import trace_record
from .registry import experiment_of
from .spec import Experiment
from .store import load, read_config


def report(folder: Path, exp: Experiment | None = None) -> dict:
    """Judge claims and draw figures from an experiment's stored files; write summary.json.

    ``exp``: the declaration that made them (default: found from config.json, see
    :func:`internalize.experiments.store.load`).
    """
    folder = Path(folder)
    config = read_config(folder)
    curves = results.read_npz(folder / "curves.npz")
    declared = exp or experiment_of(config, folder)
    exp = load(folder, declared)[0]  # configured: its worlds as the run had them
    claims, per_seed = declared.analyze(curves, config)
    figs = declared.plot(curves, config, folder)
    figs += stills(folder, curves, config, exp)
    figs += value_map(folder, curves, exp)
    failed = failures(curves, config.get("arms", []))
    summary = {
        "experiment": exp.name,
        "preset": config["preset"],
        "seeds": config["seeds"],
        "budget": config["budget"],
        "wall_seconds": config["wall_seconds"],
        **{k: config[k] for k in ("compile_seconds", "peak_rss_gib", "phase_seconds") if k in config},
        "claims": [{"id": c.id, "statement": c.statement, "holds": bool(c.holds), "value": c.value,
                    "p_value": c.p_value, "test": c.test, "margin": c.margin,
                    **({"detail": c.detail} if c.detail else {})} for c in claims],
        "per_seed": per_seed,
        "figures": [p.name for p in figs],
        "failed_runs": failed,
    }
    results.write_json(folder / "summary.json", summary)
    return summary


WATCHED = ("pg_loss", "value_loss", "entropy", "approx_kl", "utility_return", "true_return", "isr_output")
"""Per-update metrics that must stay finite; a run where one does not has diverged."""


def failures(curves: dict, arms: list[str]) -> list[dict]:
    """The runs that diverged: a non-finite loss, reward or ISR output in their curves.

    Runs are independent within a batch (vmap), so one run's NaN leaves the others as they
    would have been; the failed run is named here (and in summary.json) with where it failed.
    """
    out = []
    fit = curves.get("isr/train_loss")
    if fit is not None:
        for seed in np.flatnonzero(~np.isfinite(fit).reshape(fit.shape[0], -1).all(1)):
            out.append({"seed": int(seed), "phase": "internalize", "arm": None,
                        "message": f"seed {seed}: the ISR fit's loss is not finite"})
    for phase in ("socialize", "autonomy"):
        watched = [(m, curves[f"{phase}/{m}"]) for m in WATCHED if f"{phase}/{m}" in curves]
        if not watched:
            continue
        bad = np.stack([~np.isfinite(v) for _, v in watched])  # [metrics, S, (A,) U]
        runs = bad.any(0).any(-1)  # [S] or [S, A]
        for index in zip(*np.nonzero(runs)):
            seed = int(index[0])
            arm = arms[index[1]] if phase == "autonomy" and len(index) > 1 else None
            sel = (slice(None),) + tuple(index)
            first = int(np.argmax(bad[sel].any(0)))
            metric = watched[int(np.argmax(bad[sel][:, first]))][0]
            where = f"seed {seed}, {phase}" + (f", arm {arm}" if arm else "")
            out.append({"seed": seed, "phase": phase, "arm": arm,
                        "message": f"{where}: {metric} is not finite from update {first + 1} on (the run diverged)"})
    return out


def stills(folder: Path, curves: dict, config: dict, exp: Experiment) -> list[Path]:
    """One picture per condition (its first arm): the recorded greedy episode of seed 0's final
    policy, its path over the world (from the stored trace; nothing is recomputed)."""
    out, seen = [], set()
    for i, arm in enumerate(exp.arms):
        if arm.condition in seen or f"trace/{i}/pos" not in curves:
            continue
        seen.add(arm.condition)
        world = exp.arm_world(arm)
        if not hasattr(world, "render"):
            continue
        rec = trace_record(curves, i)
        events = int(np.sum(rec["goal_reached"]))
        cut = _first_layout_steps(rec)
        title = (f"{arm.name}: seed 0 at the end of autonomy, {events} caregiver event(s) in {len(rec['pos'])} "
                 f"steps\n(path drawn on the first layout: its first {cut} steps)")
        out.append(figures.still(Path(folder) / f"still_{arm.name.replace('/', '_')}.png", world.render(rec, 0),
                                 rec["pos"][:cut], 16, title))
    return out


def value_map(folder: Path, curves: dict, exp: Experiment) -> list[Path]:
    """What the ISR learned, as a picture (from the stored ``valuemap/*`` curves): on one fixed
    layout, each socializing caregiver's reward of stepping into each cell from each side, beside
    seed 0's fitted ISR there."""
    if "valuemap/pred" not in curves or not hasattr(exp.socialize_world, "render"):
        return []
    layout = {k[len("valuemap/layout/"):]: v[None] for k, v in curves.items() if k.startswith("valuemap/layout/")}
    background = exp.socialize_world.render(layout, 0, tile=24)
    groups, of_arm = exp.caregiver_groups()
    true, pred = curves["valuemap/true"], curves["valuemap/pred"]
    panels = []
    for g in range(len(groups)):
        mine = pred[0] if len(groups) == 1 else pred[0, g]
        label = ""
        if len(groups) > 1:  # name it as its arms do ("noise=0.2/isr" -> "noise=0.2")
            label = next(a.name.rsplit("/", 1)[0] for a, i in zip(exp.arms, of_arm) if i == g) + ": "
        panels += [(f"{label}caregiver", true[g]), (f"{label}ISR, seed 0", mine)]
    return [figures.value_maps(Path(folder) / "value_map.png", background, 24, panels,
                               f"{exp.name}: reward of stepping into each cell from each side (one layout; caregiver: "
                               "what it means to reward)", per_row=4 if len(panels) > 4 else 2)]


def _first_layout_steps(rec: dict) -> int:
    """How many recorded steps stay on the episode's first layout (an event can redraw it: the
    walls change, or the agent is placed anew, a jump of more than one cell)."""
    pos = np.asarray(rec["pos"])
    walls = np.asarray(rec["walls"]) if "walls" in rec else None
    for t in range(1, len(pos)):
        jumped = np.abs(pos[t] - pos[t - 1]).sum() > 1
        if jumped or (walls is not None and not np.array_equal(walls[t], walls[0])):
            return t
    return len(pos)
