"""The internal social reward (ISR) model (SPEC 5).

It learns R_s from (observation, action) on every socialization step, is fitted once after
socialization, and is frozen during autonomy, where R_i = ISR(s, a) stands in for R_s.

Input: the raw (unscaled) observation plus action planes that are zero everywhere except the
agent's cell (the centre of the egocentric view). ``onehot`` (our default) uses one plane
per action; ``index`` reproduces the authors' single plane holding the action index, where
action 0 cannot be told from "no action" (SPEC 5 quirk).

What does not live here: the reward-model interface (:mod:`internalize.reward_models`) and
when the ISR is fitted or used (:mod:`internalize.phases`, :mod:`internalize.learner`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..config import ISRConfig
from ..networks import ISRMLP, ISRNetwork

NETWORK = ISRNetwork()  # SPEC 5
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


def network(cfg: ISRConfig | None = None, n_actions: int = 0, n_agents: int = 1, features=None):
    """The ISR network ``cfg`` names: SPEC 5's conv net, or an MLP on ``features`` (the world's
    compact encoding of an observation; default the coin world's) and the action codes."""
    if cfg is None or cfg.network == "cnn":
        return NETWORK
    if features is None:
        raise ValueError("the mlp ISR needs the world's compact encoding of an observation (Env.features)")
    codes = n_input_planes(0, n_actions, n_agents, cfg.action_planes)
    return ISRMLP(codes, tuple(cfg.hidden), features)


def init(key: jax.Array, view: int, channels: int, net=NETWORK):
    return net.init(key, jnp.zeros((1, view, view, channels), jnp.float32))


def predict(params, x: jax.Array, net=NETWORK) -> jax.Array:
    """R_i for prepared inputs ``[..., V, V, C']`` (see :func:`inputs`)."""
    return net.apply(params, x)


class FitResult(NamedTuple):
    params: dict
    train_loss: jax.Array  # float32 [N_EVALS], mean balanced training loss per segment
    test_mse: jax.Array  # float32 [N_EVALS], unweighted MSE on the held-out steps
    test_pred: jax.Array  # float32 [T], final predictions on the held-out steps
    test_target: jax.Array  # float32 [T]
    samples_seen: jax.Array  # int32 [N_EVALS], training samples drawn by each evaluation
    test_mask: jax.Array  # bool [T], which of the T slots are held-out steps (all, unless n_valid)
    test_index: jax.Array | None = None  # int32 [T], the held-out steps' indices in the data


def split_sizes(n: int, cfg: ISRConfig) -> tuple[int, int]:
    n_train = max(1, min(n - 1, int(round(cfg.train_fraction * n))))
    return n_train, n - n_train


def window(size: int, cfg: ISRConfig, n_valid: jax.Array | None = None) -> tuple[jax.Array, jax.Array, int]:
    """``(n, n_train, t_max)`` of a fit on ``size`` steps: the steps that exist (the first ``n``;
    traced when ``n_valid`` is), the training window ``[0, n_train)`` (chronological, SPEC 5) and
    the static number of held-out slots from ``n_train`` on (the largest any ``n_valid`` gives)."""
    if n_valid is None:
        n_train_static, n_test_static = split_sizes(size, cfg)
        return jnp.int32(size), jnp.int32(n_train_static), n_test_static
    n = jnp.clip(jnp.asarray(n_valid, jnp.int32), 2, size)
    n_train = jnp.clip(jnp.round(cfg.train_fraction * n).astype(jnp.int32), 1, n - 1)
    return n, n_train, size - split_sizes(size, cfg)[0] + 1


def init_for_fit(key: jax.Array, obs_shape: tuple[int, ...], n_agents: int, n_actions: int, cfg: ISRConfig,
                 features=None, net=None):
    """The initial parameters :func:`fit` draws from ``key`` (to initialize outside a program).
    ``net``: the network (default the one ``cfg`` names)."""
    k_init, _ = jax.random.split(key)
    return init(k_init, obs_shape[-2], n_input_planes(obs_shape[-1], n_actions, n_agents, cfg.action_planes),
                net or network(cfg, n_actions, n_agents, features))


def fit(key: jax.Array, obs: jax.Array, actions: jax.Array, target: jax.Array, cfg: ISRConfig,
        n_actions: int, n_valid: jax.Array | None = None, init_params=None, features=None, net=None,
        resample: jax.Array | None = None) -> FitResult:
    """Fit the ISR on one run's socialization data, chronologically split (SPEC 5).

    obs: ``uint8 [N, V, V, C]`` and actions ``int [N]`` (or ``[N, k]``) in the order the steps
    happened; target: ``[N]`` social reward, clipped at 0 so step costs are never targets.
    ``n_valid`` (may be traced): use only the first n_valid steps, as if socialization had
    stopped there, so ISRs for several socialization budgets are one vmap over n_valid.
    ``init_params``: :func:`init_for_fit` of the same key, when drawn outside this call.
    ``features``: the world's compact encoding, for ``cfg.network == "mlp"``. ``net``: the
    network to fit (default the one ``cfg`` names; another reward model may bring its own).
    ``resample``: ``int [N]`` or None; training step i is read from the data at ``resample[i]``
    (a bootstrap's index map: nothing is copied), and the held-out steps are read as they are.
    The training window, the sampler and a step's observed status work on the positions i
    (so an index map that points an observed position at an unobserved step drops it). None:
    the fit as it always was.
    Inputs are built per batch, so the data stay uint8 in memory. vmap over runs.
    """
    size = obs.shape[0]
    net = net or network(cfg, n_actions, actions.shape[-1] if actions.ndim > 1 else 1, features)
    n, n_train, t_max = window(size, cfg, n_valid)
    target = target.astype(jnp.float32)
    # NaN: a step the caregiver was not there to judge (partial presence in socialization). It is
    # neither drawn for training nor scored in the held-out set.
    observed = jnp.isfinite(target)
    target = jnp.where(observed, target, 0.0)
    if cfg.clip_target:  # SPEC 5: step costs are never targets
        target = jnp.maximum(target, 0.0)

    def x_of(i):
        return inputs(obs[i], actions[i], n_actions, cfg.action_planes)

    test_idx = n_train + jnp.arange(t_max)
    test_mask = test_idx < n
    test_idx = jnp.minimum(test_idx, size - 1)
    test_mask = test_mask & observed[test_idx]
    y_test = target[test_idx]

    def predict_test(p):
        # In slices: the conv activations of a whole held-out set, for every vmapped fit, would
        # take gigabytes at once.
        return jax.lax.map(lambda i: predict(p, x_of(i), net), test_idx, batch_size=512)

    if resample is None:
        x_train, target_train, observed_train = x_of, target, observed
    else:  # a training step i reads the data at resample[i] (see the docstring)
        resample = jnp.asarray(resample, jnp.int32)
        target_train, observed_train = target[resample], observed[resample]

        def x_train(i):
            return x_of(resample[i])

    # Class-balanced sampling with replacement: rewarded and unrewarded steps 50/50. Training
    # indices sorted positives first, so a draw is O(batch), whatever the data size.
    idx = jnp.arange(size)
    is_train = idx < n_train
    is_train = is_train & observed_train
    pos = is_train & (target_train != 0)  # (after the clip: target > 0, SPEC 5)
    n_pos = pos.sum()
    n_seen = is_train.sum()
    n_neg = n_seen - n_pos
    order = jnp.argsort(jnp.where(is_train, jnp.where(pos, 0, 1), 2), stable=True)
    use_balance = cfg.balanced & (n_pos > 0) & (n_neg > 0)

    def draw(key):
        k_cls, k_pos, k_neg, k_uni = jax.random.split(key, 4)
        shape = (cfg.batch_size,)
        want_pos = jax.random.bernoulli(k_cls, 0.5, shape)
        i_pos = order[jax.random.randint(k_pos, shape, 0, jnp.maximum(n_pos, 1))]
        i_neg = order[n_pos + jax.random.randint(k_neg, shape, 0, jnp.maximum(n_neg, 1))]
        r = jax.random.randint(k_uni, shape, 0, jnp.maximum(n_seen, 1))
        i_uni = jnp.where(n_seen == n_train, r, order[r])  # every step observed: the draw as it always was
        return jnp.where(use_balance, jnp.where(want_pos, i_pos, i_neg), i_uni)

    # Epochs count the training window's steps, observed or not (so a fit's length is fixed by its
    # window, as when every step is observed).
    n_updates = jnp.maximum(1, jnp.round(cfg.epochs * n_train / cfg.batch_size)).astype(jnp.int32)
    per_eval = (n_updates + N_EVALS - 1) // N_EVALS

    _, k_idx = jax.random.split(key)
    if init_params is None:
        params = init_for_fit(key, obs.shape, actions.shape[-1] if actions.ndim > 1 else 1, n_actions, cfg, features,
                              net)
    else:  # the same draw, made outside (see phases.internalize)
        params = init_params
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=cfg.adam_eps))

    def loss_fn(p, xb, yb):
        return jnp.mean((predict(p, xb, net) - yb) ** 2)

    def update(i, carry):
        p, o, key, loss_sum = carry
        key, k = jax.random.split(key)
        b = draw(k)
        loss, grads = jax.value_and_grad(loss_fn)(p, x_train(b), target_train[b])
        upd, o = tx.update(grads, o, p)
        return optax.apply_updates(p, upd), o, key, loss_sum + loss

    def masked_mse(p):
        err = (predict_test(p) - y_test) ** 2
        return jnp.sum(jnp.where(test_mask, err, 0.0)) / jnp.maximum(test_mask.sum(), 1)

    def segment(carry, _):
        p, o, key = carry
        p, o, key, loss_sum = jax.lax.fori_loop(0, per_eval, update, (p, o, key, jnp.float32(0.0)))
        return (p, o, key), (loss_sum / per_eval, masked_mse(p))

    (params, _, _), (train_loss, mse) = jax.lax.scan(segment, (params, tx.init(params), k_idx), None, N_EVALS)
    seen = (jnp.arange(1, N_EVALS + 1) * per_eval * cfg.batch_size).astype(jnp.int32)
    return FitResult(params, train_loss, mse, predict_test(params), y_test, seen, test_mask, test_idx)


def pearson(a: jax.Array, b: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Pearson correlation over the last axis, over ``mask`` (NaN when either is constant).

    NumPy arrays are computed with NumPy in float64 (host-side analysis, no XLA program)."""
    xp = np if isinstance(a, np.ndarray) else jnp
    if xp is np:
        a, b = a.astype(np.float64), np.asarray(b, np.float64)
    w = xp.ones_like(a) if mask is None else mask.astype(a.dtype)
    n = w.sum(-1, keepdims=True)
    a = a - (w * a).sum(-1, keepdims=True) / n
    b = b - (w * b).sum(-1, keepdims=True) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * a * b).sum(-1) / xp.sqrt((w * a * a).sum(-1) * (w * b * b).sum(-1))
