"""Experiments of the paper (SPEC 7), each a short declaration over the shared pipeline.

The pipeline is the paper's: socialize (caregiver present, every step captured) -> fit the
ISR -> autonomy under each condition, seeds x conditions batched in one vmap. An experiment
names its worlds, budgets, conditions, how its claims are judged from the stored curves, and
which figures it draws. Everything it computes goes to files (see :mod:`internalize.results`),
and claims and figures are made from those files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from . import caregiver, conditions, figures, isr, phases, prosocial, results, stats, world
from . import config as cfg
from . import presence as presence_
from .config import ISRConfig, PPOConfig, PresenceSpec, Preset, to_dict
from .env import Env
from .checkpoints import DEFAULT_EVERY, Checkpoints
from .learner import Learner, RunSpec


@dataclass(frozen=True)
class WorldSpec:
    """A coin world setting (SPEC 3)."""

    n_walls: int = 3
    """Random interior walls per episode (ignored with a named map)."""
    map_name: str | None = None
    """A named map (plus, x, U, T, 4rooms) instead of random walls; none for random walls."""
    size: int = 5
    """Side of the square interior in cells, inside the outer wall (paper: 5)."""
    reachable_only: bool = False
    """Redraw layouts whose goal the agent cannot reach (ours; the paper keeps them)."""

    @property
    def env(self) -> Env:
        return world.COIN

    def params(self) -> world.CoinParams:
        return world.coin_params(self.n_walls, self.map_name, self.size, reachable_only=self.reachable_only)

    def caregiver(self) -> caregiver.Caregiver:
        """+0.4 on the goal, paid instead of the goal step's cost (SPEC 3)."""
        return caregiver.caregiver(0.4, waives_step_cost=True)

    action_names = ("left", "right", "forward")

    def render(self, rec: dict, t: int, tile: int = 16) -> np.ndarray:
        """Step ``t`` of a recorded episode (:func:`phases.trace`) as an RGB image."""
        return world.render(world.CoinState(**{f.name: rec[f.name][t] for f in dataclasses.fields(world.CoinState)}),
                            tile=tile)


@dataclass(frozen=True)
class ProsocialSpec:
    """The prosocial two-agent world (SPEC 8)."""

    max_steps: int = 100
    """Steps per episode (SPEC 8: 100)."""
    step_cost_total: float = 0.9
    """Total cost of forward moves over a whole episode of them (SPEC 8: 0.9)."""

    @property
    def env(self) -> Env:
        return prosocial.PROSOCIAL

    def params(self) -> prosocial.ProsocialParams:
        return prosocial.prosocial_params(self.max_steps, self.step_cost_total)

    def caregiver(self) -> caregiver.Caregiver:
        """The shared +0.4 when the partner reaches its goal; forward costs are never waived."""
        return caregiver.caregiver(0.4, waives_step_cost=False)

    action_names = prosocial.ACTION_NAMES

    def render(self, rec: dict, t: int, tile: int = 16) -> np.ndarray:
        """Step ``t`` of a recorded episode (:func:`phases.trace`) as an RGB image."""
        fields = dataclasses.fields(prosocial.ProsocialState)
        return prosocial.render(prosocial.ProsocialState(**{f.name: rec[f.name][t] for f in fields}), tile=tile)


@dataclass(frozen=True)
class Budget:
    socialize_steps: int
    """Environment steps of socialization per seed (the caregiver present)."""
    autonomy_steps: int
    """Environment steps of autonomy per seed and arm (0: no autonomy phase)."""


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
    isr_sweep_layouts: int = 0
    """Check the fully socialized ISR on every (cell, direction, action) of this many layouts."""
    trace: bool = True
    """Record one greedy episode of seed 0's final policy per arm (the report's stills)."""
    quick_seeds: int | None = None
    """Seeds of the quick budget when the command line names none (default: 10)."""
    isr_replaces_reward: bool = False
    """In autonomy the ISR's R_i replaces the learner's whole reward, R_e included (SPEC 8)."""
    isr_config: Callable[[Preset], ISRConfig] | None = None
    """The ISR training schedule for a preset, when the experiment's differs (SPEC 8)."""
    socialize_presence: PresenceSpec = PresenceSpec(1.0, 1.0)
    """The caregiver's presence during socialization (paper: always there)."""
    leave_presence: PresenceSpec = PresenceSpec(0.0, 0.0)
    """Its presence in autonomy for conditions where it leaves (none, isr; paper: gone at once)."""

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(a.condition for a in self.arms)

    def arm_world(self, arm: Arm):
        """The world an arm trains on in autonomy (frozen stays on the socialization world)."""
        if conditions.get(arm.condition).trains_on_socialization_world:
            return self.socialize_world
        return arm.world or self.autonomy_world


# ---------------------------------------------------------------------------------------------
# Settings: everything a run can be told, by dotted name (command line, TOML files)

DEFAULT_SEEDS = 10


@dataclass(frozen=True)
class Worlds:
    socialize: WorldSpec | ProsocialSpec
    """The world of socialization."""
    autonomy: WorldSpec | ProsocialSpec
    """The world of autonomy (arms that name their own world keep it)."""


@dataclass(frozen=True)
class Presences:
    socialize: PresenceSpec
    """The caregiver's presence during socialization."""
    leave: PresenceSpec
    """Its presence in autonomy for the conditions where it leaves (none, isr)."""


@dataclass(frozen=True)
class Settings:
    """The settings of one run of an experiment; ``internalize config EXPERIMENT`` prints them."""

    seeds: int
    """Independent runs, each with its own key derived from the root seed."""
    seed: int
    """Root seed: every key of every seed and phase is derived from it."""
    budget: Budget
    ppo: PPOConfig
    isr: ISRConfig
    world: Worlds
    presence: Presences
    eval_episodes: int
    """Episodes per evaluation world and arm (experiments that evaluate policies)."""
    updates_per_chunk: int
    """PPO updates per compiled call (progress and checkpoints come between calls)."""


def settings_for(exp: Experiment, preset: Preset, *, quick: bool = False) -> Settings:
    """The experiment's own settings under a preset, before any override."""
    return Settings(
        seeds=(exp.quick_seeds or DEFAULT_SEEDS) if quick else DEFAULT_SEEDS,
        seed=0,
        budget=exp.quick if quick else exp.budget,
        ppo=preset.ppo,
        isr=exp.isr_config(preset) if exp.isr_config else preset.isr,
        world=Worlds(exp.socialize_world, exp.autonomy_world),
        presence=Presences(exp.socialize_presence, exp.leave_presence),
        eval_episodes=exp.eval_episodes,
        updates_per_chunk=preset.updates_per_chunk,
    )


def configure(exp: Experiment, preset: Preset, s: Settings) -> tuple[Experiment, Preset]:
    """The experiment and preset that ``s`` describes; ValueError (one line) if it is invalid."""
    s.ppo.validate()
    s.isr.validate()
    checks = [("seeds", s.seeds >= 1, "at least 1"), ("seed", 0 <= s.seed < 2**32, "in 0..2^32-1"),
              ("budget.socialize_steps", s.budget.socialize_steps >= 1, "at least 1"),
              ("budget.autonomy_steps", s.budget.autonomy_steps >= 0, "at least 0"),
              ("eval_episodes", s.eval_episodes >= 1, "at least 1"),
              ("updates_per_chunk", s.updates_per_chunk >= 1, "at least 1")]
    for name, ok, want in checks:
        if not ok:
            raise ValueError(f"setting {name} must be {want}")
    for name, w in (("world.socialize", s.world.socialize), ("world.autonomy", s.world.autonomy)):
        try:
            w.params()
        except ValueError as e:
            raise ValueError(f"setting {name}: {e}") from None
    for name, p in (("presence.socialize", s.presence.socialize), ("presence.leave", s.presence.leave)):
        try:
            presence_.from_spec(p)
        except ValueError as e:
            raise ValueError(f"setting {name}: {e}") from None
    # Evaluation worlds that were the autonomy world follow it (ood_walls evaluates where it adapts).
    evals = tuple(s.world.autonomy if w == exp.autonomy_world else w for w in exp.eval_worlds)
    exp = replace(exp, socialize_world=s.world.socialize, autonomy_world=s.world.autonomy, eval_worlds=evals,
                  budget=s.budget, quick=s.budget, socialize_presence=s.presence.socialize,
                  leave_presence=s.presence.leave, eval_episodes=s.eval_episodes, isr_config=None)
    return exp, replace(preset, ppo=s.ppo, isr=s.isr, updates_per_chunk=s.updates_per_chunk)


# ---------------------------------------------------------------------------------------------
# The shared pipeline


def seed_keys(root_seed: int, n: int) -> jax.Array:
    """One key per seed, all derived from the run's single root key."""
    return jax.random.split(jax.random.PRNGKey(root_seed), n)


@jax.jit
def _split4(keys: jax.Array) -> jax.Array:
    """[seeds] keys -> [seeds, 4] (socialize, internalize, autonomy, evaluate)."""
    return jax.vmap(lambda k: jax.random.split(k, 4))(keys)


def _prefix_updates(fraction: float, total: int) -> int:
    return max(1, min(total, math.ceil(fraction * total - 1e-9)))


def _interleave(per_arm: list):
    """[A] pytrees with leading [S] -> one pytree with leading [S * A], seed-major."""
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs], 1), *per_arm)
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), stacked)


class PhaseClock:
    """Wall and compile seconds per phase of a pipeline (where an experiment's time goes)."""

    def __init__(self):
        self.seconds: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t0, c0 = time.perf_counter(), compile_seconds()
        yield  # phases hand back NumPy arrays, so their work is done when the block ends
        rec = self.seconds.setdefault(phase, {"wall": 0.0, "compile": 0.0})
        rec["wall"] += time.perf_counter() - t0
        rec["compile"] += compile_seconds() - c0


def run_pipeline(exp: Experiment, preset: Preset, seeds: int, budget: Budget, root_seed: int = 0,
                 progress: phases.Progress | None = None, clock: PhaseClock | None = None,
                 params_out: dict | None = None, ckpt: Checkpoints | None = None) -> dict[str, np.ndarray]:
    """Socialize -> fit ISR(s) -> autonomy on every arm -> evaluate. Returns curves (NumPy).

    ``clock`` (optional) records the wall and compile seconds of each phase. ``params_out``
    (optional) receives the policies' parameters at the end of each phase: ``socialize``
    (leading axis: seeds) and ``autonomy`` (seeds x arms, seed-major). ``ckpt`` (optional):
    checkpoint the run as it goes, and resume from the checkpoints already there (the results
    are identical to an uninterrupted run's).
    """
    params_out = {} if params_out is None else params_out
    clock = clock or PhaseClock()
    env = exp.socialize_world.env
    cg = exp.socialize_world.caregiver()
    isr_cfg = exp.isr_config(preset) if exp.isr_config else preset.isr
    soc_world = exp.socialize_world.params()
    arms = exp.arms
    n_arms = len(arms)
    batch = preset.ppo.batch_size

    keys = seed_keys(root_seed, seeds)
    k_soc, k_isr, k_aut, k_eval = np.moveaxis(np.asarray(_split4(keys)), 1, 0)  # each [seeds, 2]

    obs_shape = env.obs_shape(soc_world)
    isr_channels = isr.n_input_planes(obs_shape[-1], env.n_actions, 1 + env.other_agents, planes=isr_cfg.action_planes)
    isr_net = isr.network(isr_cfg, env.n_actions, 1 + env.other_agents, env.features)
    blank_isr = jax.jit(isr.init, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), obs_shape[0], isr_channels, isr_net)

    # Socialize: the caregiver is present throughout (P = 1); snapshots where arms branch off.
    u_soc = phases.n_updates(budget.socialize_steps, batch)
    arm_updates = [_prefix_updates(a.socialized, u_soc) for a in arms]
    learner_soc = Learner(preset.ppo, env, use_isr=False)
    spec = RunSpec(soc_world, cg, presence_.from_spec(exp.socialize_presence), jnp.float32(0.0), blank_isr)
    declared = [_prefix_updates(f, u_soc) for f in exp.isr_prefixes]  # one ISR per declared budget,
    prefix_updates = sorted(declared + [u for u in {*arm_updates, u_soc} if u not in declared])  # even if equal
    resumed = _load_socialized(ckpt, learner_soc, k_soc, soc_world) if ckpt is not None else None
    if resumed is not None:
        soc, fitted = resumed
    else:
        with clock("socialize"):
            soc = phases.socialize(learner_soc, k_soc, phases.stack([spec] * seeds), budget.socialize_steps,
                                   preset.updates_per_chunk, progress,
                                   snapshots=tuple(u for u in arm_updates if u < u_soc), ckpt=ckpt)
        # Internalize: one ISR per seed and socialization prefix, fitted on that prefix only.
        with clock("internalize"):
            fitted = phases.internalize(k_isr, soc.data, isr_cfg, env.n_actions,
                                        prefixes=tuple(u * batch for u in prefix_updates), features=env.features)
        if ckpt is not None:
            _save_socialized(ckpt, soc, fitted)
    del soc.data
    params_out["socialize"] = soc.state.params

    curves = {
        "env_steps/socialize": batch * np.arange(1, u_soc + 1),
        "isr/prefix_steps": np.asarray(fitted.prefixes),
        "isr/train_loss": fitted.train_loss,
        "isr/test_mse": fitted.test_mse,
        "isr/samples_seen": fitted.samples_seen,
        "isr/pearson": fitted.pearson,
        "isr/test_pred": fitted.test_pred[:, -1],
        "isr/test_target": fitted.test_target[:, -1],
        "isr/test_mask": fitted.test_mask[:, -1],
    }
    if exp.isr_sweep_layouts:
        lay_keys = jax.random.split(jax.random.PRNGKey(root_seed + 7919), exp.isr_sweep_layouts)
        drawn = jax.jit(jax.vmap(world.draw_layout, in_axes=(0, None)))(lay_keys, soc_world)
        states, actions, index = world.sweep(list(zip(np.asarray(drawn.walls), np.asarray(drawn.goal))))

        def sweep(params, states, actions, world_params, cg):
            obs = jax.vmap(world.observe, in_axes=(0, None))(states, world_params)
            info = jax.vmap(world.step, in_axes=(None, 0, 0, None))(jax.random.PRNGKey(0), states, actions,
                                                                     world_params)[5]
            x = isr.inputs(obs, actions, env.n_actions, isr_cfg.action_planes)
            return jax.vmap(isr.predict, in_axes=(0, None, None))(params, x, isr_net), caregiver.social_reward(cg, info)

        full = jax.tree.map(lambda x: x[:, -1], fitted.params)
        pred, target = jax.jit(sweep)(full, states, actions, soc_world, cg)
        curves["sweep/pred"], curves["sweep/target"], curves["sweep/index"] = np.asarray(pred), np.asarray(target), index
    for k, v in soc.metrics.items():
        curves[f"socialize/{k}"] = v
    if not arms or budget.autonomy_steps <= 0:
        return curves

    # Autonomy: seeds x arms as one batch of runs (run = seed * A + arm).
    learner_aut = Learner(preset.ppo, env, use_isr=True, isr_cfg=isr_cfg)
    specs = []
    leave = presence_.from_spec(exp.leave_presence)
    for _ in range(seeds):
        for a in arms:
            c = conditions.get(a.condition)
            specs.append(RunSpec(exp.arm_world(a).params(), cg, c.presence(leave), jnp.float32(1.0 if c.uses_isr else 0.0),
                                 blank_isr, jnp.float32(exp.isr_replaces_reward)))
    spec_aut = phases.stack(specs)
    starts = [soc.snapshots.get(u, soc.state) for u in arm_updates]
    isr_of_arm = [jax.tree.map(lambda x, i=prefix_updates.index(u): x[:, i], fitted.params) for u in arm_updates]
    spec_aut = spec_aut.replace(isr_params=_interleave(isr_of_arm))
    with clock("autonomy"):
        aut = phases.autonomy(learner_aut, _interleave(starts), np.repeat(k_aut, n_arms, axis=0), spec_aut,
                              budget.autonomy_steps, preset.updates_per_chunk, progress, ckpt=ckpt)
    params_out["autonomy"] = aut.state.params
    u_aut = next(iter(aut.metrics.values())).shape[1]
    curves["env_steps/autonomy"] = batch * np.arange(1, u_aut + 1)
    curves["arms/socialized_steps"] = np.asarray(arm_updates) * batch
    for k, v in aut.metrics.items():
        curves[f"autonomy/{k}"] = v.reshape((seeds, n_arms) + v.shape[1:])

    if exp.eval_worlds:
        eval_params = [w.params() for w in exp.eval_worlds]
        with clock("evaluate"):
            ret, goals = phases.evaluate(learner_aut, aut.state.params, np.repeat(k_eval, n_arms, axis=0),
                                         eval_params, cg, exp.eval_episodes, int(eval_params[0].max_steps))
        curves["eval/return"] = ret.reshape((seeds, n_arms) + ret.shape[1:])
        curves["eval/goals"] = goals.reshape((seeds, n_arms) + goals.shape[1:])
    if exp.trace:
        for i, a in enumerate(arms):
            params = jax.tree.map(lambda x: x[i], aut.state.params)  # seed 0, arm i
            w = spec_aut.world
            w = jax.tree.map(lambda x: x[i], w)
            steps = min(int(w.max_steps), TRACE_STEPS)
            with clock("trace"):
                rec = phases.trace(learner_aut, params, jax.random.PRNGKey(root_seed + i), w, steps)
            for k, v in rec.items():
                curves[f"trace/{i}/{k}"] = v
    return curves


TRACE_STEPS = 30  # the longest recorded episode (the coin world's end at 20)


def trace_record(curves: dict, arm: int) -> dict[str, np.ndarray]:
    """The recorded greedy episode of an arm (seed 0), field by field, from the stored curves."""
    prefix = f"trace/{arm}/"
    return {k[len(prefix):]: v for k, v in curves.items() if k.startswith(prefix)}


def _save_socialized(ckpt: Checkpoints, soc: phases.PhaseResult, fitted: phases.Internalized) -> None:
    """The phase checkpoint after socialization and the ISR fits (its data is no longer needed)."""
    ckpt.save("socialized", {
        "state": serialization.to_state_dict(soc.state), "metrics": soc.metrics,
        "snapshots": {str(k): serialization.to_state_dict(v) for k, v in soc.snapshots.items()},
        "fitted": {f.name: (np.asarray(getattr(fitted, f.name)) if f.name == "prefixes" else getattr(fitted, f.name))
                   for f in dataclasses.fields(fitted)},
    })
    ckpt.drop("socialize")


def _load_socialized(ckpt: Checkpoints, learner: Learner, keys, world_params):
    saved = ckpt.load("socialized")
    if saved is None:
        return None
    template = jax.eval_shape(jax.vmap(learner.init, in_axes=(0, None)), keys, world_params)
    state = serialization.from_state_dict(template, saved["state"])
    snaps = {int(k): serialization.from_state_dict(template, v) for k, v in saved["snapshots"].items()}
    f = saved["fitted"]
    fitted = phases.Internalized(**{k: (tuple(int(x) for x in f[k]) if k == "prefixes" else f[k]) for k in f})
    return phases.PhaseResult(state, dict(saved["metrics"]), None, snaps), fitted


def total_steps(exp: Experiment, preset: Preset, seeds: int, budget: Budget) -> int:
    b = preset.ppo.batch_size
    soc = phases.n_updates(budget.socialize_steps, b) * b
    aut = phases.n_updates(budget.autonomy_steps, b) * b
    return seeds * (soc + len(exp.arms) * aut if budget.autonomy_steps > 0 else soc)


def _identity(exp: Experiment, preset: Preset, seeds: int, budget: Budget, root_seed: int) -> dict:
    """What makes two runs of an experiment the same computation."""
    return {
        "schema": results.SCHEMA,
        "version": results.versions()["internalize"],
        "experiment": exp.name,
        "preset_config": to_dict(preset),
        "seeds": seeds,
        "root_seed": root_seed,
        "budget": to_dict(budget),
        "socialize_world": to_dict(exp.socialize_world),
        "autonomy_world": to_dict(exp.autonomy_world),
        "arms_config": [to_dict(a) for a in exp.arms],
        "eval_worlds": [to_dict(w) for w in exp.eval_worlds],
        "eval_episodes": exp.eval_episodes,
        "socialize_presence": to_dict(exp.socialize_presence),
        "leave_presence": to_dict(exp.leave_presence),
        **({"isr_config": to_dict(exp.isr_config(preset))} if exp.isr_config else {}),
        **({"isr_replaces_reward": True} if exp.isr_replaces_reward else {}),
    }


def run_id(identity: dict) -> str:
    """A short fingerprint of a computation (its identity)."""
    text = json.dumps(results._jsonable(identity), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _folder_state(folder: Path, want: dict) -> str:
    """``free`` (missing or empty), ``stored`` (this computation, complete and intact),
    ``broken`` (this computation, unfinished or damaged) or ``other`` (anything else)."""
    if not folder.exists():
        return "free"
    if not folder.is_dir():
        return "other"
    if not any(folder.iterdir()):
        return "free"
    try:
        config = results.read_json(folder / "config.json")
    except (OSError, ValueError):
        return "other"
    check_schema(folder, config)
    if not isinstance(config, dict) or any(config.get(k) != v for k, v in results._jsonable(want).items()):
        return "other"
    return "broken" if results.verify(folder) else "stored"


def check_schema(folder: Path, config) -> None:
    """ValueError (one line) if ``config`` (a run's config.json) comes from an incompatible version."""
    if isinstance(config, dict) and "experiment" in config and config.get("schema") != results.SCHEMA:
        raise ValueError(f"{str(folder)!r} holds results of internalize {config.get('version', '?')} (results "
                         f"schema {config.get('schema', '?')}); this version uses schema {results.SCHEMA}: "
                         "move it away or choose another --out")


def run_folder(out: Path, exp: Experiment, preset: Preset, seeds: int, budget: Budget,
               root_seed: int) -> tuple[Path, str]:
    """Where this computation's results go, and what is there: ``(folder, state)``.

    ``out/<experiment>`` when it is free or holds this same computation, otherwise
    ``out/<experiment>-<run id>``: a changed config gets a new folder and nothing stored is
    overwritten, while the same config finds its results again.
    """
    want = _identity(exp, preset, seeds, budget, root_seed)
    first, second = Path(out) / exp.name, Path(out) / f"{exp.name}-{run_id(want)}"
    state2 = _folder_state(second, want)
    if state2 in ("stored", "broken"):  # found again, even if <experiment> has been freed since
        return second, state2
    state = _folder_state(first, want)
    if state != "other":
        return first, state
    if state2 == "other":
        raise ValueError(f"results folder {str(second)!r} holds something else; move it away")
    return second, state2


_COMPILE_SECONDS = [0.0]


def _on_duration(event: str, duration: float, **_) -> None:
    if event.startswith("/jax/core/compile/"):  # tracing, lowering, backend compile (or cache load)
        _COMPILE_SECONDS[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compile_seconds() -> float:
    """JAX's compile time in this process so far (tracing + lowering + compiling or loading)."""
    return _COMPILE_SECONDS[0]


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (GiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # kB on Linux


STORED_FILES = ("config.json", "curves.npz", "curves.parquet", "params.msgpack")
"""A run's computed files, checksummed in its manifest (summary and figures are rebuilt from them)."""


def run(exp: Experiment, preset: Preset, seeds: int, out: Path, *, quick: bool = False, root_seed: int = 0,
        progress: phases.Progress | None = None, settings: Settings | None = None,
        checkpoint_every: float = DEFAULT_EVERY) -> dict:
    """Run an experiment into its run folder (see :func:`run_folder`) and report it.

    When the folder already holds this computation, complete and intact, nothing is run: the
    summary and figures are rebuilt from the stored files. When it holds this computation
    unfinished (a crash), the run resumes from its last checkpoint. Returns the summary; its
    ``folder`` names where the results are, ``resumed`` what was picked up. ``settings``
    (optional) are recorded as given. Checkpoints are taken every ``checkpoint_every`` seconds
    of work (at chunk boundaries) and at the end of each phase, and removed once the run is stored.
    """
    budget = exp.quick if quick else exp.budget
    folder, state = run_folder(out, exp, preset, seeds, budget, root_seed)
    if state == "stored":
        return dict(report(folder, exp), folder=str(folder), reused=True)
    settings = settings or replace(settings_for(exp, preset), seeds=seeds, seed=root_seed, budget=budget)
    identity = _identity(exp, preset, seeds, budget, root_seed)
    config = {
        **identity,
        "run_id": run_id(identity),
        "preset": preset.name,
        "settings": {st.name: st.default for st in cfg.settings(settings)},
        "seed_keys": np.asarray(jax.random.key_data(seed_keys(root_seed, seeds))).tolist(),
        "quick": quick,
        "conditions": list(exp.conditions),
        "arms": [a.name for a in exp.arms],
        "devices": [str(d) for d in jax.devices()],
        "versions": results.versions(),
    }
    # Written first: a crash leaves a folder that names its computation, so a rerun of the same
    # command finds it (unfinished: no manifest) and computes it again in place.
    for name in (*STORED_FILES, results.MANIFEST):
        (folder / name).unlink(missing_ok=True)
    results.write_json(folder / "config.json", config)
    ckpt = Checkpoints(folder, checkpoint_every)
    if state == "free":
        ckpt.clear()
    t0, c0 = time.perf_counter(), compile_seconds()
    clock = PhaseClock()
    params: dict = {}
    curves = run_pipeline(exp, preset, seeds, budget, root_seed, progress, clock, params_out=params, ckpt=ckpt)
    config.update(resumed_from=ckpt.resumed,  # checkpoints a crashed run was resumed from (none: one go)
                  wall_seconds=time.perf_counter() - t0, compile_seconds=compile_seconds() - c0,
                  phase_seconds=clock.seconds,  # {phase: {"wall", "compile"}}
                  peak_rss_gib=peak_rss_gib())  # of the process so far (experiments in one process share it)
    results.write_npz(folder / "curves.npz", curves)
    results.write_parquet(folder / "curves.parquet", curve_table(curves, config))
    results.write_msgpack(folder / "params.msgpack", params)
    results.write_json(folder / "config.json", config)
    results.write_manifest(folder, list(STORED_FILES))
    ckpt.clear()
    return dict(report(folder, exp), folder=str(folder), reused=False, resumed=ckpt.resumed)


def curve_table(curves: dict, config: dict) -> dict[str, np.ndarray]:
    """The learning curves as one tidy table: a row per (phase, seed, arm, update), a column per
    metric (what ``curves.parquet`` holds; read it with pandas or pyarrow)."""
    parts = []
    for phase in ("socialize", "autonomy"):
        names = sorted(k.split("/", 1)[1] for k in curves if k.startswith(phase + "/"))
        if not names:
            continue
        first = curves[f"{phase}/{names[0]}"]
        if phase == "socialize":
            first = first[:, None]
            arms = [""]
        else:
            arms = list(config["arms"])
        seeds, n_arms, updates = first.shape
        steps = np.asarray(curves[f"env_steps/{phase}"], np.int64)
        grid = np.meshgrid(np.arange(seeds), np.arange(n_arms), np.arange(updates), indexing="ij")
        part = {"phase": np.full(grid[0].size, phase, dtype=object), "seed": grid[0].ravel().astype(np.int32),
                "arm": np.asarray(arms, dtype=object)[grid[1].ravel()], "update": grid[2].ravel().astype(np.int32) + 1,
                "env_steps": steps[grid[2].ravel()]}
        for n in names:
            v = curves[f"{phase}/{n}"]
            part[n] = (v[:, None] if phase == "socialize" else v).reshape(-1).astype(np.float32)
        parts.append(part)
    keys = list(dict.fromkeys(k for p in parts for k in p))
    return {k: np.concatenate([p[k] if k in p else np.full(len(p["seed"]), np.nan, np.float32) for p in parts])
            for k in keys}


def report(folder: Path, exp: Experiment | None = None) -> dict:
    """Judge claims and draw figures from an experiment's stored files; write summary.json.

    ``exp``: the experiment that made them (default: the built-in one named in config.json;
    pass your own for an experiment you declared yourself).
    """
    folder = Path(folder)
    config = results.read_json(folder / "config.json")
    check_schema(folder, config)
    curves = results.read_npz(folder / "curves.npz")
    if exp is None:
        if config["experiment"] not in EXPERIMENTS:
            raise ValueError(f"{str(folder)!r} holds results of experiment {config['experiment']!r}, which is not "
                             "built in; pass the Experiment that made them")
        exp = EXPERIMENTS[config["experiment"]]
    claims, per_seed = exp.analyze(curves, config)
    figs = exp.plot(curves, config, folder)
    from .replay import stills

    figs += stills(folder, curves, config, exp)
    failed = failures(curves, config.get("arms", []))
    summary = {
        "experiment": exp.name,
        "preset": config["preset"],
        "seeds": config["seeds"],
        "budget": config["budget"],
        "wall_seconds": config["wall_seconds"],
        **{k: config[k] for k in ("compile_seconds", "peak_rss_gib", "phase_seconds") if k in config},
        "claims": [{"id": c.id, "statement": c.statement, "holds": bool(c.holds), "value": c.value,
                    "p_value": c.p_value, **({"detail": c.detail} if c.detail else {})} for c in claims],
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


def load(folder: Path) -> tuple[Experiment, Preset, Settings]:
    """The experiment, preset and settings that made a stored run of a built-in experiment."""
    folder = Path(folder)
    try:
        config = results.read_json(folder / "config.json")
    except (OSError, ValueError) as e:
        raise ValueError(f"{str(folder)!r} is not a readable run folder ({type(e).__name__})") from None
    check_schema(folder, config)
    name = config.get("experiment")
    if name not in EXPERIMENTS:
        raise ValueError(f"{str(folder)!r} holds experiment {name!r}, which is not built in")
    from .config import PRESETS

    exp, preset = EXPERIMENTS[name], PRESETS[config["preset"]]
    s = cfg.override(settings_for(exp, preset, quick=bool(config.get("quick"))), config["settings"])
    exp, preset = configure(exp, preset, s)
    return exp, preset, s


# ---------------------------------------------------------------------------------------------
# Experiment 1: unlearning (SPEC 7.1)

END_FRACTION = 0.1  # "end of a phase" = the mean over its last 10% of updates


def _persistence(curves: dict, config: dict):
    """The caregiver's event per episode (goals, or help) at the end of socialization and of
    autonomy per arm (per seed), and the t-tests of none vs isr and isr vs oracle."""
    events = curves["autonomy/goals_per_episode"]  # [S, C, U]
    socialized = stats.tail_mean(curves["socialize/goals_per_episode"], END_FRACTION)  # [S]
    end = {n: stats.tail_mean(events[:, i], END_FRACTION) for i, n in enumerate(config["arms"])}
    _, p_none_isr = stats.ttest_ind(end["none"], end["isr"])
    _, p_isr_oracle = stats.ttest_ind(end["isr"], end["oracle"])
    return socialized, end, p_none_isr, p_isr_oracle


def _persistence_curve(curves: dict, config: dict, path: Path, ylabel: str, title: str) -> Path:
    return figures.learning_curve(
        path, curves["env_steps/socialize"], curves["socialize/goals_per_episode"],
        curves["env_steps/autonomy"], curves["autonomy/goals_per_episode"], config["arms"], ylabel,
        f"{title} ({config['preset']} preset, {config['seeds']} seeds, mean and 95% CI)")


def _unlearning_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    socialized, end, p_none_isr, p_isr_oracle = _persistence(curves, config)
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
    return [_persistence_curve(curves, config, folder / "unlearning.png", "goals per episode", "Unlearning")]


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
    quick_seeds=6,  # as the other coin-world experiments: they then share compiled programs
)



# ---------------------------------------------------------------------------------------------
# Experiment 2: ISR accuracy (SPEC 7.2)

ISR_BUDGETS = (10_000, 20_000, 30_000, 40_000, 80_000, 120_000)


def _isr_accuracy_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    steps = curves["isr/prefix_steps"]
    mse = curves["isr/test_mse"][:, :, -1]  # [S, P] final test MSE per socialization budget
    log = np.log10(np.maximum(mse, 1e-12))
    _, p_fall = stats.ttest_rel(log[:, 0], log[:, -1])
    first, last = float(np.exp(np.log(mse[:, 0]).mean())), float(np.exp(np.log(mse[:, -1]).mean()))
    pearson_heldout = curves["isr/pearson"][:, -1]
    sweep = stats.pearson_rows(curves["sweep/pred"], curves["sweep/target"])
    r_held, r_sweep = float(np.nanmean(pearson_heldout)), float(np.nanmean(sweep))
    claims = [
        Claim("isr_error_falls",
              f"ISR test error falls steeply with socialization: the error after {int(steps[-1]):,} steps is "
              f"well below (under a tenth of) the error after {int(steps[0]):,} steps, significantly across seeds "
              "(paired t-test on log10 MSE). Paper: about 1e-3 down to about 3e-6.",
              holds=bool(last < 0.1 * first and np.isfinite(p_fall) and p_fall < 0.05),
              value=last, p_value=p_fall,
              detail={"mse_first_budget": first, "mse_last_budget": last, "ratio": last / first if first else None}),
        Claim("isr_correlates",
              "The ISR's prediction correlates with the caregiver's reward in the range the paper reports "
              "(Pearson r of 0.74 or more), on held-out socialization steps and on an exhaustive sweep of "
              "(layout, position, direction, action).",
              holds=bool(min(r_held, r_sweep) >= 0.74), value=min(r_held, r_sweep), p_value=float("nan"),
              detail={"pearson_heldout": r_held, "pearson_sweep": r_sweep, "sweep_states": int(len(curves["sweep/target"]))}),
    ]
    per_seed = {"socialization_steps": steps, "test_mse_by_budget": mse, "pearson_heldout": pearson_heldout,
                "pearson_sweep": sweep}
    return claims, per_seed


def _isr_accuracy_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    seeds = config["seeds"]
    held_t = curves["isr/test_target"][curves["isr/test_mask"]]
    held_p = curves["isr/test_pred"][curves["isr/test_mask"]]
    return [
        figures.isr_training(folder / "isr_training.png", curves["isr/samples_seen"][0, -1],
                             curves["isr/train_loss"][:, -1], curves["isr/test_mse"][:, -1],
                             f"ISR error over its training ({seeds} seeds)"),
        figures.mse_vs_budget(folder / "isr_mse_vs_socialization.png", curves["isr/prefix_steps"],
                              curves["isr/test_mse"][:, :, -1], f"ISR test MSE vs socialization ({seeds} seeds)"),
        figures.scatter(folder / "isr_scatter.png", [
            ("held-out steps", held_t, held_p, float(np.nanmean(curves["isr/pearson"][:, -1]))),
            ("exhaustive sweep", np.tile(curves["sweep/target"], seeds), curves["sweep/pred"].ravel(),
             float(np.nanmean(stats.pearson_rows(curves["sweep/pred"], curves["sweep/target"])))),
        ], "ISR prediction vs the caregiver's reward (all seeds)"),
    ]


ISR_ACCURACY = Experiment(
    name="isr_accuracy",
    title="ISR accuracy: error falls with socialization; predictions track the caregiver (SPEC 7.2)",
    socialize_world=WorldSpec(n_walls=3),
    autonomy_world=WorldSpec(n_walls=3),
    arms=(),
    budget=Budget(socialize_steps=120_000, autonomy_steps=0),
    # Quick: budgets scale to 5k..60k steps; 6 seeds (shares its compiled socialization with the
    # other coin-world experiments' quick runs).
    quick=Budget(socialize_steps=60_000, autonomy_steps=0),
    quick_seeds=6,
    analyze=_isr_accuracy_analyze,
    plot=_isr_accuracy_plot,
    isr_prefixes=tuple(b / ISR_BUDGETS[-1] for b in ISR_BUDGETS),
    isr_sweep_layouts=20,
)


# ---------------------------------------------------------------------------------------------
# Experiments 3 and 4: out-of-distribution generalization (SPEC 7.3, 7.4)


def _ood_claims(isr: np.ndarray, frozen: np.ndarray, oracle: np.ndarray, suffix: str = "") -> list[Claim]:
    _, p_frozen = stats.ttest_ind(isr, frozen, alternative="greater")
    _, p_oracle = stats.ttest_ind(isr, oracle, alternative="less")
    where = f" ({suffix})" if suffix else ""
    means = {"isr": float(isr.mean()), "frozen": float(frozen.mean()), "oracle": float(oracle.mean())}
    return [
        Claim(f"ood_isr_beats_frozen{'/' + suffix if suffix else ''}",
              f"In the new situation{where}, the learner that kept learning from its ISR earns more caregiver "
              "reward than the frozen socialized policy (one-sided two-sample t-test, p < 0.05).",
              holds=bool(np.isfinite(p_frozen) and p_frozen < 0.05), value=means["isr"] - means["frozen"],
              p_value=p_frozen, detail=means),
        Claim(f"ood_isr_near_oracle{'/' + suffix if suffix else ''}",
              f"In the new situation{where}, the ISR learner is not significantly below the learner whose "
              "caregiver stayed (one-sided two-sample t-test of isr < oracle, p >= 0.05).",
              holds=bool(not (np.isfinite(p_oracle) and p_oracle < 0.05)), value=means["isr"] - means["oracle"],
              p_value=p_oracle, detail=means),
    ]


def _eval_means(curves: dict) -> np.ndarray:
    return curves["eval/return"].mean(-1)  # [S, A, E] mean return per episode


def _ood_walls_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    arms = config["arms"]
    ret = _eval_means(curves)[:, :, 0]
    by = {a: ret[:, i] for i, a in enumerate(arms)}
    claims = _ood_claims(by["isr"], by["frozen"], by["oracle"])
    return claims, {"eval_return": by}


def _ood_walls_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    ret = _eval_means(curves)[:, :, 0]
    series = {a: ret[:, i:i + 1] for i, a in enumerate(config["arms"])}
    return [figures.bars(folder / "ood_walls.png", ["5 random walls"], series,
                         "caregiver return per episode (100 episodes)",
                         f"Socialized on 1 wall, evaluated on 5 ({config['seeds']} seeds)")]


def _conv_isr(preset: Preset) -> ISRConfig:
    """SPEC 5's conv ISR whatever the preset, for the out-of-distribution experiments: carrying
    the caregiver's values to new layouts needs its convolutions. With the fast preset's MLP ISR,
    isr fell significantly below oracle on 5 walls (full budget) and on the x, U and T maps
    (quick budget); with the conv ISR it matched oracle (docs/performance.md)."""
    return replace(preset.isr, network="cnn")


OOD_WALLS = Experiment(
    name="ood_walls",
    title="Out of distribution, random walls: ISR learners adapt to 5 walls (SPEC 7.3)",
    socialize_world=WorldSpec(n_walls=1),
    autonomy_world=WorldSpec(n_walls=5),
    arms=(Arm("oracle"), Arm("isr"), Arm("frozen")),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=_ood_walls_analyze,
    plot=_ood_walls_plot,
    eval_worlds=(WorldSpec(n_walls=5),),
    quick_seeds=6,  # as the other coin-world experiments: they then share compiled programs
    isr_config=_conv_isr,
)

MAPS = tuple(world.NAMED_MAPS)


def _ood_maps_table(curves: dict, config: dict) -> dict[str, np.ndarray]:
    """Per-seed mean returns ``[S, maps]`` of isr, oracle (trained on that map) and frozen."""
    ret = _eval_means(curves)  # [S, A, E]
    arms = config["arms"]
    out = {}
    for cond in ("isr", "oracle"):
        out[cond] = np.stack([ret[:, arms.index(f"{m}/{cond}"), e] for e, m in enumerate(MAPS)], 1)
    out["frozen"] = ret[:, arms.index("frozen"), :]
    return out


def _ood_maps_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = _ood_maps_table(curves, config)
    claims = _ood_claims(t["isr"].mean(1), t["frozen"].mean(1), t["oracle"].mean(1))
    for e, m in enumerate(MAPS):
        claims += _ood_claims(t["isr"][:, e], t["frozen"][:, e], t["oracle"][:, e], suffix=m)
    return claims, {"eval_return_by_map": {c: {m: v[:, e] for e, m in enumerate(MAPS)} for c, v in t.items()}}


def _ood_maps_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = _ood_maps_table(curves, config)
    groups = list(MAPS) + ["pooled"]
    series = {c: np.concatenate([v, v.mean(1, keepdims=True)], 1) for c, v in t.items()}
    return [figures.bars(folder / "ood_maps.png", groups, series, "caregiver return per episode (100 episodes)",
                         f"Socialized on 1 wall, evaluated on named maps ({config['seeds']} seeds)")]


OOD_MAPS = Experiment(
    name="ood_maps",
    title="Out of distribution, named maps: ISR learners adapt to plus, x, U, T and 4 rooms (SPEC 7.4)",
    socialize_world=WorldSpec(n_walls=1),
    autonomy_world=WorldSpec(n_walls=5),
    arms=tuple(Arm(c, WorldSpec(map_name=m), label=f"{m}/{c}") for m in MAPS for c in ("isr", "oracle"))
    + (Arm("frozen"),),
    budget=Budget(socialize_steps=120_000, autonomy_steps=240_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=_ood_maps_analyze,
    plot=_ood_maps_plot,
    eval_worlds=tuple(WorldSpec(map_name=m) for m in MAPS),
    quick_seeds=6,
    isr_config=_conv_isr,
)


# ---------------------------------------------------------------------------------------------
# Experiment 5: reward hacking (SPEC 7.5)

HACKING_BUDGETS = (2_048, 4_096, 8_192, 16_384, 30_000, 120_000)
GOAL_REWARD = 0.4


def _hacking_table(curves: dict, config: dict):
    arms = config["arms"]
    steps = curves["arms/socialized_steps"]
    internal = curves["autonomy/internal_return"]  # [S, A, U]
    goals = curves["autonomy/goals_per_episode"]
    return arms, steps, internal, goals


def _hacking_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    arms, steps, internal, goals = _hacking_table(curves, config)
    small, large = 0, len(arms) - 1
    end_goals = stats.tail_mean(goals, END_FRACTION)  # [S, A]
    start_internal = stats.head_mean(internal, END_FRACTION)
    end_internal = stats.tail_mean(internal, END_FRACTION)
    gap = end_internal - GOAL_REWARD * end_goals  # internal return not backed by real goals
    _, p_goals = stats.ttest_ind(end_goals[:, small], end_goals[:, large], alternative="less")
    internal_kept = float(end_internal[:, small].mean()) >= float(start_internal[:, small].mean())
    spearman = stats.spearman(np.log(steps), gap.mean(0))
    _, p_gap = stats.ttest_ind(gap[:, small], gap[:, large], alternative="greater")
    claims = [
        Claim("undertrained_isr_is_hacked",
              f"With an ISR fitted on only {int(steps[small]):,} socialization steps, the learner ends autonomy "
              f"reaching significantly fewer real goals than with an ISR fitted on {int(steps[large]):,} steps, "
              "while the internal return it collects does not fall.",
              holds=bool(np.isfinite(p_goals) and p_goals < 0.05 and internal_kept),
              value=float(end_goals[:, small].mean()), p_value=p_goals,
              detail={"goals_end_small": float(end_goals[:, small].mean()),
                      "goals_end_large": float(end_goals[:, large].mean()),
                      "internal_start_small": float(start_internal[:, small].mean()),
                      "internal_end_small": float(end_internal[:, small].mean())}),
        Claim("hacking_gap_shrinks",
              "The hacking gap (internal return minus the caregiver reward its goals would earn) shrinks as "
              "socialization grows: larger at the smallest budget than at the largest (one-sided t-test), "
              "and decreasing with budget (Spearman rho < 0 over budgets).",
              holds=bool(np.isfinite(p_gap) and p_gap < 0.05 and spearman < 0),
              value=float(spearman), p_value=p_gap,
              detail={"gap_by_budget": dict(zip([str(int(s)) for s in steps], gap.mean(0).tolist()))}),
    ]
    per_seed = {"socialized_steps": steps, "end_goals": end_goals, "end_internal_return": end_internal,
                "hacking_gap": gap}
    return claims, per_seed


def _hacking_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    arms, steps, internal, goals = _hacking_table(curves, config)
    end_goals = stats.tail_mean(goals, END_FRACTION)
    gap = stats.tail_mean(internal, END_FRACTION) - GOAL_REWARD * end_goals
    figs = [
        figures.hacking(folder / "reward_hacking.png", curves["env_steps/autonomy"], internal[:, 0], goals[:, 0],
                        f"ISR fitted on {int(steps[0]):,} socialization steps ({config['seeds']} seeds)"),
        figures.gap_vs_budget(folder / "hacking_gap.png", steps, gap, "Hacking gap vs socialization"),
    ]
    if "trace/0/pos" in curves:
        frames, captions = [], []
        for t in range(curves["trace/0/pos"].shape[0]):
            st = world.CoinState(curves["trace/0/walls"][t], curves["trace/0/goal"][t], curves["trace/0/pos"][t],
                                 curves["trace/0/dir"][t], np.int32(t))
            frames.append(world.render(st, tile=16))
            a = ["left", "right", "forward"][int(curves["trace/0/action"][t])]
            captions.append(f"t={t} {a}" + (" GOAL" if curves["trace/0/goal_reached"][t] else ""))
        figs.append(figures.rollout(folder / "hacking_rollout.png", frames, captions,
                                    f"A greedy episode of a policy trained on an ISR fitted on {int(steps[0]):,} steps"))
    return figs


REWARD_HACKING = Experiment(
    name="reward_hacking",
    title="Reward hacking: an undertrained ISR is exploited (SPEC 7.5)",
    socialize_world=WorldSpec(n_walls=3),
    autonomy_world=WorldSpec(n_walls=3),
    arms=tuple(Arm("isr", socialized=b / HACKING_BUDGETS[-1], label=f"isr@{b}") for b in HACKING_BUDGETS),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=_hacking_analyze,
    plot=_hacking_plot,
    trace=True,
    quick_seeds=6,
)


# ---------------------------------------------------------------------------------------------
# Experiment 6: the prosocial two-agent world (SPEC 7.6, 8)


def _prosocial_analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    socialized, end, p, p_oracle = _persistence(curves, config)  # the events are partner goals reached
    soc, none, isr_, oracle = (float(v.mean()) for v in (socialized, end["none"], end["isr"], end["oracle"]))
    significant = bool(np.isfinite(p) and p < 0.05)
    claims = [
        Claim("prosocial_isr_keeps_helping",
              "With the ISR standing in for the shared reward, the learner keeps moving the ball out of its "
              "partner's way: at the end of autonomy `isr` helps at least 75% as often as when socialized, "
              "significantly more than `none`.",
              holds=bool(isr_ >= 0.75 * soc and isr_ > none and significant), value=isr_, p_value=p,
              detail={"socialized": soc, "oracle": oracle, "isr_vs_oracle_p": p_oracle,
                      "retained_fraction": isr_ / soc if soc > 0 else float("nan")}),
        Claim("prosocial_none_stops",
              "Without the caregiver and without an ISR, helping stops: at the end of autonomy `none` helps "
              "less than half as often as when socialized, significantly less than `isr`.",
              holds=bool(none < 0.5 * soc and none < isr_ and significant), value=none, p_value=p,
              detail={"socialized": soc, "none": none, "isr": isr_, "test": "none vs isr, two-sample t"}),
    ]
    per_seed = {"socialized_helping_per_episode": socialized,
                "end_of_autonomy_helping_per_episode": end,
                "isr_test_mse": curves["isr/test_mse"][:, -1, -1],
                "isr_pearson": curves["isr/pearson"][:, -1]}
    return claims, per_seed


def _prosocial_plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    figs = [_persistence_curve(curves, config, folder / "prosocial.png",
                               "partner goals reached per episode (helping rate)", "Prosocial helping")]
    names = config["arms"]
    for cond in ("isr", "none"):
        i = names.index(cond)
        if f"trace/{i}/pos" not in curves:
            continue
        rec = trace_record(curves, i)
        fields = [f.name for f in dataclasses.fields(prosocial.ProsocialState)]
        frames, captions = [], []
        for t in range(rec["pos"].shape[0]):
            frames.append(prosocial.render(prosocial.ProsocialState(**{f: rec[f][t] for f in fields}), tile=16))
            captions.append(f"t={t} {prosocial.ACTION_NAMES[int(rec['action'][t])]}"
                            + (" HELPED" if rec["goal_reached"][t] else ""))
        figs.append(figures.rollout(folder / f"prosocial_rollout_{cond}.png", frames, captions,
                                    f"A greedy episode of the `{cond}` learner at the end of autonomy (seed 0): "
                                    "red learner, blue partner, purple ball, green partner's goal"))
    return figs


def _prosocial_isr(preset: Preset) -> ISRConfig:
    """SPEC 8: 10 epochs, batch 10, balanced sampling (lr and clipping as SPEC 5)."""
    if preset.name == "paper":
        return replace(preset.isr, batch_size=10, epochs=10.0)
    return preset.isr


PROSOCIAL = Experiment(
    name="prosocial",
    title="Prosocial helping: the ISR keeps a learner helping its partner after the caregiver leaves (SPEC 7.6)",
    socialize_world=ProsocialSpec(),
    autonomy_world=ProsocialSpec(),
    arms=(Arm("oracle"), Arm("none"), Arm("isr")),
    budget=Budget(socialize_steps=480_000, autonomy_steps=480_000),
    # Quick: helping reaches about 4.7 partner goals per episode by 200k steps, and `none` has
    # collapsed within 40k steps of autonomy (measured on 2 seeds at the full budget).
    quick=Budget(socialize_steps=200_000, autonomy_steps=80_000),
    quick_seeds=5,
    analyze=_prosocial_analyze,
    plot=_prosocial_plot,
    isr_replaces_reward=True,
    isr_config=_prosocial_isr,
    trace=True,
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (UNLEARNING, ISR_ACCURACY, OOD_WALLS, OOD_MAPS,
                                                          REWARD_HACKING, PROSOCIAL)}


def with_budget(exp: Experiment, socialize_steps: int | None = None, autonomy_steps: int | None = None,
                quick: bool = False) -> Experiment:
    """A copy of ``exp`` with another budget (e.g. tiny test runs)."""
    base = exp.quick if quick else exp.budget
    b = Budget(socialize_steps or base.socialize_steps, autonomy_steps or base.autonomy_steps)
    return replace(exp, quick=b) if quick else replace(exp, budget=b)
