"""Experiment declarations (internalize.experiments.spec and the paper's six): worlds, arms, budgets."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

from internalize.config import PRESETS
from internalize import experiments
from internalize.worlds import coin as world


def test_experiments_are_declared_with_their_paper_budgets():
    e = experiments.EXPERIMENTS
    paper = {"unlearning", "isr_accuracy", "ood_walls", "ood_maps", "reward_hacking", "prosocial"}
    open_ = {"noisy_caregiver", "two_caregivers", "feedback_kinds",  # issue 14
             "readiness", "leaving", "scale",  # issue 15
             "reward_learners"}  # issue 16
    assert set(e) == paper | open_
    assert {n for n, x in e.items() if x.suite == "paper"} == paper
    for n in open_:  # the budgets: 120k + 120k steps, 10 seeds at full budget
        assert e[n].suite == "open" and e[n].budget == experiments.Budget(120_000, 120_000), n
        assert e[n].isr_config(PRESETS["paper"]).clip_target is False, n
    assert e["prosocial"].budget == experiments.Budget(480_000, 480_000)
    assert e["prosocial"].conditions == ("oracle", "none", "isr") and e["prosocial"].isr_replaces_reward
    paper_isr = e["prosocial"].isr_config(PRESETS["paper"])
    assert (paper_isr.batch_size, paper_isr.epochs) == (10, 10.0)  # SPEC 8
    assert e["unlearning"].budget == experiments.Budget(120_000, 120_000)
    assert e["ood_walls"].socialize_world.n_walls == 1 and e["ood_walls"].autonomy_world.n_walls == 5
    assert e["ood_walls"].eval_episodes == 100
    assert e["ood_maps"].budget.autonomy_steps == 240_000
    assert {w.map_name for w in e["ood_maps"].eval_worlds} == set(world.NAMED_MAPS)
    assert [round(f * 120_000) for f in e["isr_accuracy"].isr_prefixes] == [10_000, 20_000, 30_000, 40_000,
                                                                             80_000, 120_000]


