"""The caregiver app's protocol without a person: a scripted participant (praise on every coin
reached, nothing else) against one who says nothing, for each reward model a study can fit,
over several session seeds. Prints a Markdown table of goals per episode after autonomy
(greedy, the study's evaluation episodes) and writes it as JSON with --out.

    .venv/bin/python tools/caregiver_app/protocol_check.py --seeds 1,2,3,4
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="1,2,3,4")
    p.add_argument("--models", default="isr_linear,isr")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--episodes-per-round", type=int, default=20)
    p.add_argument("--round-steps", type=int, default=32_768)
    p.add_argument("--autonomy-steps", type=int, default=65_536)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from internalize import devices

    devices.enable_compilation_cache()
    from internalize.caregiver_app import study

    seeds = [int(s) for s in args.seeds.split(",")]
    judges = {"praise on coins": study.scripted_judgements, "no feedback": lambda eps, first: {}}
    rows, t0 = [], time.perf_counter()
    for model in args.models.split(","):
        cfg = study.StudyConfig(rounds=args.rounds, episodes_per_round=args.episodes_per_round,
                                round_steps=args.round_steps, autonomy_steps=args.autonomy_steps, reward_model=model)
        engine = study.Engine(cfg)
        for name, judge in judges.items():
            after = [float(study.simulate(engine, s, judge)[0].goals_after.mean()) for s in seeds]
            rows.append({"reward_model": model, "participant": name, "goals_after": after})
    print(f"| reward model | participant | goals per episode after autonomy, seeds {args.seeds} | mean |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| `{r['reward_model']}` | {r['participant']} | {', '.join(f'{v:.2f}' for v in r['goals_after'])} "
              f"| {np.mean(r['goals_after']):.2f} |")
    print(f"\n{time.perf_counter() - t0:.0f} s on {os.cpu_count()} cores")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
