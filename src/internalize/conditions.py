"""Conditions of the autonomous phase (SPEC 6).

A condition says who rewards the learner once socialization is over: whether the caregiver
stays (its presence schedule), whether the ISR's R_i stands in when it is absent, and on which
world the learner goes on training. Conditions differ only in numbers, so every condition of
an experiment rides one vmap.

What does not live here: the presence schedules themselves (:mod:`internalize.presence`) and
what stands in for the caregiver (:mod:`internalize.reward_models`).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import presence


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    caregiver_stays: bool
    """The caregiver stays present (P = 1) in autonomy; otherwise it is absent (P = 0)."""
    uses_isr: bool
    """When the caregiver is absent, the frozen ISR's R_i replaces R_s."""
    trains_on_socialization_world: bool = False
    """Keeps training on the socialization world instead of the autonomy world (frozen)."""

    def presence(self, leave: presence.Presence | None = None) -> presence.Presence:
        """P = 1 where the caregiver stays; otherwise ``leave``, the schedule by which it leaves
        (default: gone at once, P = 0, as in the paper)."""
        if self.caregiver_stays:
            return presence.present()
        return presence.absent() if leave is None else leave


CONDITIONS: dict[str, Condition] = {
    "oracle": Condition("oracle", "the caregiver stays (upper reference)", caregiver_stays=True, uses_isr=False),
    "none": Condition("none", "the caregiver leaves; nothing replaces it", caregiver_stays=False, uses_isr=False),
    "isr": Condition("isr", "the caregiver leaves; the ISR's R_i replaces R_s", caregiver_stays=False,
                     uses_isr=True),
    # SPEC 6: the socialized policy, not trained on the new situation; as in the authors' runs
    # it keeps training under the caregiver on the socialization world.
    "frozen": Condition("frozen", "keeps training with the caregiver on the socialization world only",
                        caregiver_stays=True, uses_isr=False, trains_on_socialization_world=True),
}


def get(name: str) -> Condition:
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
    return CONDITIONS[name]
