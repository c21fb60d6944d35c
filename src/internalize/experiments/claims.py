"""Claims: how a statement about a run is judged from its curves, shared by the experiments.

Each claim names its test; equivalence claims ("comparable", "equivalent") are two one-sided
Welch t-tests with a margin fixed in advance at 10% of the reference arm's mean (SPEC 9.1),
reported beside the paper's plain two-sample t-test p.

What does not live here: a particular experiment's claims (its module), the statistics
themselves (:mod:`internalize.stats`), drawing (:mod:`internalize.figures`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures, stats
from .spec import Claim

END_FRACTION = 0.1  # "end of a phase" = the mean over its last 10% of updates
ALPHA = 0.05
EQUIVALENCE_MARGIN = 0.1  # SPEC 9.1: of the reference arm's mean, fixed in advance
T_TWO_SIDED = "two-sample t (Student), two-sided"
T_GREATER = "two-sample t (Student), one-sided"
T_LESS = T_GREATER
TOST = "TOST: two one-sided Welch t-tests"
T_ONE_SAMPLE = "one-sample t, one-sided"
SPEARMAN_LESS = "Spearman rank correlation, one-sided (rho < 0)"
SPEARMAN_GREATER = "Spearman rank correlation, one-sided (rho > 0)"


def not_judged(id_: str, statement: str, missing: str, test: str) -> Claim:
    """A claim whose arms the run's design left out: it does not hold, and says what was missing."""
    return Claim(id_, statement, False, float("nan"), float("nan"), {"not judged": f"{missing} not run"}, test=test)


def equivalence(id_: str, statement: str, a: np.ndarray, reference: np.ndarray, detail: dict | None = None) -> Claim:
    """``a`` is equivalent to ``reference``: TOST with a margin of 10% of the reference's mean
    (SPEC 9.1). Value: mean(a) - mean(reference); detail has the paper's plain t-test p."""
    a, reference = np.asarray(a, float), np.asarray(reference, float)
    margin = EQUIVALENCE_MARGIN * abs(float(reference.mean()))
    p, p_lo, p_hi = stats.tost(a, reference, margin)
    _, p_paper = stats.ttest_ind(a, reference)
    return Claim(id_, statement, holds=bool(np.isfinite(p) and p < ALPHA), value=float(a.mean() - reference.mean()),
                 p_value=p, test=TOST, margin=margin,
                 detail={**(detail or {}), "p_lower": p_lo, "p_upper": p_hi, "paper_t_test_p": p_paper,
                         "margin_fraction_of_reference": EQUIVALENCE_MARGIN})


def persistence(curves: dict, config: dict):
    """The caregiver's event per episode (goals, or help) at the end of socialization and of
    autonomy per arm (per seed), and the t-tests of none vs isr and isr vs oracle."""
    events = curves["autonomy/goals_per_episode"]  # [S, C, U]
    socialized = stats.tail_mean(curves["socialize/goals_per_episode"], END_FRACTION)  # [S]
    end = {n: stats.tail_mean(events[:, i], END_FRACTION) for i, n in enumerate(config["arms"])}
    _, p_none_isr = stats.ttest_ind(end["none"], end["isr"])
    _, p_isr_oracle = stats.ttest_ind(end["isr"], end["oracle"])
    return socialized, end, p_none_isr, p_isr_oracle


def persistence_curve(curves: dict, config: dict, path: Path, ylabel: str, title: str) -> Path:
    return figures.learning_curve(
        path, curves["env_steps/socialize"], curves["socialize/goals_per_episode"],
        curves["env_steps/autonomy"], curves["autonomy/goals_per_episode"], config["arms"], ylabel,
        f"{title} ({config['preset']} preset, {config['seeds']} seeds, mean and 95% CI)")
