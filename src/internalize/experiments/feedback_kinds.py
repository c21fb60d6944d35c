"""Open question 1 of the paper (SPEC 9): the same value taught by different kinds of feedback.
praise (the paper's: +0.4 on the goal), shaping (praise for every step that shortens the
shortest-path distance to the coin, scaled so that a shortest path earns 0.4 in all),
correction (-0.1 for a step that lengthens it, nothing else), and praise + correction
(:class:`internalize.caregivers.Feedback`).

Autonomy as in ``unlearning`` (3 walls, ``isr`` and ``none``), ``isr`` also from the first
quarter of socialization (``isr@early``: 30k of 120k steps), and the ``ood_walls`` evaluation: ``isr`` adapting on 5 walls
against the ``frozen`` policy, both evaluated on 5 walls with the paper's praise. The claims are
hypotheses, judged as measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import caregivers, figures, stats
from ..worlds import CoinWorld, coin
from .claims import ALPHA, END_FRACTION, T_GREATER, T_ONE_SAMPLE, not_judged
from .spec import Arm, Claim, open_question

KINDS = {
    "praise": caregivers.Feedback(goal_reward=0.4, distance=coin.goal_distance),
    "shaping": caregivers.Feedback(goal_reward=0.0, shaping=0.4, distance=coin.goal_distance),
    "correction": caregivers.Feedback(goal_reward=0.0, correction=-0.1, distance=coin.goal_distance),
    "praise+correction": caregivers.Feedback(goal_reward=0.4, correction=-0.1, distance=coin.goal_distance),
}
KEEP = 0.75


@dataclass(frozen=True)
class Design:
    kinds: tuple[str, ...] = tuple(KINDS)
    """Which kinds of feedback to run (praise, shaping, correction, praise+correction)."""
    early_fraction: float = 0.25
    """The early socialization point, as a fraction of the budget (30k of 120k at full budget)."""

    def validate(self) -> None:
        for k in self.kinds:
            if k not in KINDS:
                raise ValueError(f"setting design.kinds: unknown feedback kind {k!r}; known: {', '.join(KINDS)}")
        if not 0 < self.early_fraction <= 1:
            raise ValueError(f"setting design.early_fraction: must be in (0, 1], got {self.early_fraction!r}")


def arms_of(design: Design) -> tuple[Arm, ...]:
    arms = []
    for k in design.kinds:
        cg = KINDS[k]
        arms += [Arm("isr", caregiver=cg, label=f"{k}/isr"), Arm("none", caregiver=cg, label=f"{k}/none"),
                 Arm("isr", caregiver=cg, socialized=design.early_fraction, label=f"{k}/isr@early"),
                 Arm("isr", CoinWorld(n_walls=5), caregiver=cg, label=f"{k}/isr on 5 walls"),
                 Arm("frozen", caregiver=cg, label=f"{k}/frozen")]
    return tuple(arms)


def table(curves: dict, config: dict) -> dict:
    arms = config["arms"]
    end = stats.tail_mean(curves["autonomy/goals_per_episode"], END_FRACTION)  # [S, A]
    ood = curves["eval/goals"].mean(-1)[:, :, 0]  # [S, A] goals per episode on 5 walls
    out: dict = {}
    for i, a in enumerate(arms):
        kind, arm = a.split("/")
        out.setdefault(kind, {})[arm] = {"goals": end[:, i], "goals_on_5_walls": ood[:, i]}
    return out


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    early = int(np.asarray(curves["arms/socialized_steps"]).min())  # the isr@early arms' point
    claims = []
    st = (f"Hypothesis: shaping internalizes sooner. After {early:,} steps of socialization, the shaping caregiver's "
          "`isr` keeps more goals per episode at the end of autonomy than the praising caregiver's.")
    if "shaping" in t and "praise" in t:
        a, b = t["shaping"]["isr@early"]["goals"], t["praise"]["isr@early"]["goals"]
        _, p = stats.ttest_ind(a, b, alternative="greater")
        claims.append(Claim("shaping_internalizes_sooner", st, bool(np.isfinite(p) and p < ALPHA),
                            float(a.mean() - b.mean()), p, {"shaping": float(a.mean()), "praise": float(b.mean()),
                                                            "socialized_steps": early},
                            test=T_GREATER + " (shaping > praise)"))
    else:
        claims.append(not_judged("shaping_internalizes_sooner", st, "shaping and praise", T_GREATER))
    st = ("Hypothesis: correction alone suffices. Taught only by correction, `isr` keeps at least 75% of the goals "
          "per episode that praise's `isr` keeps at the end of autonomy (full socialization).")
    if "correction" in t and "praise" in t:
        ratio = t["correction"]["isr"]["goals"] / float(t["praise"]["isr"]["goals"].mean())
        _, p = stats.ttest_1samp(ratio, KEEP, alternative="greater")
        claims.append(Claim("correction_alone_suffices", st, bool(np.isfinite(p) and p < ALPHA), float(ratio.mean()),
                            p, {"correction": float(t["correction"]["isr"]["goals"].mean()),
                                "praise": float(t["praise"]["isr"]["goals"].mean())},
                            test=T_ONE_SAMPLE + f" (> {KEEP})"))
    else:
        claims.append(not_judged("correction_alone_suffices", st, "correction and praise", T_ONE_SAMPLE))
    per_seed = {k: {a: v for a, v in arms.items()} for k, arms in t.items()}
    return claims, {"end_of_autonomy": per_seed}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = table(curves, config)
    kinds = list(t)
    arms = list(next(iter(t.values())))
    series = {a: np.stack([t[k][a]["goals"] for k in kinds], 1) for a in arms}
    ood = {a: np.stack([t[k][a]["goals_on_5_walls"] for k in kinds], 1) for a in ("isr on 5 walls", "frozen")
           if a in arms}
    early = f"@early: from {int(np.asarray(curves['arms/socialized_steps']).min()):,} steps of socialization"
    return [figures.bars(folder / "feedback_kinds.png", kinds, series, "goals per episode, end of autonomy",
                         f"Kinds of feedback ({config['seeds']} seeds; {early})", xlabel="feedback"),
            figures.bars(folder / "feedback_kinds_ood.png", kinds, ood, "goals per episode on 5 walls",
                         f"Kinds of feedback, evaluated on 5 walls ({config['seeds']} seeds, "
                         f"{curves['eval/goals'].shape[-1]} episodes each)", xlabel="feedback")]


DESIGN = Design()
FEEDBACK_KINDS = open_question(
    name="feedback_kinds",
    title="Kinds of feedback: praise, shaping, correction, praise + correction (SPEC 9, the paper's open question 1)",
    socialize_world=CoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    eval_worlds=(CoinWorld(n_walls=5),),
    caregiver=KINDS["praise"],
    design=DESIGN,
    arms_of=arms_of,
)
