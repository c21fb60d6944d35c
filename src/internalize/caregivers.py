"""Caregivers: who pays the social reward R_s, and how (SPEC 2, 3).

A caregiver is a frozen pytree dataclass (``flax.struct.dataclass``) whose fields are its
numeric parameters, with two pure methods:

- ``init_state(key) -> state``: its memory for one environment at the start of a phase
  (``()`` for a caregiver without memory);
- ``reward(key, state, step) -> (state, r_s, waive)``: the social reward of one transition of
  one environment (:class:`Step`), and whether, when present, it waives the environment's
  cost of that step (the coin world's goal step, SPEC 3).

Because the parameters are pytree leaves, caregivers of one class with different numbers
(a noise level, a miss rate, a delay) stack into one batch and ride one ``vmap`` as arms of an
experiment. The learner applies presence: R_s is paid as far as the caregiver is there
(:func:`internalize.presence.utility`). ``key`` is the caregiver's own randomness for that
step (a noisy caregiver needs it); ``state`` carries across the steps of a phase (a late
caregiver needs it) and is started afresh at each phase by ``init_state``.

A caregiver may also say what it *means* to reward (``intended(step)``, the value a perfect
caregiver of its kind would pay; NaN when it does not say), so that a reward model fitted to
an imperfect caregiver's feedback can be scored against the truth; and check its own numbers
(``validate()``, ValueError with one line naming the bad one).

What lives here: the caregiver interface, the paper's caregiver (:class:`GoalPraise`), and the
imperfect, differently-speaking and disagreeing caregivers of the open questions (SPEC 9):
:class:`Imperfect` (noisy, forgetful, falsely praising, late), :class:`Feedback` (praise,
shaping, correction) and :class:`TwoCaregivers` (one of two per episode).
What does not: when the caregiver is there (:mod:`internalize.presence`), which world events
exist (the world's ``info``, :mod:`internalize.env`), and user caregivers (their own module;
docs/howto.md shows two).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class Step(NamedTuple):
    """One transition of one environment, as a caregiver sees it (no batch axis)."""

    state: Any  # the world state the action was taken in
    obs: jax.Array  # uint8 [*obs_shape], the observation the action was taken on
    action: jax.Array  # int32 [], the learner's action
    next_state: Any  # the world state the step ended in (before any reset)
    reward: jax.Array  # float32 [], the environment's reward R_e
    terminated: jax.Array  # bool []
    truncated: jax.Array  # bool []
    info: dict  # the world's events (``goal_reached`` ..., see internalize.env)


class Caregiver:
    """The interface (subclass it with ``@flax.struct.dataclass``; fields are numbers)."""

    def init_state(self, key: jax.Array) -> Any:
        """The caregiver's memory for one environment at the start of a phase."""
        return ()

    def reward(self, key: jax.Array, state: Any, step: Step) -> tuple[Any, jax.Array, jax.Array]:
        """``(state, r_s float32 [], waive bool [])`` for one transition."""
        raise NotImplementedError

    def intended(self, step: Step) -> jax.Array:
        """What this caregiver means to reward on ``step`` (float32 []; NaN: it does not say)."""
        return jnp.float32(jnp.nan)

    def validate(self) -> None:
        """ValueError (one line) when a parameter is out of its range (Python numbers only)."""


@struct.dataclass
class GoalPraise(Caregiver):
    """The paper's caregiver: +``goal_reward`` when the learner reaches the goal (SPEC 3).

    In the authors' scripts the goal step pays +0.4 *instead of* the step cost; with
    ``waives_step_cost`` (the paper's behaviour, kept in every preset) the caregiver, when
    present, waives the goal step's cost. A world may compute R_s itself (a user's caregiver
    function, :mod:`internalize.worlds.gymnax`) and put it in ``info["social_reward"]``; it is
    then paid as it stands and ``goal_reward`` is not used.
    """

    goal_reward: float = 0.4
    """R_s on a step that reaches the goal (SPEC 3: 0.4)."""
    waives_step_cost: bool = True
    """When present, the goal step pays R_s instead of R_s minus its cost (SPEC 3)."""

    def reward(self, key, state, step):
        return state, social_reward(self, step.info), waived(self, step.info)

    def intended(self, step):
        return social_reward(self, step.info)


MAX_DELAY = 8
"""The longest delay (steps) an :class:`Imperfect` caregiver can have: the size of its memory."""


def _check(name: str, value: Any, ok: bool, want: str) -> None:
    if isinstance(value, (int, float, np.number)) and not ok:
        raise ValueError(f"caregiver {name} must be {want}, got {value!r}")


@struct.dataclass
class Imperfect(Caregiver):
    """The paper's caregiver, imperfect in four ways (each 0: the perfect caregiver, SPEC 9).

    - ``noise`` sigma: every step's R_s gets N(0, sigma^2) added (paid as far as it is present);
    - ``omission`` q: each goal's praise is missed with probability q;
    - ``false_praise`` f: each non-goal step is praised with probability f (the same +``goal_reward``);
    - ``delay`` d: praise arrives d steps late, on whatever (s, a) is then current; praise still
      owed when the episode ends is lost.

    The goal step's cost is waived (the paper's quirk, SPEC 3) only when its praise is given on
    that very step (not missed, not late). ``intended``: +``goal_reward`` on goal steps.
    """

    goal_reward: float = 0.4
    """Praise for reaching the goal (SPEC 3: 0.4)."""
    waives_step_cost: bool = True
    """When present and praising the goal on the goal step, it waives that step's cost (SPEC 3)."""
    noise: float = 0.0
    """Standard deviation sigma of the Gaussian noise added to every step's R_s (>= 0)."""
    omission: float = 0.0
    """Probability q that a goal's praise is missed (0..1)."""
    false_praise: float = 0.0
    """Probability f that a non-goal step is praised (0..1)."""
    delay: int = 0
    """Steps d by which praise arrives late (0..MAX_DELAY)."""

    def validate(self):
        _check("noise", self.noise, 0 <= self.noise < float("inf"), "a finite number at least 0")
        _check("omission", self.omission, 0 <= self.omission <= 1, "in [0, 1]")
        _check("false_praise", self.false_praise, 0 <= self.false_praise <= 1, "in [0, 1]")
        _check("delay", self.delay, isinstance(self.delay, (int, np.integer)) and 0 <= self.delay <= MAX_DELAY,
               f"a whole number in 0..{MAX_DELAY}")

    def init_state(self, key):
        return jnp.zeros(MAX_DELAY, jnp.float32)  # owed[j]: praise due j + 1 steps from now

    def reward(self, key, owed, step):
        k_noise, k_miss, k_false = jax.random.split(key, 3)
        goal = step.info["goal_reached"]
        praised_goal = goal & ~jax.random.bernoulli(k_miss, self.omission)
        falsely = ~goal & jax.random.bernoulli(k_false, self.false_praise)
        praise = jnp.where(praised_goal | falsely, self.goal_reward, 0.0).astype(jnp.float32)
        now = self.delay == 0
        due = owed[0]
        owed = jnp.concatenate([owed[1:], jnp.zeros(1, jnp.float32)])
        owed = owed.at[jnp.clip(self.delay - 1, 0, MAX_DELAY - 1)].add(jnp.where(now, 0.0, praise))
        owed = jnp.where(step.terminated | step.truncated, 0.0, owed)  # the episode ended: owed praise is lost
        r_s = due + jnp.where(now, praise, 0.0) + self.noise * jax.random.normal(k_noise)
        return owed, r_s.astype(jnp.float32), praised_goal & now & self.waives_step_cost

    def intended(self, step):
        return jnp.where(step.info["goal_reached"], self.goal_reward, 0.0).astype(jnp.float32)


@struct.dataclass
class Feedback(Caregiver):
    """The same value (reach the goal) taught by different kinds of feedback (SPEC 9):

    - ``goal_reward``: praise on reaching the goal (the paper's, 0.4);
    - ``shaping``: praise on every step that shortens the shortest-path (BFS) distance to the
      goal, ``shaping / D`` each, where D is the distance when the current layout began: a
      shortest path earns ``shaping`` in all (the goal step is the last shortening step);
    - ``correction``: paid (a negative number, e.g. -0.1) on every step that lengthens it.

    ``distance(world_state) -> float32 []`` is the world's shortest-path distance from the agent
    to the goal (inf when unreachable), e.g. :func:`internalize.worlds.coin.goal_distance`; it is
    part of the declaration, not a setting. The goal step's cost is waived (SPEC 3) only when
    goal praise is paid. ``intended``: +``value`` on goal steps, the value every kind teaches.
    """

    goal_reward: float = 0.4
    """Praise on reaching the goal (0: none)."""
    shaping: float = 0.0
    """Total praise along a shortest path, paid step by step as the distance shrinks (0: none)."""
    correction: float = 0.0
    """Paid on each step that lengthens the distance (negative, e.g. -0.1; 0: none)."""
    waives_step_cost: bool = True
    """When praising the goal, it waives the goal step's cost (SPEC 3)."""
    value: float = 0.4
    """What a goal is worth to this caregiver (its ``intended`` reward; not paid by itself)."""
    distance: Any = struct.field(pytree_node=False, default=None)

    def validate(self):
        if not callable(self.distance):
            raise ValueError("caregiver distance must be the world's distance to the goal (a function of its state, "
                             "e.g. internalize.worlds.coin.goal_distance)")

    def init_state(self, key):
        return (jnp.float32(jnp.inf), jnp.bool_(True))  # (D of the current layout, D not yet known)

    def reward(self, key, state, step):
        start, fresh = state
        goal = step.info["goal_reached"]
        d = self.distance(step.state)
        start = jnp.where(fresh, d, start)
        d_next = jnp.where(goal, 0.0, self.distance(step.next_state))  # a reached goal redraws the layout
        shorter, longer = d_next < d, d_next > d
        r_s = (jnp.where(goal, self.goal_reward, 0.0) + jnp.where(shorter, self.shaping / start, 0.0)
               + jnp.where(longer, self.correction, 0.0))
        paid_goal = goal & (self.goal_reward != 0)
        new = (start, goal | step.terminated | step.truncated)  # a new layout begins: measure D again
        return new, r_s.astype(jnp.float32), paid_goal & self.waives_step_cost

    def intended(self, step):
        return jnp.where(step.info["goal_reached"], self.value, 0.0).astype(jnp.float32)


@struct.dataclass
class TwoCaregivers(Caregiver):
    """Two caregivers who value different events; each episode one of them is there (A with
    probability ``w``, else B), drawn when the episode starts (SPEC 9: caregivers who disagree).

    Each pays per event of the world's ``info`` (the two-coin world's ``red_reached`` and
    ``blue_reached``). The goal step's cost is waived (SPEC 3) when the present one praises it.
    """

    w: float = 0.5
    """Probability that an episode's caregiver is A (0..1)."""
    a_red: float = 0.4
    """A's reward for reaching the red coin."""
    a_blue: float = 0.0
    """A's reward for reaching the blue coin."""
    b_red: float = 0.0
    """B's reward for reaching the red coin (e.g. -0.4: B scolds red)."""
    b_blue: float = 0.4
    """B's reward for reaching the blue coin."""
    waives_step_cost: bool = True
    """When the present caregiver praises the step, it waives that step's cost (SPEC 3)."""

    def validate(self):
        _check("w", self.w, 0 <= self.w <= 1, "in [0, 1]")

    def init_state(self, key):
        return jax.random.bernoulli(key, self.w)  # A is there this episode

    def _pays(self, step) -> tuple[jax.Array, jax.Array]:
        """What A and what B would pay for ``step``."""
        red, blue = step.info["red_reached"], step.info["blue_reached"]
        return (jnp.where(red, self.a_red, 0.0) + jnp.where(blue, self.a_blue, 0.0),
                jnp.where(red, self.b_red, 0.0) + jnp.where(blue, self.b_blue, 0.0))

    def reward(self, key, is_a, step):
        r_a, r_b = self._pays(step)
        r_s = jnp.where(is_a, r_a, r_b).astype(jnp.float32)
        ended = step.terminated | step.truncated
        is_a = jnp.where(ended, jax.random.bernoulli(key, self.w), is_a)  # the next episode's caregiver
        return is_a, r_s, (r_s > 0) & self.waives_step_cost

    def intended(self, step):
        """What the two mean on average: A's reward with weight w, B's with 1 - w."""
        a, b = self._pays(step)
        return (self.w * a + (1 - self.w) * b).astype(jnp.float32)


@struct.dataclass
class Switch(Caregiver):
    """One of several caregivers of different classes, picked by ``index``: how caregivers of
    different kinds ride one batch (:func:`unify`). Every member judges every step with the key
    and memory it would have alone; the picked member's judgement is paid."""

    index: int
    members: tuple

    def init_state(self, key):
        return tuple(m.init_state(key) for m in self.members)

    def reward(self, key, state, step):
        outs = [m.reward(key, s, step) for m, s in zip(self.members, state)]
        r_s = jnp.stack([jnp.asarray(o[1], jnp.float32) for o in outs])[self.index]
        waive = jnp.stack([jnp.asarray(o[2], jnp.bool_) for o in outs])[self.index]
        return tuple(o[0] for o in outs), r_s, waive

    def intended(self, step):
        return jnp.stack([jnp.asarray(m.intended(step), jnp.float32) for m in self.members])[self.index]

    def validate(self):
        for m in self.members:
            m.validate()


def unify(cgs: list) -> list:
    """Caregivers that stack into one batch: unchanged when all are of one class, else each as a
    :class:`Switch` over one member per class (the others' members are placeholders)."""
    kinds: list[type] = []
    first: dict[type, Caregiver] = {}
    for cg in cgs:
        if type(cg) not in first:
            kinds.append(type(cg))
            first[type(cg)] = cg
    if len(kinds) <= 1:
        return list(cgs)
    return [Switch(kinds.index(type(cg)), tuple(cg if k is type(cg) else first[k] for k in kinds)) for cg in cgs]


def social_reward(cg: GoalPraise, info: dict) -> jax.Array:
    """R_s of the paper's caregiver from the world's ``info`` (any batch shape)."""
    if "social_reward" in info:  # the world's own caregiver paid it (decided at trace time)
        return jnp.asarray(info["social_reward"], jnp.float32)
    return jnp.where(info["goal_reached"], cg.goal_reward, 0.0).astype(jnp.float32)


def waived(cg: GoalPraise, info: dict) -> jax.Array:
    """Whether the paper's caregiver (if present) waives this step's environment cost."""
    return info["goal_reached"] & cg.waives_step_cost


def caregiver(goal_reward: float = 0.4, waives_step_cost: bool = True) -> GoalPraise:
    """The paper's caregiver as arrays (what a batch of runs carries)."""
    return GoalPraise(jnp.float32(goal_reward), jnp.bool_(waives_step_cost))


def as_arrays(cg: Caregiver) -> Caregiver:
    """A caregiver declaration (Python numbers) as the arrays a compiled program carries:
    floats as float32, ints as int32, bools as bool."""
    def conv(x):
        if isinstance(x, bool):
            return jnp.bool_(x)
        if isinstance(x, int):
            return jnp.int32(x)
        if isinstance(x, float):
            return jnp.float32(x)
        return jnp.asarray(x)
    return jax.tree.map(conv, cg)


def initial_states(cg: Caregiver, key: jax.Array, n: int) -> Any:
    """``init_state`` for ``n`` environments (leading axis ``[n]``)."""
    return jax.vmap(cg.init_state)(jax.random.split(key, n))


def check(cg: Any) -> None:
    """TypeError (one line) unless ``cg`` is a caregiver: a dataclass with ``init_state`` and
    ``reward`` (checked for every caregiver of a run before it starts)."""
    import dataclasses

    if not (dataclasses.is_dataclass(cg) and callable(getattr(cg, "reward", None))
            and callable(getattr(cg, "init_state", None))):
        raise TypeError(f"{cg!r} is not a caregiver: declare a flax.struct.dataclass subclass of "
                        "internalize.caregivers.Caregiver with init_state and reward")
    validate = getattr(cg, "validate", None)
    if callable(validate):
        validate()


BUILTIN: dict[str, type] = {"goal_praise": GoalPraise, "imperfect": Imperfect, "feedback": Feedback,
                            "two_caregivers": TwoCaregivers}


def known() -> dict[str, type]:
    """Every caregiver class by name: built in, then registered through the
    ``internalize.caregivers`` entry points."""
    from . import registry

    return registry.merged("internalize.caregivers", BUILTIN)
