"""Reward models: what stands in for the caregiver once it leaves (the paper's ISR, SPEC 5).

A reward model is learned from what socialization recorded and then frozen; in autonomy its
output R_i replaces R_s while the caregiver is absent. The interface is pure functions, so a
model's fits ride one vmap over seeds and its rewards one vmap over runs:

- ``needs``: what it learns from, a tuple of ``"obs"``, ``"actions"``, ``"social_reward"``
  (every socialization step's observation, actions and R_s, in the order they happened);
- ``init(key, cfg, spec) -> params``: initial parameters (drawn outside the fit, so a fit
  starts from the same draw however it is batched);
- ``fit(key, cfg, spec, data, n_valid, init_params) -> Fit``: fit on the first ``n_valid``
  steps of one run's data (traced: one compiled fit serves every prefix);
- ``reward(params, cfg, spec, obs, actions) -> r_i``: R_i of a batch of (obs, actions).

``cfg`` is the run's ``isr.*`` settings (:class:`internalize.config.ISRConfig`: learning rate,
batch, epochs, split...); ``spec`` (:class:`DataSpec`) says what the world's data look like.
:class:`NetworkRewardModel` implements all three for any network fitted the way SPEC 5 fits the
ISR (class-balanced minibatches, chronological train/test split), so a new model of that kind
is its network alone; :data:`ISR` is the paper's. Also built in: a bootstrap ensemble of ISRs
with a pessimistic reward (:mod:`.ensemble`) and a Bradley-Terry model of the caregiver's
preferences between trajectory segments (:mod:`.preference`).

What does not live here: when a model is fitted (:mod:`internalize.phases`), where its R_i is
used (:mod:`internalize.learner`), and user models (their own module; docs/howto.md shows one).
An installed package registers more through the ``internalize.reward_models`` entry points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax

from .. import registry
from ..config import ISRConfig
from . import isr as isr_

Fit = isr_.FitResult
"""What a fit returns: params, and its diagnostics (``train_loss``, ``test_mse``, ``samples_seen``
over :data:`N_EVALS` evaluations; ``test_pred``, ``test_target``, ``test_mask`` on held-out steps)."""
N_EVALS = isr_.N_EVALS
DATA = ("obs", "actions", "social_reward")
DEMONSTRATIONS = ("demonstrations",)


class DataSpec(NamedTuple):
    """What one step of a world's socialization data looks like."""

    obs_shape: tuple[int, ...]  # one observation, uint8
    n_actions: int  # per agent
    n_agents: int  # the learner, then the other agents whose actions are recorded
    features: Callable | None  # the world's compact encoding (Env.features)
    n_envs: int = 1  # environments the learner ran side by side: step index = time step * n_envs + environment


def data_spec(env, world_params, n_envs: int = 1) -> DataSpec:
    """``n_envs``: the learner's environments in socialization (the data interleave them; a model
    that reads trajectories, as :class:`~internalize.reward_models.preference.Preference` does,
    needs it)."""
    return DataSpec(tuple(env.obs_shape(world_params)), env.n_actions, 1 + env.other_agents, env.features, n_envs)


class RewardModel:
    """The interface (see the module doc). Subclass it as a frozen dataclass."""

    name: str = "?"
    needs: tuple[str, ...] = DATA
    """What it learns from: :data:`DATA` (the caregiver's praise: socialization's observations,
    actions and R_s) or :data:`DEMONSTRATIONS` (a demonstrator's steps, no R_s at all;
    :mod:`internalize.demonstrations` trains those)."""

    not_settings = ("name", "needs")  # fields of a model's dataclass that are not user settings

    def validate(self) -> None:
        """Check the model's own settings; ValueError with one line naming the bad one."""

    def init(self, key: jax.Array, cfg: ISRConfig, spec: DataSpec) -> Any:
        raise NotImplementedError

    def fit(self, key: jax.Array, cfg: ISRConfig, spec: DataSpec, data: tuple, n_valid: jax.Array,
            init_params: Any) -> Fit:
        raise NotImplementedError

    def reward(self, params: Any, cfg: ISRConfig, spec: DataSpec, obs: jax.Array, actions: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclass(frozen=True)
class NetworkRewardModel(RewardModel):
    """A network on (observation, action planes), fitted as SPEC 5 fits the ISR.

    Subclasses give :meth:`network`; inputs are the observation with the actions as planes on
    the agent's cell (:func:`internalize.reward_models.isr.inputs`).
    """

    name: str = "network"

    def network(self, cfg: ISRConfig, spec: DataSpec):
        raise NotImplementedError

    def init(self, key, cfg, spec):
        return isr_.init_for_fit(key, spec.obs_shape, spec.n_agents, spec.n_actions, cfg, spec.features,
                                 self.network(cfg, spec))

    def fit(self, key, cfg, spec, data, n_valid, init_params):
        obs, actions, r_s = data
        return isr_.fit(key, obs, actions, r_s, cfg, spec.n_actions, n_valid=n_valid, init_params=init_params,
                        features=spec.features, net=self.network(cfg, spec))

    def reward(self, params, cfg, spec, obs, actions):
        x = isr_.inputs(obs, actions, spec.n_actions, cfg.action_planes)
        return isr_.predict(params, x, self.network(cfg, spec))


@dataclass(frozen=True)
class InternalSocialReward(NetworkRewardModel):
    """The paper's ISR (SPEC 5): the conv net, or (``isr.network = "mlp"``) an MLP on the
    world's compact encoding."""

    name: str = "isr"

    def network(self, cfg, spec):
        return isr_.network(cfg, spec.n_actions, spec.n_agents, spec.features)


ISR = InternalSocialReward()

from .ensemble import IsrEnsemble  # noqa: E402  (they build on the interface above)
from .preference import Preference  # noqa: E402
from .airl import Airl  # noqa: E402
from .bc import BehaviourCloning  # noqa: E402

BUILTIN: dict[str, RewardModel] = {"isr": ISR, "isr_ensemble": IsrEnsemble(), "preference": Preference(),
                                   "irl": Airl(), "bc": BehaviourCloning()}


def known() -> dict[str, RewardModel]:
    """Every reward model by name: built in, then registered through entry points."""
    return registry.merged("internalize.reward_models", BUILTIN)


@dataclass(frozen=True)
class Bound:
    """A reward model with its settings and its world's data spec: what the learner and phases call."""

    model: RewardModel
    cfg: ISRConfig
    spec: DataSpec

    def init(self, key):
        return self.model.init(key, self.cfg, self.spec)

    def fit(self, key, data, n_valid, init_params):
        return self.model.fit(key, self.cfg, self.spec, data, n_valid, init_params)

    def reward(self, params, obs, actions):
        return self.model.reward(params, self.cfg, self.spec, obs, actions)


def bind(model: RewardModel, cfg: ISRConfig, env, world_params, n_envs: int = 1) -> Bound:
    """``model`` with its fitting settings and the data spec of ``env`` (``n_envs``: the learner's
    environments side by side in the data, see :func:`data_spec`)."""
    return Bound(model, cfg, data_spec(env, world_params, n_envs))
