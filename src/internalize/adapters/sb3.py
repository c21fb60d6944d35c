"""The coin world's vector env as a Stable-Baselines3 ``VecEnv`` (needs ``stable-baselines3``).

``SB3VecEnv(gymnasium.make_vec("internalize/Coin-v0", num_envs=N))`` lets SB3's algorithms train
on N coin worlds stepped in one compiled call (:class:`internalize.adapters.gymnasium.CoinVectorEnv`)
instead of N Python environments::

    from stable_baselines3 import PPO
    model = PPO("MlpPolicy", SB3VecEnv(gymnasium.make_vec("internalize/Coin-v0", num_envs=16)))

SB3's conventions are kept: ``step_wait`` returns ``(obs, rewards, dones, infos)`` with ``dones =
terminated | truncated``, one info dict per world holding ``TimeLimit.truncated`` (truncated and
not terminated), the world's infos, and, when its episode ended, ``terminal_observation`` (the
ended episode's last observation; the returned observation is the next episode's first: the
vector env resets in the same step, as SB3 expects). ``seed(s)`` (SB3's) takes effect at the next
``reset``, as in SB3's own vector envs; the vector env has one generator, seeded with ``s``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


class SB3VecEnv(VecEnv):
    """A Gymnasium vector env with same-step autoreset (``CoinVectorEnv``) behind SB3's ``VecEnv``."""

    def __init__(self, venv):
        mode = getattr(getattr(venv, "metadata", {}).get("autoreset_mode"), "name", None)
        if mode != "SAME_STEP":
            raise ValueError(f"SB3VecEnv needs a vector env that resets in the same step, got autoreset mode {mode}")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions = None

    def reset(self):
        # SB3's seed() gives world i the seed s + i; the vector env has one generator: s.
        obs, infos = self.venv.reset(seed=self._seeds[0])
        self._reset_seeds()
        self.reset_infos = self._per_world(infos)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64)

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        per_world = self._per_world(infos)
        for i in range(self.num_envs):
            per_world[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if dones[i]:
                per_world[i]["terminal_observation"] = infos["final_obs"][i]
        return obs, rewards.astype(np.float32), dones, per_world

    def _per_world(self, infos: dict) -> list[dict]:
        out: list[dict] = [{} for _ in range(self.num_envs)]
        for key, values in infos.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            mask = infos.get("_" + key, np.ones(self.num_envs, bool))
            for i in np.flatnonzero(mask):
                v = values[i]
                out[i][key] = v.item() if isinstance(v, np.generic) else v
        return out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def get_images(self):
        return list(self.venv.render() or [])

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
