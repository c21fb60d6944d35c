"""Open question (SPEC 9): caregivers who disagree. In the two-coin world caregiver A praises
red and B praises blue (or, ``opposed``, B scolds red); each episode one of them is there (A
with probability w). Once both leave, what does the ISR keep: the preference of the caregiver
seen more, both, or nothing?

Every (variant, w) caregiver socializes its own learners in one batch; the ISR is fitted to the
reward actually given (negative included: SPEC 5's clip at 0 is off, see
:func:`.spec.unclipped_isr`); then autonomy under ``isr`` and ``none``. The claims
are hypotheses, judged as measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import caregivers, figures, stats
from ..worlds import TwoCoinWorld
from .claims import ALPHA, END_FRACTION, SPEARMAN_GREATER, T_ONE_SAMPLE, not_judged
from .spec import Arm, Claim, open_question

VARIANTS = {"agree": (0.4, 0.0, 0.0, 0.4), "opposed": (0.4, 0.0, -0.4, 0.0)}
"""(A's red, A's blue, B's red, B's blue): B praises blue, or B scolds red."""
KEEP = 0.75


@dataclass(frozen=True)
class Design:
    w: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Probabilities that an episode's caregiver is A (each in [0, 1])."""
    variants: tuple[str, ...] = ("agree", "opposed")
    """agree: B praises blue; opposed: B scolds red (-0.4)."""

    def validate(self) -> None:
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"setting design.variants: unknown variant {v!r}; known: {', '.join(VARIANTS)}")
        for w in self.w:
            if not 0 <= w <= 1:
                raise ValueError(f"setting design.w: {w!r} is outside [0, 1]")
        if not self.w:
            raise ValueError("setting design.w: needs at least one weight")


def caregiver(variant: str, w: float) -> caregivers.TwoCaregivers:
    return caregivers.TwoCaregivers(float(w), *VARIANTS[variant])


def arms_of(design: Design) -> tuple[Arm, ...]:
    return tuple(Arm(c, caregiver=caregiver(v, w), label=f"{v}/w={w:g}/{c}")
                 for v in design.variants for w in design.w for c in ("isr", "none"))


def table(curves: dict, config: dict) -> dict:
    """Per variant, w and condition: per-seed red coins, blue coins, coins per episode and red
    share among coins reached, at the end of autonomy."""
    arms = config["arms"]
    red = stats.tail_mean(curves["autonomy/red_reached_per_episode"], END_FRACTION)  # [S, A]
    blue = stats.tail_mean(curves["autonomy/blue_reached_per_episode"], END_FRACTION)
    out: dict = {}
    for i, a in enumerate(arms):
        variant, w, cond = a.split("/")
        coins = red[:, i] + blue[:, i]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(coins > 0, red[:, i] / coins, np.nan)
        out.setdefault(variant, {}).setdefault(cond, {})[float(w[2:])] = {
            "red": red[:, i], "blue": blue[:, i], "coins": coins, "red_share": share}
    return out


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    agree = t.get("agree", {}).get("isr", {})
    opposed = t.get("opposed", {}).get("isr", {})
    claims = []
    st = ("Hypothesis: preference follows exposure. With A (red) present in a share w of the episodes and B (blue) "
          "in the rest, the red share among coins `isr` reaches at the end of autonomy rises with w (Spearman's "
          "rho over seeds x w is positive).")
    if len(agree) >= 3:
        ws = sorted(agree)
        x = np.concatenate([np.full(len(agree[w]["red_share"]), w) for w in ws])
        y = np.concatenate([agree[w]["red_share"] for w in ws])
        rho, p = stats.spearman_test(x, y, alternative="greater")
        claims.append(Claim("preference_follows_exposure", st, bool(np.isfinite(p) and rho > 0 and p < ALPHA), rho, p,
                            {f"w={w:g}": float(np.nanmean(agree[w]["red_share"])) for w in ws},
                            test=SPEARMAN_GREATER))
    else:
        claims.append(not_judged("preference_follows_exposure", st, "three weights of agree", SPEARMAN_GREATER))
    st = ("Hypothesis: disagreement keeps both. At w = 0.5 `isr` keeps at least 75% of the coins per episode that "
          "`isr` reaches at w = 1 (one caregiver).")
    if 0.5 in agree and 1.0 in agree:
        ratio = agree[0.5]["coins"] / float(agree[1.0]["coins"].mean())
        _, p = stats.ttest_1samp(ratio, KEEP, alternative="greater")
        claims.append(Claim("disagreement_keeps_both", st, bool(np.isfinite(p) and p < ALPHA), float(ratio.mean()), p,
                            {"w=0.5": float(agree[0.5]["coins"].mean()), "w=1": float(agree[1.0]["coins"].mean())},
                            test=T_ONE_SAMPLE + f" (> {KEEP})"))
    else:
        claims.append(not_judged("disagreement_keeps_both", st, "agree at w = 0.5 and 1", T_ONE_SAMPLE))
    st = ("Hypothesis: opposed caregivers cancel. When B scolds red instead of praising blue, at w = 0.5 `isr` "
          "reaches fewer than half the red coins per episode that it reaches at w = 1.")
    if 0.5 in opposed and 1.0 in opposed:
        ratio = opposed[0.5]["red"] / float(opposed[1.0]["red"].mean())
        _, p = stats.ttest_1samp(ratio, 0.5, alternative="less")
        claims.append(Claim("opposed_cancels", st, bool(np.isfinite(p) and p < ALPHA), float(ratio.mean()), p,
                            {"w=0.5": float(opposed[0.5]["red"].mean()), "w=1": float(opposed[1.0]["red"].mean())},
                            test="one-sample t, one-sided (< 0.5)"))
    else:
        claims.append(not_judged("opposed_cancels", st, "opposed at w = 0.5 and 1", T_ONE_SAMPLE))
    per_seed = {v: {c: {f"w={w:g}": r for w, r in rows.items()} for c, rows in conds.items()} for v, conds in t.items()}
    return claims, {"end_of_autonomy": per_seed}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = table(curves, config)
    panels = {}
    for v, conds in t.items():
        for c in ("isr", "none"):
            rows = conds.get(c, {})
            ws = sorted(rows)
            panels[f"{v}, {c}"] = {"levels": ws, "red_share": [rows[w]["red_share"] for w in ws],
                                   "coins": [rows[w]["coins"] for w in ws]}
    return [figures.levels(folder / "two_caregivers.png", panels,
                           {"red_share": "red share of coins reached", "coins": "coins per episode"},
                           f"Two caregivers, end of autonomy ({config['preset']} preset, {config['seeds']} seeds; "
                           "points: seeds, bars: mean and 95% CI)", xlabel="w (A's share of episodes)")]


DESIGN = Design()
TWO_CAREGIVERS = open_question(
    name="two_caregivers",
    title="Two caregivers who disagree: A praises red, B praises blue or scolds red (SPEC 9)",
    socialize_world=TwoCoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    caregiver=caregiver("agree", 0.5),
    design=DESIGN,
    arms_of=arms_of,
    caregivers_per_batch=5,  # 10 caregivers x 10 seeds of data at once: about 18 GiB
)
