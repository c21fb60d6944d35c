"""Figures, made from stored results (never from live training state)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

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
