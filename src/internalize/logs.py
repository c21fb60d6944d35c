"""Logs for the tools researchers already watch: TensorBoard event files of a run's curves.

Written from a run folder's stored files (like figures), through tensorboardX's maintained
writer, one TensorBoard run per (seed, arm): socialization curves, then each arm's autonomy
curves on the same step axis (environment steps since the start of socialization).

What does not live here: the curves themselves (:mod:`internalize.results`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import results


def write_tensorboard(folder: Path, logdir: Path) -> Path:
    """Event files of the run in ``folder`` under ``logdir/<run folder name>/``. Returns that folder.

    Rewriting replaces the event files this function wrote there before (nothing else is touched).
    """
    from tensorboardX import SummaryWriter

    folder = Path(folder)
    curves = results.read_npz(folder / "curves.npz")
    config = results.read_json(folder / "config.json")
    root = Path(logdir) / folder.name
    if root.is_dir():
        for old in root.glob("*/events.out.tfevents.*"):
            old.unlink()

    soc_steps = np.asarray(curves["env_steps/socialize"], np.int64)
    soc = {k.split("/", 1)[1]: v for k, v in curves.items() if k.startswith("socialize/")}
    aut = {k.split("/", 1)[1]: v for k, v in curves.items() if k.startswith("autonomy/")}
    for seed in range(int(config["seeds"])):
        with SummaryWriter(str(root / f"seed{seed}_socialize")) as w:
            for name, v in soc.items():
                for step, value in zip(soc_steps, v[seed]):
                    w.add_scalar(f"socialize/{name}", float(value), int(step))
            if "isr/test_mse" in curves:
                seen = curves["isr/samples_seen"][seed, -1]
                for n, mse in zip(seen, curves["isr/test_mse"][seed, -1]):
                    w.add_scalar("isr/test_mse", float(mse), int(n))
        if not aut:
            continue
        offset = int(soc_steps[-1])
        aut_steps = np.asarray(curves["env_steps/autonomy"], np.int64) + offset
        for a, arm in enumerate(config["arms"]):
            with SummaryWriter(str(root / f"seed{seed}_{arm.replace('/', '_')}")) as w:
                for name, v in aut.items():
                    for step, value in zip(aut_steps, v[seed, a]):
                        w.add_scalar(f"autonomy/{name}", float(value), int(step))
    try:
        summary = results.read_json(folder / "summary.json")
        lines = [f"| `{c['id']}` | {'yes' if c['holds'] else 'NO'} | {c['statement']} |" for c in summary["claims"]]
        with SummaryWriter(str(root / "summary")) as w:
            w.add_text("claims", "| claim | holds | statement |\n| --- | --- | --- |\n" + "\n".join(lines))
    except (OSError, ValueError, KeyError):
        pass
    return root
