"""The PettingZoo adapter's step before and after issue 19, side by side in one process: the
file as it was at a given commit (default 2c22608, the last before the change) loaded beside the
current one, random joint actions, alternating, median of 3.

    .venv/bin/python tools/adapters/pettingzoo_before_after.py [--rev 2c22608] [--steps 4000]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def load_old(rev: str):
    root = Path(__file__).resolve().parents[2]
    text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/internalize/adapters/pettingzoo.py"],
                          capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "pettingzoo_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("internalize.adapters._pettingzoo_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="2c22608")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from internalize.adapters import pettingzoo as new
    from internalize.adapters.speed import pettingzoo_rate as rate

    envs = {"before": load_old(args.rev).parallel_env(), "after": new.parallel_env()}
    rngs = {k: np.random.default_rng(0) for k in envs}
    for k, env in envs.items():
        env.reset(seed=0)
        rate(env, 500, rngs[k])
    rates = {k: [] for k in envs}
    for _ in range(args.repeats):
        for k, env in envs.items():
            rates[k].append(rate(env, args.steps, rngs[k]))
    med = {k: statistics.median(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"{k}: {med[k]:,.0f} steps/s (runs {', '.join(f'{x:,.0f}' for x in v)})")
    print(f"after / before: {med['after'] / med['before']:.2f}x")


if __name__ == "__main__":
    main()
