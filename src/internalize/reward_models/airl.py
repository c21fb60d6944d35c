"""Adversarial inverse reinforcement learning (AIRL; Fu, Luo & Levine 2018, "Learning Robust
Rewards with Adversarial Inverse Reinforcement Learning"): a reward learned from a
demonstrator's steps instead of the caregiver's praise.

The discriminator of a transition (s, a, s') is

    f(s, a, s') = g(s, a) + gamma h(s') - h(s),    D = exp(f) / (exp(f) + pi(a | s)),

so its logit is ``f - log pi(a | s)``: g is the reward (an ISR-family network on the
observation and action planes, :func:`internalize.reward_models.isr.network`), h a shaping
term on the observation alone (a small MLP on the world's compact encoding, or a tiny conv
net where the world has none). D is trained by binary logistic loss, demonstrations as 1 and
the generator's steps as 0; the learned reward R_i(s, a) is g(s, a).

Here: the model (:class:`Airl`), its discriminator's logit and one gradient step of it
(:meth:`Airl.discriminator_step`), and :meth:`Airl.fit` on a fixed set of demonstration and
generator steps. What does not live here: the adversarial loop with the PPO learner as the
generator (:func:`internalize.demonstrations.learn`), the demonstrations themselves
(:func:`internalize.demonstrations.collect`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..config import ISRConfig
from ..networks import Conv2x2, orthogonal
from . import DEMONSTRATIONS, RewardModel
from . import isr as isr_


class Transitions(NamedTuple):
    """A batch of transitions the discriminator reads (leading dims alike)."""

    obs: jax.Array  # uint8 [..., V, V, C], the observation the action was taken on
    action: jax.Array  # int [...] or [..., agents]
    next_obs: jax.Array  # uint8 [..., V, V, C], the observation the step ended on (before any reset)
    logp: jax.Array  # float32 [...], log pi(a | s) of the generator's policy


class Shaping(nn.Module):
    """AIRL's h(s): a ReLU MLP on the world's compact encoding (``features``), or where there is
    none on the raw observation after one 2x2 convolution (views of at least 2x2 cells)."""

    hidden: Sequence[int]
    features: Callable | None = None

    @nn.compact
    def __call__(self, obs):
        if self.features is not None:
            x = self.features(obs)
        else:
            x = obs.astype(jnp.float32)
            if min(x.shape[-3], x.shape[-2]) >= 2:
                x = nn.relu(Conv2x2(16)(x))
            x = x.reshape(x.shape[:-3] + (-1,))
        for width in self.hidden:
            x = nn.relu(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x))
        return nn.Dense(1, kernel_init=orthogonal(1.0))(x)[..., 0]


@dataclass(frozen=True)
class Airl(RewardModel):
    """AIRL's reward: R_i(s, a) = g(s, a), learned from demonstrations (see the module doc).

    ``isr.*`` settings shape g (``network``, ``hidden``, ``action_planes``) and the
    discriminator's optimizer (Adam with ``lr``, ``adam_eps``, ``max_grad_norm``); :meth:`fit`
    runs ``epochs`` passes over its training steps and splits them by ``train_fraction``.
    """

    name: str = "irl"
    needs: ClassVar[tuple[str, ...]] = DEMONSTRATIONS
    disc_steps: int = 8
    """Discriminator gradient steps after each PPO update of the generator (8, as in the
    cross-check's run of the imitation library's AIRL: tools/crosscheck)."""
    disc_batch: int = 1024
    """Demonstration steps, and as many generator steps, in each discriminator step (1,024, as in
    the cross-check's imitation run)."""
    h_hidden: tuple[int, ...] = (32,)
    """Hidden layers of the shaping term h(s)."""
    gamma: float = 0.99
    """Discount of h(s') in :meth:`fit` on a fixed set; the adversarial loop
    (internalize.demonstrations) uses its learner's ppo.gamma instead."""

    def validate(self) -> None:
        for field in ("disc_steps", "disc_batch"):
            if getattr(self, field) < 1:
                raise ValueError(f"learners.{self.name}.{field} must be at least 1, got {getattr(self, field)}")
        if any(h < 1 for h in self.h_hidden):
            raise ValueError(f"learners.{self.name}.h_hidden sizes must be at least 1, got {list(self.h_hidden)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"learners.{self.name}.gamma must be in [0, 1], got {self.gamma}")

    # -- the networks -------------------------------------------------------------------------
    def g_network(self, cfg: ISRConfig, spec):
        return isr_.network(cfg, spec.n_actions, spec.n_agents, spec.features)

    def h_network(self, spec) -> Shaping:
        return Shaping(tuple(self.h_hidden), spec.features)

    def init(self, key: jax.Array, cfg: ISRConfig, spec) -> dict:
        """``{"g": ..., "h": ...}``; g drawn as the ISR's fit draws it (``isr.init_for_fit``)."""
        k_g, k_h = jax.random.split(key)
        g = isr_.init_for_fit(k_g, spec.obs_shape, spec.n_agents, spec.n_actions, cfg, spec.features,
                              self.g_network(cfg, spec))
        h = self.h_network(spec).init(k_h, jnp.zeros((1,) + tuple(spec.obs_shape), jnp.uint8))
        return {"g": g, "h": h}

    def reward(self, params, cfg: ISRConfig, spec, obs, actions) -> jax.Array:
        """R_i(s, a) = g(s, a)."""
        x = isr_.inputs(obs, actions, spec.n_actions, cfg.action_planes)
        return isr_.predict(params["g"], x, self.g_network(cfg, spec))

    def shaping(self, params, spec, obs) -> jax.Array:
        return self.h_network(spec).apply(params["h"], obs)

    # -- the discriminator --------------------------------------------------------------------
    def f(self, params, cfg: ISRConfig, spec, obs, action, next_obs, gamma) -> jax.Array:
        """f(s, a, s') = g(s, a) + gamma h(s') - h(s); always bootstrapped (the worlds it is meant
        for end episodes by truncation only, where s' goes on)."""
        return (self.reward(params, cfg, spec, obs, action) + gamma * self.shaping(params, spec, next_obs)
                - self.shaping(params, spec, obs))

    def discriminator_logit(self, params, cfg: ISRConfig, spec, batch: Transitions, gamma) -> jax.Array:
        """log D - log(1 - D) = f(s, a, s') - log pi(a | s): the discriminator's logit, and the
        generator's reward in AIRL."""
        return self.f(params, cfg, spec, batch.obs, batch.action, batch.next_obs, gamma) - batch.logp

    def discriminator_loss(self, params, cfg: ISRConfig, spec, demo: Transitions, gen: Transitions, gamma):
        """Binary logistic loss, demonstrations labelled 1 and generator steps 0 (each side's
        mean). Returns (loss, accuracy)."""
        l_demo = self.discriminator_logit(params, cfg, spec, demo, gamma)
        l_gen = self.discriminator_logit(params, cfg, spec, gen, gamma)
        loss = jnp.mean(jax.nn.softplus(-l_demo)) + jnp.mean(jax.nn.softplus(l_gen))
        accuracy = 0.5 * (jnp.mean(l_demo > 0) + jnp.mean(l_gen < 0))
        return loss, accuracy

    def optimizer(self, cfg: ISRConfig) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=cfg.adam_eps))

    def discriminator_step(self, params, opt_state, cfg: ISRConfig, spec, demo: Transitions, gen: Transitions,
                           gamma):
        """One gradient step of the discriminator. Returns (params, opt_state, (loss, accuracy))."""
        (loss, acc), grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
            params, cfg, spec, demo, gen, gamma)
        updates, opt_state = self.optimizer(cfg).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, (loss, acc)

    # -- a fit on a fixed set -----------------------------------------------------------------
    def fit(self, key: jax.Array, cfg: ISRConfig, spec, data: tuple, n_valid: jax.Array | None,
            init_params: Any) -> isr_.FitResult:
        """Train the discriminator on a fixed set of steps (the generator does not move).

        ``data``: ``(demo obs, demo action, demo next_obs, gen obs, gen action, gen next_obs,
        gen logp[, demo logp])`` in the order the steps happened; ``demo logp`` is the
        generator's log pi of each demonstrated action (without it: a uniform policy's). The
        first ``n_valid`` steps of each side are used (all when None), split chronologically
        by ``train_fraction``; each step draws ``disc_batch`` of each side's training steps,
        ``epochs`` times over their number. The result is shaped as the ISR's
        (:class:`internalize.reward_models.isr.FitResult`): ``train_loss`` and ``test_mse`` are
        the discriminator's logistic loss on the training draws and on the held-out steps (not
        a squared error); ``test_pred`` its logits on the held-out demonstration steps then
        generator steps, ``test_target`` 1 for a demonstration and 0 for a generator step.
        """
        d_obs, d_act, d_next, g_obs, g_act, g_next, g_logp = (jnp.asarray(x) for x in data[:7])
        d_logp = data[7] if len(data) > 7 else jnp.full(d_act.shape[:1], -np.log(spec.n_actions), jnp.float32)
        demo = Transitions(d_obs, d_act, d_next, jnp.asarray(d_logp, jnp.float32))
        gen = Transitions(g_obs, g_act, g_next, jnp.asarray(g_logp, jnp.float32))

        def split(size):
            n = jnp.int32(size) if n_valid is None else jnp.clip(jnp.asarray(n_valid, jnp.int32), 2, size)
            n_train = jnp.clip(jnp.round(cfg.train_fraction * n).astype(jnp.int32), 1, n - 1)
            t_max = size - isr_.split_sizes(size, cfg)[0] + (0 if n_valid is None else 1)
            idx = n_train + jnp.arange(t_max)
            return n_train, jnp.minimum(idx, size - 1), idx < n

        nd_train, d_idx, d_mask = split(d_obs.shape[0])
        ng_train, g_idx, g_mask = split(g_obs.shape[0])
        take = lambda tr, i: jax.tree.map(lambda x: x[i], tr)  # noqa: E731
        d_test, g_test = take(demo, d_idx), take(gen, g_idx)

        def test_logits(p):
            return (self.discriminator_logit(p, cfg, spec, d_test, self.gamma),
                    self.discriminator_logit(p, cfg, spec, g_test, self.gamma))

        def test_loss(p):
            l_d, l_g = test_logits(p)
            mean = lambda v, m: jnp.sum(jnp.where(m, v, 0.0)) / jnp.maximum(m.sum(), 1)  # noqa: E731
            return mean(jax.nn.softplus(-l_d), d_mask) + mean(jax.nn.softplus(l_g), g_mask)

        n_updates = jnp.maximum(1, jnp.round(cfg.epochs * (nd_train + ng_train) / (2 * self.disc_batch))).astype(
            jnp.int32)
        per_eval = (n_updates + isr_.N_EVALS - 1) // isr_.N_EVALS
        tx = self.optimizer(cfg)
        params = self.init(key, cfg, spec) if init_params is None else init_params

        def update(_, carry):
            p, o, key, loss_sum = carry
            key, k_d, k_g = jax.random.split(key, 3)
            db = take(demo, jax.random.randint(k_d, (self.disc_batch,), 0, nd_train))
            gb = take(gen, jax.random.randint(k_g, (self.disc_batch,), 0, ng_train))
            p, o, (loss, _) = self.discriminator_step(p, o, cfg, spec, db, gb, self.gamma)
            return p, o, key, loss_sum + loss

        def segment(carry, _):
            p, o, key = carry
            p, o, key, loss_sum = jax.lax.fori_loop(0, per_eval, update, (p, o, key, jnp.float32(0.0)))
            return (p, o, key), (loss_sum / per_eval, test_loss(p))

        _, k_fit = jax.random.split(key)
        (params, _, _), (train_loss, held_out) = jax.lax.scan(segment, (params, tx.init(params), k_fit), None,
                                                              isr_.N_EVALS)
        l_d, l_g = test_logits(params)
        seen = (jnp.arange(1, isr_.N_EVALS + 1) * per_eval * 2 * self.disc_batch).astype(jnp.int32)
        return isr_.FitResult(params, train_loss, held_out, jnp.concatenate([l_d, l_g]),
                              jnp.concatenate([jnp.ones_like(l_d), jnp.zeros_like(l_g)]), seen,
                              jnp.concatenate([d_mask, g_mask]))
