"""Readiness: when the caregiver should leave (SPEC 9; the paper's discussion of "when a learner is
ready for independence").

A rule is asked, at each decision point of socialization (every ``decision_every`` caregiver
steps, :class:`internalize.experiments.spec.Experiment`), whether the learner is ready. What it
may read is the :class:`History` up to that point only: for each decision point so far, the
caregiver steps spent and the held-out error of an ISR refitted on the socialization data up to
there (its own chronological split, SPEC 5). :func:`decide` walks the points in order and hands
each rule only the prefix of the history, so no rule can look ahead; the first point where it
fires is where that seed's caregiver leaves. A rule that never fires leaves at the last point
(the budget's end), and :func:`decide` says so.

Rules are frozen dataclasses (their parameters are part of an experiment's declaration).

What does not live here: the refits and the branching of autonomy from the chosen points
(:mod:`internalize.experiments.pipeline`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np


class History(NamedTuple):
    """What is known at a decision point, for the points so far (oldest first)."""

    steps: np.ndarray
    """float [k] caregiver steps spent by each point (its nominal steps: multiples of the spacing)."""
    error: np.ndarray
    """float [k] held-out MSE of the ISR refitted on the data up to each point."""
    target_var: np.ndarray
    """float [k] variance of the caregiver's reward on each point's held-out steps (the error's scale)."""


class Rule(Protocol):
    name: str

    def fires(self, h: History) -> bool:
        """Whether to leave now, the last entry of ``h`` being now."""


@dataclass(frozen=True)
class IsrConverged:
    """Leave when the ISR's held-out error improved by less than ``improvement`` (a fraction of
    the error ``window`` steps ago) over the last ``window`` caregiver steps.

    Reads: the held-out error now and at the latest point at least ``window`` steps back. Fires
    never before ``window`` steps have passed since the first point."""

    window: float = 10_000
    improvement: float = 0.10
    name: str = "isr_converged"

    def fires(self, h: History) -> bool:
        now = h.steps[-1]
        back = np.nonzero(h.steps <= now - self.window + 1e-6)[0]
        if back.size == 0:
            return False
        before, after = h.error[back[-1]], h.error[-1]
        if not (np.isfinite(before) and np.isfinite(after)):
            return False
        return bool(before - after < self.improvement * before)

    def validate(self) -> None:
        if not self.window > 0:
            raise ValueError(f"isr_converged: window must be positive, got {self.window}")
        if not 0 < self.improvement < 1:
            raise ValueError(f"isr_converged: improvement must be in (0, 1), got {self.improvement}")


@dataclass(frozen=True)
class MarginalValue:
    """The paper's idea made concrete: leave when a further ``per`` caregiver steps are predicted
    to buy less than they cost. The prediction is a power law, log error = a + b log steps, fitted
    by least squares to the held-out errors so far; the gain is predicted error now minus
    predicted error ``per`` steps later. The cost is stated in units of the caregiver's reward:
    ``cost`` times the variance of R_s on the held-out steps (an MSE that low is worth that little).

    Reads: every held-out error so far and the latest held-out variance of R_s. Needs at least
    ``min_points`` points; a fit whose error does not fall (b >= 0) predicts no gain and fires."""

    per: float = 10_000
    cost: float = 0.01
    min_points: int = 3
    name: str = "marginal_value"

    def predicted_gain(self, h: History) -> float:
        ok = np.isfinite(h.error) & (h.steps > 0)
        x, y = np.log(h.steps[ok]), np.log(np.maximum(h.error[ok], 1e-12))
        b, a = np.polyfit(x, y, 1)
        now = h.steps[-1]
        if b >= 0:
            return 0.0
        return float(np.exp(a + b * np.log(now)) - np.exp(a + b * np.log(now + self.per)))

    def fires(self, h: History) -> bool:
        if np.isfinite(h.error).sum() < self.min_points:
            return False
        return bool(self.predicted_gain(h) < self.cost * h.target_var[-1])

    def validate(self) -> None:
        if not self.per > 0:
            raise ValueError(f"marginal_value: per must be positive, got {self.per}")
        if not self.cost >= 0:
            raise ValueError(f"marginal_value: cost must be at least 0, got {self.cost}")
        if self.min_points < 2:
            raise ValueError(f"marginal_value: min_points must be at least 2, got {self.min_points}")


RULES = {"isr_converged": IsrConverged, "marginal_value": MarginalValue}


def decide(rule: Rule, h: History) -> tuple[int, bool]:
    """(index of the decision point where the caregiver leaves, whether the rule fired there).

    The rule sees the history up to each point only; if it never fires, the caregiver leaves at
    the last point (the budget's end) and ``fired`` is False."""
    n = len(h.steps)
    for k in range(n):
        if rule.fires(History(*(np.asarray(x[:k + 1], float) for x in h))):
            return k, True
    return n - 1, False
