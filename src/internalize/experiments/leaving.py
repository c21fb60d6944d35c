"""Open question (SPEC 9): how the caregiver leaves. The paper's caregiver vanishes at once; here
it also fades out, weans the learner before leaving, or visits now and then after leaving, each
with the ISR (`isr`) and without (`none`).

Ways of leaving (presence schedules, :mod:`internalize.presence`; presence is drawn per episode,
so the caregiver is there for whole episodes or not at all):

- ``abrupt``: gone at once (the paper).
- ``fade20k`` / ``fade60k`` (``fade``): in autonomy the probability that the caregiver is there ramps from 1
  to 0 over the first 20k / 60k steps (of the full 120k autonomy; in proportion at other budgets).
- ``weaning``: in the last 40k steps of socialization (a third of it) the caregiver is there in a
  random half of the episodes, then gone at once. Its ISR learns from the episodes it was there
  only (a step it missed is unobserved, never a zero).
- ``visits``: gone at once, then there in 10% of autonomy episodes, drawn at random.

The claims are hypotheses, judged as measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import figures, stats
from ..config import PresenceSpec
from ..worlds import CoinWorld
from .claims import ALPHA, END_FRACTION, T_GREATER, T_ONE_SAMPLE, equivalence, not_judged
from .spec import Arm, Claim, open_question

FULL_AUTONOMY = 120_000  # the autonomy budget the design's steps are stated at
FULL_SOCIALIZE = 120_000
KEEP = 0.75  # visits_sustain_without_isr: the share of socialized goals that visits keep (hypothesis)
WAYS = ("abrupt", "fade", "weaning", "visits")


@dataclass(frozen=True)
class Design:
    ways: tuple[str, ...] = WAYS
    """Which ways of leaving to run (abrupt, fade, weaning, visits)."""
    fades: tuple[int, ...] = (20_000, 60_000)
    """Autonomy steps (of the full 120k) over which presence ramps from 1 to 0, one arm pair each
    (``fade20k``, ``fade60k``); the fading claim compares the longest with abrupt."""
    wean_steps: int = 40_000
    """Weaning: the last socialization steps (of the full 120k) in which the caregiver comes and goes."""
    wean_presence: float = 0.5
    """Weaning: the share of those episodes in which it is there."""
    visits: float = 0.1
    """Visits: the share of autonomy episodes in which it is there after leaving."""

    def validate(self) -> None:
        for w in self.ways:
            if w not in WAYS:
                raise ValueError(f"setting design.ways: unknown way of leaving {w!r}; known: {', '.join(WAYS)}")
        for f in self.fades:
            if not 0 < f <= FULL_AUTONOMY:
                raise ValueError(f"setting design.fades: {f} is not in 1..{FULL_AUTONOMY}")
        if not 0 < self.wean_steps <= FULL_SOCIALIZE:
            raise ValueError(f"setting design.wean_steps must be in 1..{FULL_SOCIALIZE}, got {self.wean_steps}")
        for name in ("wean_presence", "visits"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"setting design.{name} must be in [0, 1], got {v}")


def fade_label(steps: int) -> str:
    return f"fade{steps // 1000}k" if steps % 1000 == 0 else f"fade{steps}"


def schedules(d: Design) -> dict[str, tuple[PresenceSpec | None, PresenceSpec | None]]:
    """Way of leaving (``fade`` once per fade length) -> (presence in autonomy, presence in
    socialization); None: the experiment's (gone at once; there throughout)."""
    out: dict = {}
    for way in WAYS:
        if way not in d.ways:
            continue
        if way == "abrupt":
            out[way] = (None, None)
        elif way == "fade":
            for f in d.fades:
                out[fade_label(f)] = (PresenceSpec(1.0, 0.0, horizon=f / FULL_AUTONOMY, mode="per_episode",
                                                   unit="phase"), None)
        elif way == "weaning":
            out[way] = (None, PresenceSpec(1.0, d.wean_presence, horizon=0.0, mode="per_episode",
                                           delay=1.0 - d.wean_steps / FULL_SOCIALIZE, unit="phase"))
        else:
            out[way] = (PresenceSpec(d.visits, d.visits, mode="per_episode"), None)
    return out


def arms_of(d: Design) -> tuple[Arm, ...]:
    return tuple(Arm(c, presence=aut, socialize_presence=soc, label=f"{way}/{c}")
                 for way, (aut, soc) in schedules(d).items() for c in ("isr", "none"))


def _socialized(curves: dict, config: dict, arm: str) -> np.ndarray:
    """End-of-socialization goals per episode of the learners an arm started from (per seed)."""
    soc = stats.tail_mean(curves["socialize/goals_per_episode"], END_FRACTION)  # [S(, G)]
    if soc.ndim == 1:
        return soc
    return soc[:, int(np.asarray(curves["arms/caregiver"])[config["arms"].index(arm)])]


def table(curves: dict, config: dict) -> dict:
    arms = config["arms"]
    goals = curves["autonomy/goals_per_episode"]  # [S, A, U]
    end = stats.tail_mean(goals, END_FRACTION)
    out = {}
    for a in arms:
        i = arms.index(a)
        soc = _socialized(curves, config, a)
        out[a] = {"socialized": soc, "end": end[:, i], "kept": end[:, i] / soc}
    return out


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    claims = []
    st = ("Hypothesis: fading delays unlearning. Without the ISR, a caregiver that fades out over the first 60k "
          "autonomy steps (the longest fade) leaves the learner reaching more goals over those steps than one that "
          "leaves at once.")
    fades = sorted(int(a[4:-6]) * 1000 for a in t if a.startswith("fade") and a.endswith("k/none"))
    if fades and "abrupt/none" in t:
        longest = fade_label(fades[-1])
        frac = fades[-1] / FULL_AUTONOMY
        goals = curves["autonomy/goals_per_episode"]
        a = stats.head_mean(goals[:, config["arms"].index(f"{longest}/none")], frac)
        b = stats.head_mean(goals[:, config["arms"].index("abrupt/none")], frac)
        _, p = stats.ttest_ind(a, b, alternative="greater")
        claims.append(Claim("fading_delays_unlearning", st, holds=bool(np.isfinite(p) and p < ALPHA),
                            value=float(a.mean() - b.mean()), p_value=p, test=T_GREATER,
                            detail={f"{longest}/none": float(a.mean()), "abrupt/none": float(b.mean()),
                                    "over_fraction_of_autonomy": frac}))
    else:
        claims.append(not_judged("fading_delays_unlearning", st, "a fade or abrupt", T_GREATER))
    st = (f"Hypothesis: visits sustain the value without an ISR. With the caregiver back in 10% of autonomy "
          f"episodes, `none` keeps at least {KEEP:.0%} of its socialized goals per episode at the end of autonomy.")
    if "visits/none" in t:
        x = t["visits/none"]["kept"]
        _, p = stats.ttest_1samp(x, KEEP, alternative="greater")
        claims.append(Claim("visits_sustain_without_isr", st, holds=bool(np.isfinite(p) and p < ALPHA),
                            value=float(x.mean()), p_value=p, test=T_ONE_SAMPLE + f" (> {KEEP})",
                            detail={"kept_per_seed": x.tolist(), "against": KEEP}))
    else:
        claims.append(not_judged("visits_sustain_without_isr", st, "visits", T_ONE_SAMPLE))
    st = ("Hypothesis: the ISR needs no visits. `isr` after an abrupt departure is equivalent to `isr` with the "
          "caregiver visiting 10% of episodes (end-of-autonomy goals per episode).")
    if "abrupt/isr" in t and "visits/isr" in t:
        claims.append(equivalence("isr_needs_no_visits", st, t["abrupt/isr"]["end"], t["visits/isr"]["end"],
                                  {"abrupt/isr": float(t["abrupt/isr"]["end"].mean()),
                                   "visits/isr": float(t["visits/isr"]["end"].mean())}))
    else:
        claims.append(not_judged("isr_needs_no_visits", st, "abrupt or visits", "TOST"))
    return claims, {a: {k: v.tolist() for k, v in row.items()} for a, row in t.items()}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    arms = config["arms"]
    soc = np.asarray(curves["socialize/goals_per_episode"])
    group = np.asarray(curves["arms/caregiver"]) if "arms/caregiver" in curves else np.zeros(len(arms), int)
    panels = []
    for way in dict.fromkeys(a.split("/")[0] for a in arms):
        mine = [a for a in arms if a.startswith(way + "/")]
        g = group[arms.index(mine[0])]
        panels.append({"title": way, "steps_soc": curves["env_steps/socialize"],
                       "soc": soc if soc.ndim == 2 else soc[:, g],
                       "steps_aut": curves["env_steps/autonomy"],
                       "aut": {a.split("/")[1]: curves["autonomy/goals_per_episode"][:, arms.index(a)] for a in mine}})
    return [figures.phase_panels(folder / "leaving.png", panels, "goals per episode",
                                 f"How the caregiver leaves ({config['preset']} preset, {config['seeds']} seeds; "
                                 "mean and 95% CI; dashed: the end of socialization)")]


DESIGN = Design()
LEAVING = open_question(
    name="leaving",
    title="How the caregiver leaves: abrupt, fading, weaning, visits; with and without the ISR (SPEC 9)",
    socialize_world=CoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    design=DESIGN,
    arms_of=arms_of,
)
