"""Experiments of the paper (SPEC 7), each a short declaration over the shared pipeline.

The pipeline is the paper's: socialize (caregiver present, every step captured) -> fit the
ISR -> autonomy under each condition, seeds x conditions batched in one vmap. An experiment
names its worlds, budgets, conditions, how its claims are judged from the stored curves, and
which figures it draws. Everything it computes goes to files (see :mod:`internalize.results`),
and claims and figures are made from those files.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import caregiver, conditions, figures, isr, phases, results, stats, world
from .config import Preset, to_dict
from .learner import Learner, RunSpec


@dataclass(frozen=True)
class WorldSpec:
    """A coin world setting (SPEC 3)."""

    n_walls: int = 3
    map_name: str | None = None
    size: int = 5
    reachable_only: bool = False

    def params(self) -> world.CoinParams:
        return world.coin_params(self.n_walls, self.map_name, self.size, reachable_only=self.reachable_only)


@dataclass(frozen=True)
class Budget:
    socialize_steps: int
    autonomy_steps: int


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    holds: bool
    value: float
    p_value: float
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Arm:
    """One branch of autonomy: a condition, on a world, from a point of socialization."""

    condition: str
    world: WorldSpec | None = None
    """The autonomy world (default: the experiment's ``autonomy_world``)."""
    socialized: float = 1.0
    """Fraction of the socialization budget it starts from (its ISR saw those steps only)."""
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.condition


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    socialize_world: WorldSpec
    autonomy_world: WorldSpec
    arms: tuple[Arm, ...]
    budget: Budget
    quick: Budget
    analyze: Callable[[dict, dict], tuple[list[Claim], dict]]
    """(curves, config) -> (claims, per_seed values)."""
    plot: Callable[[dict, dict, Path], list[Path]]
    """(curves, config, folder) -> figure paths."""
    eval_worlds: tuple[WorldSpec, ...] = ()
    """After autonomy, every arm's policy is evaluated on each of these with the caregiver's reward."""
    eval_episodes: int = 100
    isr_prefixes: tuple[float, ...] = ()
    """Extra ISR fits on the first fractions of socialization (ISR accuracy vs budget)."""

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(a.condition for a in self.arms)


# ---------------------------------------------------------------------------------------------
# The shared pipeline


def seed_keys(root_seed: int, n: int) -> jax.Array:
    """One key per seed, all derived from the run's single root key."""
    return jax.random.split(jax.random.PRNGKey(root_seed), n)


def _prefix_updates(fraction: float, total: int) -> int:
    return max(1, min(total, math.ceil(fraction * total - 1e-9)))


def _interleave(per_arm: list):
    """[A] pytrees with leading [S] -> one pytree with leading [S * A], seed-major."""
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs, 1), *per_arm)
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), stacked)


def run_pipeline(exp: Experiment, preset: Preset, seeds: int, budget: Budget, root_seed: int = 0,
                 progress: phases.Progress | None = None) -> dict[str, np.ndarray]:
    """Socialize -> fit ISR(s) -> autonomy on every arm -> evaluate. Returns curves (NumPy)."""
    env = world.COIN
    cg = caregiver.caregiver()
    soc_world = exp.socialize_world.params()
    arms = exp.arms
    n_arms = len(arms)
    batch = preset.ppo.batch_size

    keys = seed_keys(root_seed, seeds)
    k_soc, k_isr, k_aut, k_eval = (jnp.stack(k) for k in zip(*[jax.random.split(k, 4) for k in keys]))

    obs_shape = env.obs_shape(soc_world)
    isr_channels = isr.n_input_planes(obs_shape[-1], env.n_actions, planes=preset.isr.action_planes)
    blank_isr = isr.init(jax.random.PRNGKey(0), obs_shape[0], isr_channels)

    # Socialize: the caregiver is present throughout (P = 1); snapshots where arms branch off.
    u_soc = phases.n_updates(budget.socialize_steps, batch)
    arm_updates = [_prefix_updates(a.socialized, u_soc) for a in arms]
    learner_soc = Learner(preset.ppo, env, use_isr=False)
    spec = RunSpec(soc_world, cg, conditions.get("oracle").presence(), jnp.float32(0.0), blank_isr)
    soc = phases.socialize(learner_soc, k_soc, phases.stack([spec] * seeds), budget.socialize_steps,
                           preset.updates_per_chunk, progress, snapshots=tuple(u for u in arm_updates if u < u_soc))

    # Internalize: one ISR per seed and socialization prefix, fitted on that prefix only.
    prefix_updates = sorted({*arm_updates, u_soc, *(_prefix_updates(f, u_soc) for f in exp.isr_prefixes)})
    fitted = phases.internalize(k_isr, soc.data, preset.isr, env.n_actions,
                                prefixes=tuple(u * batch for u in prefix_updates))
    del soc.data

    curves = {
        "env_steps/socialize": batch * np.arange(1, u_soc + 1),
        "isr/prefix_steps": np.asarray(fitted.prefixes),
        "isr/train_loss": fitted.train_loss,
        "isr/test_mse": fitted.test_mse,
        "isr/samples_seen": fitted.samples_seen,
        "isr/pearson": fitted.pearson,
    }
    for k, v in soc.metrics.items():
        curves[f"socialize/{k}"] = v
    if not arms or budget.autonomy_steps <= 0:
        return curves

    # Autonomy: seeds x arms as one batch of runs (run = seed * A + arm).
    learner_aut = Learner(preset.ppo, env, use_isr=True, isr_planes=preset.isr.action_planes)
    specs = []
    for _ in range(seeds):
        for a in arms:
            c = conditions.get(a.condition)
            w = soc_world if c.trains_on_socialization_world else (a.world or exp.autonomy_world).params()
            specs.append(RunSpec(w, cg, c.presence(), jnp.float32(1.0 if c.uses_isr else 0.0), blank_isr))
    spec_aut = phases.stack(specs)
    starts = [soc.snapshots.get(u, soc.state) for u in arm_updates]
    isr_of_arm = [jax.tree.map(lambda x, i=prefix_updates.index(u): x[:, i], fitted.params) for u in arm_updates]
    spec_aut = spec_aut.replace(isr_params=_interleave(isr_of_arm))
    aut = phases.autonomy(learner_aut, _interleave(starts), jnp.repeat(k_aut, n_arms, axis=0), spec_aut,
                          budget.autonomy_steps, preset.updates_per_chunk, progress)
    u_aut = next(iter(aut.metrics.values())).shape[1]
    curves["env_steps/autonomy"] = batch * np.arange(1, u_aut + 1)
    curves["arms/socialized_steps"] = np.asarray(arm_updates) * batch
    for k, v in aut.metrics.items():
        curves[f"autonomy/{k}"] = v.reshape((seeds, n_arms) + v.shape[1:])

    if exp.eval_worlds:
        eval_params = [w.params() for w in exp.eval_worlds]
        ret, goals = phases.evaluate(learner_aut, aut.state.params, jnp.repeat(k_eval, n_arms, axis=0), eval_params,
                                     cg, exp.eval_episodes, int(eval_params[0].max_steps))
        curves["eval/return"] = ret.reshape((seeds, n_arms) + ret.shape[1:])
        curves["eval/goals"] = goals.reshape((seeds, n_arms) + goals.shape[1:])
    return curves


def total_steps(exp: Experiment, preset: Preset, seeds: int, budget: Budget) -> int:
    b = preset.ppo.batch_size
    soc = phases.n_updates(budget.socialize_steps, b) * b
    aut = phases.n_updates(budget.autonomy_steps, b) * b
    return seeds * (soc + len(exp.arms) * aut if budget.autonomy_steps > 0 else soc)


def run(exp: Experiment, preset: Preset, seeds: int, out: Path, *, quick: bool = False, root_seed: int = 0,
        progress: phases.Progress | None = None) -> dict:
    """Run an experiment and write its folder: config, curves, summary and figures."""
    budget = exp.quick if quick else exp.budget
    folder = Path(out) / exp.name
    t0 = time.perf_counter()
    curves = run_pipeline(exp, preset, seeds, budget, root_seed, progress)
    wall = time.perf_counter() - t0
    config = {
        "schema": results.SCHEMA,
        "experiment": exp.name,
        "preset": preset.name,
        "preset_config": to_dict(preset),
        "seeds": seeds,
        "root_seed": root_seed,
        "seed_keys": np.asarray(jax.random.key_data(seed_keys(root_seed, seeds))).tolist(),
        "quick": quick,
        "budget": to_dict(budget),
        "socialize_world": to_dict(exp.socialize_world),
        "autonomy_world": to_dict(exp.autonomy_world),
        "conditions": list(exp.conditions),
        "arms": [a.name for a in exp.arms],
        "arms_config": [to_dict(a) for a in exp.arms],
        "eval_worlds": [to_dict(w) for w in exp.eval_worlds],
        "eval_episodes": exp.eval_episodes,
        "wall_seconds": wall,
        "versions": results.versions(),
    }
    results.write_npz(folder / "curves.npz", curves)
    results.write_json(folder / "config.json", config)
    return report(folder)


def report(folder: Path) -> dict:
    """Judge claims and draw figures from an experiment's stored files; write summary.json."""
    folder = Path(folder)
    config = results.read_json(folder / "config.json")
    curves = results.read_npz(folder / "curves.npz")
    exp = EXPERIMENTS[config["experiment"]]
    claims, per_seed = exp.analyze(curves, config)
    figs = exp.plot(curves, config, folder)
    summary = {
        "experiment": exp.name,
        "preset": config["preset"],
        "seeds": config["seeds"],
        "budget": config["budget"],
        "wall_seconds": config["wall_seconds"],
        "claims": [{"id": c.id, "statement": c.statement, "holds": bool(c.holds), "value": c.value,
                    "p_value": c.p_value, **({"detail": c.detail} if c.detail else {})} for c in claims],
        "per_seed": per_seed,
        "figures": [p.name for p in figs],
    }
    results.write_json(folder / "summary.json", summary)
    return summary


# ---------------------------------------------------------------------------------------------
# Experiment 1: unlearning (SPEC 7.1)

END_FRACTION = 0.1  # "end of a phase" = the mean over its last 10% of updates


def _unlearning_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    names = config["arms"]
    goals = curves["autonomy/goals_per_episode"]  # [S, C, U]
    socialized = stats.tail_mean(curves["socialize/goals_per_episode"], END_FRACTION)  # [S]
    end = {n: stats.tail_mean(goals[:, i], END_FRACTION) for i, n in enumerate(names)}
    _, p_none_isr = stats.ttest_ind(end["none"], end["isr"])
    _, p_isr_oracle = stats.ttest_ind(end["isr"], end["oracle"])
    soc_mean = float(socialized.mean())
    none_mean, isr_mean, oracle_mean = (float(end[n].mean()) for n in ("none", "isr", "oracle"))
    significant = bool(np.isfinite(p_none_isr) and p_none_isr < 0.05)
    claims = [
        Claim(
            "none_unlearns",
            "Without the caregiver and without an ISR, goal seeking collapses: at the end of autonomy "
            "`none` reaches fewer than half the socialized goals per episode, significantly fewer than `isr`.",
            holds=bool(none_mean < 0.5 * soc_mean and none_mean < isr_mean and significant),
            value=none_mean, p_value=p_none_isr,
            detail={"socialized": soc_mean, "none": none_mean, "isr": isr_mean, "test": "none vs isr, two-sample t"},
        ),
        Claim(
            "isr_keeps",
            "With the ISR standing in for the caregiver, the socialized behaviour persists: at the end of "
            "autonomy `isr` keeps at least 75% of the socialized goals per episode, significantly above `none`.",
            holds=bool(isr_mean >= 0.75 * soc_mean and isr_mean > none_mean and significant),
            value=isr_mean, p_value=p_none_isr,
            detail={"socialized": soc_mean, "oracle": oracle_mean, "isr_vs_oracle_p": p_isr_oracle,
                    "retained_fraction": isr_mean / soc_mean if soc_mean > 0 else float("nan")},
        ),
    ]
    per_seed = {
        "socialized_goals_per_episode": socialized,
        "end_of_autonomy_goals_per_episode": {n: v for n, v in end.items()},
        "isr_test_mse": curves["isr/test_mse"][:, -1, -1],
        "isr_pearson": curves["isr/pearson"][:, -1],
    }
    return claims, per_seed


def _unlearning_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    return [figures.learning_curve(
        folder / "unlearning.png",
        curves["env_steps/socialize"], curves["socialize/goals_per_episode"],
        curves["env_steps/autonomy"], curves["autonomy/goals_per_episode"],
        config["arms"], "goals per episode",
        f"Unlearning ({config['preset']} preset, {config['seeds']} seeds, mean and 95% CI)",
    )]


UNLEARNING = Experiment(
    name="unlearning",
    title="Unlearning: the ISR keeps socialized behaviour after the caregiver leaves (SPEC 7.1)",
    socialize_world=WorldSpec(n_walls=3),
    autonomy_world=WorldSpec(n_walls=3),
    arms=(Arm("oracle"), Arm("none"), Arm("isr")),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=_unlearning_analyze,
    plot=_unlearning_plot,
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (UNLEARNING,)}


def with_budget(exp: Experiment, socialize_steps: int | None = None, autonomy_steps: int | None = None,
                quick: bool = False) -> Experiment:
    """A copy of ``exp`` with another budget (e.g. tiny test runs)."""
    base = exp.quick if quick else exp.budget
    b = Budget(socialize_steps or base.socialize_steps, autonomy_steps or base.autonomy_steps)
    return replace(exp, quick=b) if quick else replace(exp, budget=b)
