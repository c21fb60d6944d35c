"""How fast outside clients step the worlds (``internalize bench --adapters``): the Gymnasium
adapter bare and with :class:`~internalize.adapters.gymnasium.CaregiverWrapper`, the vector env at
several sizes, the PettingZoo env, and, side by side in the same run, the MiniGrid coin world of
the authors' stack (``../shared/anchors/sb3_coin.py``, in its own Python).

Every case takes random actions for the same number of environment steps (a vector env's call
steps all its worlds), resetting ended episodes as a client would, and is timed ``repeats``
times, alternating the cases; the median is reported. Compiling happens before timing.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

VECTOR_SIZES = (1, 16, 64)

_MINIGRID = r"""
import importlib.util, json, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("sb3_coin", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
steps, repeats = int(sys.argv[2]), int(sys.argv[3])
env = mod.Coin(); env.reset(seed=0); rng = np.random.default_rng(0)
def run(n):
    t = time.perf_counter()
    for _ in range(n):
        _, _, te, tr, _ = env.step(int(rng.integers(3)))
        if te or tr: env.reset()
    return n / (time.perf_counter() - t)
run(min(steps, 500))
print(json.dumps([run(steps) for _ in range(repeats)]))
"""


def _single(make, steps: int):
    env = make()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    space = env.action_space

    def run():
        t = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(int(rng.integers(space.n)))
            if term or trunc:
                env.reset()
        return steps / (time.perf_counter() - t)
    return run


def _vector(n: int, steps: int):
    import gymnasium

    env = gymnasium.make_vec("internalize/Coin-v0", num_envs=n)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    calls = max(1, steps // n)

    def run():
        t = time.perf_counter()
        for _ in range(calls):
            env.step(rng.integers(3, size=n))
        return calls * n / (time.perf_counter() - t)
    return run


def pettingzoo_rate(env, steps: int, rng) -> float:
    """Steps per second of a prosocial ``ParallelEnv`` under random joint actions (resetting ended episodes)."""
    t = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            env.reset()
        env.step({"learner": int(rng.integers(5)), "partner": int(rng.integers(5))})
    return steps / (time.perf_counter() - t)


def _pettingzoo(steps: int):
    from .pettingzoo import parallel_env

    env = parallel_env()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    return lambda: pettingzoo_rate(env, steps, rng)


def measure(steps: int = 25_600, repeats: int = 3, anchor: str | None = None, anchor_script: Path | None = None,
            log=print) -> dict:
    """Env-steps per second of every case (median of ``repeats``) and their ratios to MiniGrid's."""
    import gymnasium

    from .gymnasium import CaregiverWrapper

    cases = {"adapter": _single(lambda: gymnasium.make("internalize/Coin-v0"), steps),
             "wrapped adapter": _single(lambda: CaregiverWrapper(gymnasium.make("internalize/Coin-v0")), steps)}
    for n in VECTOR_SIZES:
        cases[f"vector env N={n}"] = _vector(n, steps)
    cases["pettingzoo prosocial"] = _pettingzoo(steps)
    for run in cases.values():  # compile and warm up, untimed
        run()
    rates: dict[str, list[float]] = {k: [] for k in cases}
    mg = "minigrid coin (anchor)"
    with_anchor = anchor is not None and anchor_script is not None
    if with_anchor:
        rates[mg] = []
    for r in range(repeats):
        for name, run in cases.items():
            rates[name].append(run())
        if with_anchor:  # alternating with ours: each repeat times MiniGrid once, in its own Python
            proc = subprocess.run([anchor, "-c", _MINIGRID, str(anchor_script), str(steps), "1"],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"MiniGrid coin world in {anchor} failed (exit {proc.returncode}): {tail[0]}")
            rates[mg] += json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()))
    table = {k: {"env_steps_per_s": statistics.median(v), "runs": v} for k, v in rates.items()}
    if with_anchor:
        ref = statistics.median(rates[mg])
        for row in table.values():
            row["vs_minigrid"] = row["env_steps_per_s"] / ref
    return {"cores": os.cpu_count(), "steps_per_repeat": steps, "repeats": repeats, "cases": table,
            "minigrid": str(anchor_script) if with_anchor else None}


def render_table(res: dict) -> str:
    """The cases as a Markdown table."""
    lines = ["| case | env-steps/s (median) | vs MiniGrid |", "| --- | --- | --- |"]
    for name, row in res["cases"].items():
        ratio = f"{row['vs_minigrid']:.2f}x" if "vs_minigrid" in row else "-"
        lines.append(f"| {name} | {row['env_steps_per_s']:,.0f} | {ratio} |")
    return "\n".join(lines)
