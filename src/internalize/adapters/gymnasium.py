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
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .. import caregivers, presence as presence_
from ..worlds import coin as world
from .tables import TableWorld

ENV_ID = "internalize/Coin-v0"
_ENTRY_POINT = "internalize.adapters.gymnasium:CoinEnv"
_VECTOR_ENTRY_POINT = "internalize.adapters.gymnasium:CoinVectorEnv"
DEFAULT_GOAL_REWARD = 0.4


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
        # Stepped on the host from its layout's table (:mod:`internalize.adapters.tables`): no JAX
        # dispatch per step. The caregiver's reward rides in the same table (CaregiverWrapper).
        self._world = TableWorld(self.params, DEFAULT_GOAL_REWARD)
        self._started = False
        self._done = True
        self._social = (0.0, 0.0)  # the last step's (R_s, utility with the caregiver present)

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
        return self._world.state() if self._started else None

    def set_goal_reward(self, goal_reward: float) -> None:
        """The caregiver's praise for the goal, for the social reward and utility each step carries
        (:class:`CaregiverWrapper` sets it); a layout already drawn is tabled again."""
        self._world.set_goal_reward(goal_reward)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # reseeds self.np_random when seed is given
        key = self.np_random.integers(0, 2 ** 32, size=2, dtype=np.uint32)
        obs = self._world.reset(key)
        self._started, self._done = True, False
        return obs, {"goal_reached": False, "forward": False}

    def step(self, action: Any):
        if not self._started or self._done:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} (space {self.action_space})")
        obs, r_e, terminated, truncated, goal, fwd, r_s, u = self._world.step(int(action))
        self._done = terminated or truncated
        self._social = (r_s, u)
        return obs, r_e, terminated, truncated, {"goal_reached": goal, "forward": fwd}

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if not self._started:
            raise RuntimeError("call reset() first")
        return world.render(self._world.state())


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
        env.unwrapped.set_goal_reward(g)  # its steps carry this caregiver's reward, computed in the world's table
        self.caregiver_present = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.caregiver_present = bool(self.env.unwrapped.np_random.random() < self.presence)
        return obs, dict(info, caregiver_present=self.caregiver_present)

    def step(self, action: Any):
        obs, r_e, terminated, truncated, info = self.env.step(action)
        # R_s and the utility with the caregiver present came with the step, from the layout's
        # table (caregivers.social_reward and presence.utility, compiled once per layout).
        r_s, u_present = self.env.unwrapped._social
        reward = u_present if self.caregiver_present else r_e
        info = dict(info, social_reward=r_s if self.caregiver_present else 0.0, caregiver_present=self.caregiver_present)
        return obs, reward, terminated, truncated, info


def register() -> None:
    """Register ``internalize/Coin-v0`` and the named-map variants (skips ids already registered)."""
    ids = {ENV_ID: {}}
    ids.update({map_env_id(name): {"map_name": name} for name in world.NAMED_MAPS})
    for env_id, kwargs in ids.items():
        if env_id not in gymnasium.envs.registry:
            gymnasium.register(id=env_id, entry_point=_ENTRY_POINT, vector_entry_point=_VECTOR_ENTRY_POINT,
                               kwargs=kwargs)


register()


def _vector_programs(params):
    """The vector env's compiled programs for one world setting (``params`` are constants of
    the programs: fewer arguments to pass each step, and XLA folds them).

    Each world carries its next key between steps and splits it at each step as
    :class:`CoinEnv` does, so world ``i`` steps as ``world.step(k_t, ...)`` with the key ``k_t``
    the single env splits for step ``t``. Drawing a layout is the costly part of a step (its
    random numbers), and ``world.step`` draws one every step: here a step draws layouts only for
    the worlds whose action reaches the goal (the only steps that use one), by the same keys."""
    packed = params.width <= 31  # world.observe_packed's rooms
    draw = jax.vmap(world.draw_layout, in_axes=(0, None))

    def layouts_for(keys, hits):
        """The layouts world.step draws from ``keys`` where ``hits`` (zeros elsewhere): drawn for
        the worlds that reach the goal alone, in a batch of _FEW when at most _FEW do."""
        n = hits.shape[0]
        few = min(_FEW, n)
        zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(draw, keys, params))

        def some():
            which = jnp.nonzero(hits, size=few, fill_value=n)[0]
            lay = draw(keys[jnp.minimum(which, n - 1)], params)
            return jax.tree.map(lambda z, b: z.at[which].set(b, mode="drop"), zeros, lay)

        count = hits.sum()
        return jax.lax.switch(jnp.where(count == 0, 0, jnp.where(count <= few, 1, 2)),
                              [lambda: zeros, some, lambda: draw(keys, params)])

    @jax.jit
    def step(keys, state, actions, present, goal_reward):
        cg = caregivers.GoalPraise(goal_reward, waives_step_cost=True)
        split = jax.vmap(jax.random.split)(keys)
        keys, k_step = split[:, 1], split[:, 0]
        layouts = layouts_for(k_step, jax.vmap(world.reaches_goal)(state, actions))
        obs, state, r_e, term, trunc, info = jax.vmap(world.step_onto, in_axes=(0, 0, 0, None))(
            layouts, state, actions, params)
        if packed:  # the same view, its bytes read on the host (step_onto's bytes are then unused: dropped)
            obs = jax.vmap(world.observe_packed, in_axes=(0, None))(state, params)
        r_s = caregivers.social_reward(cg, info)  # elementwise over the worlds
        pres = present.astype(jnp.float32)
        reward = presence_.utility(r_e, r_s, 0.0, pres, caregivers.waived(cg, info))
        flags = jnp.stack([r_e, term, trunc, info["goal_reached"], info["forward"], pres * r_s, reward],
                          -1).astype(jnp.float32)
        return keys, state, obs, flags

    @jax.jit
    def reset(keys):
        def one(key):
            k_reset, k_next = jax.random.split(key)
            obs, s = world.reset(k_reset, params)
            return k_next, s, obs

        return jax.vmap(one)(keys)

    @jax.jit
    def put(keys, state, which, new_keys, new_state):
        """Worlds ``which`` replaced (padding repeats an index with its own values)."""
        return jax.tree.map(lambda a, b: a.at[which].set(b), (keys, state), (new_keys, new_state))

    return step, reset, put


_FEW = 4  # a step draws this many layouts when at most this many worlds reach the goal
_PROGRAMS: dict = {}


class CoinVectorEnv(VectorEnv):
    """``num_envs`` coin worlds stepped together in one compiled call
    (``gymnasium.make_vec("internalize/Coin-v0", num_envs=N)``): the world's own step, vmapped,
    with the caregiver's reward computed in the same program; one copy back to the host per step.

    **Autoreset: same step** (``metadata["autoreset_mode"]`` is ``AutoresetMode.SAME_STEP``). A
    world whose episode ends (truncation after ``max_steps``; it never terminates) is reset within
    the same ``step``: the returned observation is the new episode's first, the ended episode's
    last observation is ``infos["final_obs"][i]`` and its step's infos ``infos["final_info"]``
    (each with its ``_`` mask, as Gymnasium's vector envs give them). The reward, terminated and
    truncated returned for it are those of the ended episode's last step.

    Rewards: R_e, as :class:`CoinEnv`. With ``presence`` (a probability) a caregiver joins each
    world's episode with that probability (drawn at each reset, from this env's generator) and
    the reward is the utility :class:`CaregiverWrapper` gives (``goal_reward`` on the goal, its
    step cost waived, while present). Infos: ``goal_reached``, ``forward`` and, with a caregiver,
    ``caregiver_present`` and ``social_reward`` (arrays over the worlds, with ``_`` masks).

    Randomness: ``reset(seed=s)`` reseeds the env's generator; every reset of a world (the first,
    and each autoreset) draws that world's JAX key from it, in order of the worlds, then the world
    splits it step by step as :class:`CoinEnv` does. With ``num_envs=1`` the episodes are the
    single env's for the same seed."""

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, n_walls: int = 3, map_name: str | None = None, size: int = 5,
                 max_steps: int | None = None, presence: float | None = None, goal_reward: float = DEFAULT_GOAL_REWARD,
                 render_mode: str | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if presence is not None and (isinstance(presence, bool) or not isinstance(presence, (int, float))
                                     or not 0.0 <= presence <= 1.0):
            raise ValueError(f"presence must be a probability in [0, 1] or None, got {presence!r}")
        if isinstance(goal_reward, bool) or not isinstance(goal_reward, (int, float)) or not math.isfinite(goal_reward):
            raise ValueError(f"goal_reward must be a finite number, got {goal_reward!r}")
        self.num_envs = int(num_envs)
        self.params = world.coin_params(n_walls=n_walls, map_name=map_name, size=size, max_steps=max_steps)
        setting = (n_walls, map_name, size, max_steps)
        if setting not in _PROGRAMS:  # shared by every vector env of this setting
            _PROGRAMS[setting] = _vector_programs(self.params)
        self._step_fn, self._reset_fn, self._put_fn = _PROGRAMS[setting]
        self.render_mode = render_mode
        self.presence = None if presence is None else float(presence)
        self.goal_reward = np.float32(goal_reward)
        v = self.params.view
        self.single_observation_space = spaces.Box(0, 255, (v, v, 4), np.uint8)
        self.single_action_space = spaces.Discrete(world.N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._keys = None  # each world's next key (on the device; _vector_programs)
        self._state = None  # CoinState [N, ...] (on the device)
        self._present = np.zeros(self.num_envs, bool)
        self._absent = np.zeros(self.num_envs, bool)
        self._everyone = np.ones(self.num_envs, bool)  # the infos' masks: every world (not to be changed)
        self._everyone.flags.writeable = False

    def _draw(self, which: np.ndarray):
        """Reset worlds ``which``: keys from the generator (then presence); their observations."""
        n = len(which)
        keys = self.np_random.integers(0, 2 ** 32, size=(n, 2), dtype=np.uint32)
        if self._state is None or n == self.num_envs:  # all of them (episodes end together): no scatter
            self._keys, self._state, obs = self._reset_fn(keys)
        else:
            pad = 1
            while pad < n:
                pad *= 2  # calls for a few worlds are padded to a power of two: few compiled shapes
            pad = min(pad, self.num_envs) - n
            idx = np.concatenate([which, np.repeat(which[:1], pad)]).astype(np.int32)
            keys = np.concatenate([keys, np.repeat(keys[:1], pad, 0)])
            new_keys, state, obs = self._reset_fn(keys)
            self._keys, self._state = self._put_fn(self._keys, self._state, idx, new_keys, state)
        if self.presence is not None:
            self._present[which] = self.np_random.random(n) < self.presence
        return np.asarray(obs)[:n].copy()  # (slicing the device array would be one more dispatch)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None  # one generator for all the worlds
        super().reset(seed=seed)  # reseeds self.np_random when seed is given
        self._state = None
        every = np.arange(self.num_envs)
        obs = self._draw(every)
        infos = {"goal_reached": np.zeros(self.num_envs, bool), "_goal_reached": np.ones(self.num_envs, bool),
                 "forward": np.zeros(self.num_envs, bool), "_forward": np.ones(self.num_envs, bool)}
        if self.presence is not None:
            infos.update(caregiver_present=self._present.copy(), _caregiver_present=np.ones(self.num_envs, bool))
        return obs, infos

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() first")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu" \
                or actions.min() < 0 or actions.max() >= world.N_ACTIONS:
            raise ValueError(f"actions must be {self.num_envs} integers in 0..{world.N_ACTIONS - 1}, "
                             f"got {actions.dtype} {actions.shape}")
        present = self._present if self.presence is not None else self._absent
        self._keys, self._state, obs, flags = self._step_fn(self._keys, self._state, actions.astype(np.int32),
                                                            present, self.goal_reward)
        # np.asarray reads each result on the host (jax.device_get of the pair measured about
        # 60 us more per call at N = 64); the observations' bytes copied once (writable, the caller's).
        obs, flags = np.asarray(obs), np.asarray(flags)
        if obs.dtype != np.uint8:  # world.observe_packed: four bytes per cell in one uint32
            obs = obs.astype("<u4", copy=False).view(np.uint8).reshape(obs.shape + (4,))
        obs = obs.copy()
        r_e, u = flags[:, 0], flags[:, 6]
        term, trunc, goal, fwd = (flags[:, 1:5] != 0).T
        everyone = self._everyone
        infos = {"goal_reached": goal, "_goal_reached": everyone, "forward": fwd, "_forward": everyone}
        if self.presence is not None:
            infos.update(caregiver_present=self._present.copy(), _caregiver_present=everyone,
                         social_reward=flags[:, 5].copy(), _social_reward=everyone)
        reward = u if self.presence is not None else r_e
        done = term | trunc
        if done.any():
            ended = np.flatnonzero(done)
            last, obs = obs, obs.copy()  # `last` is not written again: its rows are the final observations
            final_obs = np.empty(self.num_envs, object)
            for i in ended:
                final_obs[i] = last[i]
            final_info = {k: (v & done if k.startswith("_") else v.copy()) for k, v in infos.items()}
            obs[ended] = self._draw(ended)
            if self.presence is not None:
                infos["caregiver_present"] = self._present.copy()
            infos.update(final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy())
        return obs, reward, term, trunc, infos

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if self._state is None:
            raise RuntimeError("call reset() first")
        return tuple(world.render(self.world_state(i)) for i in range(self.num_envs))

    def world_state(self, i: int) -> world.CoinState:
        """World ``i``'s :class:`internalize.worlds.coin.CoinState` (NumPy arrays)."""
        if self._state is None:
            raise RuntimeError("call reset() first")
        return world.CoinState(*(np.asarray(v)[i] for v in (self._state.walls, self._state.goal, self._state.pos,
                                                             self._state.dir, self._state.t)))
