"""Replay stored policies: a run folder's parameters, acted out again in their worlds.

Pictures of agents (``internalize render``'s GIFs) are drawn from the world's state, step by
step, with the world's own renderer: no window or game library is involved.

What does not live here: the report's stills (recorded during the run,
:mod:`internalize.experiments.report`), and finding a run's declaration
(:mod:`internalize.experiments.store`).
"""
from __future__ import annotations

from pathlib import Path

import jax

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
            config = results.read_json(cfg)
            if experiment in (config.get("experiment"), config.get("experiment_ref")):
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
    learner = Learner(preset.ppo, world.env)
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
