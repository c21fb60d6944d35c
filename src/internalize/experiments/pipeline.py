"""The paper's pipeline, as steps: socialize -> internalize -> autonomy -> evaluate (-> trace).

Socialization runs seeds x caregivers (the distinct caregivers of the experiment's arms) as
one batch; the reward model is fitted per run and per socialization prefix; autonomy runs
seeds x arms, the arms whose condition uses the reward model in one program and the others in
another (so R_i is computed only where it is used); every arm's final policy is then evaluated
and one greedy episode recorded. Returns curves as NumPy arrays.

Arms may learn with reward models of their own (``Arm.reward_model``): every model learned from
praise is fitted on the one socialization (models with equal ``fit_id`` share a fit), a model
learned from demonstrations socializes its arms itself (:mod:`internalize.demonstrations`), and
each model's arms run autonomy as a program of their own.

What does not live here: the experiment's declaration (:mod:`.spec`), where its files go
(:mod:`.store`), the phases themselves (:mod:`internalize.phases`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from .. import caregivers, conditions, demonstrations, phases, readiness, reward_models
from .. import presence as presence_
from ..checkpoints import Checkpoints
from ..config import Preset
from ..learner import Learner, RunSpec
from ..worlds import coin
from . import capacity
from .spec import Budget, Experiment, Learners

TRACE_STEPS = 30  # the longest recorded episode (the coin world's end at 20)


def seed_keys(root_seed: int, n: int) -> jax.Array:
    """One key per seed, all derived from the run's single root key."""
    return jax.random.split(jax.random.PRNGKey(root_seed), n)


@dataclasses.dataclass(frozen=True)
class Points:
    """Points of a sweep that run as one batch (:mod:`.sweep`): configured experiments and presets
    that differ only in numbers a run is given as arrays (traced), never in shapes. Each point
    gets the same seeds as a run of it alone (its runs are ``point * seeds + seed``).

    ``hyper``: the PPO numbers that are given per run (:data:`internalize.learner.TRACED`); the
    others come from the first point's preset. Presence schedules are per run anyway."""

    exps: tuple[Experiment, ...]
    presets: tuple[Preset, ...]
    hyper: tuple[str, ...] = ()
    caregivers: bool = False
    """The points' caregivers may differ in their numbers: evaluation then gives each run its own,
    and the curves made from the caregiver's reward (value maps, sweeps) are made per point."""

    def __len__(self) -> int:
        return len(self.exps)

    def hyper_of(self, p: int) -> dict:
        return {h: np.float32(getattr(self.presets[p].ppo, h)) for h in self.hyper}


# Curves with a leading runs axis (one row per seed, or per seed x group): split between points.
PER_SEED = ("isr/", "socialize/", "autonomy/", "eval/", "demonstrate/", "readiness/error", "readiness/target_var",
            "arms/isr_pearson", "arms/socialized_steps_per_seed", "arms/rule_fired", "valuemap/pred",
            "valuemap/arm_pred", "sweep/pred")
SHARED = ("isr/prefix_steps",)


def split_points(curves: dict, n_points: int) -> list[dict]:
    """A batch's curves (runs ``point * seeds + seed``) -> one dict per point, as a run of it
    alone would have made (curves that do not depend on the point are shared)."""
    out = [{} for _ in range(n_points)]
    for k, v in curves.items():
        if k.startswith(PER_SEED) and k not in SHARED:
            v = np.asarray(v)
            parts = v.reshape((n_points, v.shape[0] // n_points) + v.shape[1:])
            for p in range(n_points):
                out[p][k] = parts[p]
        else:
            for p in range(n_points):
                out[p][k] = v
    for c in out:
        if "arms/socialized_steps_per_seed" in c:
            c["arms/socialized_steps"] = c["arms/socialized_steps_per_seed"].mean(0)
    return out


def split_params(tree, n_points: int) -> list:
    """Parameters of a batch's runs (leading axis point-major) -> one tree per point."""
    return [jax.tree.map(lambda x, p=p: np.asarray(x).reshape((n_points, -1) + np.shape(x)[1:])[p], tree)
            for p in range(n_points)]


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


def _merge_parts(parts: list[tuple[list[int], object]], seeds: int, n_arms: int):
    """Pytrees of runs ``[S * len(arms of part)]`` (seed-major), one per part of the arms,
    -> one pytree of runs ``[S * A]`` (seed-major, arms in declared order)."""
    def merge(*xs):
        out = None
        for (arms, _), x in zip(parts, xs):
            x = np.asarray(x)
            x = x.reshape((seeds, len(arms)) + x.shape[1:])
            if out is None:
                out = np.zeros((seeds, n_arms) + x.shape[2:], x.dtype)
            out[:, arms] = x
        return out.reshape((seeds * n_arms,) + out.shape[2:])

    return jax.tree.map(merge, *[tree for _, tree in parts])


_COMPILE_SECONDS = [0.0]


def _on_duration(event: str, duration: float, **_) -> None:
    if event.startswith("/jax/core/compile/"):  # tracing, lowering, backend compile (or cache load)
        _COMPILE_SECONDS[0] += duration


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compile_seconds() -> float:
    """JAX's compile time in this process so far (tracing + lowering + compiling or loading)."""
    return _COMPILE_SECONDS[0]


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
                 params_out: dict | None = None, ckpt: Checkpoints | None = None,
                 points: Points | None = None) -> dict[str, np.ndarray] | list[dict[str, np.ndarray]]:
    """Socialize -> fit the reward model(s) -> autonomy on every arm -> evaluate. Returns curves (NumPy).

    ``clock`` (optional) records the wall and compile seconds of each phase. ``params_out``
    (optional) receives the policies' parameters at the end of each phase: ``socialize``
    (leading axis: seeds, or seeds x socialization groups seed-major when arms differ in
    caregiver or socialization presence) and ``autonomy`` (seeds x arms, seed-major). ``ckpt``
    (optional): checkpoint the run as it goes, and resume from the checkpoints already there
    (the results are identical to an uninterrupted run's).

    Curves of socialization and of the reward-model fits have a leading ``[seeds]`` axis, and
    ``[seeds, groups]`` when the arms are socialized in more than one way (``arms/caregiver``
    then names each arm's group). An experiment with ``variants`` runs all of this once per
    variant, its curves under ``variant/<label>/``.

    ``points`` (optional): several points of a sweep in one batch (:class:`Points`; ``exp`` and
    ``preset`` are its first). Returns one curves dict per point, and ``params_out``'s arrays
    have a leading axis of points x runs (:func:`split_params`).
    """
    params_out = {} if params_out is None else params_out
    if exp.variants:
        return _run_variants(exp, preset, seeds, budget, root_seed, progress, clock, params_out, ckpt, points)
    n_points = 1 if points is None else len(points)
    per_point = seeds  # a point's seeds; below, `seeds` counts the batch's runs of each arm
    seeds = per_point * n_points
    point_exps = [exp] if points is None else list(points.exps)

    def point_of(run: int) -> int:  # a (seed) run's point
        return run // per_point

    def hyper(run: int) -> dict:
        return {} if points is None else points.hyper_of(point_of(run))

    point_groups = [e.socializations()[0] for e in point_exps]
    clock = clock or PhaseClock()
    env = exp.socialize_world.env
    groups, arm_group = exp.socializations()
    n_groups = len(groups)

    def unified_caregivers(e: Experiment, gs) -> tuple[list, list]:
        # Caregivers of different classes ride one batch as switches (one class: unchanged).
        unified = caregivers.unify([*(cg for cg, _ in gs), *(e.arm_caregiver(a) for a in e.arms)])
        return unified[:len(gs)], unified[len(gs):]

    point_cgs = [unified_caregivers(e, gs) for e, gs in zip(point_exps, point_groups)]  # (groups', arms') of each point
    groups_b, arm_cg_b = point_cgs[0]
    per_point_curves: list[dict] = [{} for _ in range(n_points)]  # curves that depend on the point, not the seed
    rm_cfg = exp.isr_config(preset) if exp.isr_config else preset.isr
    soc_world = exp.socialize_world.params()
    arms = exp.arms
    n_arms = len(arms)
    batch = preset.ppo.batch_size
    # Reward models: each arm's (or none); those learned from the caregiver's praise are fitted on
    # socialization's data, once per distinct fit (the experiment's own first: its fits are the
    # isr/* curves and the readiness rules' data); those learned from demonstrations socialize
    # their arms themselves.
    arm_models = [learner_of(exp, a) for a in arms]
    demo_arm = [m is not None and is_demonstrated(m) for m in arm_models]
    main = exp_model(exp)
    if is_demonstrated(main):
        main = reward_models.ISR  # the isr/* curves (what an ISR would have learned) stay defined
    fit_models = [main]
    for m in arm_models:
        if m is not None and not is_demonstrated(m) and all(_fit_id(m) != _fit_id(f) for f in fit_models):
            fit_models.append(m)
    fit_of_arm = [None if m is None or demo_arm[i] else next(k for k, f in enumerate(fit_models)
                                                             if _fit_id(f) == _fit_id(m))
                  for i, m in enumerate(arm_models)]
    spec_kw = dict(n_envs=preset.ppo.n_envs)
    bound_fits = [reward_models.bind(m, rm_cfg, env, soc_world, **spec_kw) for m in fit_models]
    model = bound_fits[0]

    keys = np.tile(np.asarray(seed_keys(root_seed, per_point)), (n_points, 1))  # each point: a run's own seeds
    k_soc, k_isr, k_aut, k_eval = np.moveaxis(np.asarray(_split4(keys)), 1, 0)  # each [seeds, 2]

    # Socialize: the caregiver is present (its socialization schedule); snapshots where arms branch off.
    u_soc = phases.n_updates(budget.socialize_steps, batch)
    fixed_updates = [_prefix_updates(a.socialized, u_soc) for a in arms]
    decisions = decision_points(exp, budget)  # nominal caregiver steps of each readiness decision
    decision_updates = [min(u_soc, phases.n_updates(n, batch)) for n in decisions]
    keep = [i for i, u in enumerate(decision_updates) if u not in decision_updates[:i]]  # one per update
    decisions, decision_updates = [decisions[i] for i in keep], [decision_updates[i] for i in keep]
    ruled = [a.leave_when is not None for a in arms]
    branch = sorted({*(u for u, r, d in zip(fixed_updates, ruled, demo_arm) if not r and not d), *decision_updates})
    learner_soc = Learner(preset.ppo, env)
    declared = [_prefix_updates(f, u_soc) for f in exp.isr_prefixes]  # one fit per declared budget,
    prefix_updates = sorted(declared + [u for u in {*branch, u_soc} if u not in declared])  # even if equal
    # Caregivers socialize in batches (memory: each run keeps its data until its model is fitted),
    # and within each, seeds in batches when the experiment caps its data in memory.
    done = []
    for i, gs in enumerate(caregiver_batches(exp)):
        tag = "" if len(gs) == n_groups else f".{i}"
        seed_batches = _even_batches(seeds, seeds_per_batch(exp, preset, seeds, budget, len(gs)))
        seed_parts = []
        for j, idx in enumerate(seed_batches):
            idx = np.asarray(idx)
            stag = tag if len(seed_batches) == 1 else f"{tag}.s{j}"
            specs = [RunSpec(soc_world, caregivers.as_arrays(point_cgs[point_of(r)][0][g]),
                             presence_.from_spec(point_groups[point_of(r)][g][1], budget.socialize_steps),
                             jnp.float32(0.0), (), hyper=hyper(r))
                     for r in idx for g in gs]
            k_soc_runs, k_isr_runs = np.repeat(k_soc[idx], len(gs), axis=0), np.repeat(k_isr[idx], len(gs), axis=0)
            spec_soc = phases.stack(specs)
            resumed = _load_socialized(ckpt, learner_soc, k_soc_runs, spec_soc, stag) if ckpt is not None else None
            if resumed is not None:
                soc, fitted = resumed
            else:
                with clock("socialize"):
                    soc = phases.socialize(learner_soc, k_soc_runs, spec_soc, budget.socialize_steps,
                                           preset.updates_per_chunk, progress,
                                           snapshots=tuple(u for u in branch if u < u_soc), ckpt=ckpt,
                                           tag="socialize" + stag)
                # Internalize: one reward model per run and socialization prefix, fitted on that prefix only.
                with clock("internalize"):
                    fitted = [phases.internalize(k_isr_runs, soc.data, bm, prefixes=tuple(u * batch for u in prefix_updates))
                              for bm in bound_fits]
                if ckpt is not None:
                    _save_socialized(ckpt, soc, fitted, stag)
            soc.data = None
            seed_parts.append((soc, fitted))
        soc, fitted = seed_parts[0] if len(seed_parts) == 1 else _join_seed_batches(seed_parts)
        done.append((len(gs), soc, fitted))
    soc, fitted_all = done[0][1:] if len(done) == 1 else _join_batches(done, seeds)
    fitted = fitted_all[0]
    params_out["socialize"] = soc.state.params

    def per_seed(x):  # [S * G, ...] -> [S, ...] (one group) or [S, G, ...]
        x = np.asarray(x)
        return x if n_groups == 1 else x.reshape((seeds, n_groups) + x.shape[1:])

    curves = {
        "env_steps/socialize": batch * np.arange(1, u_soc + 1),
        "isr/prefix_steps": np.asarray(fitted.prefixes),
        "isr/train_loss": per_seed(fitted.train_loss),
        "isr/test_mse": per_seed(fitted.test_mse),
        "isr/samples_seen": per_seed(fitted.samples_seen),
        "isr/pearson": per_seed(fitted.pearson),
        "isr/test_pred": per_seed(fitted.test_pred[:, -1]),
        "isr/test_target": per_seed(fitted.test_target[:, -1]),
        "isr/test_mask": per_seed(fitted.test_mask[:, -1]),
    }
    if fitted.pearson_true is not None and np.isfinite(fitted.pearson_true).any():
        curves["isr/pearson_true"] = per_seed(fitted.pearson_true)
    has_map = hasattr(exp.socialize_world, "value_map_steps")
    if has_map:
        full = jax.tree.map(lambda x: x[:, -1], fitted.params)
        for k, v in value_map(exp, model, full, root_seed, soc_world, groups_b).items():
            curves[f"valuemap/{k}"] = per_seed(v) if k == "pred" else v
        if points is not None and points.caregivers:  # each point's caregivers' rewards
            for p in range(n_points):
                per_point_curves[p]["valuemap/true"] = value_map(point_exps[p], model, full, root_seed, soc_world,
                                                                  point_cgs[p][0], truth_only=True)["true"]
    if exp.isr_sweep_layouts:
        pred, target, index = _sweep(exp, model, fitted, root_seed, soc_world)
        curves["sweep/pred"], curves["sweep/target"], curves["sweep/index"] = per_seed(pred), target, index
        if points is not None and points.caregivers:
            for p in range(n_points):
                per_point_curves[p]["sweep/target"] = _sweep(point_exps[p], model, fitted, root_seed, soc_world)[1]
    for k, v in soc.metrics.items():
        curves[f"socialize/{k}"] = per_seed(v)
    if n_groups > 1:
        curves["arms/caregiver"] = np.asarray(arm_group)

    # Where each arm leaves, per seed: its fixed point, or where its readiness rule fires.
    arm_updates = [np.full(seeds, u) for u in fixed_updates]
    fired = np.ones((seeds, n_arms), bool)
    if decisions:
        at = [prefix_updates.index(u) for u in decision_updates]
        error = fitted.test_mse[:, at, -1]  # [runs, K] each refit's final held-out MSE
        target_var = _held_out_var(fitted.test_target[:, at], fitted.test_mask[:, at])  # [runs, K]
        curves["readiness/steps"] = np.asarray(decisions)
        curves["readiness/error"] = per_seed(error)
        curves["readiness/target_var"] = per_seed(target_var)
        for a, arm in enumerate(arms):
            if arm.leave_when is None:
                continue
            for s_ in range(seeds):
                r = s_ * n_groups + arm_group[a]
                k, ok = readiness.decide(arm.leave_when, readiness.History(np.asarray(decisions, float), error[r],
                                                                           target_var[r]))
                arm_updates[a][s_], fired[s_, a] = decision_updates[k], ok
    if not arms or budget.autonomy_steps <= 0:
        return curves if points is None else [{**c, **e} for c, e in zip(split_points(curves, n_points),
                                                                          per_point_curves)]

    # Autonomy: seeds x arms (run = seed * A + arm), in two programs: the arms whose condition
    # uses the reward model, and the others (whose R_i would be multiplied by 0).
    uses = [conditions.get(a.condition).uses_isr and arm_models[i] is not None for i, a in enumerate(arms)]
    def of_caregiver(tree, g):  # runs [S * G, ...] -> group g's runs [S, ...]
        return jax.tree.map(lambda x: np.asarray(x).reshape((seeds, n_groups) + np.shape(x)[1:])[:, g], tree)

    starts, isr_of_arm = [None] * n_arms, [None] * n_arms
    for i in range(n_arms):
        if demo_arm[i]:
            continue
        starts[i] = _per_seed(lambda u, g=arm_group[i]: of_caregiver(soc.snapshots.get(u, soc.state), g), arm_updates[i])
        if fit_of_arm[i] is not None:  # (an arm without a model runs in the program that reads none)
            isr_of_arm[i] = _per_seed(lambda u, g=arm_group[i], fp=fitted_all[fit_of_arm[i]].params: jax.tree.map(
                lambda x, k=prefix_updates.index(u): x[:, k], of_caregiver(fp, g)), arm_updates[i])
    # Arms socialized by demonstration instead of praise: one run per (model, budget), all seeds at once.
    for (m, u), idx in _demo_groups(arm_models, fixed_updates, demo_arm).items():
        with clock("demonstrate"):
            got = _demonstrate(exp, preset, m, rm_cfg, k_soc, u * batch, progress, idx[0],
                               [point_exps[point_of(r)] for r in range(seeds)], [hyper(r) for r in range(seeds)])
        for i in idx:
            starts[i], isr_of_arm[i] = got.state, got.params
            for k, v in got.metrics.items():
                curves[f"demonstrate/{i}/{k}"] = np.asarray(v)
    if len({m for m in arm_models if m is not None}) > 1 or any(demo_arm):
        _arm_diagnostics(curves, exp, arms, arm_models, isr_of_arm, fit_of_arm, fitted_all, prefix_updates,
                         arm_updates, arm_group, n_groups, rm_cfg, soc_world, root_seed, has_map, spec_kw)
    plain_part = [i for i in range(n_arms) if not uses[i]]
    rm_models = list(dict.fromkeys(arm_models[i] for i in range(n_arms) if uses[i]))
    parts = [("autonomy", plain_part, None)] if plain_part else []
    for k, m in enumerate(rm_models):
        parts.append(("autonomy.rm" if len(rm_models) == 1 else f"autonomy.rm{k}",
                      [i for i in range(n_arms) if uses[i] and arm_models[i] == m], m))
    metrics_parts, params_parts, final_parts = [], [], []
    for tag, idx, m in parts:
        with_rm = m is not None
        learner = Learner(preset.ppo, env, reward_model=reward_models.bind(m, rm_cfg, env, soc_world, **spec_kw)
                          if with_rm else None)
        specs = []
        for r in range(seeds):
            pe = point_exps[point_of(r)]
            for i in idx:
                c = conditions.get(arms[i].condition)
                leave = presence_.from_spec(pe.arm_leave_presence(pe.arms[i]), budget.autonomy_steps)
                specs.append(RunSpec(exp.arm_world(arms[i]).params(), caregivers.as_arrays(point_cgs[point_of(r)][1][i]),
                                     c.presence(leave), jnp.float32(1.0 if c.uses_isr else 0.0), (),
                                     jnp.float32(exp.isr_replaces_reward), hyper=hyper(r)))
        spec_aut = phases.stack(specs)
        if with_rm:
            spec_aut = spec_aut.replace(isr_params=_interleave([isr_of_arm[i] for i in idx]))
        with clock("autonomy"):
            aut = phases.autonomy(learner, _interleave([starts[i] for i in idx]), np.repeat(k_aut, len(idx), axis=0),
                                  spec_aut, budget.autonomy_steps, preset.updates_per_chunk, progress, ckpt=ckpt,
                                  tag=tag)
        metrics_parts.append((idx, aut.metrics))
        params_parts.append((idx, aut.state.params))
    metrics = _merge_parts(metrics_parts, seeds, n_arms)
    final_params = _merge_parts(params_parts, seeds, n_arms)
    params_out["autonomy"] = final_params
    u_aut = next(iter(metrics.values())).shape[1]
    curves["env_steps/autonomy"] = batch * np.arange(1, u_aut + 1)
    if any(ruled):
        steps = np.stack(arm_updates, 1) * batch  # [S, A]
        curves["arms/socialized_steps"] = steps.mean(0)
        curves["arms/socialized_steps_per_seed"] = steps
        curves["arms/rule_fired"] = fired
    else:
        curves["arms/socialized_steps"] = np.asarray(fixed_updates) * batch
    for k, v in metrics.items():
        curves[f"autonomy/{k}"] = v.reshape((seeds, n_arms) + v.shape[1:])

    plain = Learner(preset.ppo, env)  # acting only: the policy network
    if exp.eval_worlds:
        eval_params = [w.params() for w in exp.eval_worlds]
        with clock("evaluate"):
            if points is not None and points.caregivers:  # each run judged by its point's caregiver
                cg = phases.stack([caregivers.as_arrays(point_exps[point_of(r)].the_caregiver())
                                   for r in range(seeds) for _ in range(n_arms)])
            else:
                cg = caregivers.as_arrays(exp.the_caregiver())
            ret, goals = phases.evaluate(plain, final_params, np.repeat(k_eval, n_arms, axis=0), eval_params,
                                         cg, exp.eval_episodes, int(eval_params[0].max_steps),
                                         per_run_caregiver=points is not None and points.caregivers)
        curves["eval/return"] = ret.reshape((seeds, n_arms) + ret.shape[1:])
        curves["eval/goals"] = goals.reshape((seeds, n_arms) + goals.shape[1:])
    traces: list[dict] = [{} for _ in range(n_points)]
    if exp.trace:
        for p in range(n_points):
            for i, a in enumerate(arms):
                params = jax.tree.map(lambda x: x[p * per_point * n_arms + i], final_params)  # seed 0, arm i
                w = exp.arm_world(a).params()
                steps = min(int(w.max_steps), TRACE_STEPS)
                with clock("trace"):
                    rec = phases.trace(plain, params, jax.random.PRNGKey(root_seed + i), w, steps)
                for k, v in rec.items():
                    traces[p][f"trace/{i}/{k}"] = v
    if points is None:
        return {**curves, **traces[0]}
    return [{**c, **t, **e} for c, t, e in zip(split_points(curves, n_points), traces, per_point_curves)]


def exp_model(exp: Experiment):
    """The experiment's reward model as an instance (a name: its default settings; a configured
    run has instances already, :func:`.spec.configure`)."""
    return Learners().resolve(exp.reward_model)


def learner_of(exp: Experiment, arm):
    """The reward model of an arm: its own, else the experiment's where its condition uses one, else None."""
    if arm.reward_model is not None:
        return Learners().resolve(arm.reward_model)
    return exp_model(exp) if conditions.get(arm.condition).uses_isr else None


def is_demonstrated(model) -> bool:
    """Whether a reward model learns from demonstrations (and socializes its arms itself)."""
    return model is not None and tuple(model.needs) == tuple(reward_models.DEMONSTRATIONS)


def _fit_id(model):
    """Models with equal fit ids share one fit (an ensemble's members do not depend on its pessimism)."""
    return model.fit_id() if hasattr(model, "fit_id") else model


def _demo_groups(arm_models, fixed_updates, demo_arm) -> dict:
    """{(model, socialization updates): [arm indices]} of the arms socialized by demonstration."""
    out: dict = {}
    for i, (m, u, d) in enumerate(zip(arm_models, fixed_updates, demo_arm)):
        if d:
            out.setdefault((m, u), []).append(i)
    return out


def _demonstrate(exp: Experiment, preset: Preset, model, rm_cfg, k_soc, steps: int, progress, salt: int,
                 run_exps: list | None = None, run_hyper: list | None = None):
    """A demonstrator shows ``steps`` steps per seed; the model learns from them (and its learner
    with it: :func:`internalize.demonstrations.learn`). The caregiver's effort is the ISR's: as
    many demonstrated steps as socialization's."""
    world = exp.socialize_world
    if not hasattr(world, "demonstrator"):
        raise ValueError(f"reward model {model.name!r} learns from demonstrations, but the world "
                         f"{type(world).__name__} has no scripted demonstrator")
    env, wp = world.env, world.params()
    seeds = k_soc.shape[0]
    keys = np.asarray(jax.jit(jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, 17 + salt))))(k_soc))
    demos = demonstrations.collect(keys[:, 0], env, wp, world.demonstrator(), preset.ppo.n_envs, steps)
    learner = Learner(preset.ppo, env)
    run_exps = run_exps or [exp] * seeds  # each run's point (a sweep's batch), for its presence and PPO numbers
    run_hyper = run_hyper or [{}] * seeds
    spec = phases.stack([RunSpec(wp, caregivers.as_arrays(e.the_caregiver()), presence_.from_spec(
        e.socialize_presence, steps), jnp.float32(0.0), (), hyper=h) for e, h in zip(run_exps, run_hyper)])
    bound = reward_models.bind(model, rm_cfg, env, wp, n_envs=preset.ppo.n_envs)
    return demonstrations.learn(learner, keys[:, 1], spec, demos, bound, steps, preset.updates_per_chunk, progress)


def _arm_diagnostics(curves, exp, arms, arm_models, isr_of_arm, fit_of_arm, fitted_all, prefix_updates, arm_updates,
                     arm_group, n_groups, rm_cfg, soc_world, root_seed, has_map, spec_kw) -> None:
    """Per arm, when arms learn with different reward models: the held-out Pearson r of its model's
    fit (``arms/isr_pearson`` [S, A], NaN where it learned from demonstrations or has none) and
    the value map of the R_i it uses (``valuemap/arm_pred`` [S, A, W, H, 4], NaN where none)."""
    seeds = len(arm_updates[0])
    env = exp.socialize_world.env
    pearson = np.full((seeds, len(arms)), np.nan)
    for i in range(len(arms)):
        if fit_of_arm[i] is None:
            continue
        f = fitted_all[fit_of_arm[i]]
        p = np.asarray(f.pearson).reshape((seeds, n_groups, -1))[:, arm_group[i]]  # [S, prefixes]
        pearson[:, i] = p[np.arange(seeds), [prefix_updates.index(u) for u in arm_updates[i]]]
    curves["arms/isr_pearson"] = pearson
    if not has_map:
        return
    maps = None
    for i, m in enumerate(arm_models):
        if m is None or isr_of_arm[i] is None:
            continue
        bound = reward_models.bind(m, rm_cfg, env, soc_world, **spec_kw)
        pred = value_map(exp, bound, isr_of_arm[i], root_seed, soc_world)["pred"]  # [S, W, H, 4]
        if maps is None:
            maps = np.full((seeds, len(arms)) + pred.shape[1:], np.nan, np.float32)
        maps[:, i] = pred
    if maps is not None:
        curves["valuemap/arm_pred"] = maps


def _sweep(exp: Experiment, model, fitted, root_seed: int, soc_world):
    """The fully socialized reward model on every (cell, direction, action) of a few coin-world
    layouts, beside the experiment's caregiver's reward there (SPEC 7.2)."""
    env = exp.socialize_world.env
    cg = caregivers.as_arrays(exp.the_caregiver())
    lay_keys = jax.random.split(jax.random.PRNGKey(root_seed + 7919), exp.isr_sweep_layouts)
    drawn = jax.jit(jax.vmap(coin.draw_layout, in_axes=(0, None)))(lay_keys, soc_world)
    states, actions, index = coin.sweep(list(zip(np.asarray(drawn.walls), np.asarray(drawn.goal))))

    def sweep(params, states, actions, world_params, cg):
        obs = jax.vmap(coin.observe, in_axes=(0, None))(states, world_params)
        out = jax.vmap(env.step, in_axes=(None, 0, 0, None))(jax.random.PRNGKey(0), states, actions, world_params)
        n = actions.shape[0]
        cg_state = caregivers.initial_states(cg, jax.random.PRNGKey(1), n)
        _, target, _ = jax.vmap(cg.reward)(jax.random.split(jax.random.PRNGKey(2), n), cg_state, caregivers.Step(
            states, obs, actions, out[1], out[2], out[3], out[4], out[5]))
        return jax.vmap(model.reward, in_axes=(0, None, None))(params, obs, actions), target

    full = jax.tree.map(lambda x: x[:, -1], fitted.params)
    pred, target = jax.jit(sweep)(full, states, actions, soc_world, cg)
    return np.asarray(pred), np.asarray(target), index


VALUE_MAP_SEED = 104729


def value_map(exp: Experiment, model, full, root_seed: int, soc_world, groups=None,
               truth_only: bool = False) -> dict[str, np.ndarray]:
    """What each reward model (``full``: its params, leading axis runs) learned, as a picture's numbers: on one fixed
    layout of the socialization world, R_i of every forward step into each free cell from each
    side, beside each caregiver's reward there (what it means to reward, ``intended``, where it
    says; else what it pays from a fresh memory). Maps are ``[W, H, 4]`` by (cell entered,
    facing), NaN where no such step exists."""
    world = exp.socialize_world
    layout, states, obs, actions, cells = world.value_map_steps(jax.random.PRNGKey(root_seed + VALUE_MAP_SEED))
    env = world.env
    n = actions.shape[0]

    def truth(cg):
        step = caregivers.Step(states, obs, actions, out[1], out[2], out[3], out[4], out[5])
        _, paid, _ = jax.vmap(cg.reward)(jax.random.split(jax.random.PRNGKey(2), n),
                                         caregivers.initial_states(cg, jax.random.PRNGKey(1), n), step)
        meant = jax.vmap(cg.intended)(step)
        return jnp.where(jnp.isfinite(meant), meant, paid)

    out = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, None)))(jax.random.PRNGKey(0), states, actions, soc_world)
    both = actions[:, None]  # the learner's action, then the other agents' (what the model sees)
    if env.other_agents:
        both = np.concatenate([both, np.asarray(out[5]["other_actions"], np.int32)], -1)

    def predict(params):
        return model.reward(params, obs, both)

    width, height = np.asarray(layout.walls).shape
    pred = None if truth_only else np.asarray(jax.jit(jax.vmap(predict))(full))  # [runs, M]

    def grid(values):  # [..., M] -> [..., W, H, 4]
        out = np.full(values.shape[:-1] + (width, height, 4), np.nan, np.float32)
        out[..., cells[:, 0], cells[:, 1], cells[:, 2]] = values
        return out

    if groups is None:  # the prediction alone
        return {"pred": grid(pred)}
    true = np.stack([np.asarray(jax.jit(truth)(caregivers.as_arrays(g))) for g in groups])  # [G, M]
    if truth_only:
        return {"true": grid(true)}
    maps = {"pred": grid(pred), "true": grid(true)}
    for f in dataclasses.fields(layout):
        maps[f"layout/{f.name}"] = np.asarray(getattr(layout, f.name))
    return maps


def _run_variants(exp: Experiment, preset: Preset, seeds: int, budget: Budget, root_seed: int,
                  progress, clock, params_out: dict, ckpt, points: Points | None = None):
    """The whole pipeline once per variant (its world, its budget), curves under ``variant/<label>/``
    with the variant's seconds, steps and world size; checkpoints scoped per variant. With
    ``points``: a list of curves per point (each point's variant seconds are its batch's)."""
    n_points = 1 if points is None else len(points)
    curves: list[dict] = [{} for _ in range(n_points)]
    for v in exp.variants:
        sub = variant_experiment(exp, v)
        sub_points = None if points is None else dataclasses.replace(
            points, exps=tuple(variant_experiment(e, v) for e in points.exps))
        out: dict = {}
        t0, c0 = time.perf_counter(), compile_seconds()
        got = run_pipeline(sub, preset, seeds, v.budget(budget), root_seed, progress, clock, out,
                           None if ckpt is None else ckpt.scoped(f"{v.label}."), sub_points)
        for c, g in zip(curves, [got] if points is None else got):
            # Its size and speed (a resumed variant's seconds count only what this process ran).
            g["seconds/wall"] = np.float64(time.perf_counter() - t0)
            g["seconds/compile"] = np.float64(compile_seconds() - c0)
            g["steps"] = np.int64(total_steps(sub, preset, seeds, v.budget(budget)))
            wp = v.world.params()
            g["world/max_steps"] = np.int64(wp.max_steps)
            if hasattr(wp, "size"):
                g["world/size"] = np.int64(wp.size)
            c.update({f"variant/{v.label}/{k}": x for k, x in g.items()})
        params_out.setdefault("variant", {})[v.label] = out
    return curves[0] if points is None else curves


def variant_experiment(exp: Experiment, v) -> Experiment:
    """The experiment as one variant runs it: its worlds (evaluation on its autonomy world), arms
    and reward-model network."""
    aut = v.autonomy_world or v.world
    sub = dataclasses.replace(exp, variants=(), socialize_world=v.world, autonomy_world=aut,
                              eval_worlds=tuple(aut for _ in exp.eval_worlds),
                              arms=exp.arms if v.arms is None else tuple(v.arms))
    if v.isr_network is not None:
        base = exp.isr_config or (lambda p: p.isr)
        sub = dataclasses.replace(sub, isr_config=lambda p: dataclasses.replace(base(p), network=v.isr_network))
    return sub


def decision_points(exp: Experiment, budget: Budget) -> list[int]:
    """Nominal caregiver steps of the readiness decisions: every ``decision_every`` steps up to
    the socialization budget (its end included). None when no arm leaves by a rule."""
    d = exp.decision_every
    if d <= 0 or not any(a.leave_when is not None for a in exp.arms):
        return []
    points = list(range(d, budget.socialize_steps + 1, d))
    if not points or points[-1] != budget.socialize_steps:
        points.append(budget.socialize_steps)
    return points


def _held_out_var(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Variance of the caregiver's reward over each fit's held-out steps ``[..., T]`` -> ``[...]``."""
    m = np.asarray(mask, bool)
    n = np.maximum(m.sum(-1), 1)
    mean = np.where(m, target, 0).sum(-1) / n
    return np.where(m, (target - mean[..., None]) ** 2, 0).sum(-1) / n


def _per_seed(tree_of, updates: np.ndarray):
    """One pytree ``[S, ...]`` whose seed s comes from ``tree_of(updates[s])`` (each ``[S, ...]``)."""
    cache: dict = {}
    rows = []
    for s, u in enumerate(np.asarray(updates).tolist()):
        if u not in cache:
            cache[u] = tree_of(u)
        rows.append(jax.tree.map(lambda x: np.asarray(x)[s], cache[u]))
    return jax.tree.map(lambda *xs: np.stack(xs), *rows)


def seeds_per_batch(exp: Experiment, preset: Preset, seeds: int, budget: Budget, groups: int) -> int:
    """Seeds socialized at once: all, or as many as keep ``exp.socialize_gib`` of data (at least 1)."""
    if exp.socialize_gib is None:
        return seeds
    per_seed = capacity.socialization_bytes(exp.socialize_world, preset.ppo.batch_size,
                                            phases.n_updates(budget.socialize_steps, preset.ppo.batch_size), groups)
    return int(max(1, min(seeds, exp.socialize_gib * 2**30 // max(per_seed, 1))))


def _join_seed_batches(parts: list):
    """Socialization results of seed batches (runs seed-major within each) -> one result, in order."""
    def cat(*xs):
        return None if xs[0] is None else np.concatenate([np.asarray(x) for x in xs], 0)

    return _combine([p[0] for p in parts], [p[1] for p in parts], cat)


def _combine(socs: list, fits: list, join):
    """Socialization results and fits (a list per batch: one per fitted model) of several batches
    -> one, every array joined by ``join``."""
    state = jax.tree.map(join, *[s.state for s in socs])
    metrics = {k: join(*[s.metrics[k] for s in socs]) for k in socs[0].metrics}
    snaps = {u: jax.tree.map(join, *[s.snapshots[u] for s in socs]) for u in socs[0].snapshots}
    fitted = [phases.Internalized(**{
        f.name: (getattr(per_model[0], f.name) if f.name == "prefixes" else
                 None if getattr(per_model[0], f.name) is None else
                 jax.tree.map(join, *[getattr(x, f.name) for x in per_model]))
        for f in dataclasses.fields(per_model[0])}) for per_model in zip(*fits)]
    return phases.PhaseResult(state, metrics, None, snaps), fitted


def _even_batches(n: int, per: int) -> list[list[int]]:
    """``range(n)`` in batches of at most ``per``, as even as possible (fewer shapes to compile)."""
    k = -(-n // per)
    starts = np.cumsum([0] + [n // k + (1 if i < n % k else 0) for i in range(k)])
    return [list(range(starts[i], starts[i + 1])) for i in range(k)]


def trace_record(curves: dict, arm: int) -> dict[str, np.ndarray]:
    """The recorded greedy episode of an arm (seed 0), field by field, from the stored curves."""
    prefix = f"trace/{arm}/"
    return {k[len(prefix):]: v for k, v in curves.items() if k.startswith(prefix)}


def caregiver_batches(exp: Experiment) -> list[list[int]]:
    """The experiment's distinct caregivers in the batches they socialize in: all at once, or
    ``caregivers_per_batch`` at most, in batches as even as possible (fewer shapes to compile)."""
    n = len(exp.socializations()[0])
    return _even_batches(n, exp.caregivers_per_batch or n)


def _join_batches(done: list, seeds: int):
    """Socialization results of caregiver batches (runs seed-major within each) -> one result
    with runs ``seed * G + caregiver``, as if socialized in one batch."""
    def join(*xs):
        if xs[0] is None:
            return None
        parts = [np.asarray(x).reshape((seeds, n) + np.shape(x)[1:]) for (n, _, _), x in zip(done, xs)]
        joined = np.concatenate(parts, 1)
        return joined.reshape((-1,) + joined.shape[2:])

    return _combine([d[1] for d in done], [d[2] for d in done], join)


def _save_socialized(ckpt: Checkpoints, soc: phases.PhaseResult, fitted: list, tag: str = "") -> None:
    """The phase checkpoint after socialization and the fits, one per fitted model (its data is no
    longer needed)."""
    def one(f):
        return {x.name: (np.asarray(getattr(f, x.name)) if x.name == "prefixes" else getattr(f, x.name))
                for x in dataclasses.fields(f)}

    ckpt.save("socialized" + tag, {
        "state": serialization.to_state_dict(soc.state), "metrics": soc.metrics,
        "snapshots": {str(k): serialization.to_state_dict(v) for k, v in soc.snapshots.items()},
        "fitted": one(fitted[0]), "fitted_more": {str(i): one(f) for i, f in enumerate(fitted[1:])},
    })
    ckpt.drop("socialize" + tag)


def _load_socialized(ckpt: Checkpoints, learner: Learner, keys, spec: RunSpec, tag: str = ""):
    saved = ckpt.load("socialized" + tag)
    if saved is None:
        return None
    template = jax.eval_shape(jax.vmap(learner.init), keys, spec.world, spec.caregiver)
    state = serialization.from_state_dict(template, saved["state"])
    snaps = {int(k): serialization.from_state_dict(template, v) for k, v in saved["snapshots"].items()}
    def one(f):
        return phases.Internalized(**{k: (tuple(int(x) for x in f[k]) if k == "prefixes" else f[k]) for k in f})

    more = saved.get("fitted_more") or {}
    fitted = [one(saved["fitted"])] + [one(more[k]) for k in sorted(more, key=int)]
    return phases.PhaseResult(state, dict(saved["metrics"]), None, snaps), fitted


def total_steps(exp: Experiment, preset: Preset, seeds: int, budget: Budget) -> int:
    """Environment steps of a whole run (every seed, caregiver and arm): the progress bar's total."""
    if exp.variants:
        return sum(total_steps(variant_experiment(exp, v), preset, seeds, v.budget(budget)) for v in exp.variants)
    b = preset.ppo.batch_size
    u_soc = phases.n_updates(budget.socialize_steps, b)
    soc = u_soc * b * len(exp.socializations()[0])
    models = [learner_of(exp, a) for a in exp.arms]
    groups = _demo_groups(models, [_prefix_updates(a.socialized, u_soc) for a in exp.arms],
                          [is_demonstrated(m) for m in models])
    soc += sum(u * b for _, u in groups)  # steps learned from demonstrations (a learner's own, or shown)
    aut = phases.n_updates(budget.autonomy_steps, b) * b
    return seeds * (soc + len(exp.arms) * aut if budget.autonomy_steps > 0 else soc)
