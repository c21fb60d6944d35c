"""Experiment 1, unlearning (SPEC 7.1): without the caregiver and without an ISR, goal seeking
collapses; with the ISR standing in, it persists.

What does not live here: the shared persistence analysis (:mod:`.claims`), the pipeline.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..worlds import CoinWorld
from .claims import T_TWO_SIDED, persistence, persistence_curve
from .spec import Arm, Budget, Claim, Experiment


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    socialized, end, p_none_isr, p_isr_oracle = persistence(curves, config)
    soc_mean = float(socialized.mean())
    none_mean, isr_mean, oracle_mean = (float(end[n].mean()) for n in ("none", "isr", "oracle"))
    significant = bool(np.isfinite(p_none_isr) and p_none_isr < 0.05)
    claims = [
        Claim(
            "none_unlearns",
            "Without the caregiver and without an ISR, goal seeking collapses: at the end of autonomy "
            "`none` reaches fewer than half the socialized goals per episode, significantly fewer than `isr`.",
            holds=bool(none_mean < 0.5 * soc_mean and none_mean < isr_mean and significant),
            value=none_mean, p_value=p_none_isr, test=T_TWO_SIDED + " (none vs isr)",
            detail={"socialized": soc_mean, "none": none_mean, "isr": isr_mean, "test": "none vs isr, two-sample t"},
        ),
        Claim(
            "isr_keeps",
            "With the ISR standing in for the caregiver, the socialized behaviour persists: at the end of "
            "autonomy `isr` keeps at least 75% of the socialized goals per episode, significantly above `none`.",
            holds=bool(isr_mean >= 0.75 * soc_mean and isr_mean > none_mean and significant),
            value=isr_mean, p_value=p_none_isr, test=T_TWO_SIDED + " (isr vs none)",
            detail={"socialized": soc_mean, "oracle": oracle_mean, "isr_vs_oracle_p": p_isr_oracle,
                    "retained_fraction": isr_mean / soc_mean if soc_mean > 0 else float("nan")},
        ),
    ]
    per_seed = {
        "socialized_goals_per_episode": socialized,
        "end_of_autonomy_goals_per_episode": {n: v for n, v in end.items()},
        "isr_test_mse": curves["isr/test_mse"][:, -1, -1],
        "isr_pearson": curves["isr/pearson"][:, -1],
    }
    return claims, per_seed


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    return [persistence_curve(curves, config, folder / "unlearning.png", "goals per episode", "Unlearning")]


UNLEARNING = Experiment(
    name="unlearning",
    title="Unlearning: the ISR keeps socialized behaviour after the caregiver leaves (SPEC 7.1)",
    socialize_world=CoinWorld(n_walls=3),
    autonomy_world=CoinWorld(n_walls=3),
    arms=(Arm("oracle"), Arm("none"), Arm("isr")),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=analyze,
    plot=plot,
    quick_seeds=6,  # as the other coin-world experiments: they then share compiled programs
)
