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

What lives here: the caregiver interface and the paper's caregiver (:class:`GoalPraise`).
What does not: when the caregiver is there (:mod:`internalize.presence`), which world events
exist (the world's ``info``, :mod:`internalize.env`), and user caregivers (their own module;
docs/howto.md shows two).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
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


BUILTIN: dict[str, type] = {"goal_praise": GoalPraise}


def known() -> dict[str, type]:
    """Every caregiver class by name: built in, then registered through the
    ``internalize.caregivers`` entry points."""
    from . import registry

    return registry.merged("internalize.caregivers", BUILTIN)
