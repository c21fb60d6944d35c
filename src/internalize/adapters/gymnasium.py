"""The coin world (SPEC 3) as a Gymnasium ``Env`` (optional extra ``gymnasium``).

:class:`CoinEnv` wraps :mod:`internalize.world` for one learner:

Actions
    ``Discrete(3)``: 0 turn left, 1 turn right, 2 forward (:data:`internalize.worlds.coin.N_ACTIONS`).
Observations
    The world's egocentric, fully observable view, ``Box(0, 255, (V, V, 4), uint8)`` with
    V = 2 * size - 1 (9 for the paper's room): MiniGrid object type, colour, state, and a 0/1
    "is goal" plane (:func:`internalize.worlds.coin.observe`). Returned as NumPy ``uint8`` arrays.
Rewards
    The environment reward R_e alone: ``-step_cost_total / max_steps`` (``-0.9 / 20``) on every
    forward action, whether or not the agent moves, else 0. No caregiver: wrap the env in
    :class:`CaregiverWrapper` to add the social reward.
Episodes
    Stepping onto the goal draws a fresh layout and the episode goes on
    (``info["goal_reached"]`` is then ``True``). Episodes end by truncation only, after
    ``max_steps`` steps (20 for size 5): ``terminated`` is always ``False`` and ``truncated``
    is ``t >= max_steps``, exactly as :func:`internalize.worlds.coin.step` returns them. Stepping
    after the end of an episode raises ``RuntimeError``; call ``reset()``.
Infos
    ``goal_reached`` and ``forward`` (Python bools; both ``False`` at reset).

Randomness: ``reset(seed=s)`` reseeds the environment's NumPy ``Generator``
(Gymnasium's ``self.np_random``) with ``s``; every reset draws its JAX key from that generator
(never from global NumPy state), and steps split that key (layouts redrawn after reaching the
goal come from it). The same seed therefore gives the same episode; without a seed the
generator continues. :class:`CaregiverWrapper` draws the caregiver's presence from the same
generator, after the key.

Registered ids (at import of this module; re-import does not re-register):
``internalize/Coin-v0`` (random walls, ``n_walls=3``) and one per named map of
:data:`internalize.worlds.coin.NAMED_MAPS`: ``internalize/Coin-plus-v0``, ``internalize/Coin-x-v0``,
``internalize/Coin-U-v0``, ``internalize/Coin-T-v0``, ``internalize/Coin-4rooms-v0`` (all valid
Gymnasium ids as they stand). No ``TimeLimit`` is added: the world truncates by itself.

Importing :mod:`internalize` does not import this module; it needs ``gymnasium``.
"""
from __future__ import annotations

import math
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from .. import caregivers, presence
from ..worlds import coin as world

ENV_ID = "internalize/Coin-v0"
_ENTRY_POINT = "internalize.adapters.gymnasium:CoinEnv"


@jax.jit
def _reset(key, params):
    k_reset, k_next = jax.random.split(key)
    obs, state = world.reset(k_reset, params)
    return k_next, obs, state


@jax.jit
def _step(key, state, action, params):
    k_step, k_next = jax.random.split(key)
    obs, state, reward, terminated, truncated, info = world.step(k_step, state, action, params)
    return k_next, obs, state, reward, terminated, truncated, info


def map_env_id(map_name: str) -> str:
    """The registered id of the variant on named map ``map_name``."""
    return f"internalize/Coin-{map_name}-v0"


class CoinEnv(gymnasium.Env):
    """The coin world as a Gymnasium environment (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, n_walls: int = 3, map_name: str | None = None, size: int = 5, max_steps: int | None = None,
                 render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.params = world.coin_params(n_walls=n_walls, map_name=map_name, size=size, max_steps=max_steps)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(world.N_ACTIONS)
        v = self.params.view
        self.observation_space = spaces.Box(0, 255, (v, v, 4), np.uint8)
        self._key = None
        self._state = None
        self._done = True

    @property
    def max_steps(self) -> int:
        return int(self.params.max_steps)

    @property
    def step_cost(self) -> float:
        """The cost of a forward action (R_e = -step_cost)."""
        return float(self.params.step_cost)

    @property
    def world_state(self) -> world.CoinState | None:
        """The underlying :class:`internalize.worlds.coin.CoinState` (JAX arrays); ``None`` before reset."""
        return self._state

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # reseeds self.np_random when seed is given
        key = jnp.asarray(self.np_random.integers(0, 2 ** 32, size=2, dtype=np.uint32))
        self._key, obs, self._state = _reset(key, self.params)
        self._done = False
        return np.array(obs, np.uint8), {"goal_reached": False, "forward": False}

    def step(self, action: Any):
        if self._state is None or self._done:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} (space {self.action_space})")
        self._key, obs, self._state, reward, terminated, truncated, info = _step(
            self._key, self._state, jnp.int32(int(action)), self.params)
        terminated, truncated = bool(terminated), bool(truncated)
        self._done = terminated or truncated
        infos = {"goal_reached": bool(info["goal_reached"]), "forward": bool(info["forward"])}
        return np.array(obs, np.uint8), float(reward), terminated, truncated, infos

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if self._state is None:
            raise RuntimeError("call reset() first")
        return world.render(self._state)


class CaregiverWrapper(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Adds the caregiver's social reward (SPEC 2 and 3) while the caregiver is present.

    At each reset the caregiver is present for the whole episode with probability
    ``presence`` (drawn from the wrapped env's generator, after its key; 1.0 always present,
    0.0 never). The reward is the learner's utility with no internal reward,
    ``U = R_e * (1 - P * waive) + P * R_s`` (:func:`internalize.presence.utility` with R_i = 0):
    while present, the goal step pays ``goal_reward`` (0.4) and its step cost is waived; while
    absent the reward is the base env's R_e.

    Infos add ``caregiver_present`` (bool, also at reset) and ``social_reward``: the social
    reward actually received this step (``goal_reward`` on a goal step while present, else 0).

    It records its constructor arguments, so a ``gymnasium.make`` env wrapped in it can be
    recreated from its ``spec`` (``check_env`` does so to test render modes).
    """

    def __init__(self, env: gymnasium.Env, goal_reward: float = 0.4, presence: float = 1.0):
        gymnasium.utils.RecordConstructorArgs.__init__(self, goal_reward=goal_reward, presence=presence)
        gymnasium.Wrapper.__init__(self, env)
        if not isinstance(env.unwrapped, CoinEnv):
            raise ValueError(f"CaregiverWrapper needs a CoinEnv underneath, got {type(env.unwrapped).__name__}")
        try:
            p = float(presence)
        except (TypeError, ValueError):
            raise ValueError(f"presence must be a probability in [0, 1], got {presence!r}") from None
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"presence must be a probability in [0, 1], got {presence!r}")
        try:
            g = float(goal_reward)
        except (TypeError, ValueError):
            raise ValueError(f"goal_reward must be a finite number, got {goal_reward!r}") from None
        if not math.isfinite(g):
            raise ValueError(f"goal_reward must be a finite number, got {goal_reward!r}")
        self.presence = p
        self.goal_reward = g
        self.caregiver = caregivers.caregiver(goal_reward=g, waives_step_cost=True)
        self.caregiver_present = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.caregiver_present = bool(self.env.unwrapped.np_random.random() < self.presence)
        return obs, dict(info, caregiver_present=self.caregiver_present)

    def step(self, action: Any):
        obs, r_e, terminated, truncated, info = self.env.step(action)
        goal = {"goal_reached": np.bool_(info["goal_reached"])}
        r_s = float(caregivers.social_reward(self.caregiver, goal))
        waive = float(caregivers.waived(self.caregiver, goal))
        p = 1.0 if self.caregiver_present else 0.0
        reward = float(presence.utility(r_e, r_s, 0.0, p, waive))
        info = dict(info, social_reward=p * r_s, caregiver_present=self.caregiver_present)
        return obs, reward, terminated, truncated, info


def register() -> None:
    """Register ``internalize/Coin-v0`` and the named-map variants (skips ids already registered)."""
    ids = {ENV_ID: {}}
    ids.update({map_env_id(name): {"map_name": name} for name in world.NAMED_MAPS})
    for env_id, kwargs in ids.items():
        if env_id not in gymnasium.envs.registry:
            gymnasium.register(id=env_id, entry_point=_ENTRY_POINT, kwargs=kwargs)


register()
