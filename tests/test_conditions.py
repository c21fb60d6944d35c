"""Conditions of the autonomous phase (internalize.conditions, SPEC 6)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import pytest

from internalize import conditions, presence


def test_conditions_where_the_caregiver_leaves_follow_the_leave_schedule():
    fading = presence.schedule(1.0, 0.0, 500.0, "per_episode")
    assert conditions.get("none").presence(fading) is fading and conditions.get("isr").presence(fading) is fading
    assert float(conditions.get("oracle").presence(fading).start) == 1.0  # the caregiver stays: P = 1
    assert float(conditions.get("none").presence().end) == 0.0  # default: gone at once (the paper)


def test_every_condition_says_whether_it_uses_the_reward_model_and_where_it_trains():
    assert [c for c, v in conditions.CONDITIONS.items() if v.uses_isr] == ["isr"]
    assert [c for c, v in conditions.CONDITIONS.items() if v.trains_on_socialization_world] == ["frozen"]
    with pytest.raises(ValueError, match="unknown condition 'nope'"):
        conditions.get("nope")
