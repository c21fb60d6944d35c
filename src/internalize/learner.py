"""The learner: PPO in JAX with the whole update compiled (SPEC 4; PureJaxRL pattern).

One *run* is one learner in one world under one caregiver/presence/reward-model setting.
Everything a run needs is in two pytrees: :class:`RunState` (what changes: network, optimizer,
the environments, the caregiver's memory) and :class:`RunSpec` (what is fixed for a phase:
world parameters, caregiver, presence schedule, the frozen reward model's parameters). Runs of different seeds and conditions share shapes, so a batch of
them is one ``vmap``. The update follows Stable-Baselines3's PPO, which the authors ran:
rollout, truncation bootstrap, GAE, epochs of shuffled minibatches with per-minibatch
advantage normalization, clipped policy loss, unclipped value loss, global-norm clipping.

What does not live here: the phases that call it (:mod:`internalize.phases`), how a reward
model is fitted (:mod:`internalize.reward_models`), the worlds and caregivers it is given.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import caregivers as caregivers_
from . import env as env_
from . import presence as presence_
from .config import PPOConfig
from .distributions import Categorical
from .networks import actor_critic


@struct.dataclass
class RunSpec:
    """What is fixed for a run during a phase (vmapped over runs)."""

    world: Any  # the world's params pytree
    caregiver: Any  # a caregiver (internalize.caregivers) as arrays
    presence: presence_.Presence
    isr_gain: jax.Array  # float32 [], 1 to use the reward model's R_i when the caregiver is absent, 0 for none
    isr_params: Any  # the frozen reward model's (the ISR's) parameters (any valid params when isr_gain is 0)
    isr_replaces_reward: jax.Array = struct.field(default_factory=lambda: jnp.float32(0.0))
    """float32 [], 1 where the ISR's R_i replaces the learner's whole reward, the environment's
    included, while the caregiver is absent (the prosocial world, SPEC 8); 0: R_e stays (SPEC 5)."""
    hyper: dict = struct.field(default_factory=dict)
    """PPO numbers given per run instead of by the config ({name: float32 []}, names from
    :data:`TRACED`): runs of a batch may then learn with different learning rates, clip ranges,
    ... in one program (a sweep's points, :mod:`internalize.experiments.sweep`). Empty: the
    config's, as constants."""


TRACED = ("lr", "ent_coef", "vf_coef", "clip", "gamma", "gae_lambda")
"""The :class:`~internalize.config.PPOConfig` numbers a run may be given in ``RunSpec.hyper``."""


@struct.dataclass
class RunState:
    """What a run carries from update to update (and from phase to phase)."""

    params: Any
    opt_state: Any
    env_state: Any  # [n_envs] world states
    obs: jax.Array  # uint8 [n_envs, *obs_shape]
    episode_draw: jax.Array  # float32 [n_envs], the presence draw of each current episode
    t: jax.Array  # int32 [], environment steps (per environment) taken in this phase
    key: jax.Array
    caregiver_state: Any = ()  # [n_envs] the caregiver's memory (() for one without)


class Transition(NamedTuple):
    obs: jax.Array  # uint8 [..., *obs_shape], the observation the action was taken on
    action: jax.Array  # int32
    logp: jax.Array
    value: jax.Array
    r_e: jax.Array  # environment reward
    r_s: jax.Array  # the caregiver's social reward (paid only as far as it is present)
    waive: jax.Array  # the caregiver would waive this step's cost (goal step, SPEC 3)
    presence: jax.Array  # P of this step
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # observation the step ended on (before any reset)
    goal: jax.Array  # the caregiver's event (goal reached / partner helped)
    forward: jax.Array
    isr_action: jax.Array  # int32 [..., 1 + other agents]: the learner's action, then the others' (ISR input)
    events: dict  # the world's further events (Env.events), bool each
    r_true: jax.Array  # what the caregiver means to reward (Caregiver.intended; NaN when it does not say)


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalized advantage estimation by a reverse scan; arrays ``[T, ...]``.

    ``dones[t]``: the episode ended at step t (no bootstrap from values[t + 1]).
    Returns (advantages, returns).
    """

    def back(carry, x):
        next_adv, next_value = carry
        r, v, d = x
        nonterminal = 1.0 - d
        delta = r + gamma * next_value * nonterminal - v
        adv = delta + gamma * lam * nonterminal * next_adv
        return (adv, v), adv

    _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), (rewards, values, dones.astype(jnp.float32)),
                          reverse=True)
    return adv, adv + values


class Learner:
    """PPO over a world, built once per (config, world, phase kind); its methods are pure."""

    def __init__(self, cfg: PPOConfig, env: env_.Env, reward_model=None):
        """``reward_model``: the frozen reward model whose R_i stands in for the absent caregiver
        (an :class:`internalize.reward_models.Bound`); none: R_i is 0 (no program computes it)."""
        cfg.validate()
        self.cfg = cfg
        self.env = env
        self.reward_model = reward_model
        self.net = actor_critic(cfg.network, env.n_actions, cfg.hidden, env.features)
        self.tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=cfg.adam_eps))
        # With a learning rate per run: Adam's step at rate 1 (-1 x the direction, exact), times the
        # run's rate. Bitwise what ``optax.adam(lr)`` computes (-lr x the direction: a product's
        # rounding does not depend on the order of its factors or their signs), and the same state.
        self.tx_unit = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(1.0, eps=cfg.adam_eps))

    # -- set-up -------------------------------------------------------------------------------
    def init(self, key: jax.Array, world_params, caregiver=None) -> RunState:
        """A fresh learner with fresh environments and a fresh caregiver memory (one run; vmap
        over runs)."""
        k_net, k_env, k_draw, key = jax.random.split(key, 4)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(k_env, self.cfg.n_envs), world_params)
        params = self.net.init(k_net, obs[:1])
        # The caregiver's key is folded from another (a new split would change every other draw).
        cg_state = () if caregiver is None else caregivers_.initial_states(
            caregiver, jax.random.fold_in(k_draw, 1), self.cfg.n_envs)
        return RunState(params, self.tx.init(params), env_state, obs,
                        jax.random.uniform(k_draw, (self.cfg.n_envs,)), jnp.int32(0), key, cg_state)

    def enter_phase(self, state: RunState, key: jax.Array, world_params, caregiver=None) -> RunState:
        """Keep the network and optimizer state; start fresh environments (and caregiver memory)
        for a new phase."""
        fresh = self.init(key, world_params, caregiver)
        return fresh.replace(params=state.params, opt_state=state.opt_state)

    # -- acting -------------------------------------------------------------------------------
    def policy(self, params, obs):
        logits, value = self.net.apply(params, obs)
        return Categorical(logits), value

    def rollout(self, state: RunState, spec: RunSpec):
        """Collect ``n_steps`` steps in each of ``n_envs`` environments. Returns (state, traj)."""
        step_env = jax.vmap(lambda k, s, a: env_.auto_reset_step(self.env, k, s, a, spec.world))
        judge = jax.vmap(spec.caregiver.reward)

        def one(carry, _):
            env_state, obs, draw, t, key, cg_state = carry
            key, k_act, k_env, k_pres, k_draw = jax.random.split(key, 5)
            dist, value = self.policy(state.params, obs)
            action = dist.sample(k_act)
            # Schedules count the phase's environment steps of all environments (as budgets do).
            p = presence_.sample(spec.presence, k_pres, t.astype(jnp.float32) * self.cfg.n_envs, draw)
            next_obs, next_state, r_e, term, trunc, info = step_env(
                jax.random.split(k_env, self.cfg.n_envs), env_state, action)
            # The caregiver judges the step as it happened (before any reset); its key is folded
            # from the presence key (a new split would change every other draw).
            k_cg = jax.random.split(jax.random.fold_in(k_pres, 1), self.cfg.n_envs)
            step = caregivers_.Step(env_state, obs, action, info["final_state"], r_e, term, trunc, info)
            cg_state, r_s, waive = judge(k_cg, cg_state, step)
            done = term | trunc
            draw = jnp.where(done, jax.random.uniform(k_draw, draw.shape), draw)
            isr_action = action[:, None]
            if self.env.other_agents:
                isr_action = jnp.concatenate([isr_action, info["other_actions"].astype(jnp.int32)], -1)
            tr = Transition(obs, action, dist.log_prob(action), value, r_e, r_s.astype(jnp.float32),
                            waive, p, term, trunc, info["final_obs"],
                            info["goal_reached"], info.get("forward", jnp.zeros_like(done)), isr_action,
                            {e: info[e] for e in self.env.events}, jax.vmap(spec.caregiver.intended)(step))
            return (next_state, next_obs, draw, t + 1, key, cg_state), tr

        carry = (state.env_state, state.obs, state.episode_draw, state.t, state.key, state.caregiver_state)
        (env_state, obs, draw, t, key, cg_state), traj = jax.lax.scan(one, carry, None, self.cfg.n_steps)
        return state.replace(env_state=env_state, obs=obs, episode_draw=draw, t=t, key=key,
                             caregiver_state=cg_state), traj

    def internal_reward(self, spec: RunSpec, obs, action):
        """R_i of the frozen reward model for a batch of (obs, action); ``action``: ``int [..., agents]``."""
        if self.reward_model is None:
            return jnp.zeros(action.shape[:-1], jnp.float32)

        def one(args):
            o, a = args
            return self.reward_model.reward(spec.isr_params, o, a)

        # Over the rollout's time axis in slices of 16 steps: the ISR's conv activations for a
        # whole rollout of every batched run would take gigabytes at once.
        return spec.isr_gain * jax.lax.map(one, (obs, action), batch_size=16)

    # -- learning -----------------------------------------------------------------------------
    def loss(self, params, mb, hyper: dict | None = None):
        hyper = hyper or {}
        obs, action, old_logp, adv, returns = mb
        dist, value = self.policy(params, obs)
        logp = dist.log_prob(action)
        if self.cfg.normalize_advantage:
            # Per minibatch, with the unbiased std, as Stable-Baselines3 (torch.std) does.
            adv = (adv - adv.mean()) / (jnp.std(adv, ddof=1) + 1e-8)
        ratio = jnp.exp(logp - old_logp)
        clip = hyper.get("clip", self.cfg.clip)
        pg_loss = -jnp.minimum(adv * ratio, adv * jnp.clip(ratio, 1 - clip, 1 + clip)).mean()
        v_loss = jnp.mean((returns - value) ** 2)
        entropy = dist.entropy().mean()
        total = (pg_loss - hyper.get("ent_coef", self.cfg.ent_coef) * entropy
                 + hyper.get("vf_coef", self.cfg.vf_coef) * v_loss)
        approx_kl = jnp.mean((ratio - 1) - (logp - old_logp))
        clip_frac = jnp.mean(jnp.abs(ratio - 1) > clip)
        return total, (pg_loss, v_loss, entropy, approx_kl, clip_frac)

    def learn(self, state: RunState, traj: Transition, reward: jax.Array, hyper: dict | None = None):
        """Learn from a rollout ``traj`` (of :meth:`rollout`) paid ``reward`` ``[n_steps, n_envs]``:
        truncation bootstrap, GAE, the epochs of shuffled minibatches.

        ``state`` is the state :meth:`rollout` returned. Whatever computed ``reward`` (the
        learner's utility in :meth:`update`, a discriminator's in
        :mod:`internalize.demonstrations`), PPO is the same. Returns (state, aux): aux holds the
        minibatches' (pg_loss, value_loss, entropy, approx_kl, clip_fraction), each
        ``[n_epochs, n_minibatches]``. ``hyper``: this run's own PPO numbers (``RunSpec.hyper``).
        """
        cfg = self.cfg
        hyper = hyper or {}
        gamma = hyper.get("gamma", cfg.gamma)
        if cfg.bootstrap_truncated:
            _, final_value = self.policy(state.params, traj.final_obs)
            reward = reward + gamma * final_value * (traj.truncated & ~traj.terminated)
        _, last_value = self.policy(state.params, state.obs)
        done = traj.terminated | traj.truncated
        adv, returns = gae(reward, traj.value, done, last_value, gamma, hyper.get("gae_lambda", cfg.gae_lambda))

        flat = jax.tree.map(lambda x: x.reshape((cfg.batch_size,) + x.shape[2:]),
                            (traj.obs, traj.action, traj.logp, adv, returns))

        def minibatch(carry, mb):
            params, opt_state = carry
            grads, aux = jax.grad(self.loss, has_aux=True)(params, mb, hyper)
            if "lr" in hyper:
                updates, opt_state = self.tx_unit.update(grads, opt_state, params)
                updates = jax.tree.map(lambda u: u * hyper["lr"], updates)
            else:
                updates, opt_state = self.tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, key):
            perm = jax.random.permutation(key, cfg.batch_size)
            mbs = jax.tree.map(lambda x: x[perm].reshape((cfg.n_minibatches, cfg.minibatch_size) + x.shape[1:]), flat)
            return jax.lax.scan(minibatch, carry, mbs)

        key, k_epochs = jax.random.split(state.key)
        (params, opt_state), aux = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                jax.random.split(k_epochs, cfg.n_epochs))
        return state.replace(params=params, opt_state=opt_state, key=key), aux

    def metrics(self, spec: RunSpec, traj: Transition, r_i: jax.Array, u: jax.Array, aux) -> dict:
        """An update's curves: ``r_i`` the reward model's R_i, ``u`` the reward learned from (both
        ``[n_steps, n_envs]``), ``aux`` what :meth:`learn` returned."""
        # Per-episode rates: episodes in these worlds always run to truncation, so a rollout
        # holds batch_size / max_steps episodes' worth of steps. (Dividing by the episodes that
        # happen to end inside the rollout would swing with where the rollout cuts them.)
        episodes = self.cfg.batch_size / spec.world.max_steps
        done = traj.terminated | traj.truncated
        true_reward = presence_.utility(traj.r_e, traj.r_s, 0.0, 1.0, traj.waive)  # the caregiver's view
        return {
            "goals_per_episode": traj.goal.sum() / episodes,
            "forward_per_episode": traj.forward.sum() / episodes,
            "true_return": true_reward.sum() / episodes,
            "internal_return": (r_i * (1.0 - traj.presence)).sum() / episodes,
            "isr_output": r_i.sum() / episodes,
            "utility_return": u.sum() / episodes,
            "presence": traj.presence.mean(),
            "episodes": done.sum(),
            **{f"{e}_per_episode": v.sum() / episodes for e, v in traj.events.items()},
            "pg_loss": aux[0][-1].mean(),
            "value_loss": aux[1][-1].mean(),
            "entropy": aux[2][-1].mean(),
            "approx_kl": aux[3][-1].mean(),
            "clip_fraction": aux[4][-1].mean(),
        }

    def update(self, state: RunState, spec: RunSpec):
        """One PPO update: :meth:`rollout`, the learner's utility, :meth:`learn`, :meth:`metrics`.
        Returns (state, metrics, traj)."""
        state, traj = self.rollout(state, spec)

        # The learner's utility U = R_e + P R_s + (1 - P) R_i (SPEC 2), computed for the whole
        # rollout at once (the ISR is frozen within a phase, so batching it is exact).
        r_i = self.internal_reward(spec, traj.obs, traj.isr_action)
        u = presence_.utility(traj.r_e, traj.r_s, r_i, traj.presence, traj.waive,
                              replace=spec.isr_gain * spec.isr_replaces_reward)
        state, aux = self.learn(state, traj, u, spec.hyper)
        return state, self.metrics(spec, traj, r_i, u, aux), traj

    # -- chunks of updates (one compiled call) ------------------------------------------------
    def chunk(self, state: RunState, spec: RunSpec, n: jax.Array, *, max_updates: int, collect: bool):
        """Run ``n <= max_updates`` updates. Returns (state, metrics [max_updates], data).

        ``data`` (when ``collect``): every step's ``(obs, isr_action, r_s, r_true)`` with leading dims
        ``[max_updates, n_steps, n_envs]``, for the ISR; rows past ``n`` are zeros; r_s is NaN on
        steps where the caregiver was absent (P = 0).
        """

        def pick(traj):
            # R_s is observed only where the caregiver is there to give it: a step it missed is
            # recorded as NaN (unobserved), never as 0 (a judgement of "no reward").
            observed = jnp.where(traj.presence > 0, traj.r_s, jnp.nan)
            return (traj.obs, traj.isr_action, observed, traj.r_true) if collect else ()

        def shapes():
            st, m, traj = self.update(state, spec)
            return m, pick(traj)

        m_shape, d_shape = jax.eval_shape(shapes)
        bufs = jax.tree.map(lambda s: jnp.zeros((max_updates,) + s.shape, s.dtype), (m_shape, d_shape))

        def body(i, carry):
            st, (mb, db) = carry
            st, m, traj = self.update(st, spec)
            put = lambda b, x: jax.lax.dynamic_update_index_in_dim(b, x, i, 0)  # noqa: E731
            return st, (jax.tree.map(put, mb, m), jax.tree.map(put, db, pick(traj)))

        state, (metrics, data) = jax.lax.fori_loop(0, n, body, (state, bufs))
        return state, metrics, data

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, params, key: jax.Array, world_params, cg, n_episodes: int,
                 max_steps: int, deterministic: bool = True):
        """Returns per episode (SPEC 7.3: R_e + R_s with the caregiver present) and goals.

        Runs ``n_episodes`` episodes side by side to truncation. Returns (returns, goals),
        each ``float32 [n_episodes]``. Worlds that terminate early stop counting at termination.
        """
        k_reset, k_steps = jax.random.split(key)
        obs, st = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(k_reset, n_episodes), world_params)
        step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
        judge = jax.vmap(cg.reward)

        def one(carry, key):
            obs, st, alive, ret, goals, cg_state = carry
            k_act, k_env = jax.random.split(key)
            dist, _ = self.policy(params, obs)
            action = dist.mode() if deterministic else dist.sample(k_act)
            obs2, st2, r_e, term, trunc, info = step_env(jax.random.split(k_env, n_episodes), st, action,
                                                         world_params)
            cg_state, r_s, waive = judge(jax.random.split(jax.random.fold_in(k_env, 1), n_episodes), cg_state,
                                         caregivers_.Step(st, obs, action, st2, r_e, term, trunc, info))
            r = presence_.utility(r_e, r_s, 0.0, 1.0, waive)
            ret = ret + alive * r
            goals = goals + alive * info["goal_reached"]
            alive = alive * (1.0 - (term | trunc))
            return (obs2, st2, alive, ret, goals, cg_state), None

        zeros = jnp.zeros(n_episodes)
        cg0 = caregivers_.initial_states(cg, jax.random.fold_in(k_reset, 1), n_episodes)
        (_, _, _, ret, goals, _), _ = jax.lax.scan(one, (obs, st, jnp.ones(n_episodes), zeros, zeros, cg0),
                                                   jax.random.split(k_steps, max_steps))
        return ret, goals
