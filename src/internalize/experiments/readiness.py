"""Open question (SPEC 9): when should the caregiver leave? The paper's discussion weighs the
marginal value of a better ISR against the cost of more caregiver time; this experiment measures
the trade-off and tries two rules that decide it per learner.

The trade-off curve: the caregiver leaves after a fixed budget of caregiver steps (5k to 120k at
the full 120k budget, in proportion at others), and `isr` runs its whole autonomy budget from
there. Persistence = end-of-autonomy goals per episode of `isr`. Two readiness rules
(:mod:`internalize.readiness`) decide per seed, from the ISR's held-out error refitted every 5k
caregiver steps on the data so far (never from autonomy), and the learner leaves where each
fires. The claims are hypotheses, judged as measured.

What does not live here: the rules (:mod:`internalize.readiness`), the refits and per-seed
branching (:mod:`.pipeline`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import figures, readiness, stats
from ..worlds import CoinWorld
from .claims import ALPHA, END_FRACTION, T_ONE_SAMPLE, equivalence, not_judged
from .spec import Arm, Claim, open_question

FULL = 120_000  # the socialization budget the design's steps are stated at
KEEP = 0.9  # readiness_saves_caregiver_time: the share of the full budget's persistence to keep
AT_MOST = 0.5  # ... with at most this share of its caregiver steps


@dataclass(frozen=True)
class Design:
    budgets: tuple[int, ...] = (5_000, 10_000, 20_000, 40_000, 80_000, 120_000)
    """Fixed caregiver budgets, in steps of the full 120k socialization (a run with another
    socialization budget scales them in proportion); 120k (the paper's) is the reference."""
    window: float = 10_000
    """isr_converged: leave when the held-out error improved by less than `improvement` over this many caregiver steps."""
    improvement: float = 0.10
    """isr_converged: the relative improvement that is still worth staying for."""
    per: float = 10_000
    """marginal_value: the further caregiver steps whose predicted gain is weighed."""
    cost: float = 0.01
    """marginal_value: their cost, as a fraction of the variance of R_s on held-out steps."""

    def validate(self) -> None:
        if not self.budgets or FULL not in self.budgets:
            raise ValueError(f"setting design.budgets must include the reference {FULL}, got {list(self.budgets)}")
        for b in self.budgets:
            if not 0 < b <= FULL:
                raise ValueError(f"setting design.budgets: {b} is not in 1..{FULL}")
        for r in rules(self):
            try:
                r.validate()
            except ValueError as e:
                raise ValueError(f"setting design: {e}") from None


def rules(d: Design) -> tuple:
    return readiness.IsrConverged(d.window, d.improvement), readiness.MarginalValue(d.per, d.cost)


def label(budget: int) -> str:
    return f"isr@{budget // 1000}k" if budget % 1000 == 0 else f"isr@{budget}"


def arms_of(d: Design) -> tuple[Arm, ...]:
    fixed = [Arm("isr", socialized=b / FULL, label=label(b)) for b in sorted(d.budgets)]
    return tuple(fixed + [Arm("isr", leave_when=r, label=f"isr@{r.name}") for r in rules(d)])


def table(curves: dict, config: dict) -> dict:
    arms = config["arms"]
    end = stats.tail_mean(curves["autonomy/goals_per_episode"], END_FRACTION)  # [S, A]
    steps = curves.get("arms/socialized_steps_per_seed")
    if steps is None:
        steps = np.broadcast_to(curves["arms/socialized_steps"], end.shape)
    fired = curves.get("arms/rule_fired", np.ones(end.shape, bool))
    fixed = [a for a in arms if not a.startswith("isr@") or a[4:5].isdigit()]
    out = {"fixed": {}, "rules": {}}
    for a in arms:
        i = arms.index(a)
        row = {"caregiver_steps": np.asarray(steps)[:, i].astype(float), "persistence": end[:, i],
               "fired": np.asarray(fired)[:, i]}
        (out["fixed"] if a in fixed else out["rules"])[a] = row
    ref_name = label(FULL)
    out["reference"] = ref_name if ref_name in out["fixed"] else None
    return out


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    ref = t["reference"]
    claims = []
    st = ("Hypothesis: readiness saves caregiver time. Leaving when the ISR has converged (`isr_converged`) keeps "
          f"at least {KEEP:.0%} of the full budget's persistence (end-of-autonomy goals per episode of `isr`, per "
          "seed over the full budget's mean) while using at most half of its caregiver steps.")
    rule = t["rules"].get("isr@isr_converged")
    if rule is None or ref is None:
        claims.append(not_judged("readiness_saves_caregiver_time", st, "isr_converged or the full budget",
                                 T_ONE_SAMPLE))
    else:
        full = t["fixed"][ref]
        ratio = rule["persistence"] / float(full["persistence"].mean())
        share = float(rule["caregiver_steps"].mean() / full["caregiver_steps"].mean())
        _, p = stats.ttest_1samp(ratio, KEEP, alternative="greater")
        claims.append(Claim(
            "readiness_saves_caregiver_time", st,
            holds=bool(np.isfinite(p) and p < ALPHA and share <= AT_MOST), value=float(ratio.mean()), p_value=p,
            test=T_ONE_SAMPLE + f" (> {KEEP}), and mean caregiver steps <= {AT_MOST} of the full budget's",
            detail={"persistence_ratio_per_seed": ratio.tolist(), "caregiver_steps_share": share,
                    "caregiver_steps_mean": float(rule["caregiver_steps"].mean()),
                    "full_budget_steps": float(full["caregiver_steps"].mean()),
                    "seeds_where_rule_never_fired": int((~rule["fired"]).sum())}))
    st = ("Hypothesis: persistence saturates. With 40k caregiver steps, persistence (end-of-autonomy goals per "
          "episode of `isr`) is equivalent to the full 120k budget's (not significantly below it).")
    forty = label(40_000)
    if ref is None or forty not in t["fixed"]:
        claims.append(not_judged("persistence_saturates", st, "the 40k or the full budget", "TOST"))
    else:
        claims.append(equivalence("persistence_saturates", st, t["fixed"][forty]["persistence"],
                                  t["fixed"][ref]["persistence"],
                                  {"40k": float(t["fixed"][forty]["persistence"].mean()),
                                   "120k": float(t["fixed"][ref]["persistence"].mean())}))
    per_seed = {name: {k: np.asarray(v).tolist() for k, v in row.items()}
                for group in ("fixed", "rules") for name, row in t[group].items()}
    return claims, {"arms": per_seed}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = table(curves, config)
    names = sorted(t["fixed"], key=lambda a: t["fixed"][a]["caregiver_steps"].mean())
    budgets = np.array([t["fixed"][a]["caregiver_steps"].mean() for a in names])
    values = np.stack([t["fixed"][a]["persistence"] for a in names], 1)
    marks = {a.split("@", 1)[1]: (r["caregiver_steps"], r["persistence"]) for a, r in t["rules"].items()}
    ref = float(t["fixed"][t["reference"]]["persistence"].mean()) if t["reference"] else None
    out = [figures.tradeoff(folder / "readiness.png", budgets, values, marks, "caregiver steps before leaving (log)",
                            "persistence: isr's end-of-autonomy\ngoals per episode",
                            f"When to leave ({config['preset']} preset, {config['seeds']} seeds). Fixed budgets: points are "
                            "seeds, line and band the mean and 95% CI;\neach rule's choices: crosses are seeds, diamond "
                            f"and bars the mean and 95% CI in both; dotted: {KEEP:.0%} of the full budget's mean",
                            reference=None if ref is None else KEEP * ref)]
    if "readiness/error" in curves:
        err = np.asarray(curves["readiness/error"])
        out.append(figures.mse_vs_budget(folder / "readiness_error.png", np.asarray(curves["readiness/steps"]),
                                         err, "What the rules read: the ISR's held-out MSE, refitted on the data "
                                         "so far at each decision point"))
    return out


DESIGN = Design()
READINESS = open_question(
    name="readiness",
    title="When to leave: caregiver time against persistence, and rules that decide it (SPEC 9)",
    socialize_world=CoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    design=DESIGN,
    arms_of=arms_of,
    decision_every=5_000,
)
