"""A reward model learned from the caregiver's preferences between trajectory segments (``preference``).

The caregiver does not label steps here; it compares. Pairs of fixed-length segments (clips of
``segment`` consecutive steps of one environment, across episode boundaries as RLHF's clips
run) are drawn from socialization's training window, and the caregiver prefers the one with
more social reward (the sum of its R_s, read as the ISR reads it: NaN is a step it did not see,
and with ``isr.clip_target`` step costs count as 0). Equal sums are ties and are skipped, and
so is a segment holding a step the caregiver did not see. A reward r(s, a) (the ISR's network,
:func:`internalize.reward_models.isr.network`, on the ISR's inputs) is fitted to them as a
Bradley-Terry model: P(A preferred to B) = sigmoid(sum_A r - sum_B r).

The caregiver's effort is matched to the ISR's: a fit uses P judged pairs, where 2 * segment *
P is the number of steps the ISR would see labelled in its training window (its observed steps;
P rounded down, at least 1), so both read as many of the caregiver's steps. A fit's compute is matched as well: ``isr.epochs`` passes over
the P pairs' steps, ``isr.batch_size // (2 * segment)`` pairs (at least one) per update.

The scale. A Bradley-Terry reward is defined only up to a constant: adding c to every step's r
adds c * segment to both sums and changes no preference. The constant still matters to the
learner, which adds R_i to the environment's reward, so a constant offset acts as a reward (or
a cost) for every step alive, a living bonus that changes what the learner prefers (longer
or shorter episodes) for no reason the caregiver gave. We set it as RLHF reward models do
(Stiennon et al. 2020 normalize the reward model so a reference set of samples scores 0 on
average): after the fit, an offset stored in the parameters makes r's mean over the training
window's steps (those the caregiver saw) 0. It uses no R_s value, only socialization's
observations and actions. The unit is Bradley-Terry's own: one unit of summed reward is one
e-fold of the caregiver's odds of preferring a segment.

What does not live here: the ISR and its fit (:mod:`internalize.reward_models.isr`), the
interface (:mod:`internalize.reward_models`), and when a model is fitted or used
(:mod:`internalize.phases`, :mod:`internalize.learner`).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from ..config import ISRConfig
from . import RewardModel
from . import isr as isr_

N_EVALS = isr_.N_EVALS
TIE = 1e-6
"""Two segment sums closer than this (relative to their size) are a tie: the same reward summed
in another order may differ in its last bits."""


def segment_sums(values: jax.Array, n_envs: int, segment: int) -> jax.Array:
    """Every segment's sum, ``[N]``: entry s sums ``values[s + j * n_envs]`` for j < ``segment``
    (one environment's consecutive steps, the data being interleaved ``time step * n_envs +
    environment``); steps past the end count 0. Memory O(N), whatever the segment."""
    size = values.shape[0]
    padded = jnp.concatenate([values, jnp.zeros((segment * n_envs,), values.dtype)])

    def add(j, acc):
        return acc + jax.lax.dynamic_slice(padded, (j * n_envs,), (size,))

    return jax.lax.fori_loop(0, segment, add, jnp.zeros((size,), values.dtype))


def draw_pairs(key: jax.Array, count: int, lo: jax.Array, hi: jax.Array, sums: jax.Array, unseen: jax.Array):
    """``count`` candidate pairs of segments starting in ``[lo, hi)`` (so lying wholly in a window)
    and the caregiver's verdicts: ``(a, b, judged, a_preferred)``, each ``[count]``.

    ``sums``: :func:`segment_sums` of R_s; ``unseen``: of the unobserved steps (a segment with
    one is not judged). None is judged when the window holds no whole segment (hi <= lo)."""
    k_a, k_b = jax.random.split(key)
    a = jax.random.randint(k_a, (count,), lo, jnp.maximum(hi, lo + 1))
    b = jax.random.randint(k_b, (count,), lo, jnp.maximum(hi, lo + 1))
    sa, sb = sums[a], sums[b]
    judged = (hi > lo) & (unseen[a] == 0) & (unseen[b] == 0) & (jnp.abs(sa - sb) > TIE * (jnp.abs(sa) + jnp.abs(sb)))
    return a, b, judged, sa > sb


@dataclass(frozen=True)
class Preference(RewardModel):
    """A Bradley-Terry reward from the caregiver's choices between segments (see the module doc).

    ``params``: ``{"net": the network's parameters, "offset": the shift (added to every step's
    reward), "judged": the number of judged pairs the fit used (int32; P, unless the candidates
    held fewer)}``. A fit's diagnostics (:class:`~internalize.reward_models.isr.FitResult`):

    - ``test_mse``: NOT an MSE. It is the model's own held-out loss, the Bradley-Terry logistic
      loss (mean -log P(the caregiver's choice)) on judged pairs of segments drawn from the
      held-out window (the ISR's), at each evaluation; NaN when that window holds no judged
      pair. Chance is log 2 = 0.693;
    - ``train_loss``: the logistic loss of the pairs trained on, per evaluation;
    - ``samples_seen``: steps in the pairs drawn by each evaluation (2 * segment per pair, so the
      axis is the ISR's samples drawn);
    - ``test_pred``: the reward (offset included) on the held-out steps, with ``test_target``
      (R_s as the ISR reads it), ``test_mask``, ``test_index`` as the ISR gives them. Only the
      order of ``test_pred`` is comparable with R_s (its scale is Bradley-Terry's).

    ``isr.balanced`` does not apply (pairs are drawn uniformly from the judged ones).
    """

    name: str = "preference"
    segment: int = 20
    """Steps in a segment the caregiver compares (one environment's consecutive steps)."""
    candidates: int = 8
    """Candidate pairs drawn per pair the fit may use; the first P judged ones (not tied, every
    step seen) are used. Too few (many ties) and a fit uses fewer (``params["judged"]``)."""

    def validate(self) -> None:
        if self.segment < 1:
            raise ValueError(f"learners.preference.segment must be at least 1, got {self.segment}")
        if self.candidates < 1:
            raise ValueError(f"learners.preference.candidates must be at least 1, got {self.candidates}")

    def network(self, cfg: ISRConfig, spec):
        return isr_.network(cfg, spec.n_actions, spec.n_agents, spec.features)

    def init(self, key, cfg, spec):
        net = isr_.init_for_fit(key, spec.obs_shape, spec.n_agents, spec.n_actions, cfg, spec.features,
                                self.network(cfg, spec))
        return {"net": net, "offset": jnp.float32(0.0), "judged": jnp.int32(0)}

    def reward(self, params, cfg, spec, obs, actions):
        x = isr_.inputs(obs, actions, spec.n_actions, cfg.action_planes)
        return isr_.predict(params["net"], x, self.network(cfg, spec)) + params["offset"]

    def pairs_per_batch(self, cfg: ISRConfig) -> int:
        """Pairs per update: as many steps as the ISR's batch, at least one pair."""
        return max(1, cfg.batch_size // (2 * self.segment))

    def fit(self, key, cfg, spec, data, n_valid, init_params):
        obs, actions, r_s = data
        net = self.network(cfg, spec)
        size = obs.shape[0]
        seg, n_envs = self.segment, getattr(spec, "n_envs", 1)
        span = (seg - 1) * n_envs  # a segment starting at s ends at s + span
        n, n_train, t_max = isr_.window(size, cfg, n_valid)
        # R_s as the ISR reads it (isr.fit): NaN is unobserved; step costs clipped at 0 if asked.
        target = jnp.asarray(r_s, jnp.float32)
        observed = jnp.isfinite(target)
        target = jnp.where(observed, target, 0.0)
        if cfg.clip_target:
            target = jnp.maximum(target, 0.0)

        def x_of(i):
            return isr_.inputs(obs[i], actions[i], spec.n_actions, cfg.action_planes)

        def r_of(p, i):  # the reward (without offset) of the steps i [..., ] (any shape)
            flat = i.reshape(-1)
            return isr_.predict(p, x_of(flat), net).reshape(i.shape)

        def predict_all(p, idx):  # in slices, as isr.fit predicts (memory)
            return jax.lax.map(lambda i: isr_.predict(p, x_of(i), net), idx, batch_size=512)

        sums = segment_sums(target, n_envs, seg)
        unseen = segment_sums((~observed).astype(jnp.int32), n_envs, seg)
        steps = jnp.arange(seg) * n_envs

        # Effort: P judged pairs, 2 * segment * P = the ISR's labelled training steps.
        idx = jnp.arange(size)
        labelled = ((idx < n_train) & observed).sum()
        n_pairs = jnp.maximum(1, labelled // (2 * seg))
        p_max = max(1, (isr_.split_sizes(size, cfg)[0] + 1) // (2 * seg))  # the largest P any n_valid gives
        _, k_idx = jax.random.split(key)
        k_train, k_test, k_upd = jax.random.split(k_idx, 3)
        a, b, judged, a_pref = draw_pairs(k_train, self.candidates * p_max, 0, n_train - span, sums, unseen)
        keep = judged & (jnp.cumsum(judged) <= n_pairs)  # the first P judged candidates
        n_kept = keep.sum()
        order = jnp.argsort(~keep, stable=True)  # kept pairs first

        # Held-out pairs: wholly in the held-out window; scored on the held-out predictions.
        t_pairs = self.candidates * max(1, t_max // (2 * seg))
        ta, tb, t_judged, t_pref = draw_pairs(k_test, t_pairs, n_train, n - span, sums, unseen)
        test_idx = n_train + jnp.arange(t_max)
        test_mask = test_idx < n
        test_idx = jnp.minimum(test_idx, size - 1)
        test_mask = test_mask & observed[test_idx]
        y_test = target[test_idx]

        def logistic(d, a_first):  # -log P(the caregiver's choice) under Bradley-Terry
            return jax.nn.softplus(jnp.where(a_first, -d, d))

        def held_out_loss(p):
            pred = predict_all(p, test_idx)
            d = pred[ta[:, None] - n_train + steps].sum(-1) - pred[tb[:, None] - n_train + steps].sum(-1)
            count = t_judged.sum()
            loss = jnp.sum(jnp.where(t_judged, logistic(d, t_pref), 0.0)) / jnp.maximum(count, 1)
            return jnp.where(count > 0, loss, jnp.nan)

        per_batch = self.pairs_per_batch(cfg)
        n_updates = jnp.maximum(1, jnp.round(cfg.epochs * n_pairs / per_batch)).astype(jnp.int32)
        per_eval = (n_updates + N_EVALS - 1) // N_EVALS
        params = init_params["net"] if init_params is not None else self.init(key, cfg, spec)["net"]
        tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=cfg.adam_eps))

        def loss_fn(p, pa, pb, pref):
            d = r_of(p, pa[:, None] + steps).sum(-1) - r_of(p, pb[:, None] + steps).sum(-1)
            return jnp.where(n_kept > 0, jnp.mean(logistic(d, pref)), 0.0)

        def update(i, carry):
            p, o, key, loss_sum = carry
            key, k = jax.random.split(key)
            j = order[jax.random.randint(k, (per_batch,), 0, jnp.maximum(n_kept, 1))]
            loss, grads = jax.value_and_grad(loss_fn)(p, a[j], b[j], a_pref[j])
            upd, o = tx.update(grads, o, p)
            return optax.apply_updates(p, upd), o, key, loss_sum + loss

        def evaluation(carry, _):
            p, o, key = carry
            p, o, key, loss_sum = jax.lax.fori_loop(0, per_eval, update, (p, o, key, jnp.float32(0.0)))
            return (p, o, key), (loss_sum / per_eval, held_out_loss(p))

        (params, _, _), (train_loss, test_loss) = jax.lax.scan(evaluation, (params, tx.init(params), k_upd), None,
                                                               N_EVALS)
        # The shift (module doc): mean reward 0 over the training window's observed steps.
        in_train = (idx < n_train) & observed
        r_all = predict_all(params, idx)
        offset = -jnp.sum(jnp.where(in_train, r_all, 0.0)) / jnp.maximum(in_train.sum(), 1)
        test_pred = r_all[test_idx] + offset
        seen = (jnp.arange(1, N_EVALS + 1) * per_eval * per_batch * 2 * seg).astype(jnp.int32)
        out = {"net": params, "offset": offset.astype(jnp.float32), "judged": n_kept.astype(jnp.int32)}
        return isr_.FitResult(out, train_loss, test_loss, test_pred, y_test, seen, test_mask, test_idx)
