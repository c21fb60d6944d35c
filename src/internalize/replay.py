"""Replay stored policies: a run folder's parameters, acted out again in their worlds.

Pictures of agents (``internalize render``'s GIFs) are drawn from the world's state, step by
step, with the world's own renderer: no window or game library is involved.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from . import experiments, figures, phases, results
from .learner import Learner


def find_run(results_dir: Path, experiment: str, run: str | None = None) -> Path:
    """The run folder of ``experiment`` in ``results_dir``: ``run`` if named, else its newest."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ValueError(f"results folder {str(results_dir)!r} does not exist")
    if run is not None:
        folder = results_dir / run
        if not (folder / "config.json").is_file():
            raise ValueError(f"no run {run!r} in {str(results_dir)!r}")
        return folder
    found = []
    for cfg in results_dir.glob("*/config.json"):
        try:
            if results.read_json(cfg).get("experiment") == experiment:
                found.append(cfg.parent)
        except (OSError, ValueError, AttributeError):
            continue
    if not found:
        raise ValueError(f"no stored run of {experiment} in {str(results_dir)!r}; "
                         f"run `internalize run {experiment} --out {results_dir}` first")
    return max(found, key=lambda f: (f / "config.json").stat().st_mtime)


def arm_index(exp: experiments.Experiment, condition: str) -> int:
    """The arm a condition (or arm label) names; ValueError if none or several do."""
    names = [a.name for a in exp.arms]
    if condition in names:
        return names.index(condition)
    hits = [i for i, a in enumerate(exp.arms) if a.condition == condition]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ValueError(f"{exp.name} has no condition or arm {condition!r}; its arms: {', '.join(names)}")
    raise ValueError(f"{exp.name} has several {condition!r} arms; name one: "
                     f"{', '.join(names[i] for i in hits)}")


def policy(folder: Path, condition: str, seed: int, phase: str = "autonomy"):
    """``(experiment, preset, params, world spec)`` of one stored policy."""
    folder = Path(folder)
    exp, preset, settings = experiments.load(folder)  # first: it names an incompatible version
    problems = results.verify(folder)
    if problems:
        raise ValueError(f"{folder}: {problems[0]}; run it again")
    if not 0 <= seed < settings.seeds:
        raise ValueError(f"seed {seed} is not in the run (it has seeds 0..{settings.seeds - 1})")
    stored = results.read_msgpack(folder / "params.msgpack")
    if phase == "socialize":
        index, world = seed, exp.socialize_world
    else:
        if "autonomy" not in stored or not exp.arms:
            raise ValueError(f"{exp.name} has no autonomy phase; use --phase socialize")
        i = arm_index(exp, condition)
        index, world = seed * len(exp.arms) + i, exp.arm_world(exp.arms[i])
    params = jax.tree.map(lambda x: x[index], stored[phase])
    return exp, preset, params, world


def render_gif(folder: Path, condition: str, seed: int, phase: str, out: Path, episodes: int = 1,
               fps: float = 4.0) -> Path:
    """A GIF of ``episodes`` greedy episodes of one stored policy in its world."""
    exp, preset, params, world = policy(folder, condition, seed, phase)
    if not hasattr(world, "render"):
        raise ValueError(f"the world of {exp.name} has no renderer")
    learner = Learner(preset.ppo, world.env, use_isr=False)
    wp = world.params()
    steps = int(wp.max_steps)
    frames, captions = [], []
    for ep in range(episodes):
        rec = phases.trace(learner, params, jax.random.PRNGKey(1000 * seed + ep), wp, steps)
        events = 0
        for t in range(steps):
            frames.append(world.render(rec, t))
            events += int(rec["goal_reached"][t])
            action = world.action_names[int(rec["action"][t])]
            captions.append(f"ep {ep} t={t} {action}" + (" *" if rec["goal_reached"][t] else "") + f" [{events}]")
    return figures.gif(Path(out), frames, captions, fps=fps)


def stills(folder: Path, curves: dict, config: dict, exp: experiments.Experiment) -> list[Path]:
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
        rec = experiments.trace_record(curves, i)
        events = int(np.sum(rec["goal_reached"]))
        cut = _first_layout_steps(rec)
        title = (f"{arm.name}: seed 0 at the end of autonomy, {events} caregiver event(s) in {len(rec['pos'])} "
                 f"steps\n(path drawn on the first layout: its first {cut} steps)")
        out.append(figures.still(Path(folder) / f"still_{arm.name.replace('/', '_')}.png", world.render(rec, 0),
                                 rec["pos"][:cut], 16, title))
    return out


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
