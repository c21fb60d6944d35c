"""Figures, made from stored results (never from live training state).

What does not live here: what a figure shows for an experiment (that experiment's module).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import stats  # noqa: E402
from .results import atomic_write_bytes  # noqa: E402

CONDITION_COLORS = {"oracle": "#2ca02c", "none": "#d62728", "isr": "#1f77b4", "frozen": "#7f7f7f"}
SOCIALIZE_COLOR = "#444444"


def _band(ax, x, curves, color, label):
    mean, lo, hi = stats.mean_ci(curves, axis=0)
    ax.plot(x, mean, color=color, label=label, lw=1.8)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def save(fig, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def learning_curve(path: Path, steps_soc: np.ndarray, soc: np.ndarray, steps_aut: np.ndarray, aut: np.ndarray,
                   conditions: list[str], ylabel: str, title: str) -> Path:
    """Curves over both phases: socialization ``soc [seeds, U_s]``, then ``aut [seeds, C, U_a]``.

    Mean and 95% band over seeds per condition; the caregiver's departure is marked.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    _band(ax, steps_soc, soc, SOCIALIZE_COLOR, "socialization (caregiver present)")
    offset = steps_soc[-1]
    for c, name in enumerate(conditions):
        _band(ax, offset + steps_aut, aut[:, c], CONDITION_COLORS.get(name, None), f"autonomy: {name}")
    ax.axvline(offset, color="black", ls="--", lw=1)
    ax.text(offset, ax.get_ylim()[1], " caregiver leaves", va="top", ha="left", fontsize=9)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return save(fig, path)


OTHER_COLORS = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
"""Series that are not a plain condition (e.g. ``isr@early``), in order."""


def bars(path: Path, groups: list[str], series: dict[str, np.ndarray], ylabel: str, title: str,
         xlabel: str = "evaluation world") -> Path:
    """Grouped bars of per-seed values: ``series[name] [seeds, groups]``; mean, 95% CI, points."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(groups) * max(1, len(series)) / 2 + 2), 4.0))
    width = 0.8 / max(1, len(series))
    rng = np.random.default_rng(0)
    others = iter(OTHER_COLORS * 4)
    for j, (name, values) in enumerate(series.items()):
        values = np.asarray(values, float)
        mean, lo, hi = stats.mean_ci(values, axis=0)
        xs = np.arange(len(groups)) + (j - (len(series) - 1) / 2) * width
        color = CONDITION_COLORS.get(name.split("/")[-1]) or next(others)
        ax.bar(xs, mean, width * 0.9, color=color, alpha=0.7, label=name,
               yerr=np.stack([mean - lo, hi - mean]), capsize=3)
        for g in range(len(groups)):
            jitter = rng.uniform(-width * 0.25, width * 0.25, values.shape[0])
            ax.scatter(xs[g] + jitter, values[:, g], s=8, color="black", zorder=3)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)


def mse_vs_budget(path: Path, steps: np.ndarray, mse: np.ndarray, title: str) -> Path:
    """ISR test MSE ``[seeds, budgets]`` against socialization steps, log scale, mean and band."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    log = np.log10(np.maximum(mse, 1e-12))
    mean, lo, hi = stats.mean_ci(log, axis=0)
    ax.plot(steps, 10 ** mean, marker="o", color=CONDITION_COLORS["isr"], label="geometric mean over seeds")
    ax.fill_between(steps, 10 ** lo, 10 ** hi, color=CONDITION_COLORS["isr"], alpha=0.2, lw=0, label="95% CI")
    ax.set_yscale("log")
    ax.set_xlabel("socialization steps (environment steps per seed)")
    ax.set_ylabel("ISR test MSE (reward units squared)")
    ax.legend(frameon=False)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)


def isr_training(path: Path, samples: np.ndarray, train: np.ndarray, test: np.ndarray, title: str) -> Path:
    """ISR train (balanced) and test error over its own training, ``[seeds, evals]``."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for name, curve, color in (("train (balanced)", train, "#ff7f0e"), ("test", test, CONDITION_COLORS["isr"])):
        log = np.log10(np.maximum(curve, 1e-12))
        mean, lo, hi = stats.mean_ci(log, axis=0)
        ax.plot(samples, 10 ** mean, label=name, color=color)
        ax.fill_between(samples, 10 ** lo, 10 ** hi, color=color, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("ISR training samples drawn")
    ax.set_ylabel("MSE (reward units squared)")
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)


def scatter(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray, float]], title: str) -> Path:
    """ISR prediction against the caregiver's reward: ``(name, target, prediction, r)`` panels."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (name, target, pred, r) in zip(axes[0], panels):
        jitter = rng.uniform(-0.01, 0.01, len(target))
        ax.scatter(target + jitter, pred, s=3, alpha=0.3, color=CONDITION_COLORS["isr"], label="one step or state")
        ax.plot([0, 0.4], [0, 0.4], color="black", lw=1, ls="--", label="R_i = R_s")
        ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.set_xlabel("caregiver's reward R_s (per step)")
        ax.set_ylabel("ISR prediction R_i (per step)")
        ax.set_title(f"{name} (Pearson r = {r:.3f})")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)


def hacking(path: Path, steps: np.ndarray, internal: np.ndarray, goals: np.ndarray, title: str) -> Path:
    """Internal return collected and goals really reached during autonomy, ``[seeds, updates]``."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    _band(ax, steps, internal, CONDITION_COLORS["isr"], "internal return (sum of R_i per episode)")
    ax.set_xlabel("autonomy steps (per seed)")
    ax.set_ylabel("internal return per episode", color=CONDITION_COLORS["isr"])
    ax2 = ax.twinx()
    _band(ax2, steps, goals, CONDITION_COLORS["none"], "goals reached per episode")
    ax2.set_ylabel("goals per episode", color=CONDITION_COLORS["none"])
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, frameon=False, loc="best")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save(fig, path)


def gap_vs_budget(path: Path, steps: np.ndarray, gap: np.ndarray, title: str) -> Path:
    """Hacking gap ``[seeds, budgets]`` against socialization steps."""
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    mean, lo, hi = stats.mean_ci(gap, axis=0)
    ax.plot(steps, mean, marker="o", color=CONDITION_COLORS["none"], label="mean over seeds")
    ax.fill_between(steps, lo, hi, color=CONDITION_COLORS["none"], alpha=0.2, lw=0, label="95% CI")
    ax.axhline(0, color="black", lw=1)
    ax.legend(frameon=False)
    ax.set_xscale("log")
    ax.set_xticks(steps, [f"{int(s):,}" for s in steps], rotation=30)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("socialization steps before the ISR was fitted")
    ax.set_ylabel("hacking gap (internal return - 0.4 x goals)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)


def rollout(path: Path, frames: list[np.ndarray], captions: list[str], title: str, per_row: int = 10) -> Path:
    """Rendered frames of one episode, ``per_row`` to a row."""
    n = len(frames)
    rows = -(-n // per_row)
    cols = min(n, per_row)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, cap in zip(axes.ravel(), frames, captions):
        ax.imshow(img)
        ax.set_title(cap, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def scaling(path: Path, table: dict) -> Path:
    """``internalize bench --scaling``: throughput against runs batched and against world size."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    runs = [r["runs"] for r in table["by_runs"]]
    a.plot(runs, [r["env_steps_per_s"] for r in table["by_runs"]], "o-", color="C0")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xticks(runs, [str(r) for r in runs])
    a.set_xlabel("runs batched in one vmap")
    a.set_ylabel("training env-steps per second (all runs)")
    a.set_title("fast preset, 5x5 interior")
    a.grid(alpha=0.3)
    sizes = [r["size"] for r in table["by_size"]]
    rate = np.array([r["env_steps_per_s"] for r in table["by_size"]])
    b.plot(sizes, rate, "o-", color="C1", label="env-steps/s")
    b.set_yscale("log")
    b.set_xlabel("interior side (egocentric view = 2 side - 1)")
    b.set_ylabel("training env-steps per second")
    b.set_title(f"fast preset, {table['size_runs_batched']} runs batched")
    b.grid(alpha=0.3)
    b.legend(loc="upper right")
    return save(fig, path)


def still(path: Path, frame: np.ndarray, positions: np.ndarray | None, tile: int, title: str) -> Path:
    """One picture of an episode: the world at its first step with the agent's path drawn over it
    (``positions [T, 2]``, cells as (x, y)), start and end marked."""
    fig, ax = plt.subplots(figsize=(3.2, 3.4))
    ax.imshow(frame)
    if positions is not None and len(positions):
        xy = (np.asarray(positions, float) + 0.5) * tile
        ax.plot(xy[:, 0], xy[:, 1], "-", color="#ffbf00", lw=2, alpha=0.85, label="path")
        ax.plot(*xy[0], "o", color="white", mec="black", ms=6, label="start")
        ax.plot(*xy[-1], "s", color="#ffbf00", mec="black", ms=6, label="end")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, frameon=False)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    return save(fig, path)


def gif(path: Path, frames: list[np.ndarray], captions: list[str], fps: float = 4.0, scale: int = 2) -> Path:
    """An animated GIF of rendered frames (Pillow; no window or game library), a caption above each."""
    import io

    from PIL import Image, ImageDraw

    band = 14
    images = []
    for frame, caption in zip(frames, captions):
        img = Image.fromarray(np.asarray(frame, np.uint8)).resize(
            (frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
        canvas = Image.new("RGB", (img.width, img.height + band), "white")
        canvas.paste(img, (0, band))
        ImageDraw.Draw(canvas).text((2, 1), caption, fill="black")
        images.append(canvas.convert("P", palette=Image.ADAPTIVE))
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return path


def value_maps(path: Path, background: np.ndarray, tile: int, panels: list[tuple[str, np.ndarray]], title: str,
               per_row: int = 2) -> Path:
    """Maps of a reward over one layout: for each free cell and facing, the reward of stepping
    forward into the cell, drawn as a wedge on the side the step enters from (the cell's centre
    keeps the room's picture). ``panels``: (caption, ``[W, H, 4]`` values by (x, y, facing),
    NaN where no such step exists), e.g. the caregiver's reward beside what an ISR learned.
    Facings follow MiniGrid: 0 = +x, 1 = +y (down), 2 = -x, 3 = -y."""
    from matplotlib.collections import PolyCollection

    vals = np.concatenate([np.ravel(v) for _, v in panels])
    vmax = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    vmax = vmax or 1.0
    rows = (len(panels) + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(2.6 * per_row + 0.6, 2.7 * rows), squeeze=False)
    dirs = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], float)
    mappable = None
    for ax, (caption, v) in zip(axes.flat, panels):
        ax.imshow(background)
        polys, colors = [], []
        for x, y, f in zip(*np.nonzero(np.isfinite(v))):
            d = dirs[f]
            side = np.array([x + 0.5, y + 0.5]) - 0.5 * d  # the middle of the edge the step enters by
            perp = np.array([-d[1], d[0]]) * 0.5
            polys.append(np.stack([side + perp, side - perp, side + 0.38 * d]) * tile - 0.5)
            colors.append(v[x, y, f])
        coll = PolyCollection(polys, array=np.asarray(colors), cmap="RdBu_r", clim=(-vmax, vmax),
                              edgecolors="white", linewidths=0.3)
        mappable = ax.add_collection(coll)
        ax.set_title(caption, fontsize=8)
        ax.set_axis_off()
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.6, label="reward of stepping in")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def levels(path: Path, panels: dict[str, dict], metrics: dict[str, str], title: str, xlabel: str = "level") -> Path:
    """Measures against a parameter's level, one column per parameter and one row per measure:
    per-seed points, and the mean with its 95% CI. ``panels``: name -> {"levels": [L], measure:
    [L arrays of per-seed values]}; ``metrics``: measure -> y label."""
    cols = max(1, len(panels))
    fig, axes = plt.subplots(len(metrics), cols, figsize=(3.0 * cols, 2.5 * len(metrics)), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for c, (name, panel) in enumerate(panels.items()):
        xs = np.arange(len(panel["levels"]))
        for r, (m, ylabel) in enumerate(metrics.items()):
            ax = axes[r, c]
            for x, v in zip(xs, panel[m]):
                v = np.asarray(v, float)
                ax.plot(x + rng.uniform(-0.12, 0.12, len(v)), v, "o", color="#1f77b4", alpha=0.35, ms=3)
                mean, lo, hi = stats.mean_ci(v[np.isfinite(v)][:, None], axis=0) if np.isfinite(v).any() \
                    else (np.array([np.nan]),) * 3
                ax.errorbar(x, mean[0], yerr=[[mean[0] - lo[0]], [hi[0] - mean[0]]], fmt="s", color="black",
                            ms=4, capsize=3)
            ax.set_xticks(xs, [f"{v:g}" for v in panel["levels"]])
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title(name, fontsize=9)
            if r == len(metrics) - 1:
                ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def tradeoff(path: Path, budgets: np.ndarray, values: np.ndarray, marks: dict[str, tuple[np.ndarray, np.ndarray]],
             xlabel: str, ylabel: str, title: str, reference: float | None = None) -> Path:
    """A trade-off curve: per-seed ``values [S, B]`` at fixed ``budgets [B]`` (points, and the mean
    with its 95% CI as a line and band), with chosen points ``marks``: name -> (x per seed, y per
    seed), drawn at their means with 95% CIs in both directions. ``reference``: a horizontal line."""
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    values = np.asarray(values, float)
    rng = np.random.default_rng(0)  # jitter only
    for b, col in zip(budgets, values.T):
        ax.plot(b * (1 + rng.uniform(-0.03, 0.03, len(col))), col, "o", color="#1f77b4", alpha=0.3, ms=3)
    _band(ax, np.asarray(budgets, float), values, "#1f77b4", "fixed caregiver budget")
    for (name, (x, y)), color in zip(marks.items(), OTHER_COLORS):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.plot(x, y, "x", color=color, alpha=0.5, ms=4)
        mx, xlo, xhi = stats.mean_ci(x[:, None], axis=0)
        my, ylo, yhi = stats.mean_ci(y[:, None], axis=0)
        ax.errorbar(mx[0], my[0], xerr=[[mx[0] - xlo[0]], [xhi[0] - mx[0]]], yerr=[[my[0] - ylo[0]], [yhi[0] - my[0]]],
                    fmt="D", color=color, ms=7, capsize=4, label=f"rule: {name}")
    if reference is not None:
        ax.axhline(reference, color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return save(fig, path)


def phase_panels(path: Path, panels: list[dict], ylabel: str, title: str) -> Path:
    """Curves over both phases, one panel each: ``{"title", "steps_soc", "soc" [S, U_s],
    "steps_aut", "aut": {label: [S, U_a]}}`` (mean and 95% band over seeds)."""
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False, sharey=True)
    for ax, p in zip(axes.flat, panels):
        _band(ax, p["steps_soc"], p["soc"], SOCIALIZE_COLOR, "socialization")
        offset = p["steps_soc"][-1]
        for label, curve in p["aut"].items():
            _band(ax, offset + p["steps_aut"], curve, CONDITION_COLORS.get(label), f"autonomy: {label}")
        ax.axvline(offset, color="black", ls="--", lw=1)
        ax.set_title(p["title"], fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("environment steps (per seed)")
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def bar_panels(path: Path, panels: list[tuple[str, str, dict[str, np.ndarray]]], title: str) -> Path:
    """One panel per measure, a bar per series: ``panels`` of (panel title, y label, {name:
    per-seed values [seeds]}); each bar is the mean with its 95% CI, the points are the seeds."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (caption, ylabel, series) in zip(axes[0], panels):
        names = list(series)
        for j, name in enumerate(names):
            values = np.asarray(series[name], float)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            mean, lo, hi = stats.mean_ci(values[:, None], axis=0)
            ax.bar(j, mean[0], 0.7, color=OTHER_COLORS[j % len(OTHER_COLORS)], alpha=0.7,
                   yerr=[[mean[0] - lo[0]], [hi[0] - mean[0]]], capsize=3)
            ax.scatter(j + rng.uniform(-0.18, 0.18, values.size), values, s=8, color="black", zorder=3)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(np.arange(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(caption, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def sweep_panels(path: Path, grid: dict[str, list], claims: list[dict], title: str) -> Path:
    """A sweep: one panel per (claim, swept setting), the claim's value at each value of the
    setting (a line per combination of the other settings), its interval as error bars (``lo``,
    ``hi``), filled markers where it holds. ``claims``: ``{id, settings, value, lo, hi, holds}``."""
    ids = list(dict.fromkeys(c["id"] for c in claims)) or ["(no claims)"]
    names = list(grid)
    fig, axes = plt.subplots(len(ids), len(names), figsize=(4.2 * len(names), 2.8 * len(ids)), squeeze=False)
    for r, cid in enumerate(ids):
        mine = [c for c in claims if c["id"] == cid]
        for k, name in enumerate(names):
            ax = axes[r, k]
            values = list(grid[name])
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            others = [n for n in names if n != name]
            lines: dict[tuple, list] = {}
            for c in mine:
                lines.setdefault(tuple(str(c["settings"][n]) for n in others), []).append(c)
            for j, (label, cs) in enumerate(lines.items()):
                cs = sorted(cs, key=lambda c: values.index(c["settings"][name]))
                x = [c["settings"][name] if numeric else values.index(c["settings"][name]) for c in cs]
                y = np.array([c["value"] for c in cs], float)
                lo = np.array([c["lo"] for c in cs], float)
                hi = np.array([c["hi"] for c in cs], float)
                err = np.stack([np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)])
                color = f"C{j % 10}"
                text = ", ".join(f"{n}={v}" for n, v in zip(others, label)) or None
                ax.errorbar(x, y, yerr=np.maximum(err, 0), color=color, capsize=3, lw=1, label=text)
                for xi, yi, c in zip(x, y, cs):
                    ax.plot([xi], [yi], "o", color=color, mfc=color if c["holds"] else "white", ms=6)
            if numeric and min(values) > 0 and max(values) / min(values) >= 20:
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_xlabel(name)
            ax.set_title(cid, fontsize=9)
            if k == 0:
                ax.set_ylabel("claim value")
            if len(lines) > 1 and r == 0:
                ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)
