"""Networks of the learner (SPEC 4) and the ISR (SPEC 5), in Flax linen.

Inputs are MiniGrid-encoded egocentric views ``uint8 [..., V, V, C]``.

What does not live here: a world's compact encoding (the world's ``Env.features``), fitting
the ISR (:mod:`internalize.reward_models`).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np



def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Orthonormalize the columns of a tall matrix ``[n, m]`` (n >= m), left to right.

    Gram-Schmidt with re-orthogonalization gives the Q of ``a``'s QR decomposition with a
    positive diagonal of R: exactly the matrix Flax's orthogonal initializer returns after its
    sign correction, but made of matrix products instead of a LAPACK QR. (This jaxlib's LAPACK
    calls deadlock when two run at once, e.g. two layers initialized in one compiled program;
    found with gdb, docs/performance.md.)
    """
    m = a.shape[1]

    def column(j, q):
        v = q[:, j]
        earlier = (jnp.arange(m) < j).astype(a.dtype)
        for _ in range(2):  # twice is enough in float32 (the "CGS2" rule)
            v = v - q @ (earlier * (q.T @ v))
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, m, column, a)


def orthogonal(gain: float = 1.0):
    """Orthogonal initializer, the same distribution as ``flax.linen.initializers.orthogonal``
    (columns on the last axis) without LAPACK; see :func:`_orthonormal_columns`."""

    def init(key, shape, dtype=jnp.float32):
        n_cols = shape[-1]
        n_rows = math.prod(shape) // n_cols
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        q = _orthonormal_columns(jax.random.normal(key, tall, dtype))
        if n_rows < n_cols:
            q = q.T
        return gain * q.reshape(shape)

    return init


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


class Conv2x2(nn.Module):
    """A 2x2 'valid' convolution written as patches @ kernel.

    Same parameters and result as ``nn.Conv(features, (2, 2), padding="VALID")``, but it lowers
    to a matrix product, which stays a batched matrix product under ``vmap`` over runs with
    different weights; a vmapped ``lax.conv`` becomes a grouped convolution that XLA's CPU
    backend runs many times slower (measured: docs/performance.md).
    """

    features: int
    gain: float = float(np.sqrt(2))

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        kernel = self.param("kernel", orthogonal(self.gain), (2, 2, c, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jnp.concatenate(
            [x[..., :-1, :-1, :], x[..., :-1, 1:, :], x[..., 1:, :-1, :], x[..., 1:, 1:, :]], -1)
        return patches @ kernel.reshape(4 * c, self.features) + bias


def _check_view(x, least: int, what: str) -> None:
    """Refuse inputs too small for a stack of 'valid' 2x2 convolutions (checked when traced).

    A world with vector observations (:mod:`internalize.adapters.gymnax` shows them as one
    cell, ``[..., 1, 1, D]``) would otherwise leave the convolutions no cells at all and the
    network a function of nothing but its biases, silently.
    """
    if x.ndim < 3 or min(x.shape[-3], x.shape[-2]) < least:
        raise ValueError(f"{what} needs image observations of at least {least}x{least} cells, got input shape "
                         f"{tuple(x.shape)}; for vector observations use the mlp networks (the fast preset's "
                         "ppo.network='mlp' and isr.network='mlp')")


def _conv(features: int, gain: float) -> Conv2x2:
    return Conv2x2(features, float(gain))


def _heads(x, hidden: Sequence[int], n_actions: int, act=nn.tanh):
    """Policy and value heads; Stable-Baselines3's gains (sqrt 2, 0.01 logits, 1 value)."""
    pi, v = x, x
    for h in hidden:
        pi = act(_dense(h, np.sqrt(2))(pi))
    for h in hidden:
        v = act(_dense(h, np.sqrt(2))(v))
    return _dense(n_actions, 0.01)(pi), _dense(1, 1.0)(v)[..., 0]


class PaperActorCritic(nn.Module):
    """SPEC 4: obs/255 -> conv 2x2 (16, 32, 64) -> dense 128, shared by two 64-64 tanh heads."""

    n_actions: int
    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs):
        _check_view(obs, 4, "the paper_cnn policy (three 2x2 convolutions)")
        x = obs.astype(jnp.float32) / 255.0
        for f in (16, 32, 64):
            x = nn.relu(_conv(f, np.sqrt(2))(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        x = nn.relu(_dense(128, np.sqrt(2))(x))
        return _heads(x, self.hidden, self.n_actions)


class MLPActorCritic(nn.Module):
    """The ``fast`` preset's network: separate tanh MLPs on the compact encoding."""

    n_actions: int
    hidden: Sequence[int]
    features: Callable
    """The world's compact encoding of an observation (``Env.features``)."""

    @nn.compact
    def __call__(self, obs):
        return _heads(self.features(obs), self.hidden, self.n_actions)


def actor_critic(name: str, n_actions: int, hidden: Sequence[int], features: Callable | None = None) -> nn.Module:
    if name == "paper_cnn":
        return PaperActorCritic(n_actions, tuple(hidden))
    if name == "mlp":
        if features is None:
            raise ValueError("the mlp network needs the world's compact encoding of an observation (Env.features)")
        return MLPActorCritic(n_actions, tuple(hidden), features)
    raise ValueError(f"unknown network {name!r}")


class ISRNetwork(nn.Module):
    """SPEC 5: conv 2x2 (16, 32) -> dense 32 -> dense 32 -> 1; raw inputs, orthogonal sqrt 2."""

    @nn.compact
    def __call__(self, x):
        _check_view(x, 3, "the cnn ISR (two 2x2 convolutions)")
        x = x.astype(jnp.float32)
        for f in (16, 32):
            x = nn.relu(_conv(f, np.sqrt(2))(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        for h in (32, 32):
            x = nn.relu(_dense(h, np.sqrt(2))(x))
        return _dense(1, np.sqrt(2))(x)[..., 0]


class ISRMLP(nn.Module):
    """The ``fast`` preset's ISR (ours; SPEC 5's network is :class:`ISRNetwork`): a ReLU MLP on
    the world's compact encoding of the observation and the action codes.

    It takes the same prepared input as :class:`ISRNetwork` (``[..., V, V, C + planes]``, see
    ``isr.inputs``): the last ``n_codes`` planes are the action codes, read at the agent's cell
    (the centre of the view), and the planes before them are the observation. About 12x fewer multiply-adds per sample (counted)
    than SPEC 5's conv net on the coin world (docs/performance.md).
    """

    n_codes: int
    hidden: Sequence[int]
    features: Callable

    @nn.compact
    def __call__(self, x):
        v = x.shape[-2]
        obs, codes = x[..., : -self.n_codes], x[..., v // 2, v // 2, -self.n_codes:]
        h = jnp.concatenate([self.features(obs), codes], -1)
        for width in self.hidden:
            h = nn.relu(_dense(width, np.sqrt(2))(h))
        return _dense(1, 1.0)(h)[..., 0]
