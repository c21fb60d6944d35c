"""Our AIRL (internalize.demonstrations + reward_models.airl) on the cross-check's small case,
scored by the same metric as the imitation library's run (airl_metric.py).

The same world as airl_imitation.py (3x3 interior, no walls, 12-step episodes), the same number
of demonstrated steps (200 episodes x 12 = 2,400, 10% random actions) and of generator steps
(196,608 = 96 updates of 8 envs x 256 steps), the project's fast preset otherwise (its PPO, the
MLP reward network on the compact encoding). Runs with the project's own venv:

    .venv/bin/python tools/crosscheck/airl_ours.py [--seeds 3]

writes docs/reproduction/open/reward_learners/crosscheck_ours.json and prints a table beside the
imitation run's numbers (crosscheck_imitation.json).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
OUT = ROOT / "docs/reproduction/open/reward_learners"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--updates", type=int, default=96)
    args = ap.parse_args()

    import gymnasium as gym
    import jax
    import jax.numpy as jnp

    import airl_metric as M
    import internalize.adapters.gymnasium  # noqa: F401  (registers internalize/Coin-v0)
    from internalize import caregivers, demonstrations, reward_models
    from internalize.config import PRESETS
    from internalize.learner import Learner, RunSpec
    from internalize.phases import stack
    from internalize.presence import from_spec
    from internalize.config import PresenceSpec
    from internalize.worlds import CoinWorld

    world = CoinWorld(n_walls=0, size=3, max_steps=12)
    preset = PRESETS["fast"]
    ppo = dataclasses.replace(preset.ppo, n_envs=8, n_steps=256, minibatch_size=512)
    steps = args.updates * ppo.batch_size
    env, wp = world.env, world.params()
    model = reward_models.bind(reward_models.known()["irl"], preset.isr, env, wp, n_envs=ppo.n_envs)
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    k_demo, k_learn = (np.asarray(x) for x in jax.vmap(jax.random.split)(keys).transpose(1, 0, 2))
    t0 = time.perf_counter()
    demos = demonstrations.collect(k_demo, env, wp, world.demonstrator(0.1), ppo.n_envs, 2_400)
    learner = Learner(ppo, env)
    spec = stack([RunSpec(wp, caregivers.as_arrays(world.caregiver()), from_spec(PresenceSpec(0.0, 0.0), steps),
                          jnp.float32(0.0), ()) for _ in range(args.seeds)])
    got = demonstrations.learn(learner, k_learn, spec, demos, model, steps, 8)
    seconds = time.perf_counter() - t0

    gym_env = gym.make("internalize/Coin-v0", n_walls=0, size=3, max_steps=12)
    eval_set = M.build_eval_set(gym_env, n_layouts=16, seed=12345)
    rows = []
    for s in range(args.seeds):
        params = jax.tree.map(lambda x: x[s], got.params)
        policy_params = jax.tree.map(lambda x: x[s], got.state.params)
        reward = jax.jit(lambda o, a: model.reward(params, o, a[:, None]))
        score = M.score_reward(lambda o, a: np.asarray(reward(jnp.asarray(o), jnp.asarray(a, jnp.int32))), eval_set)
        act = jax.jit(lambda o, k: learner.policy(policy_params, o[None])[0].sample(k)[0])
        rng = [jax.random.PRNGKey(1000 + s)]

        def policy(obs):
            rng[0], k = jax.random.split(rng[0])
            return int(act(jnp.asarray(obs), k))

        goals = M.goals_per_episode(gym_env, policy, n_episodes=200, seed=10_000)
        rows.append({"seed": s, "score": score, "generator_goals": goals})
    out = {"what": "internalize's AIRL (demonstrations.learn with reward_models.airl.Airl), scored as "
                   "crosscheck_imitation.json", "world": "CoinWorld(n_walls=0, size=3, max_steps=12)",
           "demonstrated_steps_per_seed": int(demos.action.shape[1]), "generator_steps_per_seed": steps,
           "ppo": dataclasses.asdict(ppo), "isr": dataclasses.asdict(preset.isr),
           "airl": dataclasses.asdict(model.model), "seconds_all_seeds": seconds, "seeds": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "crosscheck_ours.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps([{"seed": r["seed"], **{k: r["score"].get(k) for k in r["score"] if not isinstance(r["score"][k], dict)},
                       "goals": r["generator_goals"]} for r in rows], indent=1, default=str))
    print(f"{seconds:.1f}s for {args.seeds} seeds")


if __name__ == "__main__":
    main()
