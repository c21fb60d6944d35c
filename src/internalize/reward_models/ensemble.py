"""A bootstrap ensemble of ISRs with a pessimistic reward (``isr_ensemble``).

K copies of the ISR's network (:func:`internalize.reward_models.isr.network`), each from its
own initialization and fitted as SPEC 5 fits the ISR (:func:`internalize.reward_models.isr.fit`)
on its own bootstrap resample of the training window. Their disagreement measures how far a
(state, action) lies from what the caregiver judged; the reward is the members' mean minus
``beta`` times their spread, so the learner is paid less where the members do not agree
(``beta = 0``: the plain ensemble mean).

What does not live here: the ISR's fit itself (:mod:`internalize.reward_models.isr`, which
takes the bootstrap as an index map, ``resample``), the interface
(:mod:`internalize.reward_models`), and when a model is fitted or used
(:mod:`internalize.phases`, :mod:`internalize.learner`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp

from ..config import ISRConfig
from . import RewardModel
from . import isr as isr_


def bootstrap_map(key: jax.Array, observed: jax.Array, n_train: jax.Array) -> jax.Array:
    """A bootstrap resample of the training window's observed steps, as an index map ``int32 [N]``.

    ``observed``: ``bool [N]`` (False where the caregiver did not judge the step, R_s NaN). With
    m observed steps in ``[0, n_train)``, positions ``0..m-1`` point at m draws with replacement
    from them, positions ``m..n_train-1`` at the window's unobserved steps (so a fit draws from
    exactly the m resampled ones), and every later position at itself (held-out steps are never
    resampled). Every step observed: position i < n_train points at a uniform draw from
    ``[0, n_train)``.
    """
    size = observed.shape[0]
    idx = jnp.arange(size)
    in_train = idx < n_train
    # The window's observed steps first, then its unobserved ones, then the rest (each in order).
    order = jnp.argsort(jnp.where(in_train, jnp.where(observed, 0, 1), 2), stable=True)
    m = (in_train & observed).sum()
    draw = order[jax.random.randint(key, (size,), 0, jnp.maximum(m, 1))]
    return jnp.where(idx < m, draw, jnp.where(in_train, order, idx)).astype(jnp.int32)


@dataclass(frozen=True)
class IsrEnsemble(RewardModel):
    """K bootstrapped ISRs; R_i = mean - beta * std over the members (population std).

    ``params``: the members' ISR parameters stacked on a leading K axis. A fit's diagnostics
    (:class:`~internalize.reward_models.isr.FitResult`):

    - ``test_pred``: the ensemble's reward (mean - beta * std) on the held-out steps, with
      ``test_target``, ``test_mask``, ``test_index`` as the ISR gives them (the held-out window
      is the ISR's and is never resampled; unobserved steps are neither drawn nor scored);
    - ``test_mse``: the members' MSE on the held-out steps, averaged over the members, at each
      evaluation. Not the ensemble reward's own MSE: the members are fitted independently
      (one vmapped ISR fit), so no evaluation sees their joint predictions before the end. For
      ``beta = 0`` it bounds the ensemble mean's MSE from above (Jensen); the ensemble reward's
      final MSE is that of ``test_pred`` against ``test_target`` over ``test_mask``;
    - ``train_loss``: the members' mean training loss per evaluation;
    - ``samples_seen``: samples drawn by all members together (K times a member's).
    """

    name: str = "isr_ensemble"
    k: int = 5
    """Members (ISRs), each from its own initialization and bootstrap resample."""
    beta: float = 1.0
    """Pessimism: R_i = mean - beta * std over the members; 0 is the plain ensemble mean."""
    bootstrap: bool = True
    """Fit each member on its own bootstrap resample of the training window (off: every member
    on the whole window, differing only in initialization and minibatch draws)."""

    def fit_id(self):
        """Ensembles that differ only in pessimism share one fit (beta acts on the members' outputs)."""
        return replace(self, beta=0.0)

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError(f"learners.isr_ensemble.k must be at least 1, got {self.k}")
        if not self.beta >= 0:
            raise ValueError(f"learners.isr_ensemble.beta must be at least 0, got {self.beta}")
        if self.beta != 0 and self.k < 2:
            raise ValueError(f"learners.isr_ensemble.k must be at least 2 when beta is not 0 (one member has "
                             f"no spread), got {self.k}")

    def network(self, cfg: ISRConfig, spec):
        return isr_.network(cfg, spec.n_actions, spec.n_agents, spec.features)

    def _keys(self, key):
        """(member fit keys [K], bootstrap keys [K]) of a fit's key."""
        k_boot, k_fit = jax.random.split(key)
        return jax.random.split(k_fit, self.k), jax.random.split(k_boot, self.k)

    def init(self, key, cfg, spec):
        # Member i starts from the draw isr.fit would make from its own fit key.
        keys, _ = self._keys(key)
        net = self.network(cfg, spec)
        return jax.vmap(lambda k: isr_.init_for_fit(k, spec.obs_shape, spec.n_agents, spec.n_actions, cfg,
                                                    spec.features, net))(keys)

    def combine(self, preds: jax.Array) -> jax.Array:
        """The ensemble's reward from the members' ``[K, ...]``: mean - beta * std (ddof 0)."""
        return preds.mean(0) - self.beta * preds.std(0)

    def fit(self, key, cfg, spec, data, n_valid, init_params):
        obs, actions, r_s = data
        net = self.network(cfg, spec)
        keys, boot_keys = self._keys(key)
        if init_params is None:
            init_params = self.init(key, cfg, spec)

        def member(k, p0, resample):
            return isr_.fit(k, obs, actions, r_s, cfg, spec.n_actions, n_valid=n_valid, init_params=p0,
                            features=spec.features, net=net, resample=resample)

        if self.bootstrap:
            _, n_train, _ = isr_.window(obs.shape[0], cfg, n_valid)
            observed = jnp.isfinite(jnp.asarray(r_s, jnp.float32))
            maps = jax.vmap(lambda k: bootstrap_map(k, observed, n_train))(boot_keys)  # [K, N] int32
            fits = jax.vmap(member)(keys, init_params, maps)
        else:
            fits = jax.vmap(lambda k, p0: member(k, p0, None))(keys, init_params)
        return isr_.FitResult(fits.params, fits.train_loss.mean(0), fits.test_mse.mean(0),
                              self.combine(fits.test_pred), fits.test_target[0], fits.samples_seen.sum(0),
                              fits.test_mask[0], fits.test_index[0])

    def members(self, params, cfg, spec, obs, actions) -> jax.Array:
        """Every member's reward ``[K, ...]`` of a batch of (obs, actions)."""
        x = isr_.inputs(obs, actions, spec.n_actions, cfg.action_planes)
        net = self.network(cfg, spec)
        return jax.vmap(lambda p: isr_.predict(p, x, net))(params)

    def reward(self, params, cfg, spec, obs, actions):
        return self.combine(self.members(params, cfg, spec, obs, actions))
