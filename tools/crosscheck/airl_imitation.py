"""Cross-check: the `imitation` library's AIRL (Fu et al. 2018) on a small coin world.

Run with the cross-check venv (see tools/crosscheck/README.md), not the project venv:

    nice -n 10 .crosscheck-venv/bin/python tools/crosscheck/airl_imitation.py

What it does:
1. Builds the coin world through the Gymnasium adapter (``internalize/Coin-v0``; default
   interior 3x3, no interior walls, 12 steps per episode), with an observation wrapper that
   gives the project's ``fast`` encoding (wall and goal planes of the egocentric view, flat
   float32 in {0, 1}; :func:`airl_metric.compact_features`).
2. Records demonstrations from a scripted demonstrator (shortest path to the coin, turns
   counted as steps, 10% random actions; :func:`airl_metric.scripted_action`) as imitation
   ``Trajectory`` objects. Episodes end by truncation; as imitation does for its own rollouts
   (and as SB3's VecEnv ``dones`` do for the generator), the last transition is marked done.
3. Trains ``imitation.algorithms.adversarial.airl.AIRL`` with an SB3 PPO generator and a
   ``BasicShapedRewardNet`` (base g(s, a): MLP on (obs, one-hot action); potential h(s):
   MLP on obs; f = g(s, a) + gamma (1 - done) h(s') - h(s)) for ``--gen-steps`` environment steps.
4. Scores the *base* reward g(s, a) (``AIRL.reward_test``: the unshaped net, next_obs and done
   are ignored by it) on the fixed evaluation set of :mod:`airl_metric`, and the generator's
   coins per episode against a random policy and the demonstrator.
5. Writes docs/reproduction/open/reward_learners/crosscheck_imitation.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import airl_metric as M  # noqa: E402

DEFAULT_OUT = ROOT / "docs/reproduction/open/reward_learners/crosscheck_imitation.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=3, help="interior side of the room")
    p.add_argument("--n-walls", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=12, help="episode length (truncation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--demo-episodes", type=int, default=200)
    p.add_argument("--demo-eps", type=float, default=0.1, help="demonstrator's random-action rate")
    p.add_argument("--gen-steps", type=int, default=196608, help="generator env steps in total (AIRL budget)")
    p.add_argument("--n-envs", type=int, default=8)
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length per env (one AIRL round = n_envs * n_steps)")
    p.add_argument("--gamma", type=float, default=0.95, help="PPO discount and the reward net's shaping discount")
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--demo-batch-size", type=int, default=1024)
    p.add_argument("--n-disc-updates", type=int, default=8, help="discriminator updates per round")
    p.add_argument("--eval-layouts", type=int, default=16)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--eval-episodes", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_start = time.time()

    import gymnasium as gym
    import torch
    import stable_baselines3
    import imitation
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv
    from imitation.algorithms.adversarial.airl import AIRL
    from imitation.data import types
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicShapedRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm

    import internalize.adapters.gymnasium as adapter

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class CompactObs(gym.ObservationWrapper):
        """The ``fast`` encoding: wall and goal planes of the egocentric view, flat float32."""

        def __init__(self, env):
            super().__init__(env)
            v = env.observation_space.shape[0]
            self.observation_space = gym.spaces.Box(0.0, 1.0, (2 * v * v,), np.float32)

        def observation(self, obs):
            return M.compact_features(obs)

    env_kwargs = dict(n_walls=args.n_walls, size=args.size, max_steps=args.max_steps)

    def make_env():
        return RolloutInfoWrapper(CompactObs(gym.make(adapter.ENV_ID, **env_kwargs)))

    # ---- demonstrations -------------------------------------------------------------------
    t0 = time.time()
    demo_env = CompactObs(gym.make(adapter.ENV_ID, **env_kwargs))
    demo_policy = M.scripted_policy(demo_env, eps=args.demo_eps, seed=args.seed)
    trajs, demo_goals = [], []
    for ep in range(args.demo_episodes):
        obs, _ = demo_env.reset(seed=args.seed * 100_003 + ep)
        obs_l, acts, rews, done, goals = [obs], [], [], False, 0
        while not done:
            a = demo_policy(obs)
            obs, r, term, trunc, info = demo_env.step(a)
            obs_l.append(obs)
            acts.append(a)
            rews.append(r)
            goals += int(info["goal_reached"])
            done = term or trunc
        demo_goals.append(goals)
        trajs.append(types.TrajectoryWithRew(obs=np.stack(obs_l), acts=np.asarray(acts, np.int64), infos=None,
                                             terminal=True, rews=np.asarray(rews, np.float32)))
    t_demo = time.time() - t0
    n_demo = sum(len(t) for t in trajs)
    print(f"demonstrations: {len(trajs)} episodes, {n_demo} transitions, "
          f"{np.mean(demo_goals):.2f} coins/episode ({t_demo:.1f} s)", flush=True)

    # ---- AIRL -----------------------------------------------------------------------------
    venv = DummyVecEnv([make_env for _ in range(args.n_envs)])
    venv.seed(args.seed)
    learner = PPO(
        policy="MlpPolicy", env=venv, n_steps=args.n_steps, batch_size=256, learning_rate=3e-4,
        gamma=args.gamma, ent_coef=args.ent_coef, n_epochs=5, clip_range=0.2, seed=args.seed, verbose=0,
        device="cpu", policy_kwargs=dict(net_arch=[64, 64]),
    )
    reward_net = BasicShapedRewardNet(
        observation_space=venv.observation_space, action_space=venv.action_space,
        normalize_input_layer=RunningNorm, discount_factor=args.gamma,
    )
    log_dir = Path(tempfile.mkdtemp(prefix="airl_imitation_"))
    custom_logger = imit_logger.configure(str(log_dir), format_strs=["csv"])
    round_steps = args.n_envs * args.n_steps
    airl = AIRL(
        demonstrations=trajs, demo_batch_size=args.demo_batch_size, venv=venv, gen_algo=learner,
        reward_net=reward_net, n_disc_updates_per_round=args.n_disc_updates,
        gen_replay_buffer_capacity=round_steps, custom_logger=custom_logger,
        log_dir=str(log_dir), allow_variable_horizon=False,
    )
    t0 = time.time()
    airl.train(args.gen_steps)
    t_train = time.time() - t0
    n_rounds = args.gen_steps // round_steps
    print(f"AIRL: {n_rounds} rounds x {round_steps} generator steps ({t_train:.1f} s)", flush=True)

    disc_last = {}
    csv = log_dir / "progress.csv"
    if csv.exists():
        import csv as _csv
        with open(csv) as f:
            rows = list(_csv.DictReader(f))
        if rows:
            for k, v in rows[-1].items():
                if k.startswith("mean/disc/") and v not in ("", None):
                    disc_last[k.removeprefix("mean/disc/")] = float(v)

    # ---- evaluation -----------------------------------------------------------------------
    t0 = time.time()
    base_net = airl.reward_test  # the unshaped g(s, a)

    def reward_fn(obs_raw, acts):
        x = M.compact_features(obs_raw)
        return base_net.predict(x, np.asarray(acts, np.int64), x, np.zeros(len(acts), bool))

    eval_env = gym.make(adapter.ENV_ID, **env_kwargs)
    eval_set = M.build_eval_set(eval_env, n_layouts=args.eval_layouts, seed=args.eval_seed)
    reward_scores = M.score_reward(reward_fn, eval_set)

    pol_env = CompactObs(gym.make(adapter.ENV_ID, **env_kwargs))
    policies = {
        "generator_stochastic": lambda o: int(learner.predict(o, deterministic=False)[0]),
        "generator_deterministic": lambda o: int(learner.predict(o, deterministic=True)[0]),
        "random": M.random_policy(args.seed + 1),
        "demonstrator_eps0.1": M.scripted_policy(pol_env, eps=args.demo_eps, seed=args.seed + 2),
        "demonstrator_eps0": M.scripted_policy(pol_env, eps=0.0, seed=args.seed + 3),
    }
    goal_scores = {name: M.goals_per_episode(pol_env, fn, args.eval_episodes, seed=10_000) for name, fn in policies.items()}
    t_eval = time.time() - t0

    def ver(mod):
        return getattr(mod, "__version__", "?")

    import jax
    result = {
        "what": "imitation's AIRL (BasicShapedRewardNet + SB3 PPO) on the coin world via the Gymnasium adapter; "
                "scores of the base reward g(s,a) (AIRL.reward_test, unshaped) on tools/crosscheck/airl_metric.py's set",
        "command": "nice -n 10 .crosscheck-venv/bin/python tools/crosscheck/airl_imitation.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "versions": {"imitation": ver(imitation), "torch": ver(torch), "stable_baselines3": ver(stable_baselines3),
                     "gymnasium": ver(gym), "numpy": np.__version__, "jax": jax.__version__,
                     "python": platform.python_version()},
        "seed": args.seed,
        "world": {"env_id": adapter.ENV_ID, **env_kwargs, "obs": "compact (wall+goal planes, flat float32)"},
        "budget": {"generator_env_steps": n_rounds * round_steps, "rounds": n_rounds, "round_steps": round_steps,
                   "n_envs": args.n_envs, "ppo_n_steps": args.n_steps, "n_disc_updates_per_round": args.n_disc_updates,
                   "demo_batch_size": args.demo_batch_size, "gamma": args.gamma, "ent_coef": args.ent_coef,
                   "torch_threads": args.threads},
        "demonstrations": {"episodes": len(trajs), "transitions": n_demo, "eps": args.demo_eps,
                           "coins_per_episode": float(np.mean(demo_goals)), "last_transition_done": True},
        "eval_set": {"layouts": args.eval_layouts, "seed": args.eval_seed, "rows": reward_scores["n_rows"]},
        "reward_base_g": reward_scores,
        "coins_per_episode": goal_scores,
        "discriminator_last_round": disc_last,
        "seconds": {"demos": round(t_demo, 1), "train": round(t_train, 1), "eval": round(t_eval, 1),
                    "total": round(time.time() - t_start, 1)},
        "notes": [
            "imitation's reward net sees (obs, action, next_obs, done); AIRL's discriminator logit is "
            "f(s,a,s') - log pi(a|s) with f = g(s,a) + gamma*(1-done)*h(s') - h(s). The generator is "
            "trained by PPO on f (imitation's reward_train) with an entropy bonus, not on f - log pi.",
            "Scored here: the base g(s,a) only (AIRL.reward_test); next_obs and done are ignored by it.",
            "Episodes end by truncation; imitation marks the last transition done (for demos and generator "
            "alike), so the shaping term drops h(s') there.",
            "Stepping onto the coin redraws the layout, so next_obs of an enter-coin step shows a new layout.",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    s = reward_scores
    print()
    print(f"learned base reward g(s,a) on {s['n_rows']} (state, action) rows, {args.eval_layouts} layouts")
    print(f"  {'kind':<16}{'n':>6}{'mean':>10}{'std':>10}")
    for k in ("enter_coin", "forward_move", "forward_blocked", "forward_other", "turn"):
        print(f"  {k:<16}{s['n_' + k]:>6}{s['mean_' + k]:>10.3f}{s['std_' + k]:>10.3f}")
    print(f"  gap enter - other forward: {s['gap_enter_minus_forward_other']:.3f} ({s['gap_over_std']:.2f} std)")
    print(f"  pearson(true goal +0.4) {s['pearson_true_goal']:.3f}   spearman {s['spearman_true_goal']:.3f}   "
          f"pearson(true utility) {s['pearson_true_utility']:.3f}")
    print(f"  enter-coin action top-ranked in {s['enter_coin_top_frac']:.2f} of {s['n_states_facing_coin']} states; "
          f"greedy action optimal in {s['greedy_optimal_frac']:.2f} of states")
    print(f"coins per episode ({args.eval_episodes} episodes of {args.max_steps} steps)")
    for name, g in goal_scores.items():
        print(f"  {name:<24}{g['mean']:>6.2f} +- {g['sem']:.2f}")
    print(f"time: demos {t_demo:.0f} s, train {t_train:.0f} s, eval {t_eval:.0f} s; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
