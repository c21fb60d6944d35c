"""Worked example: a caregiver who wants the cart near the centre of the track (gymnax CartPole).

The world is gymnax's CartPole-v1 with one change, stated plainly: its own reward pulls the
cart to the right, R_e = 1 + LURE * x (x is the cart's position, the track ends at |x| = 2.4),
as if a treat lay at the right end of the track. The caregiver praises (+1) every step that
ends with the cart within 0.5 of the centre. While the caregiver is there, its praise
outweighs the lure and the learner balances the pole near the centre; then it leaves:

- ``oracle``: the caregiver stays;
- ``none``: nothing replaces it, and the learner drifts to the right, after the lure;
- ``isr``: the internal social reward model, fitted on socialization, stands in for the
  praise, and the learner keeps to the centre.

Why the lure: on plain CartPole (``--lure 0``) nothing in the world works against the
caregiver's value. A learner that balances near the centre also collects the full +1 per step
there, so without the caregiver it often keeps doing so: at the default budget, 3 of 10 seeds
of `none` stayed near the centre (docs/own_world.md). The coin world of the paper has the
tension built in (each step towards the goal costs); here the lure plays that part.

The measure is the fraction of steps the cart spends near the centre (the caregiver's
``goals_per_episode`` divided by the time limit), at the end of socialization and at the end
of autonomy per condition; ``none`` and ``isr`` are compared with a two-sample t-test over
seeds. Results, a figure and ``summary.json`` go to ``OUT/cartpole_centre/``.

Run it (about a minute on 2 CPU cores; ``--quick`` for a smoke run)::

    python examples/cartpole_centre.py --out results

or import it: :func:`experiment` declares the experiment, :func:`run` runs it. See
docs/own_world.md for the measured result.
"""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts)

import argparse
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments.classic_control.cartpole import CartPole, EnvParams

from internalize import experiments, figures, stats
from internalize.worlds.gymnax import GymnaxWorld, Transition, from_gymnax
from internalize.config import PRESETS

ZONE = 0.5  # "near the centre": |x| < ZONE
PRAISE = 1.0  # the caregiver's R_s for a step that ends near the centre
LURE = 0.3  # the world's extra reward per unit of x (to the right)
BUDGET = experiments.Budget(socialize_steps=150_000, autonomy_steps=150_000)
SEEDS = 10
QUICK = experiments.Budget(socialize_steps=8_192, autonomy_steps=8_192)  # a smoke test, not a result
END_FRACTION = 0.1  # "end of a phase": the mean over its last 10% of updates


@struct.dataclass
class LuredParams(EnvParams):
    lure: float = LURE
    """The world's extra reward per unit of cart position: R_e = 1 + lure * x."""


class LuredCartPole(CartPole):
    """gymnax's CartPole-v1 whose own reward pulls the cart to the right (``lure = 0``: plain)."""

    @property
    def default_params(self) -> LuredParams:
        return LuredParams()

    def step_env(self, key, state, action, params):
        obs, state, reward, done, info = super().step_env(key, state, action, params)
        return obs, state, reward + params.lure * state.x, done, info

    @property
    def name(self) -> str:
        return "LuredCartPole-v1"


def praise_centre(t: Transition) -> jnp.ndarray:
    """The caregiver: +PRAISE for every step that ends with the cart near the centre."""
    return jnp.where(jnp.abs(t.next_state.x) < ZONE, PRAISE, 0.0)


def world(lure: float = LURE) -> GymnaxWorld:
    env = LuredCartPole()
    return from_gymnax(env, env.default_params.replace(lure=lure), caregiver=praise_centre)


def near_centre(curves: dict, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of steps near the centre per update: socialization ``[S, U]``, autonomy ``[S, A, U]``.

    ``goals_per_episode`` counts praised steps per ``max_steps`` steps of experience, so dividing
    by ``max_steps`` gives the fraction of all steps, however long the episodes were.
    """
    max_steps = config["settings"]["world.socialize.max_steps"]
    return (curves["socialize/goals_per_episode"] / max_steps, curves["autonomy/goals_per_episode"] / max_steps)


def analyze(curves: dict, config: dict) -> tuple[list[experiments.Claim], dict]:
    """`none` drifts away from the centre and `isr` holds it (the claims of this example)."""
    soc, aut = near_centre(curves, config)
    socialized = stats.tail_mean(soc, END_FRACTION)  # [S]
    end = {name: stats.tail_mean(aut[:, i], END_FRACTION) for i, name in enumerate(config["arms"])}
    _, p = stats.ttest_ind(end["none"], end["isr"])
    _, p_oracle = stats.ttest_ind(end["isr"], end["oracle"])
    s, none, isr, oracle = (float(v.mean()) for v in (socialized, end["none"], end["isr"], end["oracle"]))
    significant = bool(np.isfinite(p) and p < 0.05)
    claims = [
        experiments.Claim(
            "none_drifts",
            "Without the caregiver and without an ISR, the learner leaves the centre: at the end of autonomy "
            "`none` spends less than half the socialized fraction of steps near the centre, significantly less "
            "than `isr` (two-sample t-test over seeds).",
            holds=bool(none < 0.5 * s and none < isr and significant), value=none, p_value=p,
            detail={"socialized": s, "none": none, "isr": isr, "test": "none vs isr, two-sample t"}),
        experiments.Claim(
            "isr_holds",
            "With the ISR standing in for the caregiver, the learner keeps to the centre: at the end of autonomy "
            "`isr` keeps at least 75% of the socialized fraction of steps near the centre, significantly more "
            "than `none`.",
            holds=bool(isr >= 0.75 * s and isr > none and significant), value=isr, p_value=p,
            detail={"socialized": s, "oracle": oracle, "isr_vs_oracle_p": p_oracle}),
    ]
    per_seed = {"socialized_near_centre": socialized, "end_of_autonomy_near_centre": end,
                "isr_test_mse": curves["isr/test_mse"][:, -1, -1]}
    return claims, per_seed


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    soc, aut = near_centre(curves, config)
    return [figures.learning_curve(
        Path(folder) / "cartpole_centre.png", curves["env_steps/socialize"], soc, curves["env_steps/autonomy"], aut,
        config["arms"], f"fraction of steps with |x| < {ZONE}",
        f"CartPole: a caregiver wants the cart near the centre ({config['seeds']} seeds, mean and 95% CI)")]


def experiment(lure: float = LURE, budget: experiments.Budget = BUDGET) -> experiments.Experiment:
    """The experiment: socialize on the lured CartPole, fit the ISR, then oracle / none / isr."""
    w = world(lure)
    return experiments.Experiment(
        name="cartpole_centre",
        title="CartPole: the ISR keeps the cart near the centre after the caregiver leaves",
        socialize_world=w,
        autonomy_world=w,
        arms=(experiments.Arm("oracle"), experiments.Arm("none"), experiments.Arm("isr")),
        budget=budget,
        quick=QUICK,
        analyze=analyze,
        plot=plot,
        quick_seeds=2,
    )


def run(out: Path | str = "results", seeds: int | None = None, *, lure: float = LURE,
        budget: experiments.Budget = BUDGET, quick: bool = False, root_seed: int = 0) -> dict:
    """Run the experiment with the ``fast`` preset into ``out/cartpole_centre*``; returns its summary.

    ``seeds``: default SEEDS, or the quick budget's 2 with ``quick``.
    """
    exp = experiment(lure, budget)
    seeds = seeds or (exp.quick_seeds if quick else SEEDS)
    return experiments.run(exp, PRESETS["fast"], seeds, Path(out), quick=quick, root_seed=root_seed)


def describe(summary: dict) -> str:
    """The measured numbers, as lines of text."""
    per = summary["per_seed"]
    lines = [f"fraction of steps near the centre (mean over {summary['seeds']} seeds, 95% CI):"]
    rows = [("end of socialization", per["socialized_near_centre"])]
    rows += [(f"end of autonomy, {k}", v) for k, v in per["end_of_autonomy_near_centre"].items()]
    for label, v in rows:
        mean, lo, hi = stats.mean_ci(np.asarray(v, float))
        lines.append(f"  {label:<28} {float(mean):.3f}  [{float(lo):.3f}, {float(hi):.3f}]")
    for c in summary["claims"]:
        p = c["p_value"]
        lines.append(f"  {c['id']}: {'holds' if c['holds'] else 'DOES NOT HOLD'} (p = {p:.2g})" if p is not None
                     else f"  {c['id']}: {'holds' if c['holds'] else 'DOES NOT HOLD'}")
    lines.append(f"  wall time {summary['wall_seconds']:.0f} s; results in {summary.get('folder', '?')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results", help="results folder (default: results)")
    ap.add_argument("--seeds", type=int, default=None, help=f"seeds (default {SEEDS}; 2 with --quick)")
    ap.add_argument("--socialize-steps", type=int, default=BUDGET.socialize_steps)
    ap.add_argument("--autonomy-steps", type=int, default=BUDGET.autonomy_steps)
    ap.add_argument("--lure", type=float, default=LURE, help=f"R_e = 1 + lure * x (default {LURE}; 0: plain CartPole)")
    ap.add_argument("--root-seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a tiny smoke run (2 seeds, 8k + 8k steps)")
    a = ap.parse_args(argv)
    summary = run(a.out, a.seeds, lure=a.lure, budget=experiments.Budget(a.socialize_steps, a.autonomy_steps),
                  quick=a.quick, root_seed=a.root_seed)
    print(describe(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
