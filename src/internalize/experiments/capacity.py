"""What a run may ask for: stated limits on its settings, and the memory it will need, both
checked before anything is compiled or written.

The memory estimate is counted from shapes (bytes of the arrays the pipeline holds at its
peak), not measured; a run whose estimate exceeds the memory available is refused with a
one-line error that names the estimate (``--ignore-memory-check`` overrides).

What does not live here: the settings themselves (:mod:`.spec`), running (:mod:`.pipeline`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

LIMITS = {
    "seeds": 10_000,
    "budget.socialize_steps": 1_000_000_000,
    "budget.autonomy_steps": 1_000_000_000,
    "ppo.n_envs": 65_536,
    "ppo.n_steps": 1_000_000,
    "ppo.n_epochs": 10_000,
    "eval_episodes": 1_000_000,
    "updates_per_chunk": 100_000,
}
"""The largest value each setting may take (beyond it a typo is far likelier than intent)."""


def check_limits(s) -> None:
    """ValueError (one line) naming the first setting beyond its stated limit."""
    values = {"seeds": s.seeds, "budget.socialize_steps": s.budget.socialize_steps,
              "budget.autonomy_steps": s.budget.autonomy_steps, "ppo.n_envs": s.ppo.n_envs,
              "ppo.n_steps": s.ppo.n_steps, "ppo.n_epochs": s.ppo.n_epochs, "eval_episodes": s.eval_episodes,
              "updates_per_chunk": s.updates_per_chunk}
    for name, limit in LIMITS.items():
        if values[name] > limit:
            raise ValueError(f"setting {name} must be at most {limit:,}, got {values[name]:,}")


def available_bytes() -> int | None:
    """Memory available to a new run now (Linux ``MemAvailable``; None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Estimate:
    total: int
    parts: dict

    def describe(self) -> str:
        big = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        return f"{_gib(self.total)} (" + ", ".join(f"{k} {_gib(v)}" for k, v in big) + ")"


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


BASE_BYTES = int(1.5 * 2**30)
"""The process before any run: Python, JAX, XLA and its compiled programs (about 1.5 GiB measured
in a quick reproduction before its first run's arrays)."""


def estimate(exp, preset, s) -> Estimate:
    """Peak memory of a run, counted from its shapes (bytes).

    Counted: the socialization data every step keeps for the reward model (chunks, their joined
    copy and the device copy the fit reads: 3 copies), the chunk buffer that collects it, one
    rollout per run in each phase (observations twice: taken and final) with the networks'
    activations over it, and the process itself (:data:`BASE_BYTES`).
    """
    from .. import phases

    if getattr(exp, "variants", ()):  # variants run one after another: the largest one's peak
        import dataclasses

        ests = []
        for v in exp.variants:
            sub = dataclasses.replace(exp, variants=(), socialize_world=v.world, autonomy_world=v.world)
            vs = dataclasses.replace(s, budget=v.budget(s.budget),
                                     world=dataclasses.replace(s.world, socialize=v.world, autonomy=v.world))
            ests.append(estimate(sub, preset, vs))
        return max(ests, key=lambda e: e.total)
    world = s.world.socialize
    obs, _ = _sizes(world)
    b = s.ppo.batch_size
    groups = len(exp.socializations()[0])
    at_once = min(groups, exp.caregivers_per_batch or groups)
    u_soc = phases.n_updates(s.budget.socialize_steps, b)
    seeds_at_once = s.seeds
    if getattr(exp, "socialize_gib", None) is not None:
        seeds_at_once = int(max(1, min(s.seeds, exp.socialize_gib * 2**30 // socialization_bytes(world, b, u_soc,
                                                                                                 at_once))))
    soc_runs = seeds_at_once * at_once  # socializing at once
    aut_runs = s.seeds * max(1, len(exp.arms)) if s.budget.autonomy_steps > 0 and exp.arms else 0
    per_sample = 4 * (obs * 8 if s.ppo.network == "paper_cnn" else 2 * sum(s.ppo.hidden) + obs)
    step = socialization_bytes(world, 1, 1, 1)
    parts = {
        "socialization data": 3 * seeds_at_once * socialization_bytes(world, b, u_soc, at_once),
        "collect buffer": soc_runs * min(s.updates_per_chunk, u_soc) * b * step,
        "rollouts": max(soc_runs, aut_runs) * b * (2 * obs + 64 + per_sample),
        "process": BASE_BYTES,
    }
    return Estimate(sum(parts.values()), parts)


def _sizes(world) -> tuple[int, int]:
    """(bytes of one observation, agents acting) of a world spec."""
    import math

    env = world.env
    return int(math.prod(env.obs_shape(world.params()))), 1 + env.other_agents


def socialization_bytes(world, batch_size: int, updates: int, groups: int) -> int:
    """Bytes of socialization data one seed keeps (obs, actions, R_s and intended R_s per step),
    for ``groups`` ways of socializing it, ``updates`` updates of ``batch_size`` steps."""
    obs, agents = _sizes(world)
    return groups * updates * batch_size * (obs + 4 * agents + 8)


def check_memory(exp, preset, s) -> Estimate:
    """ValueError (one line) when the run's estimated peak exceeds the memory available now."""
    est = estimate(exp, preset, s)
    avail = available_bytes()
    if avail is not None and est.total > avail:
        raise ValueError(f"this run would need about {est.describe()}, more than the {_gib(avail)} available; "
                         "use fewer seeds or steps (or --ignore-memory-check)")
    return est
