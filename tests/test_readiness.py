"""Readiness rules (internalize.readiness) on synthetic held-out error curves: each fires where it
should, never looks ahead, and leaves at the budget's end (saying so) when it never fires."""
from __future__ import annotations

import numpy as np
import pytest

from internalize import readiness
from internalize.readiness import History, IsrConverged, MarginalValue, decide

STEPS = np.arange(5_000, 120_001, 5_000, dtype=float)  # every 5k caregiver steps, as the experiment decides


def history(error, var=None):
    error = np.asarray(error, float)
    return History(STEPS[:len(error)], error, np.full(len(error), 0.01) if var is None else np.asarray(var, float))


def test_isr_converged_fires_at_the_first_point_whose_10k_improvement_is_under_10_percent():
    # Halving every 5k until 40k (index 7), then flat: improvement over 10k at 45k is 1 - 1/2 = 50%,
    # at 50k (index 9) it is 0% (50k vs 40k, both flat).
    err = [0.1 / 2 ** min(i, 7) for i in range(24)]
    k, fired = decide(IsrConverged(), history(err))
    assert fired and STEPS[k] == 50_000
    # Exactly at the threshold is still worth staying; just under it is not.
    assert not IsrConverged().fires(history([1.0, 0.95, 0.899]))
    assert IsrConverged().fires(history([1.0, 0.95, 0.901]))
    # Nothing can be judged before a whole window has passed since the first point.
    assert not IsrConverged().fires(history([1.0, 1.0]))


def test_marginal_value_fires_when_the_predicted_gain_falls_below_the_cost():
    # A power law err = 1e-2 * (t / 5k)^-1: the predicted gain over the next 10k at t is
    # 1e-2 * 5k * (1/t - 1/(t + 10k)); with cost 0.01 * var(= 1e-2) = 1e-4 it first falls below at
    # t >= 45k (gain at 40k: 1.39e-4; at 45k: 1.2e-4 ... solve 5e1 * 1e4 / (t (t+1e4)) < 1e-4).
    err = 1e-2 * (STEPS / 5_000) ** -1.0
    rule = MarginalValue(per=10_000, cost=0.01)
    k, fired = decide(rule, history(err, np.full(24, 1e-2)))
    gains = [1e-2 * 5_000 * (1 / t - 1 / (t + 10_000)) for t in STEPS]
    first = next(i for i, g in enumerate(gains) if i >= 2 and g < 1e-4)
    assert fired and k == first
    assert rule.predicted_gain(history(err[:k + 1], np.full(k + 1, 1e-2))) == pytest.approx(gains[k], rel=1e-6)
    # Too few points to fit: never fires; a curve that does not fall predicts no gain and fires.
    assert not rule.fires(history([1.0, 1.0]))
    assert rule.fires(history([1.0, 1.0, 1.1]))


@pytest.mark.parametrize("rule", [IsrConverged(), MarginalValue()])
def test_rules_never_look_ahead(rule):
    """Changing what comes after a decision point never changes the decision made there."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        err = np.exp(-np.cumsum(rng.uniform(0.0, 0.4, 24))) * 1e-2
        var = rng.uniform(1e-3, 2e-2, 24)
        k, fired = decide(rule, history(err, var))
        future = err.copy()
        future[k + 1:] = rng.uniform(0, 1, 24 - k - 1)  # any future at all
        fvar = var.copy()
        fvar[k + 1:] = rng.uniform(0, 1, 24 - k - 1)
        assert decide(rule, history(future, fvar)) == (k, fired)
        # and the rule was asked with the points up to each decision only
        seen = []

        class Spy:
            name = "spy"

            def fires(self, h):
                seen.append(len(h.steps))
                return rule.fires(h)

        decide(Spy(), history(err, var))
        assert seen == list(range(1, len(seen) + 1))


def test_a_rule_that_never_fires_leaves_at_the_budgets_end_and_says_so():
    err = 1e-2 * 0.5 ** np.arange(24)  # halving every 5k: always worth staying
    assert decide(IsrConverged(), history(err)) == (23, False)
    assert decide(MarginalValue(cost=0.0), history(err)) == (23, False)


@pytest.mark.parametrize("rule,match", [
    (IsrConverged(window=0), "window"), (IsrConverged(improvement=1.5), "improvement"),
    (MarginalValue(per=-1), "per"), (MarginalValue(cost=-0.1), "cost"), (MarginalValue(min_points=1), "min_points"),
])
def test_rules_reject_bad_parameters(rule, match):
    with pytest.raises(ValueError, match=match):
        rule.validate()
    assert set(readiness.RULES) == {"isr_converged", "marginal_value"}
