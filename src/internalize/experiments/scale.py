"""Open question (SPEC 9): does internalization survive bigger rooms and longer horizons?

The coin world at interior side 5 (the paper), 7, 9 and 13, and at side 9 with 100- and 200-step
episodes. Each setting is a variant (:class:`.spec.Variant`): its own socialization, ISR and
autonomy under `oracle`, `none` and `isr`.

- Walls in proportion to the area: 3 at side 5 (25 cells), so round(3 n^2 / 25): 6, 10, 20.
- Episode length in proportion to the side: 20 at side 5, so 4 n: 28, 36, 52 (the long-horizon
  settings: 100 and 200 at side 9). The step cost is 0.9 / length, so a whole episode of forward
  steps costs 0.9 at every length, as in the paper.
- The view is egocentric and covers the whole interior from any cell: 2n - 1 cells a side
  (9, 13, 17, 25), as the coin world always sizes it; the observation grows with it.
- Budgets (socialization and autonomy) in proportion to the area, n^2 / 25 times the
  experiment's, up to a cap of ``cap`` times (stated: 2, so 240k + 240k at full budget).
- Socialization keeps every step's observation for the ISR (25 x 25 x 4 bytes at side 13), so
  seeds socialize in batches that keep at most 2 GiB of data at once (same results).

Persistence = end-of-autonomy goals per episode over end-of-socialization goals per episode,
per seed. Socialization "succeeds" at a setting when its learners reach at least 1 goal per
episode at its end (mean over seeds), and for a seed when that seed's learner does: persistence
is defined only for such seeds (a learner that never learned the value has nothing to keep), and
the claims count the others as left out. The claims are hypotheses, judged as measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import figures, stats
from ..worlds import CoinWorld
from .claims import ALPHA, END_FRACTION, T_ONE_SAMPLE, not_judged
from .spec import Arm, Claim, Variant, open_question

BASE_SIDE = 5
BASE_WALLS = 3
BASE_STEPS = 20
SUCCESS = 1.0  # socialization succeeds: at least this many goals per episode at its end
KEEP = 0.75  # isr_keeps_at_scale: the share of socialized goals `isr` keeps (hypothesis)
CONDITIONS = ("oracle", "none", "isr")


@dataclass(frozen=True)
class Design:
    sizes: tuple[int, ...] = (5, 7, 9, 13)
    """Interior sides of the rooms (5: the paper's)."""
    horizons: tuple[int, ...] = (100, 200)
    """Long-horizon settings: episode lengths at side ``horizon_side``."""
    horizon_side: int = 9
    """The room side of the long-horizon settings."""
    cap: float = 2.0
    """Budgets scale with the area up to this multiple of the experiment's budget."""

    def validate(self) -> None:
        for n in (*self.sizes, self.horizon_side):
            if not 2 <= n <= 32:
                raise ValueError(f"setting design: room side {n} is not in 2..32")
        for h in self.horizons:
            if not 1 <= h <= 10_000:
                raise ValueError(f"setting design.horizons: episode length {h} is not in 1..10000")
        if not self.cap >= 1.0:
            raise ValueError(f"setting design.cap must be at least 1, got {self.cap}")
        if not self.sizes and not self.horizons:
            raise ValueError("setting design: no sizes and no horizons to run")


def world(side: int, max_steps: int | None = None) -> CoinWorld:
    return CoinWorld(n_walls=round(BASE_WALLS * side * side / BASE_SIDE ** 2), size=side,
                     max_steps=max_steps or round(BASE_STEPS * side / BASE_SIDE))


def scale_of(side: int, cap: float) -> float:
    return min(side * side / BASE_SIDE ** 2, cap)


def variants_of(d: Design) -> tuple[Variant, ...]:
    out = [Variant(f"side{n}", world(n), scale_of(n, d.cap)) for n in d.sizes]
    out += [Variant(f"side{d.horizon_side}_h{h}", world(d.horizon_side, h), scale_of(d.horizon_side, d.cap))
            for h in d.horizons]
    return tuple(out)


def arms_of(d: Design) -> tuple[Arm, ...]:
    return tuple(Arm(c) for c in CONDITIONS)


def _labels(curves: dict) -> list[str]:
    return list(dict.fromkeys(k.split("/")[1] for k in curves if k.startswith("variant/")))


def table(curves: dict, config: dict) -> dict:
    """Per setting: per-seed socialized goals, oracle's, none's and isr's end goals and their
    persistence, the ISR's held-out and sweep Pearson r, and env-steps/s."""
    arms = config["arms"]
    out = {}
    for v in _labels(curves):
        c = {k[len(f"variant/{v}/"):]: x for k, x in curves.items() if k.startswith(f"variant/{v}/")}
        soc = stats.tail_mean(c["socialize/goals_per_episode"], END_FRACTION)
        row = {"socialized": soc, "pearson": np.asarray(c["isr/pearson"])[:, -1]}
        if "sweep/pred" in c:
            row["pearson_sweep"] = stats.pearson_rows(c["sweep/pred"], c["sweep/target"])
        if "autonomy/goals_per_episode" in c:
            end = stats.tail_mean(c["autonomy/goals_per_episode"], END_FRACTION)
            ok = soc >= SUCCESS  # persistence is defined for the seeds whose socialization succeeded
            for i, a in enumerate(arms):
                row[a] = end[:, i]
                if a != "oracle":
                    with np.errstate(divide="ignore", invalid="ignore"):
                        row[f"persistence_{a}"] = np.where(ok, end[:, i] / np.where(ok, soc, 1.0), np.nan)
            row["seeds_socialized"] = ok
        steps = float(c["steps"]) if "steps" in c else float("nan")
        wall = float(c["seconds/wall"]) if "seconds/wall" in c else float("nan")
        row["env_steps_per_s"] = np.array([steps / wall]) if wall > 0 else np.array([np.nan])
        row["max_steps"] = int(c["world/max_steps"]) if "world/max_steps" in c else 0
        row["side"] = int(c["world/size"]) if "world/size" in c else 0
        out[v] = row
    return out


def _succeeded(row: dict) -> bool:
    return bool(np.nanmean(row["socialized"]) >= SUCCESS)


def _over_sizes(t: dict, id_: str, statement: str, key: str, popmean: float, alternative: str) -> Claim:
    sizes = [v for v in t if "_h" not in v]
    ok = [v for v in sizes if _succeeded(t[v])]
    if not sizes or key not in t[sizes[0]]:
        return not_judged(id_, statement, "a room size with autonomy", T_ONE_SAMPLE)
    if not ok:  # a stated result: nothing to judge persistence on
        return Claim(id_, statement, False, float("nan"), float("nan"), test=T_ONE_SAMPLE,
                     detail={"not judged": "socialization failed at every size (fewer than "
                                           f"{SUCCESS:g} goal per episode at its end)",
                             "sizes_where_socialization_failed": sizes})
    ps, means, left_out = {}, {}, {}
    for v in ok:
        x = t[v][key][t[v]["seeds_socialized"]]  # seeds whose own socialization failed have no persistence
        left_out[v] = int((~t[v]["seeds_socialized"]).sum())
        _, ps[v] = stats.ttest_1samp(x, popmean, alternative=alternative)
        means[v] = float(np.mean(x))
    holds = all(np.isfinite(p) and p < ALPHA for p in ps.values())
    worst = max(ps, key=lambda v: ps[v] if np.isfinite(ps[v]) else np.inf)
    sign = ">" if alternative == "greater" else "<"
    return Claim(id_, statement, holds=bool(holds), value=means[worst], p_value=float(ps[worst]),
                 test=T_ONE_SAMPLE + f" ({sign} {popmean}) at each size; p and value: the weakest size",
                 detail={"weakest": worst, "mean_by_size": means, "p_by_size": ps,
                         "seeds_left_out_by_size (their socialization failed)": left_out,
                         "sizes_where_socialization_failed": [v for v in sizes if v not in ok]})


def analyze(curves: dict, config: dict) -> tuple[list[Claim], dict]:
    t = table(curves, config)
    claims = [
        _over_sizes(t, "isr_keeps_at_scale",
                    f"Hypothesis: the ISR keeps the value at scale. At every room size where socialization succeeds "
                    f"(at least {SUCCESS:g} goal per episode at its end), `isr` keeps at least {KEEP:.0%} of the "
                    "socialized goals per episode at the end of autonomy.", "persistence_isr", KEEP, "greater"),
        _over_sizes(t, "none_unlearns_at_scale",
                    "Hypothesis: without the ISR the value is unlearned at scale. At every room size where "
                    "socialization succeeds, `none` ends autonomy below its socialized goals per episode "
                    "(persistence < 1).", "persistence_none", 1.0, "less"),
    ]
    per_seed = {v: {k: (np.asarray(x).tolist() if isinstance(x, np.ndarray) else x) for k, x in row.items()}
                for v, row in t.items()}
    failed = [v for v, row in t.items() if not _succeeded(row)]
    return claims, {"settings": per_seed, "socialization_failed": failed}


def plot(curves: dict, config: dict, folder: Path) -> list[Path]:
    t = table(curves, config)
    metrics = {"persistence_isr": "persistence of isr (end / socialized goals)",
               "persistence_none": "persistence of none",
               "pearson": "ISR Pearson r, held-out steps"}
    if any("pearson_sweep" in row for row in t.values()):
        metrics["pearson_sweep"] = "ISR Pearson r, exhaustive sweep"
    panels = {}
    sizes = [v for v in t if "_h" not in v]
    horizons = [v for v in t if "_h" in v]
    if sizes:
        panels["room side (episode length 4 x side)"] = {
            "levels": [t[v]["side"] for v in sizes], **{m: [t[v].get(m, np.array([np.nan])) for v in sizes]
                                                         for m in metrics}}
    if horizons:
        base = [v for v in sizes if t[v]["side"] == t[horizons[0]]["side"]]
        hs = base + horizons
        panels[f"episode length (side {t[horizons[0]]['side']})"] = {
            "levels": [t[v]["max_steps"] for v in hs], **{m: [t[v].get(m, np.array([np.nan])) for v in hs]
                                                           for m in metrics}}
    return [figures.levels(folder / "scale.png", panels, metrics,
                           f"Scale ({config['preset']} preset, {config['seeds']} seeds; points: seeds, bars: mean "
                           "and 95% CI)", xlabel="setting")]


DESIGN = Design()
SCALE = open_question(
    name="scale",
    title="Bigger rooms and longer horizons: does internalization survive? (SPEC 9)",
    socialize_world=CoinWorld(n_walls=3),
    analyze=analyze,
    plot=plot,
    design=DESIGN,
    arms_of=arms_of,
    variants_of=variants_of,
    isr_sweep_layouts=10,
    socialize_gib=2.0,
)
