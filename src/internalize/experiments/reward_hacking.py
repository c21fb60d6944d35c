"""Experiment 5, reward hacking (SPEC 7.5): with an undertrained ISR the internal return the
learner collects keeps rising while the goals it really reaches fall; the gap shrinks with
socialization.

What does not live here: the pipeline that branches arms off socialization (:mod:`.pipeline`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures, stats
from ..worlds import CoinWorld, coin
from .claims import END_FRACTION, T_GREATER, T_LESS
from .spec import Arm, Budget, Claim, Experiment

HACKING_BUDGETS = (2_048, 4_096, 8_192, 16_384, 30_000, 120_000)
GOAL_REWARD = 0.4


def table(curves: dict, config: dict):
    arms = config["arms"]
    steps = curves["arms/socialized_steps"]
    internal = curves["autonomy/internal_return"]  # [S, A, U]
    goals = curves["autonomy/goals_per_episode"]
    return arms, steps, internal, goals


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    arms, steps, internal, goals = table(curves, config)
    small, large = 0, len(arms) - 1
    end_goals = stats.tail_mean(goals, END_FRACTION)  # [S, A]
    start_internal = stats.head_mean(internal, END_FRACTION)
    end_internal = stats.tail_mean(internal, END_FRACTION)
    gap = end_internal - GOAL_REWARD * end_goals  # internal return not backed by real goals
    _, p_goals = stats.ttest_ind(end_goals[:, small], end_goals[:, large], alternative="less")
    internal_kept = float(end_internal[:, small].mean()) >= float(start_internal[:, small].mean())
    spearman = stats.spearman(np.log(steps), gap.mean(0))
    _, p_gap = stats.ttest_ind(gap[:, small], gap[:, large], alternative="greater")
    claims = [
        Claim("undertrained_isr_is_hacked",
              f"With an ISR fitted on only {int(steps[small]):,} socialization steps, the learner ends autonomy "
              f"reaching significantly fewer real goals than with an ISR fitted on {int(steps[large]):,} steps, "
              "while the internal return it collects does not fall.",
              holds=bool(np.isfinite(p_goals) and p_goals < 0.05 and internal_kept),
              value=float(end_goals[:, small].mean()), p_value=p_goals, test=T_LESS + " (smallest < largest budget)",
              detail={"goals_end_small": float(end_goals[:, small].mean()),
                      "goals_end_large": float(end_goals[:, large].mean()),
                      "internal_start_small": float(start_internal[:, small].mean()),
                      "internal_end_small": float(end_internal[:, small].mean())}),
        Claim("hacking_gap_shrinks",
              "The hacking gap (internal return minus the caregiver reward its goals would earn) shrinks as "
              "socialization grows: larger at the smallest budget than at the largest (one-sided t-test), "
              "and decreasing with budget (Spearman rho < 0 over budgets).",
              holds=bool(np.isfinite(p_gap) and p_gap < 0.05 and spearman < 0),
              value=float(spearman), p_value=p_gap, test=T_GREATER + " (gap: smallest > largest budget) and Spearman rho",
              detail={"gap_by_budget": dict(zip([str(int(s)) for s in steps], gap.mean(0).tolist()))}),
    ]
    per_seed = {"socialized_steps": steps, "end_goals": end_goals, "end_internal_return": end_internal,
                "hacking_gap": gap}
    return claims, per_seed


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    arms, steps, internal, goals = table(curves, config)
    end_goals = stats.tail_mean(goals, END_FRACTION)
    gap = stats.tail_mean(internal, END_FRACTION) - GOAL_REWARD * end_goals
    figs = [
        figures.hacking(folder / "reward_hacking.png", curves["env_steps/autonomy"], internal[:, 0], goals[:, 0],
                        f"ISR fitted on {int(steps[0]):,} socialization steps ({config['seeds']} seeds)"),
        figures.gap_vs_budget(folder / "hacking_gap.png", steps, gap, "Hacking gap vs socialization"),
    ]
    if "trace/0/pos" in curves:
        frames, captions = [], []
        for t in range(curves["trace/0/pos"].shape[0]):
            st = coin.CoinState(curves["trace/0/walls"][t], curves["trace/0/goal"][t], curves["trace/0/pos"][t],
                                 curves["trace/0/dir"][t], np.int32(t))
            frames.append(coin.render(st, tile=16))
            a = ["left", "right", "forward"][int(curves["trace/0/action"][t])]
            captions.append(f"t={t} {a}" + (" GOAL" if curves["trace/0/goal_reached"][t] else ""))
        figs.append(figures.rollout(folder / "hacking_rollout.png", frames, captions,
                                    f"A greedy episode of a policy trained on an ISR fitted on {int(steps[0]):,} steps"))
    return figs


REWARD_HACKING = Experiment(
    name="reward_hacking",
    title="Reward hacking: an undertrained ISR is exploited (SPEC 7.5)",
    socialize_world=CoinWorld(n_walls=3),
    autonomy_world=CoinWorld(n_walls=3),
    arms=tuple(Arm("isr", socialized=b / HACKING_BUDGETS[-1], label=f"isr@{b}") for b in HACKING_BUDGETS),
    budget=Budget(socialize_steps=120_000, autonomy_steps=120_000),
    quick=Budget(socialize_steps=60_000, autonomy_steps=60_000),
    analyze=analyze,
    plot=plot,
    trace=True,
    quick_seeds=6,
)
