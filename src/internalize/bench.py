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
import re
import statistics
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import caregiver, devices, isr, presence, world
from .config import PRESETS, Preset
from .learner import Learner, RunSpec
from .phases import stack


def _spec(preset: Preset, size: int = 5) -> RunSpec:
    wp = world.coin_params(max(1, round(3 * size * size / 25)), size=size)  # SPEC 3's wall density
    obs_shape = world.COIN.obs_shape(wp)
    blank = isr.init(jax.random.PRNGKey(0), obs_shape[0],
                     isr.n_input_planes(obs_shape[-1], world.N_ACTIONS, planes=preset.isr.action_planes))
    return RunSpec(wp, caregiver.caregiver(), presence.present(), jnp.float32(0.0), blank)


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def training_throughput(preset: Preset, seeds: int, updates: int, repeats: int, size: int = 5) -> dict:
    learner = Learner(preset.ppo, world.COIN, use_isr=False)
    spec = stack([_spec(preset, size)] * seeds)
    state = jax.vmap(learner.init)(jax.random.split(jax.random.PRNGKey(0), seeds), spec.world)
    state, spec = devices.shard((state, spec), seeds)  # as experiments run: runs over the devices

    def chunk(s, sp):
        return learner.chunk(s, sp, jnp.int32(updates), max_updates=updates, collect=False)[:2]

    fn = jax.jit(devices.per_device(jax.vmap(chunk), sharded=(0, 1)))
    t0 = time.perf_counter()
    compiled = fn.lower(state, spec).compile()
    compile_s = time.perf_counter() - t0
    state, _ = jax.block_until_ready(compiled(state, spec))  # warm-up
    rates = []
    steps = updates * preset.ppo.batch_size * seeds  # padded runs (if any) are not counted
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

    params, obs, act, zeros = devices.shard((state.params, obs, act, zeros), seeds)  # on every core too
    fn = jax.jit(devices.per_device(jax.vmap(grads), sharded=(0, 1, 2, 3))).lower(params, obs, act, zeros).compile()
    jax.block_until_ready(fn(params, obs, act, zeros))
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(params, obs, act, zeros))
        rates.append(seeds * steps * mb / (time.perf_counter() - t))
    samples = statistics.median(rates)
    return {"fwd_bwd_samples_per_s": samples, "compute_bound_env_steps_per_s": samples / cfg.n_epochs,
            "bound_spread": _summary([r / cfg.n_epochs for r in rates])}


def main(json_out: bool = False, repeats: int = 3, seeds: int = 10, anchor: str | None = None,
         anchor_steps: int = 8192, scale: bool = False, out: Path | None = None) -> dict:
    log = (lambda *a, **k: None) if json_out else print  # noqa: E731
    out_d = {"cores": os.cpu_count(), "devices": [str(d) for d in jax.devices()], "seeds_batched": seeds,
             "presets": {}}
    updates = {"fast": 8, "paper": 1}
    for name in ("fast", "paper"):
        preset = PRESETS[name]
        res = training_throughput(preset, seeds, updates[name], repeats)
        if name == "paper":
            res.update(compute_bound(preset, seeds, repeats))
        out_d["presets"][name] = res
        log(f"{name:>6}: {res['env_steps_per_s']:,.0f} env-steps/s (median of {repeats}; "
            f"{res['spread']['min']:,.0f}..{res['spread']['max']:,.0f}), compile {res['compile_s']:.1f}s, "
            f"{seeds} runs batched, cpu/wall {res['cpu_over_wall']:.2f}")
    fast, paper = out_d["presets"]["fast"], out_d["presets"]["paper"]
    out_d["ratios"] = {"paper_vs_bound": paper["env_steps_per_s"] / paper["compute_bound_env_steps_per_s"]}
    log(f" bound: paper network forward+backward alone caps training at "
        f"{paper['compute_bound_env_steps_per_s']:,.0f} env-steps/s "
        f"(paper preset reaches {out_d['ratios']['paper_vs_bound']:.0%} of it)")
    if anchor:
        script = find_anchor_script()
        if script is None:
            raise FileNotFoundError(f"anchor script sb3_coin.py not found; set {ANCHOR_SCRIPT_ENV}")
        a = anchor_throughput(anchor, script, anchor_steps, repeats)
        out_d["anchor"] = a
        out_d["ratios"].update(fast_vs_anchor=fast["env_steps_per_s"] / a["env_steps_per_s"],
                               paper_vs_anchor=paper["env_steps_per_s"] / a["env_steps_per_s"])
        log(f"anchor: {a['env_steps_per_s']:,.0f} env-steps/s (sb3+minigrid, median of {repeats}; "
            f"{a['spread']['min']:,.0f}..{a['spread']['max']:,.0f}); fast is {out_d['ratios']['fast_vs_anchor']:,.0f}x, "
            f"paper {out_d['ratios']['paper_vs_anchor']:.1f}x the anchor")
    if scale:
        log("scaling (fast preset):")
        out_d["scaling"] = scaling(repeats=max(2, repeats - 1), log=log)
        if out is not None:
            from . import figures, results
            results.write_json(Path(out) / "scaling.json", out_d["scaling"])
            fig = figures.scaling(Path(out) / "scaling.png", out_d["scaling"])
            log(f"scaling figure: {fig}")
    if out is not None:
        from . import results
        results.write_json(Path(out) / "bench.json", out_d)
    if json_out:
        print(json.dumps(out_d, indent=2))
    return out_d


# ---------------------------------------------------------------------------------------------
# The anchor: the authors' stack (PyTorch + Stable-Baselines3 + MiniGrid), run side by side

ANCHOR_SCRIPT_ENV = "INTERNALIZE_ANCHOR_SCRIPT"
_ANCHOR_RATE = re.compile(r"=\s*([0-9][0-9,.]*)\s*env-steps/s")


def find_anchor_script() -> Path | None:
    """``sb3_coin.py``: $INTERNALIZE_ANCHOR_SCRIPT, else ``../shared/anchors/`` beside the checkout."""
    if os.environ.get(ANCHOR_SCRIPT_ENV):
        return Path(os.environ[ANCHOR_SCRIPT_ENV])
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "anchors" / "sb3_coin.py"
        if candidate.is_file():
            return candidate
    return None


def anchor_throughput(python: str, script: Path, steps: int, repeats: int) -> dict:
    """Run the anchor ``repeats`` times; its own printed env-steps/s, median and spread."""
    rates = []
    for _ in range(repeats):
        proc = subprocess.run([python, str(script), str(steps)], capture_output=True, text=True, timeout=1800)
        match = _ANCHOR_RATE.search(proc.stdout)
        if proc.returncode != 0 or not match:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"anchor {python} {script} failed (exit {proc.returncode}): {tail[0]}")
        rates.append(float(match.group(1).replace(",", "")))
    return {"env_steps_per_s": statistics.median(rates), "spread": _summary(rates), "steps_per_repeat": steps,
            "python": python, "script": str(script)}


# ---------------------------------------------------------------------------------------------
# Scaling: runs batched together, and world size

SCALING_RUNS = (1, 2, 4, 8, 16, 32, 64)
SCALING_SIZES = (5, 7, 9, 11, 13, 15, 17, 19)


def scaling(repeats: int = 2, runs: tuple[int, ...] = SCALING_RUNS, sizes: tuple[int, ...] = SCALING_SIZES,
            size_runs: int = 10, log=print) -> dict:
    """Fast-preset training throughput against the runs batched (size 5) and the world size."""
    preset = PRESETS["fast"]
    by_runs, by_size = [], []
    for n in runs:
        updates = max(1, 16 // n)  # about the same work per timing whatever the batch
        res = training_throughput(preset, n, updates, repeats)
        by_runs.append({"runs": n, **{k: res[k] for k in ("env_steps_per_s", "compile_s", "cpu_over_wall")}})
        log(f"  runs {n:>3}: {res['env_steps_per_s']:>9,.0f} env-steps/s, cpu/wall {res['cpu_over_wall']:.2f}")
    for s in sizes:
        res = training_throughput(preset, size_runs, 1, repeats, size=s)
        view = 2 * s - 1
        by_size.append({"size": s, "view": view, **{k: res[k] for k in ("env_steps_per_s", "compile_s",
                                                                          "cpu_over_wall")}})
        log(f"  size {s:>3} (view {view}x{view}): {res['env_steps_per_s']:>9,.0f} env-steps/s")
    return {"preset": "fast", "by_runs": by_runs, "by_size": by_size, "size_runs_batched": size_runs}
