"""The prosocial world (SPEC 8) as a PettingZoo ``ParallelEnv`` (optional extra ``pettingzoo``).

Two agents act simultaneously each step:

``"learner"``
    ``Discrete(5)``: left, right, forward, pick up, drop (:data:`internalize.worlds.prosocial.ACTION_NAMES`).
    Observation: the world's egocentric view, ``Box(0, 255, (9, 9, 4), uint8)`` (MiniGrid
    object type, colour, state, and a "carrying" plane; the cell in front is ``obs[5, 4]``).
``"partner"``
    ``Discrete(5)``: 0 = stay, ``1 + d`` = move in MiniGrid direction ``d`` (right, down, left,
    up; :data:`internalize.worlds.prosocial.PARTNER_ACTION_NAMES`). The world only lets the partner
    advance along its fixed path: a move that is not the next step of the path, or whose
    target cell holds the ball or the learner, leaves it in place.
    Observation: the whole room in MiniGrid encoding, ``Box(0, 255, (7, 7, 3), uint8)``,
    indexed ``[x, y]`` (:func:`internalize.worlds.prosocial.encode_grid`): walls, the partner's goal,
    the ball while it lies on the floor, the learner (agent, red, state = its direction) and
    the partner (agent, blue). :meth:`ProsocialParallelEnv.state` returns the same array.

Rewards. When the partner reaches its goal (``info["goal_reached"]``) *both* agents receive
the shared social reward +0.4 and a new layout is drawn (the episode goes on). The learner
additionally pays the world's forward cost, ``-0.9 / 100`` for every forward action whether
or not it moves (the ``reward`` of :func:`internalize.worlds.prosocial.step_agents`). So per step::

    rewards["learner"] = 0.4 * goal_reached - 0.009 * forward
    rewards["partner"] = 0.4 * goal_reached

Episodes end by truncation after ``max_steps`` (100) steps for both agents at once;
terminations are always ``False``. After the truncating step ``env.agents`` is empty.

The scripted partner of the training world is available as :meth:`ProsocialParallelEnv.partner_action`
(or :func:`scripted_partner_action`). Note the difference in timing: in the training world
(:func:`internalize.worlds.prosocial.step`) the scripted partner reacts to the learner's move of the
same step, whereas in a ``ParallelEnv`` both agents choose simultaneously, so the helper
evaluates the scripted policy on the *current* state. E.g. on the step the learner picks up
the ball blocking the partner, the helper says "stay" and the partner moves one step later
than it would in the training world.

Infos: ``goal_reached`` and ``carrying`` (the learner holds the ball in the returned state) for
both agents; the learner's also has ``forward`` (it paid the forward cost) and ``other_actions``
(the partner's action in the learner's frame, as the ISR sees it: 0 stay, ``1 + k`` a move
``k`` quarter turns clockwise from the learner's facing before the step).

Randomness: ``reset(seed=s)`` reseeds the environment's own NumPy ``Generator`` with ``s``;
every reset draws its JAX key from that generator (never from global NumPy state), and steps
split that key (layouts redrawn after an arrival come from it). The same seed therefore gives
the same episode; without a seed the generator created at construction (from OS entropy)
continues.

Importing :mod:`internalize` does not import this module; it needs ``pettingzoo`` and
``gymnasium``.
"""
from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..worlds import prosocial
from .tables import episode_keys

LEARNER, PARTNER = "learner", "partner"
AGENTS = (LEARNER, PARTNER)
SHARED_REWARD = 0.4  # SPEC 8: both agents, when the partner reaches its goal


def _programs(params):
    """The env's compiled reset and step for one world setting (``params`` are constants of the
    programs, which XLA folds).

    The reset also splits the episode's chain of step keys ahead (:func:`.tables.episode_keys`,
    as :class:`~.gymnasium.CoinEnv` does), and a step is given its key: the step then runs no random
    numbers unless the partner arrives (the layout's draw is a conditional in
    ``prosocial.step_agents``). Splitting in the step measured about twice as slow a step."""
    steps = int(params.max_steps)

    @jax.jit
    def reset(key):
        k_reset, k_next = jax.random.split(key)
        obs, state = prosocial.reset(k_reset, params)
        return episode_keys(k_next, steps), obs, state, prosocial.encode_grid(state)

    @jax.jit
    def step(k_step, state, action, partner_action):
        """One step, compiled whole; what the host needs comes back as three arrays (one copy)."""
        obs, state, reward, terminated, truncated, info = prosocial.step_agents(k_step, state, action,
                                                                               partner_action, params)
        flags = jnp.stack([reward, terminated, truncated, info["goal_reached"], info["forward"], state.carrying,
                           jnp.asarray(info["other_actions"]).reshape(-1)[0]]).astype(jnp.float32)
        return state, obs, prosocial.encode_grid(state), flags

    return reset, step


_PROGRAMS: dict = {}  # (max_steps, step_cost_total) -> _programs, shared by the envs of a setting


_partner_policy = jax.jit(prosocial.partner_policy)


class ProsocialParallelEnv(ParallelEnv):
    """The prosocial two-agent world as a PettingZoo ``ParallelEnv`` (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "name": "internalize_prosocial_v0", "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, max_steps: int = 100, step_cost_total: float = 0.9,
                 tile: int = 24):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.tile = tile
        self.params = prosocial.prosocial_params(max_steps=max_steps, step_cost_total=step_cost_total)
        setting = (max_steps, step_cost_total)
        if setting not in _PROGRAMS:
            _PROGRAMS[setting] = _programs(self.params)
        self._reset_fn, self._step_fn = _PROGRAMS[setting]
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._np_rng = np.random.default_rng()
        self._keys, self._t = None, 0
        self._state = None
        self._grid = None
        self.state_space = spaces.Box(0, 255, (prosocial.WIDTH, prosocial.WIDTH, 3), np.uint8)
        self._obs_spaces = {
            LEARNER: spaces.Box(0, 255, (self.params.view, self.params.view, prosocial.N_CHANNELS), np.uint8),
            PARTNER: self.state_space,
        }
        self._act_spaces = {LEARNER: spaces.Discrete(prosocial.N_ACTIONS),
                            PARTNER: spaces.Discrete(prosocial.N_PARTNER_ACTIONS)}

    # -- spaces -----------------------------------------------------------------------------------

    def observation_space(self, agent: str) -> spaces.Box:
        # The same object on every call (PettingZoo requires it; no lru_cache needed).
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_spaces[agent]

    # -- the episode ------------------------------------------------------------------------------

    def _observations(self, obs) -> dict[str, np.ndarray]:
        return {LEARNER: np.array(obs, np.uint8), PARTNER: np.array(self._grid, np.uint8)}  # copies: the caller's

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._np_rng = np.random.default_rng(seed)
        key = self._np_rng.integers(0, 2 ** 32, size=2, dtype=np.uint32)
        keys, obs, self._state, grid = self._reset_fn(key)
        self._keys, self._t = np.asarray(keys), 0  # the episode's step keys (on the host), the next step's index
        obs, self._grid = np.asarray(obs), np.asarray(grid)
        self.agents = list(self.possible_agents)
        carrying = bool(self._state.carrying)
        infos = {a: {"goal_reached": False, "carrying": carrying} for a in self.agents}
        return self._observations(obs), infos

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise KeyError(f"no action for {missing}; both agents act every step")
        act = {}
        for a in self.agents:
            act[a] = int(actions[a])
            if not self._act_spaces[a].contains(act[a]):
                raise ValueError(f"invalid action {actions[a]!r} for {a!r} (space {self._act_spaces[a]})")
        # One compiled call and one copy back per step (no eager JAX op): the actions go in as
        # NumPy scalars, the host's numbers come back packed in ``flags``.
        self._state, obs, grid, flags = self._step_fn(
            self._keys[self._t], self._state, np.int32(act[LEARNER]), np.int32(act[PARTNER]))
        self._t += 1
        obs, self._grid, flags = np.asarray(obs), np.asarray(grid), np.asarray(flags)  # (device_get: slower)
        reward, terminated, truncated, goal, forward, carrying, other = flags.tolist()
        goal = bool(goal)
        shared = SHARED_REWARD if goal else 0.0
        rewards = {LEARNER: float(np.float32(reward)) + shared, PARTNER: shared}
        terminated, truncated = bool(terminated), bool(truncated)
        # "carrying" describes the returned state: after an arrival the new layout starts without
        # the ball in hand (the world's info["carrying"] still describes the old layout there).
        common = {"goal_reached": goal, "carrying": bool(carrying)}
        infos = {LEARNER: dict(common, forward=bool(forward), other_actions=int(other)),
                 PARTNER: dict(common)}
        observations = self._observations(obs)
        terminations = dict.fromkeys(self.agents, terminated)
        truncations = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    # -- extras -----------------------------------------------------------------------------------

    def partner_action(self) -> int:
        """The scripted partner's action for the current state (see the module docstring on timing)."""
        if self._state is None:
            raise RuntimeError("call reset() first")
        return int(_partner_policy(self._state))

    def state(self) -> np.ndarray:
        """The whole room in MiniGrid encoding ``uint8 [7, 7, 3]`` (the partner's observation)."""
        if self._grid is None:
            raise RuntimeError("call reset() first")
        return np.array(self._grid, np.uint8)

    @property
    def world_state(self) -> prosocial.ProsocialState:
        """The underlying :class:`internalize.worlds.prosocial.ProsocialState` (JAX arrays)."""
        return self._state

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; use parallel_env(render_mode='rgb_array')")
            return None
        if self._state is None:
            raise RuntimeError("call reset() first")
        return prosocial.render(self._state, tile=self.tile)

    def close(self):
        pass


def scripted_partner_action(env: ProsocialParallelEnv) -> int:
    """The scripted partner's action for ``env``'s current state (:meth:`ProsocialParallelEnv.partner_action`)."""
    return env.unwrapped.partner_action()


def parallel_env(**kwargs) -> ProsocialParallelEnv:
    """Make the environment, as PettingZoo environments' ``parallel_env`` factories do."""
    return ProsocialParallelEnv(**kwargs)

