"""Open question (SPEC 9): imperfect caregivers. Socialized by a noisy, forgetful, falsely
praising or late caregiver, does the ISR still carry the value once the caregiver leaves?

Four kinds of imperfection (:class:`internalize.caregivers.Imperfect`), each at four levels
including the perfect caregiver; every caregiver socializes its own learners (one batch), the
ISR is fitted to the reward it actually gave, then autonomy under ``isr`` and ``none``.
Persistence (SPEC 9.1) = end-of-autonomy goals per episode of ``isr``, divided by the mean of
the perfect caregiver's ``isr``. The claims are hypotheses, judged as measured.

What does not live here: the caregiver (:mod:`internalize.caregivers`), the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import caregivers, figures, stats
from ..worlds import CoinWorld
from .claims import ALPHA, END_FRACTION, SPEARMAN_LESS, T_LESS, T_ONE_SAMPLE, not_judged
from .spec import Arm, Claim, open_question

KINDS = ("noise", "omission", "false_praise", "delay")
PERFECT = caregivers.Imperfect()
KEEP = 0.75  # the share of the perfect caregiver's goals a tolerated imperfection keeps (hypotheses)


@dataclass(frozen=True)
class Design:
    kinds: tuple[str, ...] = KINDS
    """Which imperfections to run (noise, omission, false_praise, delay)."""
    noise: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4)
    """Levels of sigma, the Gaussian noise on every step's R_s (>= 0)."""
    omission: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    """Levels of q, the probability that a goal's praise is missed (0..1)."""
    false_praise: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1)
    """Levels of f, the probability that a non-goal step is praised (0..1)."""
    delay: tuple[int, ...] = (0, 1, 2, 4)
    """Levels of d, the steps by which praise arrives late (0..8)."""

    def validate(self) -> None:
        for k in self.kinds:
            if k not in KINDS:
                raise ValueError(f"setting design.kinds: unknown caregiver kind {k!r}; known: {', '.join(KINDS)}")
        for k in KINDS:
            for level in getattr(self, k):
                try:
                    caregiver(k, level).validate()
                except ValueError as e:
                    raise ValueError(f"setting design.{k}: level {level!r} is out of range ({e})") from None

    def levels(self) -> list[tuple[str, float]]:
        """(kind, level) of every imperfect caregiver (level 0 is the perfect one, run once)."""
        return [(k, v) for k in self.kinds for v in getattr(self, k) if v != 0]


def caregiver(kind: str, level: float) -> caregivers.Imperfect:
    return replace(PERFECT, **{kind: level})


def label(kind: str, level: float) -> str:
    return f"{kind}={level:g}"


def arms_of(design: Design) -> tuple[Arm, ...]:
    arms = [Arm(c, caregiver=PERFECT, label=f"perfect/{c}") for c in ("isr", "none")]
    for kind, level in design.levels():
        arms += [Arm(c, caregiver=caregiver(kind, level), label=f"{label(kind, level)}/{c}") for c in ("isr", "none")]
    return tuple(arms)


def table(curves: dict, config: dict) -> dict:
    """Per level of each kind (the perfect caregiver as level 0): per-seed socialized goals per
    episode, the ISR's Pearson r against the true R_s, isr's and none's end-of-autonomy goals,
    and persistence."""
    arms = config["arms"]
    groups = np.asarray(curves["arms/caregiver"]) if "arms/caregiver" in curves else np.zeros(len(arms), int)
    end = stats.tail_mean(curves["autonomy/goals_per_episode"], END_FRACTION)  # [S, A]
    soc = stats.tail_mean(curves["socialize/goals_per_episode"], END_FRACTION)  # [S(, G)]
    r_true = curves.get("isr/pearson_true", curves["isr/pearson"])[..., -1]  # [S(, G)]
    perfect = end[:, arms.index("perfect/isr")]
    ref = float(perfect.mean())

    def row(name: str) -> dict:
        i = arms.index(f"{name}/isr")
        g = groups[i]
        pick = (lambda x: x[:, g]) if soc.ndim == 2 else (lambda x: x)
        return {"socialized": pick(soc), "pearson_true": pick(r_true), "isr": end[:, i],
                "none": end[:, arms.index(f"{name}/none")], "persistence": end[:, i] / ref}

    kinds = [k for k in KINDS if any(a.startswith(k + "=") for a in arms)]
    out = {}
    for k in kinds:
        levels = sorted({float(a.split("=")[1].split("/")[0]) for a in arms if a.startswith(k + "=")})
        out[k] = {0.0: row("perfect"), **{v: row(label(k, v)) for v in levels}}
    return {"reference_isr_goals": ref, "kinds": out}


def _level_claim(t: dict, id_: str, kind: str, level: float, statement: str) -> Claim:
    rows = t["kinds"].get(kind, {})
    if level not in rows:
        return not_judged(id_, statement, label(kind, level), T_ONE_SAMPLE)
    x = rows[level]["persistence"]
    _, p = stats.ttest_1samp(x, KEEP, alternative="greater")
    return Claim(id_, statement, holds=bool(np.isfinite(p) and p < ALPHA), value=float(x.mean()), p_value=p,
                 detail={"persistence_per_seed": x.tolist(), "against": KEEP}, test=T_ONE_SAMPLE + f" (> {KEEP})")


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    claims = [
        _level_claim(t, "noise_averages_out", "noise", 0.2,
                     "Hypothesis: noise averages out. Socialized by a caregiver whose R_s carries Gaussian noise "
                     "(sigma = 0.2), `isr` keeps at least 75% of the perfect caregiver's `isr` goals per episode "
                     "at the end of autonomy (persistence > 0.75)."),
        _level_claim(t, "omission_tolerated", "omission", 0.5,
                     "Hypothesis: omission is tolerated. With half of the goals' praise missed (q = 0.5), `isr` "
                     "keeps at least 75% of the perfect caregiver's `isr` goals per episode (persistence > 0.75)."),
    ]
    rows = t["kinds"].get("false_praise", {})
    st = ("Hypothesis: false praise misleads. With 10% of non-goal steps praised (f = 0.1), `isr` reaches fewer "
          "goals per episode at the end of autonomy than with the perfect caregiver.")
    if 0.1 in rows:
        a, b = rows[0.1]["isr"], rows[0.0]["isr"]
        _, p = stats.ttest_ind(a, b, alternative="less")
        claims.append(Claim("false_praise_misleads", st, holds=bool(np.isfinite(p) and p < ALPHA),
                            value=float(a.mean() - b.mean()), p_value=p, test=T_LESS + " (f=0.1 < perfect)",
                            detail={"f=0.1": float(a.mean()), "perfect": float(b.mean())}))
    else:
        claims.append(not_judged("false_praise_misleads", st, "false_praise=0.1", T_LESS))
    rows = t["kinds"].get("delay", {})
    st = ("Hypothesis: delay breaks credit assignment. Persistence falls as the praise comes later: Spearman's "
          "rho between delay and persistence over seeds x levels is negative.")
    levels = sorted(rows)
    x = np.concatenate([np.full(len(rows[v]["persistence"]), v) for v in levels]) if levels else np.zeros(0)
    y = np.concatenate([rows[v]["persistence"] for v in levels]) if levels else np.zeros(0)
    rho, p = stats.spearman_test(x, y, alternative="less")
    claims.append(Claim("delay_breaks_credit", st, holds=bool(np.isfinite(p) and rho < 0 and p < ALPHA), value=rho,
                        p_value=p, test=SPEARMAN_LESS,
                        detail={f"d={v:g}": float(rows[v]["persistence"].mean()) for v in levels}))
    per_seed = {k: {f"{v:g}": r for v, r in rows.items()} for k, rows in t["kinds"].items()}
    return claims, {"reference_isr_goals": t["reference_isr_goals"], "by_kind_and_level": per_seed}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = table(curves, config)
    panels = {k: {"levels": sorted(rows), "persistence": [rows[v]["persistence"] for v in sorted(rows)],
                  "pearson": [rows[v]["pearson_true"] for v in sorted(rows)]} for k, rows in t["kinds"].items()}
    return [figures.levels(folder / "noisy_caregiver.png", panels,
                           {"persistence": "persistence (isr goals / perfect isr goals)",
                            "pearson": "ISR Pearson r vs the true R_s"},
                           f"Imperfect caregivers ({config['preset']} preset, {config['seeds']} seeds; "
                           "points: seeds, bars: mean and 95% CI)")]


DESIGN = Design()
NOISY_CAREGIVER = open_question(
    name="noisy_caregiver",
    title="Imperfect caregivers: noise, omission, false praise and delay (SPEC 9)",
    socialize_world=CoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    caregiver=PERFECT,
    design=DESIGN,
    arms_of=arms_of,
    caregivers_per_batch=5,  # 13 caregivers x 10 seeds of data at once: about 18 GiB
)
