"""The adapters before and after issue 19, side by side in one process: the adapter files as they
were at a given commit (default 2c22608, the last before the change) loaded beside the current
ones. Random actions, the same steps per case, the cases alternating, median of 3: the coin env
bare and with CaregiverWrapper, and the prosocial ParallelEnv; with ``--vector N`` the vector env
of N worlds too (its file at ``--rev``; both on today's coin world, so a change to the world
itself, such as its cell-by-cell ``observe``, speeds up "before" as well).

    .venv/bin/python tools/adapters/before_after.py [--rev 2c22608] [--steps 4000] [--vector 64]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_old(rev: str, name: str):
    """``internalize/adapters/<name>.py`` at ``rev``, as a module of the current package."""
    root = Path(__file__).resolve().parents[2]
    text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/internalize/adapters/{name}.py"],
                          capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"internalize.adapters._{name}_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def coin_rate(env, steps: int, rng) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(int(rng.integers(3)))
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def vector_rate(env, steps: int, rng) -> float:
    n = env.num_envs
    calls = max(1, steps // n)
    t = time.perf_counter()
    for _ in range(calls):
        env.step(rng.integers(3, size=n))  # same-step autoreset
    return calls * n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="2c22608")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vector", type=int, default=0, help="also the vector env of this many worlds")
    args = p.parse_args()
    from internalize.adapters import gymnasium as new_gym, pettingzoo as new_pz
    from internalize.adapters.speed import pettingzoo_rate

    old_gym, old_pz = load_old(args.rev, "gymnasium"), load_old(args.rev, "pettingzoo")
    cases = {
        "coin env, before": (old_gym.CoinEnv(), coin_rate),
        "coin env, after": (new_gym.CoinEnv(), coin_rate),
        "wrapped coin env, before": (old_gym.CaregiverWrapper(old_gym.CoinEnv()), coin_rate),
        "wrapped coin env, after": (new_gym.CaregiverWrapper(new_gym.CoinEnv()), coin_rate),
        "pettingzoo prosocial, before": (old_pz.parallel_env(), pettingzoo_rate),
        "pettingzoo prosocial, after": (new_pz.parallel_env(), pettingzoo_rate),
    }
    whats = ["coin env", "wrapped coin env", "pettingzoo prosocial"]
    if args.vector:
        what = f"vector env N={args.vector}"
        cases[what + ", before"] = (old_gym.CoinVectorEnv(num_envs=args.vector), vector_rate)
        cases[what + ", after"] = (new_gym.CoinVectorEnv(num_envs=args.vector), vector_rate)
        whats.append(what)
    rngs = {k: np.random.default_rng(0) for k in cases}
    for k, (env, rate) in cases.items():  # compile and warm up, untimed
        env.reset(seed=0)
        rate(env, 640 if rate is vector_rate else 500, rngs[k])
    rates = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, (env, rate) in cases.items():
            rates[k].append(rate(env, args.steps, rngs[k]))
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"{k}: {med[k]:,.0f} steps/s (runs {', '.join(f'{x:,.0f}' for x in v)})")
    for what in whats:
        print(f"{what}: after / before {med[what + ', after'] / med[what + ', before']:.2f}x")


if __name__ == "__main__":
    main()
