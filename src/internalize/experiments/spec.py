"""What an experiment is: a declaration of worlds, caregivers, arms, budgets, reward model and
how its claims and figures are made; and the settings a run of it can be told.

An :class:`Experiment` composes the concepts that live in their own modules (worlds,
caregivers, presence, conditions, reward models); :mod:`.pipeline` runs it, :mod:`.store`
keeps its results, :mod:`.report` judges its claims. Each of the paper's experiments is a
module of this package that declares one.

What does not live here: running (:mod:`.pipeline`), files (:mod:`.store`), analyses (each
experiment's module, :mod:`.claims`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from .. import caregivers, conditions, presence as presence_
from ..config import ISRConfig, PPOConfig, PresenceSpec, Preset
from .. import reward_models
from ..reward_models import DATA, DEMONSTRATIONS, ISR, RewardModel
from ..reward_models.airl import Airl
from ..reward_models.bc import BehaviourCloning
from ..reward_models.ensemble import IsrEnsemble
from ..reward_models.preference import Preference
from . import capacity

DEFAULT_SEEDS = 10


@dataclass(frozen=True)
class Budget:
    socialize_steps: int
    """Environment steps of socialization per seed (the caregiver present)."""
    autonomy_steps: int
    """Environment steps of autonomy per seed and arm (0: no autonomy phase)."""


@dataclass(frozen=True)
class Claim:
    """A claim as judged on one run: its statement, whether it holds, the value and p it rests on,
    and the test (and margin, for equivalence) it was judged by."""

    id: str
    statement: str
    holds: bool
    value: float
    p_value: float
    detail: dict = field(default_factory=dict)
    test: str = ""
    """The statistical test (e.g. "Welch two-sample t, one-sided"; "TOST (Welch)")."""
    margin: float | None = None
    """The equivalence margin, for equivalence tests (SPEC 9.1: 10% of the reference arm's mean)."""


@dataclass(frozen=True)
class Arm:
    """One branch of autonomy: a condition, on a world, from a point of socialization by a caregiver."""

    condition: str
    world: Any = None
    """The autonomy world (default: the experiment's ``autonomy_world``)."""
    socialized: float = 1.0
    """Fraction of the socialization budget it starts from (its reward model saw those steps only)."""
    label: str | None = None
    caregiver: Any = None
    """The caregiver that socialized this arm (and stays with it under ``oracle``); default the
    experiment's. Arms with different caregivers (of one class) socialize side by side in one batch."""
    presence: PresenceSpec | None = None
    """How the caregiver leaves this arm (its presence in autonomy under ``none`` and ``isr``);
    default the experiment's ``leave_presence``."""
    socialize_presence: PresenceSpec | None = None
    """The caregiver's presence while socializing this arm's learners; default the experiment's.
    Arms that differ in it (or in caregiver) socialize as separate runs, side by side."""
    leave_when: Any = None
    """A readiness rule (:mod:`internalize.readiness`): each seed's caregiver leaves at the first
    decision point where the rule fires (``socialized`` is then ignored). Needs the experiment's
    ``decision_every``."""
    reward_model: Any = None
    """What learns the caregiver's values for this arm: a reward model's name (its settings are the
    run's ``learners.<name>.*``) or instance (:mod:`internalize.reward_models`). Default: the
    experiment's, for conditions that use one. A model that learns from demonstrations (``irl``,
    ``bc``) also socializes the arm's learner its own way (:mod:`internalize.demonstrations`)."""

    @property
    def name(self) -> str:
        return self.label or self.condition


@dataclass(frozen=True)
class Variant:
    """One setting of an experiment that runs its whole pipeline on another world (e.g. another
    size): its own socialization, fits and autonomy, at ``scale`` times the experiment's budget."""

    label: str
    world: Any
    """Socialization and autonomy world of this variant."""
    scale: float = 1.0
    """Its budgets (socialization and autonomy) as a multiple of the experiment's."""
    autonomy_world: Any = None
    """Its autonomy (and evaluation) world, when it differs from ``world``."""
    arms: tuple | None = None
    """Its own arms (default: the experiment's)."""
    isr_network: str | None = None
    """The reward models' network in this variant (``cnn``, ``mlp``), when it differs from the run's ``isr.network``."""

    def budget(self, b: Budget) -> Budget:
        return Budget(max(1, round(b.socialize_steps * self.scale)), round(b.autonomy_steps * self.scale))


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    socialize_world: Any
    """A world spec (:mod:`internalize.worlds`)."""
    autonomy_world: Any
    arms: tuple[Arm, ...]
    budget: Budget
    quick: Budget
    analyze: Callable[[dict, dict], tuple[list[Claim], dict]]
    """(curves, config) -> (claims, per_seed values)."""
    plot: Callable[[dict, dict, Path], list[Path]]
    """(curves, config, folder) -> figure paths."""
    eval_worlds: tuple = ()
    """After autonomy, every arm's policy is evaluated on each of these with the caregiver's reward."""
    eval_episodes: int = 100
    isr_prefixes: tuple[float, ...] = ()
    """Extra reward-model fits on the first fractions of socialization (accuracy vs budget)."""
    isr_sweep_layouts: int = 0
    """Check the fully socialized reward model on every (cell, direction, action) of this many layouts."""
    trace: bool = True
    """Record one greedy episode of seed 0's final policy per arm (the report's stills)."""
    quick_seeds: int | None = None
    """Seeds of the quick budget when the command line names none (default: 10)."""
    isr_replaces_reward: bool = False
    """In autonomy R_i replaces the learner's whole reward, R_e included (SPEC 8)."""
    isr_config: Callable[[Preset], ISRConfig] | None = None
    """The reward model's fitting settings for a preset, when the experiment's differ (SPEC 8)."""
    socialize_presence: PresenceSpec = PresenceSpec(1.0, 1.0)
    """The caregiver's presence during socialization (paper: always there)."""
    leave_presence: PresenceSpec = PresenceSpec(0.0, 0.0)
    """Its presence in autonomy for conditions where it leaves (none, isr; paper: gone at once)."""
    caregiver: Any = None
    """The caregiver (:mod:`internalize.caregivers`); default the socialization world's."""
    reward_model: RewardModel | str = ISR
    """What stands in for the caregiver once it leaves (:mod:`internalize.reward_models`): an
    instance, or a name (the run's ``reward_model`` setting picks another)."""
    design: Any = None
    """The experiment's own design (a frozen dataclass: levels, kinds, weights, with a
    ``validate()``); its fields are the run's ``design.*`` settings and ``arms_of`` builds the arms."""
    arms_of: Callable[[Any], tuple[Arm, ...]] | None = None
    """The arms a design gives (an experiment with a ``design``)."""
    caregivers_per_batch: int | None = None
    """Socialize at most this many of its distinct caregivers at once (all seeds of each): every
    socializing run keeps its data until its reward model is fitted, so many caregivers at full
    budget would not fit in memory together (:mod:`.capacity`). None: all at once."""
    suite: str = "paper"
    """Which part of the reproduction it belongs to: ``paper`` (SPEC 7) or ``open`` (SPEC 9)."""
    decision_every: int = 0
    """Caregiver steps between readiness decisions (arms with ``leave_when``): at each, a snapshot
    of every learner and an ISR refitted on the data so far. 0: no decision points."""
    variants: tuple[Variant, ...] = ()
    """Run the whole pipeline once per variant (its own world and budget scale); curves are kept
    as ``variant/<label>/<curve>``. Empty: one run on the declared worlds."""
    variants_of: Callable[[Any], tuple[Variant, ...]] | None = None
    """The variants a design gives (an experiment with a ``design`` and variants)."""
    socialize_gib: float | None = None
    """Socialize at most as many seeds at once as keep this much socialization data (GiB) in
    memory; the rest follow in further batches (same results). None: all seeds at once."""

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(a.condition for a in self.arms)

    def arm_world(self, arm: Arm):
        """The world an arm trains on in autonomy (frozen stays on the socialization world)."""
        if conditions.get(arm.condition).trains_on_socialization_world:
            return self.socialize_world
        return arm.world or self.autonomy_world

    def the_caregiver(self):
        """The experiment's caregiver: declared, or the socialization world's."""
        return self.caregiver if self.caregiver is not None else self.socialize_world.caregiver()

    def arm_caregiver(self, arm: Arm):
        return arm.caregiver if arm.caregiver is not None else self.the_caregiver()

    def arm_socialize_presence(self, arm: Arm) -> PresenceSpec:
        return arm.socialize_presence if arm.socialize_presence is not None else self.socialize_presence

    def arm_leave_presence(self, arm: Arm) -> PresenceSpec:
        return arm.presence if arm.presence is not None else self.leave_presence

    def socializations(self) -> tuple[tuple, list[int]]:
        """``((caregiver, socialization presence) of each group, group of each arm)``: the distinct
        ways the experiment's learners are socialized, in order of first use."""
        groups: list = []
        of_arm = []
        for a in self.arms:
            key = (self.arm_caregiver(a), self.arm_socialize_presence(a))
            if key not in groups:
                groups.append(key)
            of_arm.append(groups.index(key))
        return tuple(groups or [(self.the_caregiver(), self.socialize_presence)]), of_arm

    def caregiver_groups(self) -> tuple[tuple, list[int]]:
        """``(caregiver of each socialization group, group of each arm)`` (:meth:`socializations`)."""
        groups, of_arm = self.socializations()
        return tuple(cg for cg, _ in groups), of_arm


def unclipped_isr(preset: Preset) -> ISRConfig:
    """The preset's ISR without SPEC 5's clip of targets at 0: our recorded R_s never holds a step
    cost, so the clip would only erase scolding and correction, and turn a noisy caregiver's
    zero-mean noise into a positive bias on every step (``isr.clip_target``)."""
    return replace(preset.isr, clip_target=False)


def open_question(**fields) -> Experiment:
    """An open-question experiment (SPEC 9): the shared defaults of the ``open`` suite (autonomy on
    the socialization world, 120k + 120k steps, quick 30k + 30k at 4 seeds, the ISR fitted without
    the clip at 0, no recorded episodes, arms from the design), then the declaration's own ``fields``."""
    defaults = dict(autonomy_world=fields["socialize_world"], budget=Budget(120_000, 120_000),
                    quick=Budget(30_000, 30_000), quick_seeds=4, isr_config=unclipped_isr, trace=False, suite="open")
    if fields.get("design") is not None and "arms" not in fields:
        fields["arms"] = fields["arms_of"](fields["design"])
    if fields.get("design") is not None and fields.get("variants_of") and "variants" not in fields:
        fields["variants"] = fields["variants_of"](fields["design"])
    return Experiment(**{**defaults, **fields})


def with_budget(exp: Experiment, socialize_steps: int | None = None, autonomy_steps: int | None = None,
                quick: bool = False) -> Experiment:
    """A copy of ``exp`` with another budget (e.g. tiny test runs)."""
    base = exp.quick if quick else exp.budget
    b = Budget(socialize_steps or base.socialize_steps, autonomy_steps or base.autonomy_steps)
    return replace(exp, quick=b) if quick else replace(exp, budget=b)


# ---------------------------------------------------------------------------------------------
# Settings: everything a run can be told, by dotted name (command line, TOML files)


@dataclass(frozen=True)
class Worlds:
    socialize: Any
    """The world of socialization."""
    autonomy: Any
    """The world of autonomy (arms that name their own world keep it)."""


@dataclass(frozen=True)
class Presences:
    socialize: PresenceSpec
    """The caregiver's presence during socialization."""
    leave: PresenceSpec
    """Its presence in autonomy for the conditions where it leaves (none, isr)."""


@dataclass(frozen=True)
class Learners:
    """The built-in reward learners' own settings, by name (``learners.<name>.<field>``)."""

    isr_ensemble: IsrEnsemble = IsrEnsemble()
    preference: Preference = Preference()
    irl: Airl = Airl()
    bc: BehaviourCloning = BehaviourCloning()

    def resolve(self, model: Any) -> RewardModel:
        """A reward model (a name, or a declared instance) under these settings: a name gives its
        configured instance; a declared instance keeps the fields it declares (those that differ
        from its class's defaults) and takes the rest from these settings."""
        if isinstance(model, str):
            if model in {f.name for f in fields(self)}:
                return getattr(self, model)
            known = reward_models.known()
            if model not in known:
                raise ValueError(f"unknown reward model {model!r}; known: {', '.join(known)}")
            return known[model]
        configured = getattr(self, model.name, None)
        if configured is None or type(configured) is not type(model):
            return model
        default = type(model)()
        declared = {f.name: getattr(model, f.name) for f in fields(model)
                    if getattr(model, f.name) != getattr(default, f.name)}
        return replace(configured, **declared)


@dataclass(frozen=True)
class Settings:
    """The settings of one run of an experiment; ``internalize config EXPERIMENT`` prints them."""

    seeds: int
    """Independent runs, each with its own key derived from the root seed."""
    seed: int
    """Root seed: every key of every seed and phase is derived from it."""
    budget: Budget
    ppo: PPOConfig
    isr: ISRConfig
    world: Worlds
    presence: Presences
    caregiver: Any
    """The experiment's caregiver (arms that name their own keep it)."""
    eval_episodes: int
    """Episodes per evaluation world and arm (experiments that evaluate policies)."""
    updates_per_chunk: int
    """PPO updates per compiled call (progress and checkpoints come between calls)."""
    design: Any = field(default=None, metadata={"group": True})
    """The experiment's own design (levels, kinds, weights), for experiments that have one."""
    reward_model: str = "isr"
    """What learns the caregiver's values and stands in for it once it leaves: isr (the paper's),
    isr_ensemble, preference, irl, bc, or a registered model (internalize list); arms that name
    their own keep it."""
    learners: Learners = field(default_factory=lambda: Learners())
    """Each reward learner's own settings (its fitting settings are the run's isr.*)."""


def settings_for(exp: Experiment, preset: Preset, *, quick: bool = False) -> Settings:
    """The experiment's own settings under a preset, before any override."""
    return Settings(
        seeds=(exp.quick_seeds or DEFAULT_SEEDS) if quick else DEFAULT_SEEDS,
        seed=0,
        budget=exp.quick if quick else exp.budget,
        ppo=preset.ppo,
        isr=exp.isr_config(preset) if exp.isr_config else preset.isr,
        world=Worlds(exp.socialize_world, exp.autonomy_world),
        presence=Presences(exp.socialize_presence, exp.leave_presence),
        caregiver=exp.the_caregiver(),
        eval_episodes=exp.eval_episodes,
        updates_per_chunk=preset.updates_per_chunk,
        design=exp.design,
        reward_model=exp.reward_model if isinstance(exp.reward_model, str) else exp.reward_model.name,
    )


def configure(exp: Experiment, preset: Preset, s: Settings) -> tuple[Experiment, Preset]:
    """The experiment and preset that ``s`` describes; ValueError (one line) if it is invalid."""
    s.ppo.validate()
    s.isr.validate()
    checks = [("seeds", s.seeds >= 1, "at least 1"), ("seed", 0 <= s.seed < 2**32, "in 0..2^32-1"),
              ("budget.socialize_steps", s.budget.socialize_steps >= 1, "at least 1"),
              ("budget.autonomy_steps", s.budget.autonomy_steps >= 0, "at least 0"),
              ("eval_episodes", s.eval_episodes >= 1, "at least 1"),
              ("updates_per_chunk", s.updates_per_chunk >= 1, "at least 1")]
    for name, ok, want in checks:
        if not ok:
            raise ValueError(f"setting {name} must be {want}")
    if s.design is not None:
        s.design.validate()
        exp = replace(exp, design=s.design, arms=exp.arms_of(s.design))
        if exp.variants_of is not None:
            exp = replace(exp, variants=exp.variants_of(s.design))
    for a in exp.arms:
        if a.leave_when is not None:
            if exp.decision_every <= 0:
                raise ValueError(f"arm {a.name!r} leaves by a readiness rule, but the experiment has no decision points "
                                 "(decision_every)")
            a.leave_when.validate()
    capacity.check_limits(s)
    for cg in (s.caregiver, *(a.caregiver for a in exp.arms if a.caregiver is not None)):
        caregivers.check(cg)
    try:
        declared = exp.reward_model
        same = not isinstance(declared, str) and s.reward_model == declared.name
        model = s.learners.resolve(declared if same else s.reward_model)
    except ValueError as e:
        raise ValueError(f"setting reward_model: {e}") from None
    arms = tuple(a if a.reward_model is None else replace(a, reward_model=s.learners.resolve(a.reward_model))
                 for a in exp.arms)
    exp = replace(exp, reward_model=model, arms=arms,
                  variants=tuple(v if v.arms is None else replace(v, arms=tuple(
                      a if a.reward_model is None else replace(a, reward_model=s.learners.resolve(a.reward_model))
                      for a in v.arms)) for v in exp.variants))
    used = [model] + [a.reward_model for a in exp.arms if a.reward_model is not None] + [
        a.reward_model for v in exp.variants for a in (v.arms or ()) if a.reward_model is not None]
    for f in fields(s.learners):  # every learner's settings, used or not: a bad value is bad input
        getattr(s.learners, f.name).validate()
    for m in dict.fromkeys(used):
        missing = [d for d in m.needs if d not in DATA and tuple(m.needs) != DEMONSTRATIONS]
        if missing:
            raise ValueError(f"reward model {m.name!r} needs {', '.join(missing)}; socialization records "
                             f"{', '.join(DATA)}, a demonstrator {', '.join(DEMONSTRATIONS)}")
        m.validate()
    if tuple(model.needs) == DEMONSTRATIONS and not hasattr(s.world.socialize, "demonstrator"):
        raise ValueError(f"setting reward_model: {model.name} learns from demonstrations, and the world "
                         f"{type(s.world.socialize).__name__} has no scripted demonstrator")
    if exp.variants and (s.world.socialize != exp.socialize_world or s.world.autonomy != exp.autonomy_world):
        raise ValueError(f"experiment {exp.name!r} runs its own worlds, one per variant "
                         f"({', '.join(v.label for v in exp.variants)}); world.* settings do not apply (see design.*)")
    for name, w in (("world.socialize", s.world.socialize), ("world.autonomy", s.world.autonomy),
                    *((f"variant {v.label}", v.world) for v in exp.variants)):
        try:
            w.params()
        except ValueError as e:
            raise ValueError(f"setting {name}: {e}") from None
    for name, p in (("presence.socialize", s.presence.socialize), ("presence.leave", s.presence.leave),
                    *((f"arm {a.name!r} presence", a.presence) for a in exp.arms if a.presence is not None),
                    *((f"arm {a.name!r} socialize_presence", a.socialize_presence) for a in exp.arms
                      if a.socialize_presence is not None)):
        try:
            presence_.from_spec(p)
        except ValueError as e:
            raise ValueError(f"setting {name}: {e}") from None
    # Evaluation worlds that were the autonomy world follow it (ood_walls evaluates where it adapts).
    evals = tuple(s.world.autonomy if w == exp.autonomy_world else w for w in exp.eval_worlds)
    exp = replace(exp, socialize_world=s.world.socialize, autonomy_world=s.world.autonomy, eval_worlds=evals,
                  budget=s.budget, quick=s.budget, socialize_presence=s.presence.socialize,
                  leave_presence=s.presence.leave, eval_episodes=s.eval_episodes, isr_config=None,
                  caregiver=s.caregiver)
    return exp, replace(preset, ppo=s.ppo, isr=s.isr, updates_per_chunk=s.updates_per_chunk)
