"""``internalize bench``: training throughput per preset, measured, never asserted in tests.

For each preset, ``seeds`` runs are batched in one vmap (as experiments run them) and PPO
updates with the caregiver present are timed after compilation (compile time reported apart).
The paper network's compute bound is the forward + backward throughput of its minibatch
gradient step alone (same batch, same vmap), divided by the epochs each sample is used for:
no implementation of the paper preset can train faster than that on this machine.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import caregiver, isr, presence, world
from .config import PRESETS, Preset
from .learner import Learner, RunSpec
from .phases import stack


def _spec(preset: Preset) -> RunSpec:
    wp = world.coin_params(3)
    obs_shape = world.COIN.obs_shape(wp)
    blank = isr.init(jax.random.PRNGKey(0), obs_shape[0],
                     isr.n_input_planes(obs_shape[-1], world.N_ACTIONS, planes=preset.isr.action_planes))
    return RunSpec(wp, caregiver.caregiver(), presence.present(), jnp.float32(0.0), blank)


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def training_throughput(preset: Preset, seeds: int, updates: int, repeats: int) -> dict:
    learner = Learner(preset.ppo, world.COIN, use_isr=False)
    spec = stack([_spec(preset)] * seeds)
    state = jax.vmap(learner.init)(jax.random.split(jax.random.PRNGKey(0), seeds), spec.world)

    def chunk(s, sp):
        return learner.chunk(s, sp, jnp.int32(updates), max_updates=updates, collect=False)[:2]

    fn = jax.jit(jax.vmap(chunk))
    t0 = time.perf_counter()
    compiled = fn.lower(state, spec).compile()
    compile_s = time.perf_counter() - t0
    state, _ = jax.block_until_ready(compiled(state, spec))  # warm-up
    rates = []
    steps = updates * preset.ppo.batch_size * seeds
    cpu0 = os.times()
    wall0 = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        state, m = jax.block_until_ready(compiled(state, spec))
        rates.append(steps / (time.perf_counter() - t))
    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"env_steps_per_s": statistics.median(rates), "spread": _summary(rates), "compile_s": compile_s,
            "steps_per_repeat": steps, "runs_batched": seeds, "cpu_over_wall": cpu / wall}


def compute_bound(preset: Preset, seeds: int, repeats: int, steps: int = 64) -> dict:
    """Forward + backward of the network alone at the training minibatch, vmapped over runs."""
    learner = Learner(preset.ppo, world.COIN, use_isr=False)
    cfg = preset.ppo
    spec = stack([_spec(preset)] * seeds)
    state = jax.vmap(learner.init)(jax.random.split(jax.random.PRNGKey(0), seeds), spec.world)
    mb = cfg.minibatch_size
    obs = jnp.asarray(np.random.default_rng(0).integers(0, 11, (seeds, steps, mb, 9, 9, 4)), jnp.uint8)
    act = jnp.zeros((seeds, steps, mb), jnp.int32)
    zeros = jnp.zeros((seeds, steps, mb), jnp.float32)

    def grads(params, o, a, z):
        def one(p, x):
            g, _ = jax.grad(learner.loss, has_aux=True)(p, x)
            return jax.tree.map(lambda u, v: u + 1e-9 * v, p, g), None  # a dependency chain, like SGD
        return jax.lax.scan(one, params, (o, a, z, z, z))[0]

    fn = jax.jit(jax.vmap(grads)).lower(state.params, obs, act, zeros).compile()
    jax.block_until_ready(fn(state.params, obs, act, zeros))
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(state.params, obs, act, zeros))
        rates.append(seeds * steps * mb / (time.perf_counter() - t))
    samples = statistics.median(rates)
    return {"fwd_bwd_samples_per_s": samples, "compute_bound_env_steps_per_s": samples / cfg.n_epochs,
            "bound_spread": _summary([r / cfg.n_epochs for r in rates])}


def main(json_out: bool = False, repeats: int = 3, seeds: int = 10) -> dict:
    out = {"cores": os.cpu_count(), "devices": [str(d) for d in jax.devices()], "seeds_batched": seeds,
           "presets": {}}
    updates = {"fast": 8, "paper": 1}
    for name in ("fast", "paper"):
        preset = PRESETS[name]
        res = training_throughput(preset, seeds, updates[name], repeats)
        if name == "paper":
            res.update(compute_bound(preset, seeds, repeats))
        out["presets"][name] = res
        if not json_out:
            print(f"{name:>6}: {res['env_steps_per_s']:,.0f} env-steps/s (median of {repeats}; "
                  f"{res['spread']['min']:,.0f}..{res['spread']['max']:,.0f}), compile {res['compile_s']:.1f}s, "
                  f"{seeds} runs batched, cpu/wall {res['cpu_over_wall']:.2f}")
    paper = out["presets"]["paper"]
    out["ratios"] = {"paper_vs_bound": paper["env_steps_per_s"] / paper["compute_bound_env_steps_per_s"]}
    if json_out:
        print(json.dumps(out, indent=2))
    else:
        print(f" bound: paper network forward+backward alone caps training at "
              f"{paper['compute_bound_env_steps_per_s']:,.0f} env-steps/s "
              f"(paper preset reaches {out['ratios']['paper_vs_bound']:.0%} of it)")
    return out
