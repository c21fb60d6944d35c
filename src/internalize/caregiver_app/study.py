"""A person as the caregiver: the computation of one session of a human-caregiver study.

The paper's loop (socialize, internalize, autonomy) with a person's judgements in place of the
scripted caregiver's reward. A session runs in rounds:

1. the learner's current policy acts ``episodes_per_round`` episodes of the coin world (actions
   sampled), which the person watches and judges step by step (praise, disapproval, or nothing);
2. the ISR (the paper's, SPEC 5) is fitted to every step the person has been shown so far, a
   judged step's target being the value of its latest judgement and an unjudged one's 0;
3. the learner trains by PPO in simulation for ``round_steps`` environment steps on R_e + R_i,
   the fitted ISR standing in for the person between rounds (they cannot judge simulated steps).

After the last round the person leaves: the learner goes on in autonomy on their final ISR for
``autonomy_steps``, as in the paper. Every number a session produces is a pure function of its
seed and the person's judgements, so a killed server recomputes exactly what it lost.

Departures from the paper, named (docs/human_caregiver.md): praise is worth ``praise`` (default
+0.4, the scripted caregiver's goal reward) and disapproval ``disapproval`` (default -0.4); the
ISR's targets are not clipped at 0 (disapproval is a target); its held-out tenth is a random
tenth of the shown steps, not the last (a person's last round would otherwise never be learned
from); and it is fitted for ``isr_epochs`` epochs, since a person judges hundreds of steps, not
the tens of thousands a scripted caregiver does.

What does not live here: the web app (:mod:`.server`), the stored data (:mod:`.db`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import jax
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from flax import serialization

from .. import caregivers, figures, phases, presence, reward_models, stats
from ..config import PRESETS
from ..experiments import pipeline, runner
from ..experiments.claims import T_GREATER, T_TWO_SIDED
from ..experiments.spec import Arm, Budget, Claim, Experiment, settings_for
from ..learner import Learner, RunSpec
from ..reward_models import isr as isr_
from ..worlds import CoinWorld
from ..worlds import coin

EXPERIMENT_REF = "internalize.caregiver_app.study:HUMAN_CAREGIVER"
"""How a session's results folder names its declaration (``internalize report`` finds it so)."""
REFERENCE_SEED = 0
PROGRESS_UPDATES = 2
"""PPO updates per compiled call of a session's training (progress is reported between calls)."""
"""The scripted caregiver's learner runs the same protocol with this seed."""


@dataclass(frozen=True)
class StudyConfig:
    """The settings of a study (every session of an app runs under the same)."""

    rounds: int = 4
    """Rounds of watching and judging; the learner trains on the person's ISR after each."""
    episodes_per_round: int = 10
    """Episodes the person watches per round."""
    round_steps: int = 32_768
    """Environment steps of simulated training on the person's ISR after each round."""
    autonomy_steps: int = 65_536
    """Environment steps of autonomy after the person has left."""
    eval_episodes: int = 100
    """Greedy episodes the result's goals per episode are measured on."""
    praise: float = 0.4
    """The social reward a praise stands for (the scripted caregiver's goal reward)."""
    disapproval: float = -0.4
    """The social reward a disapproval stands for."""
    isr_epochs: float = 30.0
    """Passes of the ISR fit over the shown steps (a person's data are small)."""
    reward_model: str = "isr_linear"
    """What learns the person's values: ``isr_linear`` (the ISR with a linear network per action on
    the world's compact encoding, as TAMER models a person's reward: it generalizes from the few
    judgements a person gives), ``isr`` (the preset's ISR network) or ``isr_ensemble`` (five
    bootstrapped ISRs, paid their mean minus their spread)."""
    isr_hidden: tuple[int, ...] = (64, 64)
    """Hidden layers of the ISR's MLP (the ``fast`` preset's network)."""
    n_walls: int = 3
    """Random interior walls of the coin world (the paper's 3)."""
    preset: str = "fast"
    """The learner and ISR preset (``fast``: seconds per round on a laptop)."""

    def validate(self) -> None:
        for name in ("rounds", "episodes_per_round", "round_steps", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.autonomy_steps < 0:
            raise ValueError(f"autonomy_steps must be at least 0, got {self.autonomy_steps}")
        if not self.praise > 0 or not self.disapproval < 0:
            raise ValueError(f"praise must be positive and disapproval negative, got {self.praise}, {self.disapproval}")
        if not self.isr_epochs > 0:
            raise ValueError(f"isr_epochs must be positive, got {self.isr_epochs}")
        if self.reward_model not in MODELS:
            raise ValueError(f"reward_model must be one of {', '.join(MODELS)}, got {self.reward_model!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        if not 0 <= self.n_walls <= 23:
            raise ValueError(f"n_walls must be in 0..23, got {self.n_walls}")

    @property
    def world(self) -> CoinWorld:
        return CoinWorld(n_walls=self.n_walls)

    @property
    def episodes(self) -> int:
        return self.rounds * self.episodes_per_round


class PerActionLinear(nn.Module):
    """R(s, a) = w_a . phi(s) + b_a: a linear function of the world's compact encoding phi per
    action (TAMER's model of a person's reward). Takes the ISR's prepared input (``isr.inputs``)."""

    n_codes: int
    features: Callable

    @nn.compact
    def __call__(self, x):
        v = x.shape[-2]
        obs, codes = x[..., : -self.n_codes], x[..., v // 2, v // 2, -self.n_codes:]
        per_action = nn.Dense(self.n_codes, kernel_init=nn.initializers.zeros)(self.features(obs))
        return (per_action * codes).sum(-1)


@dataclass(frozen=True)
class LinearISR(reward_models.NetworkRewardModel):
    """The ISR (SPEC 5's fit: class-balanced minibatches, held-out tenth) with a linear network per
    action (:class:`PerActionLinear`)."""

    name: str = "isr_linear"

    def network(self, cfg, spec):
        return PerActionLinear(isr_.n_input_planes(0, spec.n_actions, spec.n_agents, cfg.action_planes), spec.features)


MODELS = {"isr_linear": LinearISR(), "isr": reward_models.ISR, "isr_ensemble": reward_models.IsrEnsemble(k=5, beta=1.0)}
"""The reward models a study may fit to a person's judgements."""


# ---------------------------------------------------------------------------------------------
# What a session shows: episodes as plain data (what the page draws and the ISR is fitted on)

STEP_FIELDS = ("layout", "goal", "pos", "dir", "action", "coin", "to")


def episode_record(rec: dict[str, np.ndarray]) -> dict:
    """One recorded episode (arrays over steps) as JSON-able data: the distinct layouts' walls
    (rows of '#' and '.', y down), and per step the layout, goal, position and direction before
    the action, the action, whether it reached the coin, and where it took the agent on that
    layout (``to``: x, y, direction; on the coin when it reached it)."""
    walls = np.asarray(rec["walls"], bool)
    layouts: list[str] = []
    steps = []
    for t in range(walls.shape[0]):
        text = "\n".join("".join("#" if walls[t, x, y] else "." for x in range(walls.shape[1]))
                         for y in range(walls.shape[2]))
        if not layouts or layouts[-1] != text:
            layouts.append(text)
        steps.append({"layout": len(layouts) - 1, "goal": [int(v) for v in rec["goal"][t]],
                      "pos": [int(v) for v in rec["pos"][t]], "dir": int(rec["dir"][t]),
                      "action": int(rec["action"][t]), "coin": bool(rec["coin"][t]),
                      "to": [int(v) for v in rec["to"][t]]})
    return {"layouts": layouts, "steps": steps}


def steps_of(episodes: list[dict]) -> dict[str, np.ndarray]:
    """The steps of recorded episodes (:func:`episode_record`) as arrays: walls ``[N, W, H]``,
    goal, pos ``[N, 2]``, dir, action ``[N]``."""
    walls, goal, pos, direction, action = [], [], [], [], []
    for ep in episodes:
        grids = [coin.parse_map(text) for text in ep["layouts"]]
        for s in ep["steps"]:
            walls.append(grids[s["layout"]])
            goal.append(s["goal"])
            pos.append(s["pos"])
            direction.append(s["dir"])
            action.append(s["action"])
    return {"walls": np.asarray(walls, bool), "goal": np.asarray(goal, np.int32), "pos": np.asarray(pos, np.int32),
            "dir": np.asarray(direction, np.int32), "action": np.asarray(action, np.int32)}


@dataclass
class Fit:
    """A fitted ISR of a session: its parameters and how well it predicts held-out judgements."""

    params: object
    n_steps: int  # shown steps fitted on (train and held out)
    n_judged: int  # of them, steps with a judgement
    test_mse: float  # on the held-out tenth
    pearson: float  # prediction against target on the held-out tenth (NaN when the targets do not vary)


@dataclass
class Outcome:
    """What a finished session measured."""

    goals_before: np.ndarray  # [E] greedy goals per episode after the last round (the person still there)
    goals_after: np.ndarray  # [E] after autonomy on the person's ISR
    params_before: object
    params_after: object
    socialize_curves: dict  # name -> [updates] (the rounds' simulated training, in order)
    autonomy_curves: dict  # name -> [updates]


class Engine:
    """The compiled programs of a study (one per app): episodes to show, ISR fits, training,
    evaluation, value maps. Pure functions of their inputs; callable from any thread."""

    def __init__(self, cfg: StudyConfig):
        cfg.validate()
        self.cfg = cfg
        self.preset = PRESETS[cfg.preset]
        self.world = cfg.world
        self.wp = self.world.params()
        self.env = self.world.env
        self.max_steps = int(self.wp.max_steps)
        self.capacity = cfg.episodes * self.max_steps
        self.isr_cfg = replace(self.preset.isr, clip_target=False, epochs=cfg.isr_epochs, hidden=tuple(cfg.isr_hidden))
        model = MODELS[cfg.reward_model]
        self.model = reward_models.bind(model, self.isr_cfg, self.env, self.wp, n_envs=1)
        self.learner = Learner(self.preset.ppo, self.env, self.model)
        self.caregiver = caregivers.as_arrays(self.world.caregiver())
        self._show = jax.jit(self._episodes, static_argnums=(2, 3))
        self._init = jax.jit(jax.vmap(self.learner.init, in_axes=(0, None, None)))
        self._observe = jax.jit(jax.vmap(coin.observe, in_axes=(0, None)))
        self._fit = jax.jit(lambda k, o, a, r, n, p0: self.model.fit(k, (o, a, r), n, p0))
        self._isr_init = jax.jit(self.model.init)

    # -- keys: every number of a session comes from its seed ------------------------------------
    @staticmethod
    def key(seed: int, *path: int) -> jax.Array:
        k = jax.random.PRNGKey(seed)
        for p in path:
            k = jax.random.fold_in(k, p)
        return k

    # -- the learner ---------------------------------------------------------------------------
    def new_state(self, seed: int):
        """A fresh learner (one run: leading axis 1)."""
        return self._init(self.key(seed, 0)[None], self.wp, self.caregiver)

    def state_bytes(self, state) -> bytes:
        """What a learner carries between rounds (network and optimizer), as bytes."""
        return serialization.to_bytes({"params": state.params, "opt_state": state.opt_state})

    def isr_from(self, data: bytes):
        """A fitted ISR's parameters from their bytes (``serialization.to_bytes``)."""
        return serialization.from_bytes(self._isr_init(self.key(0)), data)

    def state_from(self, seed: int, data: bytes):
        fresh = self.new_state(seed)
        saved = serialization.from_bytes({"params": fresh.params, "opt_state": fresh.opt_state}, data)
        return fresh.replace(params=saved["params"], opt_state=saved["opt_state"])

    # -- showing ----------------------------------------------------------------------------
    def _episodes(self, params, key, n: int, greedy: bool):
        env, wp, learner = self.env, self.wp, self.learner

        def episode(k):
            k0, k1 = jax.random.split(k)
            obs, st = env.reset(k0, wp)

            def one(carry, k):
                obs, st = carry
                k_act, k_env = jax.random.split(k)
                dist, _ = learner.policy(params, obs[None])
                action = (dist.mode() if greedy else dist.sample(k_act))[0]
                obs2, st2, _, _, _, info = env.step(k_env, st, action, wp)
                reached = info["goal_reached"]
                # Where the action took the agent on the layout it acted in (reaching the coin
                # redraws the layout: the agent is then shown on the coin).
                to = jnp.where(reached, jnp.concatenate([st.goal, st.dir[None]]),
                               jnp.concatenate([st2.pos, st2.dir[None]]))
                rec = {"walls": st.walls, "goal": st.goal, "pos": st.pos, "dir": st.dir, "action": action,
                       "coin": reached, "to": to}
                return (obs2, st2), rec

            return jax.lax.scan(one, (obs, st), jax.random.split(k1, self.max_steps))[1]

        return jax.vmap(episode)(jax.random.split(key, n))

    def show(self, params, seed: int, round_: int, greedy: bool = False, n: int | None = None) -> list[dict]:
        """The episodes a round shows: the policy of ``params`` (one run, leading axis 1) acting,
        its actions sampled (or its most likely ones, ``greedy``), as plain data."""
        n = n or self.cfg.episodes_per_round
        recs = self._show(jax.tree.map(lambda x: x[0], params), self.key(seed, 1, round_), n, greedy)
        recs = {k: np.asarray(v) for k, v in recs.items()}
        return [episode_record({k: v[i] for k, v in recs.items()}) for i in range(n)]

    # -- internalizing -----------------------------------------------------------------------
    def fit(self, seed: int, round_: int, episodes: list[dict], targets: np.ndarray) -> Fit:
        """The ISR fitted to every shown step (``targets``: one per step of ``episodes``, in order)."""
        steps = steps_of(episodes)
        n = len(targets)
        if n != len(steps["action"]):
            raise ValueError(f"{n} targets for {len(steps['action'])} shown steps")
        if n > self.capacity:
            raise ValueError(f"{n} shown steps exceed the study's {self.capacity}")
        # A random held-out tenth (the fit holds out its data's last tenth): the steps shuffled.
        order = np.random.default_rng([seed, round_]).permutation(n)
        pad = self.capacity - n

        def padded(x):
            x = np.asarray(x)[order]
            return np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])

        states = coin.CoinState(padded(steps["walls"]), padded(steps["goal"]), padded(steps["pos"]),
                                padded(steps["dir"]), np.zeros(self.capacity, np.int32))
        obs = self._observe(states, self.wp)
        actions = padded(steps["action"])[:, None]
        target = padded(np.asarray(targets, np.float32))
        key = self.key(seed, 2, round_)
        res = self._fit(key, obs, actions, target, jnp.int32(n), self._isr_init(key))
        pred, tgt, mask = (np.asarray(v) for v in (res.test_pred, res.test_target, res.test_mask))
        r = float(isr_.pearson(pred, tgt, mask))
        return Fit(res.params, n, int(np.count_nonzero(targets)), float(np.asarray(res.test_mse)[-1]), r)

    # -- training ----------------------------------------------------------------------------
    def _spec(self, isr_params):
        return phases.stack([RunSpec(self.wp, self.caregiver, presence.absent(), jnp.float32(1.0), isr_params)])

    def train(self, state, seed: int, phase: int, isr_params, steps: int,
              progress: Callable[[int], None] | None = None):
        """PPO on R_e + R_i of ``isr_params`` for ``steps`` environment steps (fresh environments,
        the network and optimizer going on). Returns (state, curves name -> [updates])."""
        # Two updates per compiled call: the page's progress bar moves every 4,096 steps.
        res = phases.autonomy(self.learner, state, self.key(seed, 3, phase)[None], self._spec(isr_params), steps,
                              PROGRESS_UPDATES, progress)
        return res.state, {k: v[0] for k, v in res.metrics.items()}

    def evaluate(self, params, seed: int) -> np.ndarray:
        """Greedy goals per episode of a learner's policy (``params``: one run, leading axis 1),
        ``[eval_episodes]``, on the same episodes for every learner of the study."""
        _, goals = phases.evaluate(self.learner, params, self.key(REFERENCE_SEED, 4)[None], [self.wp],
                                   self.caregiver, self.cfg.eval_episodes, self.max_steps)
        return goals[0, 0]

    def trace(self, params, seed: int) -> dict[str, np.ndarray]:
        """One greedy episode of a learner after autonomy, step by step (the page's animation)."""
        rec = phases.trace(self.learner, jax.tree.map(lambda x: x[0], params), self.key(seed, 5), self.wp,
                           self.max_steps)
        return rec

    def value_map(self, isr_params) -> dict[str, np.ndarray]:
        """The ISR's reward of stepping into each cell of one fixed layout, beside the scripted
        caregiver's (:func:`internalize.experiments.pipeline.value_map`)."""
        return pipeline.value_map(HUMAN_CAREGIVER, self.model, isr_params, 0, self.wp, groups=[self.world.caregiver()])


def targets_of(cfg: StudyConfig, n_steps: int, judged: dict[tuple[int, int], int],
               episodes_steps: list[int]) -> np.ndarray:
    """Targets of the shown steps: ``judged`` maps (episode, step) to the latest judgement (+1 or
    -1); unjudged steps are 0. ``episodes_steps``: steps of each shown episode, in order."""
    out = np.zeros(n_steps, np.float32)
    i = 0
    for e, length in enumerate(episodes_steps):
        for t in range(length):
            v = judged.get((e, t), 0)
            out[i] = cfg.praise if v > 0 else cfg.disapproval if v < 0 else 0.0
            i += 1
    return out


def scripted_judgements(episodes: list[dict], first: int = 0) -> dict[tuple[int, int], int]:
    """A scripted participant: praise on every step that reaches the coin, nothing otherwise
    (episodes numbered from ``first``)."""
    return {(first + e, t): 1 for e, ep in enumerate(episodes) for t, s in enumerate(ep["steps"]) if s["coin"]}


def simulate(engine: Engine, seed: int, judge: Callable[[list[dict], int], dict] = scripted_judgements,
             progress: Callable[[int], None] | None = None) -> tuple[Outcome, Fit]:
    """A whole session without a person: ``judge(episodes, first) -> {(episode, step): ±1}`` judges
    each round's episodes (default: the scripted participant). The scripted caregiver's learner
    that every session is compared against is this with :data:`REFERENCE_SEED`."""
    cfg = engine.cfg
    state = engine.new_state(seed)
    shown: list[dict] = []
    judged: dict = {}
    soc: list[dict] = []
    fit = None
    for r in range(cfg.rounds):
        eps = engine.show(state.params, seed, r)
        judged.update(judge(eps, len(shown)))
        shown += eps
        targets = targets_of(cfg, sum(len(e["steps"]) for e in shown), judged, [len(e["steps"]) for e in shown])
        fit = engine.fit(seed, r, shown, targets)
        state, curves = engine.train(state, seed, r, fit.params, cfg.round_steps, progress)
        soc.append(curves)
    return finish(engine, state, seed, fit, soc, progress), fit


def finish(engine: Engine, state, seed: int, fit: Fit, soc: list[dict],
           progress: Callable[[int], None] | None = None) -> Outcome:
    """The end of a session: greedy goals before autonomy, autonomy on the last ISR, goals after."""
    cfg = engine.cfg
    before_params = state.params
    goals_before = engine.evaluate(before_params, seed)
    aut: dict = {}
    if cfg.autonomy_steps > 0:
        state, aut = engine.train(state, seed, cfg.rounds, fit.params, cfg.autonomy_steps, progress)
    goals_after = engine.evaluate(state.params, seed)
    socialize = {k: np.concatenate([c[k] for c in soc]) for k in soc[0]}
    return Outcome(goals_before, goals_after, before_params, state.params, socialize, aut)


# ---------------------------------------------------------------------------------------------
# A finished session as an ordinary results folder (``internalize report`` and ``render`` read it)

ARMS = ("person", "scripted")


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    """One session's claims, judged over its evaluation episodes (one learner each, so the
    p-values speak of this learner's policy, not of people in general)."""
    before, after = curves["human/goals_before"][0], curves["human/goals_after"][0]  # [E], [arms, E]
    person, scripted = after[0], after[1]
    _, p_keep = stats.ttest_ind(person, before)
    _, p_vs = stats.ttest_ind(person, 0.9 * scripted, alternative="greater")
    kept = float(person.mean()) / float(before.mean()) if before.mean() > 0 else float("nan")
    claims = [
        Claim("person_persists",
              "The learner keeps what the person taught once they leave: after autonomy on the person's ISR it "
              "reaches at least 75% of the goals per episode it reached when they left.",
              holds=bool(np.isfinite(kept) and kept >= 0.75), value=float(person.mean()), p_value=p_keep,
              test=T_TWO_SIDED + " over evaluation episodes (after vs before autonomy)",
              detail={"before": float(before.mean()), "after": float(person.mean()), "retained_fraction": kept}),
        Claim("person_vs_script",
              "The person's learner reaches at least 90% of the goals per episode of the scripted caregiver's "
              "learner after autonomy, under the same protocol (non-inferiority, margin 10%).",
              holds=bool(p_vs < 0.05), value=float(person.mean() - scripted.mean()), p_value=p_vs,
              test=T_GREATER + " over evaluation episodes (person vs 0.9 x scripted)", margin=0.1 * float(scripted.mean()),
              detail={"person": float(person.mean()), "scripted": float(scripted.mean())}),
    ]
    per_seed = {"goals_before": before, "goals_after_person": person, "goals_after_scripted": scripted}
    return claims, per_seed


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    before, after = curves["human/goals_before"][0], curves["human/goals_after"][0]
    groups = [("person, when they left", before), ("person, after autonomy", after[0]),
              ("scripted caregiver, after autonomy", after[1])]
    return [figures.bars(Path(folder) / "human_caregiver.png", [g for g, _ in groups],
                         {"goals per episode": np.stack([v for _, v in groups], 1)}, "goals per episode (greedy)",
                         f"Participant {config.get('participant', '?')}: mean and 95% CI over {len(before)} episodes",
                         xlabel="learner")]


_WORLD = CoinWorld(n_walls=3)
HUMAN_CAREGIVER = Experiment(
    name="human_caregiver",
    title="A person as the caregiver: one session of the caregiver app",
    socialize_world=_WORLD,
    autonomy_world=_WORLD,
    arms=(Arm("isr", label="person"), Arm("isr", label="scripted")),
    budget=Budget(StudyConfig.rounds * StudyConfig.round_steps, StudyConfig.autonomy_steps),
    quick=Budget(StudyConfig.rounds * StudyConfig.round_steps, StudyConfig.autonomy_steps),
    analyze=analyze,
    plot=plot,
    isr_config=lambda preset: replace(preset.isr, clip_target=False),
    suite="human",
)
"""The declaration a session's results folder names (its curves come from :func:`write_results`,
not from the pipeline: ``internalize run human_caregiver`` is not how a session is made)."""


def write_results(folder: Path, engine: Engine, seed: int, outcome: Outcome, reference: Outcome, fit: Fit,
                  extra: dict) -> dict:
    """A finished session as a results folder: config.json, curves, params and manifest as a run
    of :data:`HUMAN_CAREGIVER` has them, then its report (summary.json and figures)."""
    cfg = engine.cfg
    exp = replace(HUMAN_CAREGIVER, socialize_world=engine.world, autonomy_world=engine.world,
                  budget=Budget(cfg.rounds * cfg.round_steps, cfg.autonomy_steps), eval_episodes=cfg.eval_episodes)
    preset = engine.preset
    s = replace(settings_for(exp, preset), seeds=1, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), pipeline.compile_seconds()
    config = runner.start_folder(folder, exp, preset, s, exp, False, EXPERIMENT_REF, study=dataclasses.asdict(cfg), **extra)
    soc = {k: v[None] for k, v in outcome.socialize_curves.items()}  # [seeds=1, U]
    aut = {k: np.stack([outcome.autonomy_curves[k], reference.autonomy_curves[k]])[None]
           for k in outcome.autonomy_curves}  # [1, arms, U]
    batch = engine.preset.ppo.batch_size
    curves = {**{f"socialize/{k}": v for k, v in soc.items()}, **{f"autonomy/{k}": v for k, v in aut.items()},
              "env_steps/socialize": batch * np.arange(1, next(iter(soc.values())).shape[-1] + 1),
              "env_steps/autonomy": batch * np.arange(1, next(iter(aut.values()), np.zeros((1, 1, 0))).shape[-1] + 1),
              "human/goals_before": outcome.goals_before[None],
              "human/goals_after": np.stack([outcome.goals_after, reference.goals_after])[None],
              "isr/test_mse": np.asarray([[[fit.test_mse]]]), "isr/pearson": np.asarray([[fit.pearson]])}
    for i, params in enumerate((outcome.params_after, reference.params_after)):
        for k, v in engine.trace(params, seed).items():
            curves[f"trace/{i}/{k}"] = v
    for k, v in engine.value_map(jax.tree.map(lambda x: np.asarray(x)[None], fit.params)).items():
        curves[f"valuemap/{k}"] = v
    params = {"socialize": outcome.params_before,
              "autonomy": jax.tree.map(lambda a, b: np.concatenate([np.asarray(a), np.asarray(b)]),
                                       outcome.params_after, reference.params_after)}
    runner.store_files(folder, config, curves, params, pipeline.PhaseClock(), t0, c0)
    from ..experiments.report import report

    return report(folder, HUMAN_CAREGIVER)


def outcome_bytes(o: Outcome) -> bytes:
    """An outcome as bytes (the scripted reference is kept once per study)."""
    return serialization.msgpack_serialize(jax.tree.map(np.asarray, {
        "goals_before": o.goals_before, "goals_after": o.goals_after, "params_before": o.params_before,
        "params_after": o.params_after, "socialize_curves": o.socialize_curves, "autonomy_curves": o.autonomy_curves}))


def outcome_from(data: bytes) -> Outcome:
    d = serialization.msgpack_restore(data)
    return Outcome(np.asarray(d["goals_before"]), np.asarray(d["goals_after"]), d["params_before"], d["params_after"],
                   dict(d["socialize_curves"]), dict(d["autonomy_curves"]))
