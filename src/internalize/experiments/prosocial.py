"""Experiment 6, prosocial helping (SPEC 7.6, 8): the ISR keeps a learner moving the ball out of
its partner's way after the caregiver leaves; without it, helping stops.

What does not live here: the prosocial world (:mod:`internalize.worlds.prosocial`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import ISRConfig, Preset
from ..worlds import ProsocialWorld
from ..worlds import prosocial as prosocial_world
from .. import figures
from .claims import T_TWO_SIDED, persistence, persistence_curve
from .pipeline import trace_record
from .spec import Arm, Budget, Claim, Experiment


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    socialized, end, p, p_oracle = persistence(curves, config)  # the events are partner goals reached
    soc, none, isr_, oracle = (float(v.mean()) for v in (socialized, end["none"], end["isr"], end["oracle"]))
    significant = bool(np.isfinite(p) and p < 0.05)
    claims = [
        Claim("prosocial_isr_keeps_helping",
              "With the ISR standing in for the shared reward, the learner keeps moving the ball out of its "
              "partner's way: at the end of autonomy `isr` helps at least 75% as often as when socialized, "
              "significantly more than `none`.",
              holds=bool(isr_ >= 0.75 * soc and isr_ > none and significant), value=isr_, p_value=p,
              test=T_TWO_SIDED + " (isr vs none)",
              detail={"socialized": soc, "oracle": oracle, "isr_vs_oracle_p": p_oracle,
                      "retained_fraction": isr_ / soc if soc > 0 else float("nan")}),
        Claim("prosocial_none_stops",
              "Without the caregiver and without an ISR, helping stops: at the end of autonomy `none` helps "
              "less than half as often as when socialized, significantly less than `isr`.",
              holds=bool(none < 0.5 * soc and none < isr_ and significant), value=none, p_value=p,
              test=T_TWO_SIDED + " (none vs isr)",
              detail={"socialized": soc, "none": none, "isr": isr_, "test": "none vs isr, two-sample t"}),
    ]
    per_seed = {"socialized_helping_per_episode": socialized,
                "end_of_autonomy_helping_per_episode": end,
                "isr_test_mse": curves["isr/test_mse"][:, -1, -1],
                "isr_pearson": curves["isr/pearson"][:, -1]}
    return claims, per_seed


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    figs = [persistence_curve(curves, config, folder / "prosocial.png",
                               "partner goals reached per episode (helping rate)", "Prosocial helping")]
    names = config["arms"]
    for cond in ("isr", "none"):
        i = names.index(cond)
        if f"trace/{i}/pos" not in curves:
            continue
        rec = trace_record(curves, i)
        fields = [f.name for f in dataclasses.fields(prosocial_world.ProsocialState)]
        frames, captions = [], []
        for t in range(rec["pos"].shape[0]):
            frames.append(prosocial_world.render(prosocial_world.ProsocialState(**{f: rec[f][t] for f in fields}), tile=16))
            captions.append(f"t={t} {prosocial_world.ACTION_NAMES[int(rec['action'][t])]}"
                            + (" HELPED" if rec["goal_reached"][t] else ""))
        figs.append(figures.rollout(folder / f"prosocial_rollout_{cond}.png", frames, captions,
                                    f"A greedy episode of the `{cond}` learner at the end of autonomy (seed 0): "
                                    "red learner, blue partner, purple ball, green partner's goal"))
    return figs


def prosocial_isr(preset: Preset) -> ISRConfig:
    """SPEC 8: 10 epochs, batch 10, balanced sampling (lr and clipping as SPEC 5)."""
    if preset.name == "paper":
        return replace(preset.isr, batch_size=10, epochs=10.0)
    return preset.isr


PROSOCIAL = Experiment(
    name="prosocial",
    title="Prosocial helping: the ISR keeps a learner helping its partner after the caregiver leaves (SPEC 7.6)",
    socialize_world=ProsocialWorld(),
    autonomy_world=ProsocialWorld(),
    arms=(Arm("oracle"), Arm("none"), Arm("isr")),
    budget=Budget(socialize_steps=480_000, autonomy_steps=480_000),
    # Quick: helping reaches about 4.7 partner goals per episode by 200k steps, and `none` has
    # collapsed within 40k steps of autonomy (measured on 2 seeds at the full budget).
    quick=Budget(socialize_steps=200_000, autonomy_steps=80_000),
    quick_seeds=5,
    analyze=analyze,
    plot=plot,
    isr_replaces_reward=True,
    isr_config=prosocial_isr,
    trace=True,
)
