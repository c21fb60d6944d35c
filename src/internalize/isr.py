"""The internal social reward (ISR) model (SPEC 5).

It learns R_s from (observation, action) on every socialization step, is fitted once after
socialization, and is frozen during autonomy, where R_i = ISR(s, a) stands in for R_s.

Input: the raw (unscaled) observation plus action planes that are zero everywhere except the
agent's cell (the centre of the egocentric view). ``onehot`` (our default) uses one plane
per action; ``index`` reproduces the authors' single plane holding the action index, where
action 0 cannot be told from "no action" (SPEC 5 quirk).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .config import ISRConfig
from .networks import ISRNetwork

NETWORK = ISRNetwork()
N_EVALS = 20  # test-set evaluations over the course of training (learning curves)


def inputs(obs: jax.Array, actions: jax.Array, n_actions: int, planes: str = "onehot") -> jax.Array:
    """ISR input ``float32 [..., V, V, C + planes]``.

    obs: ``uint8 [..., V, V, C]``; actions: ``int [...]`` or ``int [..., k]`` for k agents.
    """
    actions = jnp.asarray(actions)
    if actions.ndim == obs.ndim - 3:
        actions = actions[..., None]
    v = obs.shape[-2]
    centre = (jnp.arange(v)[:, None] == v // 2) & (jnp.arange(v)[None, :] == v // 2)  # [V, V]
    if planes == "onehot":
        codes = jax.nn.one_hot(actions, n_actions).reshape(actions.shape[:-1] + (-1,))  # [..., k * n]
    else:
        codes = actions.astype(jnp.float32)  # [..., k]
    extra = centre[..., None].astype(jnp.float32) * codes[..., None, None, :]
    return jnp.concatenate([obs.astype(jnp.float32), extra], -1)


def n_input_planes(obs_channels: int, n_actions: int, n_agents: int = 1, planes: str = "onehot") -> int:
    return obs_channels + (n_actions * n_agents if planes == "onehot" else n_agents)


def init(key: jax.Array, view: int, channels: int):
    return NETWORK.init(key, jnp.zeros((1, view, view, channels), jnp.float32))


def predict(params, x: jax.Array) -> jax.Array:
    """R_i for prepared inputs ``[..., V, V, C']`` (see :func:`inputs`)."""
    return NETWORK.apply(params, x)


class FitResult(NamedTuple):
    params: dict
    train_loss: jax.Array  # float32 [N_EVALS], mean balanced training loss per segment
    test_mse: jax.Array  # float32 [N_EVALS], unweighted MSE on the held-out steps
    test_pred: jax.Array  # float32 [n_test], final predictions on the held-out steps
    test_target: jax.Array  # float32 [n_test]
    samples_seen: jax.Array  # int32 [N_EVALS], training samples drawn by each evaluation


def split_sizes(n: int, cfg: ISRConfig) -> tuple[int, int]:
    n_train = max(1, min(n - 1, int(round(cfg.train_fraction * n))))
    return n_train, n - n_train


def fit(key: jax.Array, obs: jax.Array, actions: jax.Array, target: jax.Array, cfg: ISRConfig,
        n_actions: int) -> FitResult:
    """Fit the ISR on one run's socialization data, chronologically split (SPEC 5).

    obs: ``uint8 [N, V, V, C]`` and actions ``int [N]`` (or ``[N, k]``) in the order the steps
    happened; target: ``[N]`` social reward, clipped at 0 so step costs are never targets.
    Inputs are built per batch, so the data stay uint8 in memory. vmap over runs.
    """
    n = obs.shape[0]
    n_train, _ = split_sizes(n, cfg)
    target = jnp.maximum(target.astype(jnp.float32), 0.0)
    y_train, y_test = target[:n_train], target[n_train:]

    def x_of(i):
        return inputs(obs[i], actions[i], n_actions, cfg.action_planes)

    x_test = x_of(jnp.arange(n_train, n))

    # Class-balanced sampling with replacement: rewarded and unrewarded steps 50/50.
    pos = y_train > 0
    n_pos = pos.sum()
    n_neg = n_train - n_pos
    balanced = jnp.where(pos, 0.5 / jnp.maximum(n_pos, 1), 0.5 / jnp.maximum(n_neg, 1))
    uniform = jnp.full((n_train,), 1.0 / n_train)
    use_balance = cfg.balanced & (n_pos > 0) & (n_neg > 0)
    weights = jnp.where(use_balance, balanced, uniform)

    n_updates = max(1, int(round(cfg.epochs * n_train / cfg.batch_size)))
    per_eval = -(-n_updates // N_EVALS)
    k_init, k_idx = jax.random.split(key)
    idx = jax.random.choice(k_idx, n_train, (N_EVALS, per_eval, cfg.batch_size), p=weights)

    params = init(k_init, x_test.shape[-2], x_test.shape[-1])
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=cfg.adam_eps))
    opt_state = tx.init(params)

    def loss_fn(p, xb, yb):
        return jnp.mean((predict(p, xb) - yb) ** 2)

    def update(carry, batch_idx):
        p, o = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, x_of(batch_idx), y_train[batch_idx])
        upd, o = tx.update(grads, o, p)
        return (optax.apply_updates(p, upd), o), loss

    def test_mse(p):
        return jnp.mean((predict(p, x_test) - y_test) ** 2)

    def segment(carry, seg_idx):
        carry, losses = jax.lax.scan(update, carry, seg_idx)
        return carry, (losses.mean(), test_mse(carry[0]))

    (params, _), (train_loss, mse) = jax.lax.scan(segment, (params, opt_state), idx)
    seen = (jnp.arange(1, N_EVALS + 1) * per_eval * cfg.batch_size).astype(jnp.int32)
    return FitResult(params, train_loss, mse, predict(params, x_test), y_test, seen)


def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson correlation of two flat arrays (NaN when either is constant)."""
    a = a - a.mean()
    b = b - b.mean()
    return (a * b).sum() / jnp.sqrt((a * a).sum() * (b * b).sum())
