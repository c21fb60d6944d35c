"""Behaviour cloning: the learner copies a demonstrator's actions, and learns no reward.

The learner's own policy (its actor-critic's logits) is trained by cross-entropy on the
demonstrated (observation, action) pairs; nothing stands in for the caregiver afterwards, so
its R_i is 0. It is the baseline against which a reward learned from the same demonstrations
(:mod:`internalize.reward_models.airl`) is judged.

Here: the model and its settings (:class:`BehaviourCloning`). What does not live here: the
cloning itself, which trains the learner's network (:func:`internalize.demonstrations.learn`),
and the demonstrations (:func:`internalize.demonstrations.collect`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ..config import ISRConfig
from . import DEMONSTRATIONS, RewardModel
from . import isr as isr_


@dataclass(frozen=True)
class BehaviourCloning(RewardModel):
    """Behaviour cloning (see the module doc); its reward is 0 everywhere."""

    name: str = "bc"
    needs: ClassVar[tuple[str, ...]] = DEMONSTRATIONS
    epochs: int = 20
    """Passes over the demonstrations' training steps."""
    batch_size: int = 64
    """Demonstration steps per gradient step (fewer if there are fewer)."""
    lr: float = 1e-3
    """Adam learning rate of the cloning."""
    holdout: float = 0.1
    """The last fraction of the demonstrations is held out to score the clone (bc_accuracy); 0:
    score it on the training steps."""

    def validate(self) -> None:
        for field in ("epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"learners.{self.name}.{field} must be at least 1, got {getattr(self, field)}")
        if not self.lr > 0:
            raise ValueError(f"learners.{self.name}.lr must be positive, got {self.lr}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"learners.{self.name}.holdout must be in [0, 1), got {self.holdout}")

    def init(self, key: jax.Array, cfg: ISRConfig, spec) -> Any:
        """No reward to learn: a dummy parameter (so a run's pytrees keep their usual shape)."""
        return {"none": jnp.zeros((), jnp.float32)}

    def fit(self, key: jax.Array, cfg: ISRConfig, spec, data: tuple, n_valid: jax.Array | None,
            init_params: Any) -> isr_.FitResult:
        """No reward is fitted (the cloning trains the learner's policy:
        :func:`internalize.demonstrations.learn`): the params back as they came, empty curves."""
        params = self.init(key, cfg, spec) if init_params is None else init_params
        nan = jnp.full(isr_.N_EVALS, jnp.nan, jnp.float32)
        empty = jnp.zeros(0, jnp.float32)
        return isr_.FitResult(params, nan, nan, empty, empty, jnp.zeros(isr_.N_EVALS, jnp.int32),
                              jnp.zeros(0, bool))

    def reward(self, params, cfg: ISRConfig, spec, obs, actions) -> jax.Array:
        """R_i = 0."""
        lead = obs.shape[:-3]
        return jnp.zeros(lead, jnp.float32)
