"""A small, model-agnostic score for a learned reward on the coin world (cross-check tooling).

Plain functions, NumPy in and out, so that any reward learner can be scored the same way:
imitation's AIRL (``airl_imitation.py`` beside this file) or the project's own JAX AIRL.

* :func:`build_eval_set` fixes a set of (state, action) pairs: ``n_layouts`` layouts drawn
  deterministically from ``seed`` with the env's own world parameters, and in each of them
  every free agent cell other than the coin, every facing and every action (a sweep, like
  :func:`internalize.worlds.coin.sweep`). Each row is labelled: ``enter_coin`` (forward into
  the coin), ``forward_move`` (forward into a free cell), ``forward_blocked`` (forward into a
  wall: the agent stays) or ``turn``; with the true rewards and whether the action is on a
  shortest path to the coin (turns count as steps).
* :func:`score_reward` takes ``reward_fn(obs_batch, action_batch) -> np.ndarray`` and that
  set. ``obs_batch`` is the CoinEnv's own raw observation, ``uint8 [N, V, V, 4]`` (what the
  unwrapped env returns); a model trained on another encoding converts inside ``reward_fn``
  (:func:`compact_features` gives the project's ``fast`` wall+goal encoding). ``action_batch``
  is ``int64 [N]`` (0 left, 1 right, 2 forward).
* :func:`goals_per_episode` runs a policy in an env (any wrapping) and counts coins per
  episode; :func:`random_policy` and :func:`scripted_policy` give the baselines.
* :func:`optimal_q` / :func:`scripted_action`: the demonstrator, shortest path to the coin
  counting turns as steps, from the env's world state.

True rewards: ``true_goal`` is +0.4 on entering the coin, else 0 (the caregiver's praise,
SPEC 3); ``true_utility`` is the caregiver-present utility: +0.4 on entering the coin (its
step cost waived), ``-step_cost`` on every other forward step, 0 on turns.

Needs numpy and jax (the world's ``observe`` renders the observations); no torch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

LEFT, RIGHT, FORWARD = 0, 1, 2
DIR_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.int64)  # MiniGrid: 0 +x, 1 +y, 2 -x, 3 -y
KINDS = ("enter_coin", "forward_move", "forward_blocked", "turn")
GOAL_REWARD = 0.4
OBJ_WALL = 2

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PolicyFn = Callable[[np.ndarray], int]


# --------------------------------------------------------------------------------------------
# The demonstrator


def _next_state(walls: np.ndarray, x: int, y: int, d: int, a: int) -> tuple[int, int, int]:
    if a == LEFT:
        return x, y, (d + 3) % 4
    if a == RIGHT:
        return x, y, (d + 1) % 4
    fx, fy = x + DIR_VEC[d, 0], y + DIR_VEC[d, 1]
    if walls[fx, fy]:
        return x, y, d
    return int(fx), int(fy), d


def optimal_q(walls: np.ndarray, goal) -> np.ndarray:
    """Steps to the coin, ``float [W, H, 4, 3]``: Q[x, y, d, a] is the number of actions (turns
    count) to enter the coin after taking ``a`` at (x, y) facing d and acting optimally after;
    entering the coin with ``a`` costs 1. ``inf`` where the coin cannot be reached (and on walls)."""
    walls = np.asarray(walls, bool)
    gx, gy = (int(v) for v in np.asarray(goal))
    w, h = walls.shape
    v = np.full((w, h, 4), np.inf)
    q = np.full((w, h, 4, 3), np.inf)
    free = [(x, y) for x in range(w) for y in range(h) if not walls[x, y] and (x, y) != (gx, gy)]
    for _ in range(4 * w * h + 1):  # Bellman sweeps until nothing changes (a shortest path is < 4WH)
        changed = False
        for x, y in free:
            for d in range(4):
                for a in range(3):
                    nx, ny, nd = _next_state(walls, x, y, d, a)
                    cost = 1.0 if (a == FORWARD and (nx, ny) == (gx, gy)) else 1.0 + v[nx, ny, nd]
                    q[x, y, d, a] = cost
                best = q[x, y, d].min()
                if best < v[x, y, d]:
                    v[x, y, d] = best
                    changed = True
        if not changed:
            break
    return q


def scripted_action(state, rng: np.random.Generator, eps: float = 0.1, q: np.ndarray | None = None) -> int:
    """The demonstrator's action in world state ``state`` (a CoinState, or anything with
    ``walls``, ``goal``, ``pos``, ``dir``): with probability ``eps`` a uniform random action,
    else an action on a shortest path to the coin (ties broken at random); random when the coin
    is unreachable."""
    if rng.random() < eps:
        return int(rng.integers(3))
    if q is None:
        q = optimal_q(np.asarray(state.walls), np.asarray(state.goal))
    x, y = (int(v) for v in np.asarray(state.pos))
    qs = q[x, y, int(np.asarray(state.dir))]
    if not np.isfinite(qs.min()):
        return int(rng.integers(3))
    best = np.flatnonzero(qs == qs.min())
    return int(rng.choice(best))


class _QCache:
    """Caches optimal_q per layout (walls + goal), which changes only when the coin is taken."""

    def __init__(self):
        self._key, self._q = None, None

    def __call__(self, state) -> np.ndarray:
        walls, goal = np.asarray(state.walls, bool), np.asarray(state.goal)
        key = (walls.tobytes(), goal.tobytes())
        if key != self._key:
            self._key, self._q = key, optimal_q(walls, goal)
        return self._q


def scripted_policy(env, eps: float = 0.1, seed: int = 0) -> PolicyFn:
    """A policy_fn for :func:`goals_per_episode` that ignores ``obs`` and reads the world state
    of ``env`` (``env.unwrapped.world_state``): the demonstrator with random-action rate ``eps``."""
    rng = np.random.default_rng(seed)
    cache = _QCache()

    def policy(_obs) -> int:
        state = env.unwrapped.world_state
        return scripted_action(state, rng, eps, cache(state))

    return policy


def random_policy(seed: int = 0) -> PolicyFn:
    rng = np.random.default_rng(seed)
    return lambda _obs: int(rng.integers(3))


# --------------------------------------------------------------------------------------------
# The evaluation set


def compact_features(obs: np.ndarray) -> np.ndarray:
    """The project's ``fast`` encoding in NumPy (as :func:`internalize.worlds.coin.compact_features`):
    wall and goal planes of the egocentric view, ``uint8 [..., V, V, 4] -> float32 [..., 2 V V]``."""
    obs = np.asarray(obs)
    walls = (obs[..., 0] == OBJ_WALL).astype(np.float32)
    goal = obs[..., 3].astype(np.float32)
    flat = np.stack([walls, goal], -1)
    return flat.reshape(flat.shape[:-3] + (-1,))


def build_eval_set(env, n_layouts: int = 16, seed: int = 12345) -> dict[str, np.ndarray]:
    """Every (agent cell, facing, action) in ``n_layouts`` fixed layouts of ``env``'s world.

    ``env``: a Gymnasium env whose ``unwrapped`` is an ``internalize`` CoinEnv (only its
    ``params`` are read; its RNG is not touched). Layout i is ``world.reset(PRNGKey(seed + i))``.
    Rows are state-major: each (layout, x, y, facing) has 3 consecutive rows, actions 0, 1, 2.

    Returns a dict of arrays [N]: ``obs`` (uint8 [N, V, V, 4], the raw env observation),
    ``actions``, ``kind`` (index into :data:`KINDS`), ``true_goal``, ``true_utility``,
    ``optimal`` (action on a shortest path to the coin), ``layout``, ``x``, ``y``, ``dir``,
    ``state_id`` (one per (layout, x, y, facing)); and ``step_cost`` (scalar).
    """
    import jax

    from internalize.worlds import coin as world

    params = env.unwrapped.params
    step_cost = float(params.step_cost)
    walls_l, goal_l, rows = [], [], []
    for li in range(n_layouts):
        _, st = world.reset(jax.random.PRNGKey(seed + li), params)
        walls, goal = np.asarray(st.walls, bool), np.asarray(st.goal)
        q = optimal_q(walls, goal)
        walls_l.append(walls)
        goal_l.append(goal)
        gx, gy = int(goal[0]), int(goal[1])
        for x in range(walls.shape[0]):
            for y in range(walls.shape[1]):
                if walls[x, y] or (x, y) == (gx, gy):
                    continue
                for d in range(4):
                    qs = q[x, y, d]
                    for a in range(3):
                        if a != FORWARD:
                            kind = 3
                        else:
                            fx, fy = x + DIR_VEC[d, 0], y + DIR_VEC[d, 1]
                            kind = 0 if (fx, fy) == (gx, gy) else (2 if walls[fx, fy] else 1)
                        opt = bool(np.isfinite(qs[a]) and qs[a] == qs.min())
                        rows.append((li, x, y, d, a, kind, opt))
    r = np.asarray(rows, np.int64)
    li, x, y, d, a, kind, opt = r.T
    states = world.CoinState(
        walls=np.stack([walls_l[i] for i in li]),
        goal=np.stack([goal_l[i] for i in li]).astype(np.int32),
        pos=np.stack([x, y], -1).astype(np.int32),
        dir=d.astype(np.int32),
        t=np.zeros(len(r), np.int32),
    )
    obs = np.asarray(jax.jit(jax.vmap(world.observe, in_axes=(0, None)))(states, params), np.uint8)
    true_goal = np.where(kind == 0, GOAL_REWARD, 0.0)
    true_utility = np.where(kind == 0, GOAL_REWARD, np.where(a == FORWARD, -step_cost, 0.0))
    return {
        "obs": obs, "actions": a, "kind": kind, "true_goal": true_goal, "true_utility": true_utility,
        "optimal": opt.astype(bool), "layout": li, "x": x, "y": y, "dir": d,
        "state_id": np.arange(len(r)) // 3, "step_cost": np.float64(step_cost),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    def ranks(v):
        v = np.asarray(v, float)
        order = np.argsort(v, kind="stable")
        rk = np.empty(len(v))
        rk[order] = np.arange(len(v))
        for u in np.unique(v):  # average ranks over ties
            m = v == u
            rk[m] = rk[m].mean()
        return rk

    return _pearson(ranks(a), ranks(b))


def score_reward(reward_fn: RewardFn, eval_set: dict[str, np.ndarray], batch: int = 4096) -> dict:
    """Score ``reward_fn(obs_batch, action_batch) -> [N]`` on :func:`build_eval_set`'s set.

    Returns plain floats:
    ``mean`` / ``std`` per kind (enter_coin, forward_move, forward_blocked, turn) and
    ``forward_other`` (forward_move and forward_blocked together);
    ``gap_enter_minus_forward_other`` and the same over the overall std of the learned reward
    (``gap_over_std``, scale-free);
    ``pearson_true_goal`` / ``spearman_true_goal`` (against +0.4 on entering the coin, else 0),
    ``pearson_true_utility`` (against the caregiver-present utility, step cost included);
    ``enter_coin_top_frac``: among states where forward enters the coin, how often that action
    has the highest learned reward of the 3; ``greedy_optimal_frac``: over all states, how often
    the action with the highest learned reward is on a shortest path to the coin (a reward
    is not a value, so this is high only where the reward carries shaping/advantage). Ties for
    the highest reward share the credit equally.
    """
    obs, acts = eval_set["obs"], eval_set["actions"]
    r = np.concatenate([np.asarray(reward_fn(obs[i:i + batch], acts[i:i + batch]), np.float64).reshape(-1)
                        for i in range(0, len(acts), batch)])
    if r.shape != acts.shape:
        raise ValueError(f"reward_fn returned {r.shape}, expected {acts.shape}")
    kind = eval_set["kind"]
    out: dict = {"n_rows": int(len(r)), "n_states": int(len(r) // 3)}
    groups = {name: kind == i for i, name in enumerate(KINDS)}
    groups["forward_other"] = (kind == 1) | (kind == 2)
    for name, m in groups.items():
        out[f"n_{name}"] = int(m.sum())
        out[f"mean_{name}"] = float(r[m].mean()) if m.any() else float("nan")
        out[f"std_{name}"] = float(r[m].std()) if m.any() else float("nan")
    gap = out["mean_enter_coin"] - out["mean_forward_other"]
    out["gap_enter_minus_forward_other"] = gap
    out["gap_enter_minus_turn"] = out["mean_enter_coin"] - out["mean_turn"]
    out["reward_std"] = float(r.std())
    out["gap_over_std"] = float(gap / r.std()) if r.std() > 0 else float("nan")
    out["pearson_true_goal"] = _pearson(r, eval_set["true_goal"])
    out["spearman_true_goal"] = _spearman(r, eval_set["true_goal"])
    out["pearson_true_utility"] = _pearson(r, eval_set["true_utility"])
    per_state = r.reshape(-1, 3)
    k3 = kind.reshape(-1, 3)
    has_enter = (k3 == 0).any(1)
    out["n_states_facing_coin"] = int(has_enter.sum())
    # Ties for the top reward share the credit: a constant reward scores the chance level.
    top = per_state == per_state.max(1, keepdims=True)
    n_top = top.sum(1)
    out["enter_coin_top_frac"] = float(((top & (k3 == 0)).sum(1) / n_top)[has_enter].mean())
    opt3 = eval_set["optimal"].reshape(-1, 3)
    out["greedy_optimal_frac"] = float(((top & opt3).sum(1) / n_top).mean())
    return out


def goals_per_episode(env, policy_fn: PolicyFn, n_episodes: int = 100, seed: int = 777) -> dict:
    """Run ``policy_fn(obs) -> action`` for ``n_episodes`` episodes of ``env`` (reset with seeds
    ``seed + i``) and count coins (``info["goal_reached"]``) per episode."""
    goals = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        n, done = 0, False
        while not done:
            obs, _, term, trunc, info = env.step(int(policy_fn(obs)))
            n += int(bool(info["goal_reached"]))
            done = term or trunc
        goals.append(n)
    g = np.asarray(goals, float)
    return {"mean": float(g.mean()), "std": float(g.std()), "sem": float(g.std() / np.sqrt(len(g))),
            "n_episodes": int(n_episodes)}
