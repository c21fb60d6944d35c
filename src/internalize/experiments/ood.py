"""Experiments 3 and 4, out of distribution (SPEC 7.3, 7.4): socialized on one wall, the ISR
learner adapts to new layouts (five random walls; the named maps) better than the frozen
socialized policy, and as well as a learner whose caregiver stayed (equivalence, SPEC 9.1).

What does not live here: the named maps (:mod:`internalize.worlds.coin`), the TOST itself
(:mod:`.claims`, :mod:`internalize.stats`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import figures, stats
from ..config import ISRConfig, Preset
from ..worlds import CoinWorld, coin
from .claims import T_GREATER, equivalence
from .spec import Arm, Budget, Claim, Experiment


def ood_claims(isr: np.ndarray, frozen: np.ndarray, oracle: np.ndarray, suffix: str = "") -> list[Claim]:
    _, p_frozen = stats.ttest_ind(isr, frozen, alternative="greater")
    where = f" ({suffix})" if suffix else ""
    tail = "/" + suffix if suffix else ""
    means = {"isr": float(isr.mean()), "frozen": float(frozen.mean()), "oracle": float(oracle.mean())}
    return [
        Claim(f"ood_isr_beats_frozen{tail}",
              f"In the new situation{where}, the learner that kept learning from its ISR earns more caregiver "
              "reward than the frozen socialized policy (one-sided two-sample t-test, p < 0.05).",
              holds=bool(np.isfinite(p_frozen) and p_frozen < 0.05), value=means["isr"] - means["frozen"],
              p_value=p_frozen, detail=means, test=T_GREATER + " (isr > frozen)"),
        equivalence(f"ood_isr_near_oracle{tail}",
                    f"In the new situation{where}, the ISR learner is equivalent to the learner whose caregiver "
                    "stayed: its mean caregiver return is within 10% of oracle's mean (two one-sided Welch t-tests, "
                    "p < 0.05; SPEC 9.1). The paper's plain two-sample t-test p is in the detail.",
                    isr, oracle, detail=means),
    ]


def eval_means(curves: dict) -> np.ndarray:
    return curves["eval/return"].mean(-1)  # [S, A, E] mean return per episode


def analyze_walls(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    arms = config["arms"]
    ret = eval_means(curves)[:, :, 0]
    by = {a: ret[:, i] for i, a in enumerate(arms)}
    claims = ood_claims(by["isr"], by["frozen"], by["oracle"])
    return claims, {"eval_return": by}


def plot_walls(curves: dict, config: dict, folder: Path) -> list[Path]:
    ret = eval_means(curves)[:, :, 0]
    series = {a: ret[:, i:i + 1] for i, a in enumerate(config["arms"])}
    return [figures.bars(folder / "ood_walls.png", ["5 random walls"], series,
                         "caregiver return per episode (100 episodes)",
                         f"Socialized on 1 wall, evaluated on 5 ({config['seeds']} seeds)")]


def conv_isr(preset: Preset) -> ISRConfig:
    """SPEC 5's conv ISR whatever the preset, for the out-of-distribution experiments: carrying
    the caregiver's values to new layouts needs its convolutions. With the fast preset's MLP ISR,
    isr fell significantly below oracle on 5 walls (full budget) and on the x, U and T maps
    (quick budget); with the conv ISR it matched oracle (docs/performance.md)."""
    return replace(preset.isr, network="cnn")


OOD_WALLS = Experiment(
    name="ood_walls",
    title="Out of distribution, random walls: ISR learners adapt to 5 walls (SPEC 7.3)",
    socialize_world=CoinWorld(n_walls=1),
    autonomy_world=CoinWorld(n_walls=5),
    arms=(Arm("oracle"), Arm("isr"), Arm("frozen")),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=analyze_walls,
    plot=plot_walls,
    eval_worlds=(CoinWorld(n_walls=5),),
    quick_seeds=6,  # as the other coin-world experiments: they then share compiled programs
    isr_config=conv_isr,
)

MAPS = tuple(coin.NAMED_MAPS)


def maps_table(curves: dict, config: dict) -> dict[str, np.ndarray]:
    """Per-seed mean returns ``[S, maps]`` of isr, oracle (trained on that map) and frozen."""
    ret = eval_means(curves)  # [S, A, E]
    arms = config["arms"]
    out = {}
    for cond in ("isr", "oracle"):
        out[cond] = np.stack([ret[:, arms.index(f"{m}/{cond}"), e] for e, m in enumerate(MAPS)], 1)
    out["frozen"] = ret[:, arms.index("frozen"), :]
    return out


def analyze_maps(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = maps_table(curves, config)
    claims = ood_claims(t["isr"].mean(1), t["frozen"].mean(1), t["oracle"].mean(1))
    for e, m in enumerate(MAPS):
        claims += ood_claims(t["isr"][:, e], t["frozen"][:, e], t["oracle"][:, e], suffix=m)
    return claims, {"eval_return_by_map": {c: {m: v[:, e] for e, m in enumerate(MAPS)} for c, v in t.items()}}


def plot_maps(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = maps_table(curves, config)
    groups = list(MAPS) + ["pooled"]
    series = {c: np.concatenate([v, v.mean(1, keepdims=True)], 1) for c, v in t.items()}
    return [figures.bars(folder / "ood_maps.png", groups, series, "caregiver return per episode (100 episodes)",
                         f"Socialized on 1 wall, evaluated on named maps ({config['seeds']} seeds)")]


OOD_MAPS = Experiment(
    name="ood_maps",
    title="Out of distribution, named maps: ISR learners adapt to plus, x, U, T and 4 rooms (SPEC 7.4)",
    socialize_world=CoinWorld(n_walls=1),
    autonomy_world=CoinWorld(n_walls=5),
    arms=tuple(Arm(c, CoinWorld(map_name=m), label=f"{m}/{c}") for m in MAPS for c in ("isr", "oracle"))
    + (Arm("frozen"),),
    budget=Budget(socialize_steps=120_000, autonomy_steps=240_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=analyze_maps,
    plot=plot_maps,
    eval_worlds=tuple(CoinWorld(map_name=m) for m in MAPS),
    quick_seeds=6,
    isr_config=conv_isr,
)
