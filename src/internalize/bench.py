"""``internalize bench``: training throughput per preset, measured, never asserted in tests.

For each preset, ``seeds`` runs are batched in one vmap (as experiments run them) and PPO
updates with the caregiver present are timed after compilation (compile time reported apart).
The paper network's compute bound is the forward + backward throughput of its minibatch
gradient step alone (same batch, same vmap), divided by the epochs each sample is used for:
no implementation of the paper preset can train faster than that on this machine.

What does not live here: anything a run needs; tests check behaviour, never speed.
"""
from __future__ import annotations

import dataclasses
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

from . import caregivers, devices, presence, reward_models
from .config import PRESETS, Preset
from .learner import Learner, RunSpec
from .phases import stack
from .worlds import coin as world


def _spec(preset: Preset, size: int = 5) -> RunSpec:
    wp = world.coin_params(max(1, round(3 * size * size / 25)), size=size)  # SPEC 3's wall density
    blank = _isr(preset, wp).init(jax.random.PRNGKey(0))
    return RunSpec(wp, caregivers.caregiver(), presence.present(), jnp.float32(0.0), blank)


def _isr(preset: Preset, wp) -> reward_models.Bound:
    return reward_models.bind(reward_models.ISR, preset.isr, world.COIN, wp)


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def training_throughput(preset: Preset, seeds: int, updates: int, repeats: int, size: int = 5) -> dict:
    learner = Learner(preset.ppo, world.COIN)
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
    learner = Learner(preset.ppo, world.COIN)
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


def _median_seconds(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def profile(preset: Preset, seeds: int, repeats: int) -> dict:
    """Where one PPO update's time goes, timed by parts, runs vmapped and sharded as in training.

    Each part is a compiled program of its own, run ``repeats`` times (median):
    ``env`` (the world stepped ``n_steps`` times with fixed actions, auto-reset included),
    ``rollout`` (env + policy forward + sampling), ``update`` (rollout + returns + PPO epochs),
    and ``isr_reward`` (R_i from the preset's ISR on one rollout's steps, as autonomy adds it).
    Shares are of ``update + isr_reward``.
    """
    from . import env as env_

    cfg = preset.ppo
    plain = Learner(cfg, world.COIN)
    with_isr = Learner(cfg, world.COIN, reward_model=_isr(preset, world.coin_params()))
    spec = stack([_spec(preset)] * seeds).replace(isr_gain=np.ones(seeds, np.float32))
    state = jax.jit(jax.vmap(plain.init))(jax.random.split(jax.random.PRNGKey(0), seeds), spec.world)
    state, spec = devices.shard((state, spec), seeds)

    def env_only(st, sp):
        step = jax.vmap(lambda k, s, a: env_.auto_reset_step(world.COIN, k, s, a, sp.world))

        def one(es, k):
            obs, es, r, *_ = step(jax.random.split(k, cfg.n_envs), es, jnp.full((cfg.n_envs,), 2, jnp.int32))
            return es, (obs, r)  # every observation kept, as a rollout keeps them (nothing left to cut)

        return jax.lax.scan(one, st.env_state, jax.random.split(st.key, cfg.n_steps))[1]

    parts = {
        "env": env_only,
        "rollout": lambda st, sp: plain.rollout(st, sp)[1].value.sum(),
        "update": lambda st, sp: plain.update(st, sp)[1]["pg_loss"],
    }
    seconds = {}
    for name, f in parts.items():
        fn = jax.jit(devices.per_device(jax.vmap(f), sharded=(0, 1)))
        seconds[name] = _median_seconds(fn, (state, spec), repeats)
    # R_i of the preset's ISR on one rollout's steps, timed on its own: as a difference of two
    # whole updates it would drown in their noise.
    traj = jax.jit(devices.per_device(jax.vmap(lambda st, sp: plain.rollout(st, sp)[1]), sharded=(0, 1)))(state, spec)
    r_i = jax.jit(devices.per_device(jax.vmap(lambda sp, o, a: with_isr.internal_reward(sp, o, a)),
                                     sharded=(0, 1, 2)))
    seconds["isr_reward"] = _median_seconds(r_i, (spec, traj.obs, traj.isr_action), repeats)
    steps = seeds * cfg.batch_size
    total = seconds["update"] + seconds["isr_reward"]
    shares = {
        "environment": seconds["env"] / total,
        "policy_forward_and_sampling": (seconds["rollout"] - seconds["env"]) / total,
        "ppo_learning": (seconds["update"] - seconds["rollout"]) / total,
        "isr_reward": seconds["isr_reward"] / total,
    }
    return {"isr_network": preset.isr.network, "seconds_per_update": seconds, "env_steps_per_update": steps,
            "env_steps_per_s": {k: steps / v for k, v in seconds.items()}, "shares": shares}


def main(json_out: bool = False, repeats: int = 3, seeds: int = 10, anchor: str | None = None,
         anchor_steps: int = 8192, scale: bool = False, out: Path | None = None, prof: bool = False,
         sweep: bool = True) -> dict:
    log = (lambda *a, **k: None) if json_out else print  # noqa: E731
    out_d = {"cores": os.cpu_count(), "devices": devices.describe(), "backend": jax.default_backend(),
             "seeds_batched": seeds, "presets": {}}
    log(f"devices: {', '.join(out_d['devices'])} ({os.cpu_count()} CPU cores)")
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
    if sweep:
        sw = out_d["sweep"] = sweep_case(repeats=max(1, repeats - 2), log=log)
        log(f" sweep: {sw['points']} learning rates x {sw['seeds']} seeds of {sw['experiment']} "
            f"({sw['budget']}): batched {sw['batched_s']:.1f}s vs one after another {sw['sequential_s']:.1f}s "
            f"(medians of {sw['repeats']}, compile included): {sw['ratio']:.2f}x")
    if prof:
        out_d["profile"] = {}
        for name in ("fast", "paper"):
            pr = out_d["profile"][name] = profile(PRESETS[name], seeds, repeats)
            log(f"profile {name} (one update, {seeds} runs, ISR {pr['isr_network']}): "
                + ", ".join(f"{k} {v:.0%}" for k, v in pr["shares"].items()))
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
# A sweep's points batched against one after another

SWEEP_LRS = (3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2)


def sweep_case(repeats: int = 1, seeds: int = 4, steps: int = 8192, log=print) -> dict:
    """A grid of 8 learning rates of ``unlearning`` (fast preset, ``steps`` + ``steps`` per seed),
    run as one batched program and as 8 programs one after another, side by side (alternating,
    ``repeats`` times each). Wall seconds include compiling and tracing (each separate program
    traces again; the persistent cache, when on, spares some compiling), as a user's loop would
    pay; the pipeline is run without files."""
    from .experiments import UNLEARNING, configure, settings_for
    from .experiments.pipeline import Points, run_pipeline
    from .experiments.spec import Budget

    preset = PRESETS["fast"]
    base = dataclasses.replace(settings_for(UNLEARNING, preset, quick=True), seeds=seeds,
                               budget=Budget(steps, steps))
    points = [configure(UNLEARNING, preset, dataclasses.replace(base, ppo=dataclasses.replace(base.ppo, lr=lr)))
              for lr in SWEEP_LRS]

    def batched():
        run_pipeline(points[0][0], points[0][1], seeds, base.budget, 0,
                     points=Points(tuple(e for e, _ in points), tuple(p for _, p in points), ("lr",)))

    def sequential():
        for e, p in points:
            run_pipeline(e, p, seeds, base.budget, 0, points=Points((e,), (p,), ("lr",)))

    times: dict[str, list[float]] = {"batched": [], "sequential": []}
    for r in range(repeats):
        for name, fn in (("batched", batched), ("sequential", sequential)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            log(f"  sweep case, repeat {r + 1}/{repeats}: {name} {times[name][-1]:.1f}s")
    b, q = statistics.median(times["batched"]), statistics.median(times["sequential"])
    return {"experiment": UNLEARNING.name, "points": len(SWEEP_LRS), "learning_rates": list(SWEEP_LRS),
            "seeds": seeds, "budget": f"{steps} + {steps} steps", "repeats": repeats, "batched_s": b,
            "sequential_s": q, "ratio": q / b, "times": times}


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
        updates = max(1, 64 // n)  # the same work per timing (64 runs' updates) whatever the batch
        res = training_throughput(preset, n, updates, repeats)
        by_runs.append({"runs": n, **{k: res[k] for k in ("env_steps_per_s", "compile_s", "cpu_over_wall")}})
        log(f"  runs {n:>3}: {res['env_steps_per_s']:>9,.0f} env-steps/s, cpu/wall {res['cpu_over_wall']:.2f}")
    for s in sizes:
        # About the same time per timing: the cost of a step grows with the view's area.
        res = training_throughput(preset, size_runs, max(1, round(8 * 25 / (s * s))), repeats, size=s)
        view = 2 * s - 1
        by_size.append({"size": s, "view": view, **{k: res[k] for k in ("env_steps_per_s", "compile_s",
                                                                          "cpu_over_wall")}})
        log(f"  size {s:>3} (view {view}x{view}): {res['env_steps_per_s']:>9,.0f} env-steps/s")
    return {"preset": "fast", "by_runs": by_runs, "by_size": by_size, "size_runs_batched": size_runs}
