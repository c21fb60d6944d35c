"""The phases of the paper's pipeline: socialize -> internalize (fit the ISR) -> autonomy.

Each phase runs a batch of runs (seeds, or seeds x conditions) as one vmapped, compiled
program, called in chunks of updates so that long work reports progress and can be
checkpointed between chunks. Results come back as NumPy arrays with a leading runs axis.

What does not live here: the PPO update (:mod:`internalize.learner`), a reward model's fit
(:mod:`internalize.reward_models`), and which phases an experiment runs in which order
(:mod:`internalize.experiments.pipeline`).
"""
from __future__ import annotations

import collections
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from flax import serialization

from . import devices
from . import reward_models
from .reward_models import isr as isr_
from .checkpoints import Checkpoints, as_list
from .learner import Learner, RunSpec, RunState

Progress = Callable[[int], None]  # called with environment steps just done (all runs)


def n_updates(steps: int, batch_size: int) -> int:
    """PPO updates for a budget of environment steps, rounded up as Stable-Baselines3 does."""
    return max(1, math.ceil(steps / batch_size))


def stack(trees: list) -> Any:
    """Stack a list of pytrees along a new leading axis (the runs axis), in host memory.

    Host-side glue is NumPy throughout: the same work as eager JAX ops compiles one small XLA
    program per leaf and shape (hundreds per experiment, about half of its compile time).
    """
    return jax.tree.map(lambda *xs: np.stack([np.asarray(jnp.asarray(x)) for x in xs]), *trees)


def repeat(tree: Any, times: int) -> Any:
    """Repeat each run ``times`` times in place (run r -> runs r*times .. r*times+times-1)."""
    return jax.tree.map(lambda x: np.repeat(np.asarray(x), times, axis=0), tree)


_SHARED: "collections.OrderedDict[tuple, Callable]" = collections.OrderedDict()
SHARED_PROGRAMS = 12
"""Compiled functions kept across learners of equal settings (the most recently used): a learner
built again with the same config, world and reward model (the next batch of a sweep, a rerun in
the same process) then neither traces nor compiles again."""


def _cached(learner: Learner, key: tuple, build: Callable) -> Callable:
    """A compiled function kept on its learner (built once, freed with it), and shared with later
    learners of equal settings (:data:`SHARED_PROGRAMS`; settings that cannot be compared, e.g. a
    world holding arrays, are not shared)."""
    cache = learner.__dict__.setdefault("_compiled", {})
    if key in cache:
        return cache[key]
    ident = (learner.cfg, learner.env, learner.reward_model, key)
    try:
        fn = _SHARED.get(ident)
    except (TypeError, ValueError):  # unhashable, or equality that is not a bool (arrays)
        ident, fn = None, None
    if fn is None:
        fn = build()
        if ident is not None:
            _SHARED[ident] = fn
            while len(_SHARED) > SHARED_PROGRAMS:
                _SHARED.popitem(last=False)
    else:
        _SHARED.move_to_end(ident)
    cache[key] = fn
    return fn


def _chunk_fn(learner: Learner, max_updates: int, collect: bool):
    """The compiled chunk of a learner, built once per learner's settings (:func:`_cached`)."""
    def one(state, spec, n):
        return learner.chunk(state, spec, n, max_updates=max_updates, collect=collect)

    return _cached(learner, ("chunk", max_updates, collect), lambda: jax.jit(
        devices.per_device(jax.vmap(one, in_axes=(0, 0, None)), sharded=(0, 1)), donate_argnums=0))


@dataclass
class PhaseResult:
    state: RunState  # [runs] final learner states
    metrics: dict[str, np.ndarray]  # name -> [runs, updates]
    data: tuple | None  # (obs [runs, N, ...], isr_action [runs, N, agents], r_s [runs, N], r_true [runs, N]) when collected
    snapshots: dict[int, RunState]  # learner states after the requested numbers of updates


def run(learner: Learner, state: RunState, spec: RunSpec, updates: int, chunk: int, *,
        collect: bool = False, progress: Progress | None = None, snapshots: tuple[int, ...] = (),
        ckpt: Checkpoints | None = None, tag: str = "phase") -> PhaseResult:
    """Run ``updates`` PPO updates for every run of the batch.

    ``snapshots``: numbers of updates after which to keep a copy of the learner states (chunks
    are cut there), e.g. to start autonomy from an earlier point of socialization.
    ``ckpt``: checkpoint under the name ``tag`` at chunk boundaries (when due) and at the end,
    and resume from such a checkpoint if one is there.
    """
    fn = _chunk_fn(learner, chunk, collect)
    runs = jax.tree.leaves(spec)[0].shape[0]
    metrics, data = [], []
    kept: dict[int, RunState] = {}
    done = parts = 0
    restored = _restore(ckpt, tag, state, collect) if ckpt is not None else None
    if restored is not None:
        done, parts, state, metrics, data, kept = restored
        if progress is not None:
            progress(done * learner.cfg.batch_size * runs)
    state, spec = devices.shard((state, spec), runs)
    stored = len(data)  # chunks of data already in checkpoint parts
    stops = sorted({s for s in snapshots if 0 < s <= updates} | {updates})
    for stop in stops:
        while done < stop:
            n = min(chunk, stop - done)
            state, m, d = fn(state, spec, jnp.int32(n))
            metrics.append(jax.tree.map(lambda x: np.asarray(x)[:runs, :n], m))
            if collect:
                data.append(jax.tree.map(lambda x: np.asarray(x)[:runs, :n], d))
            done += n
            if progress is not None:
                progress(n * learner.cfg.batch_size * runs)
            if done in snapshots:
                kept[done] = jax.tree.map(lambda x: np.array(x)[:runs], state)  # a copy: the next chunk donates `state`
            if ckpt is not None and (done == updates or ckpt.due()):
                stored, parts = _save(ckpt, tag, state, runs, done, metrics, data, stored, parts, kept)
    out_m = {k: np.concatenate([m[k] for m in metrics], 1) for k in metrics[0]}
    out_d = None
    if collect:
        # [runs, updates, n_steps, n_envs, ...] -> [runs, steps in the order they happened, ...]
        out_d = tuple(np.concatenate([d[i] for d in data], 1) for i in range(len(data[0])))
        out_d = tuple(x.reshape((x.shape[0], -1) + x.shape[4:]) for x in out_d)
    return PhaseResult(devices.unpad(state, runs), out_m, out_d, kept)


def _save(ckpt: Checkpoints, tag: str, state, runs: int, done: int, metrics: list, data: list, stored: int,
          parts: int, kept: dict) -> tuple[int, int]:
    """Checkpoint a phase in progress: new data as a part file of its own (data is never
    rewritten), then the learner states, curves so far and snapshots. Returns (stored, parts)."""
    for chunk_data in data[stored:]:  # one part per chunk: no concatenated copy of the data
        ckpt.save(f"{tag}.part{parts}", chunk_data)
        parts += 1
    stored = len(data)
    ckpt.save(tag, {"done": done, "parts": parts,
                    "state": serialization.to_state_dict(devices.unpad(state, runs)),
                    "metrics": {k: np.concatenate([m[k] for m in metrics], 1) for k in metrics[0]},
                    "kept": {str(k): serialization.to_state_dict(v) for k, v in kept.items()}})
    return stored, parts


def _restore(ckpt: Checkpoints, tag: str, template: RunState, collect: bool):
    """A phase's checkpoint as (done, parts, state, metrics, data, kept), or None."""
    saved = ckpt.load(tag)
    if saved is None:
        return None
    parts = int(saved["parts"])
    data = []
    for i in range(parts if collect else 0):
        part = ckpt.load(f"{tag}.part{i}")
        if part is None:  # damaged: the phase starts over
            ckpt.drop(tag)
            return None
        data.append(tuple(as_list(part)))
    state = serialization.from_state_dict(template, saved["state"])
    kept = {int(k): serialization.from_state_dict(template, v) for k, v in saved["kept"].items()}
    return int(saved["done"]), parts, state, [dict(saved["metrics"])], data, kept


def socialize(learner: Learner, keys: jax.Array, spec: RunSpec, steps: int, chunk: int,
              progress: Progress | None = None, snapshots: tuple[int, ...] = (),
              ckpt: Checkpoints | None = None, tag: str = "socialize") -> PhaseResult:
    """Socialization (SPEC 2): the caregiver is present; every step is kept for the ISR."""
    init = _cached(learner, ("init",), lambda: jax.jit(jax.vmap(learner.init)))
    state = init(keys, spec.world, spec.caregiver)
    return run(learner, state, spec, n_updates(steps, learner.cfg.batch_size), chunk, collect=True,
               progress=progress, snapshots=snapshots, ckpt=ckpt, tag=tag)


@dataclass
class Internalized:
    params: Any  # [seeds, prefixes] fitted ISR parameters
    train_loss: np.ndarray  # [seeds, prefixes, N_EVALS]
    test_mse: np.ndarray  # [seeds, prefixes, N_EVALS]
    samples_seen: np.ndarray  # [seeds, prefixes, N_EVALS]
    pearson: np.ndarray  # [seeds, prefixes], prediction vs the caregiver's reward on held-out steps
    prefixes: tuple[int, ...]  # socialization steps each ISR saw (train + test)
    test_pred: np.ndarray  # [seeds, prefixes, T] final predictions on held-out steps
    test_target: np.ndarray  # [seeds, prefixes, T]
    test_mask: np.ndarray  # [seeds, prefixes, T] which slots are held-out steps
    pearson_true: np.ndarray | None = None  # [seeds, prefixes], prediction vs what the caregiver meant
                                            # to reward (Caregiver.intended; NaN when it does not say)


def internalize(keys: jax.Array, data: tuple, model: reward_models.Bound,
                prefixes: tuple[int, ...] | None = None) -> Internalized:
    """Fit a reward model (the ISR, SPEC 5) on each run's socialization data, all runs and
    prefixes at once.

    ``prefixes``: fit one model per prefix length (the first n steps, as if socialization had
    stopped there), default the whole phase.
    """
    obs, action, r_s = data[:3]
    r_true = data[3] if len(data) > 3 else None
    size = obs.shape[1]
    prefixes = tuple(prefixes) if prefixes else (size,)
    seeds = obs.shape[0]
    # Initial ISR parameters are drawn here, outside the per-device fit (one program per
    # prefix, so each fit can start from the draw it would have made itself).
    split = np.asarray(jax.jit(jax.vmap(lambda k: jax.random.split(k, len(prefixes))))(keys))  # [seeds, prefixes]
    prefix_keys = [split[:, i] for i in range(len(prefixes))]
    init = jax.jit(jax.vmap(model.init))
    inits = [init(k) for k in prefix_keys]
    obs, action, r_s, prefix_keys, inits = devices.shard((obs, action, r_s, prefix_keys, inits), seeds)

    # One compiled fit, vmapped over seeds, called once per prefix with the prefix length as a
    # runtime value: its training loop then runs as long as that prefix needs. (Vmapped over
    # prefixes too, every fit would run as long as the largest.)
    fit = jax.jit(devices.per_device(
        jax.vmap(lambda k, o, a, r, n, p0: model.fit(k, (o, a, r), n, p0), in_axes=(0, 0, 0, 0, None, 0)),
        sharded=(0, 1, 2, 3, 5)))
    fits = [fit(prefix_keys[i], obs, action, r_s, jnp.int32(n), inits[i]) for i, n in enumerate(prefixes)]
    res = jax.tree.map(lambda *xs: np.stack(xs, 1), *devices.unpad(fits, seeds))
    pearson = isr_.pearson(res.test_pred, res.test_target, res.test_mask)  # NumPy, [seeds, prefixes]
    pearson_true = None
    if r_true is not None and res.test_index is not None:
        index = np.asarray(res.test_index)  # [seeds, prefixes, T]
        true = np.take_along_axis(np.asarray(r_true)[:, None, :], index.reshape(seeds, -1)[:, None, :], 2)
        pearson_true = isr_.pearson(np.asarray(res.test_pred), true.reshape(index.shape), np.asarray(res.test_mask))
    return Internalized(res.params, np.asarray(res.train_loss), np.asarray(res.test_mse),
                        np.asarray(res.samples_seen), np.asarray(pearson), prefixes, np.asarray(res.test_pred),
                        np.asarray(res.test_target), np.asarray(res.test_mask), pearson_true)


def autonomy(learner: Learner, state: RunState, keys: jax.Array, spec: RunSpec, steps: int, chunk: int,
             progress: Progress | None = None, ckpt: Checkpoints | None = None, tag: str = "autonomy") -> PhaseResult:
    """Autonomy (SPEC 6): the socialized policy and optimizer go on, fresh environments.
    ``tag``: the checkpoint's name (an experiment's arms may run as more than one batch)."""
    enter = _cached(learner, ("enter_phase",), lambda: jax.jit(jax.vmap(learner.enter_phase)))
    state = enter(state, keys, spec.world, spec.caregiver)
    return run(learner, state, spec, n_updates(steps, learner.cfg.batch_size), chunk, progress=progress,
               ckpt=ckpt, tag=tag)


def evaluate(learner: Learner, params, keys: jax.Array, worlds: list, cg, episodes: int,
             max_steps: int, *, per_run_caregiver: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate every run's policy on every world in ``worlds`` with the caregiver's reward.

    params: ``[runs]``; keys: ``[runs]``; ``cg``: one caregiver for all runs, or with
    ``per_run_caregiver`` one per run (leading ``[runs]``: a sweep's points batched). Returns
    (returns, goals), ``[runs, worlds, episodes]``.
    """
    wstack = stack(worlds)
    runs = keys.shape[0]
    if per_run_caregiver:
        def judged(p, k, c):
            ks = jax.random.split(k, len(worlds))
            return jax.vmap(lambda kk, w: learner.evaluate(p, kk, w, c, episodes, max_steps))(ks, wstack)

        fn = jax.jit(devices.per_device(jax.vmap(judged), sharded=(0, 1, 2)))
        ret, goals = devices.unpad(fn(*devices.shard((params, keys, cg), runs)), runs)
        return np.asarray(ret), np.asarray(goals)

    def per_run(p, k):
        ks = jax.random.split(k, len(worlds))
        return jax.vmap(lambda kk, w: learner.evaluate(p, kk, w, cg, episodes, max_steps))(ks, wstack)

    fn = jax.jit(devices.per_device(jax.vmap(per_run), sharded=(0, 1)))
    ret, goals = devices.unpad(fn(*devices.shard((params, keys), runs)), runs)
    return np.asarray(ret), np.asarray(goals)


def trace(learner: Learner, params, key: jax.Array, world_params, steps: int) -> dict[str, np.ndarray]:
    """One greedy episode of one policy, step by step (for rollout images)."""

    def one(params, world_params, carry, k):
        obs, st = carry
        dist, _ = learner.policy(params, obs[None])
        action = dist.mode()[0]
        obs2, st2, r_e, _, _, info = learner.env.step(k, st, action, world_params)
        # The world's state, field by field (walls, goal, pos, dir, ... as the world names them).
        rec = {f.name: getattr(st, f.name) for f in dataclasses.fields(st)}
        rec.update(action=action, goal_reached=info["goal_reached"])
        return (obs2, st2), rec

    def episode(params, key, world_params):
        k0, k1 = jax.random.split(key)
        obs, st = learner.env.reset(k0, world_params)
        return jax.lax.scan(lambda c, k: one(params, world_params, c, k), (obs, st), jax.random.split(k1, steps))[1]

    recs = _cached(learner, ("trace", steps), lambda: jax.jit(episode))(params, key, world_params)
    return {k: np.asarray(v) for k, v in recs.items()}
