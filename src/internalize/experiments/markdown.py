"""``report.md``: every experiment's figures, per-condition means and claims, from stored files.

What does not live here: a single run's summary (:mod:`.report`) and the claims themselves.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from .. import results, stats
from .registry import known


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    v = float(v)
    if not np.isfinite(v):
        return "n/a"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def _test(claim: dict) -> str:
    """The claim's test, with its margin for an equivalence test (and the paper's plain t p)."""
    text = claim.get("test") or "n/a"
    if claim.get("margin") is not None:
        text += f" (margin {_fmt(claim['margin'])})"
        paper = (claim.get("detail") or {}).get("paper_t_test_p")
        if paper is not None:
            text += f"; paper's two-sample t p = {_fmt(paper)}"
    return text


def _rows(name: str, value, seeds: int, columns: list[str] | None) -> list[tuple[str, list]]:
    """Flatten per-seed values into (label, values over seeds) rows."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _rows(f"{name} / {k}" if name else str(k), v, seeds, columns)
        return out
    try:
        arr = np.asarray(value, dtype=float) if not isinstance(value, str) else None
    except (TypeError, ValueError):  # not numbers (e.g. the names of settings): no row
        arr = None
    if arr is None or arr.ndim == 0 or arr.shape[0] != seeds:
        return []
    if arr.ndim == 1:
        return [(name, arr)]
    if arr.ndim == 2:
        labels = columns if columns and len(columns) == arr.shape[1] else [str(i) for i in range(arr.shape[1])]
        return [(f"{name} / {lab}", arr[:, j]) for j, lab in enumerate(labels)]
    return []


def experiment_section(folder: Path) -> tuple[str, dict]:
    summary = results.read_json(folder / "summary.json")
    config = results.read_json(folder / "config.json")
    exp = known().get(summary["experiment"])
    title = exp.title if exp else summary["experiment"]
    seeds = summary["seeds"]
    budget = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary["budget"].items())
    run = f" (run `{folder.name}`)" if folder.name != summary["experiment"] else ""
    lines = [f"## {summary['experiment']}: {title}{run}", "",
             f"Preset `{summary['preset']}`, {seeds} seeds, {budget}{' (quick budget)' if config.get('quick') else ''}; "
             f"wall time {summary['wall_seconds']:.1f} s.", ""]
    for fig in summary.get("figures", []):
        lines += [f"![{fig}]({folder.name}/{fig})", ""]
    rows = []
    for key, value in summary["per_seed"].items():
        rows += _rows(key, value, seeds, config.get("arms") or None)
    if rows:
        lines += ["| quantity | mean | 95% CI | per seed |", "| --- | --- | --- | --- |"]
        for label, vals in rows:
            if np.all(np.isnan(vals)):
                continue
            mean, lo, hi = stats.mean_ci(vals[~np.isnan(vals)])
            per = " ".join(_fmt(v, 2) for v in vals)
            lines.append(f"| {label} | {_fmt(mean)} | [{_fmt(lo)}, {_fmt(hi)}] | {per} |")
        lines.append("")
    for f in summary.get("failed_runs", []):
        lines += [f"**Failed run**: {f['message']}. Its numbers are not finite, and the claims below include it "
                  "(a non-finite value makes a claim fail).", ""]
    lines += ["| claim | statement | test (margin) | our value | p-value | holds |",
              "| --- | --- | --- | --- | --- | --- |"]
    for c in summary["claims"]:
        lines.append(f"| `{c['id']}` | {c['statement']} | {_test(c)} | {_fmt(c['value'])} | {_fmt(c['p_value'])} | "
                     f"{'**yes**' if c['holds'] else '**NO**'} |")
    lines.append("")
    return "\n".join(lines), summary


def write(out: Path, total_wall: float | None = None, folders: list[Path] | None = None) -> Path:
    """Write ``out/report.md`` from the run folders ``folders`` (default: every run under ``out``)."""
    out = Path(out)
    if folders is None:
        folders = [p.parent for p in out.glob("*/summary.json")]
    folders = sorted(folders, key=_order)
    sections, walls = [], {}
    for folder in folders:
        text, summary = experiment_section(folder)
        sections.append(text)
        walls[folder.name] = summary
    claims = [(f.name, c) for f in folders for c in results.read_json(f / "summary.json")["claims"]]
    held = sum(c["holds"] for _, c in claims)
    head = ["# internalize: reproduction report", "",
            "Value internalization (Rong & Kleiman-Weiner, 2024). Every number and figure below was made "
            "from the result files in this folder (`internalize report DIR` rebuilds this page).", "",
            f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}.", "",
            f"Claims holding: **{held} of {len(claims)}**.", "",
            "| experiment | wall time (s) | of which compiling (s) | peak memory of the process so far (GiB) |",
            "| --- | --- | --- | --- |"]

    def opt(s, key, digits):
        return f"{s[key]:.{digits}f}" if key in s else "n/a"

    head += [f"| {k} | {s['wall_seconds']:.1f} | {opt(s, 'compile_seconds', 1)} | {opt(s, 'peak_rss_gib', 2)} |"
             for k, s in walls.items()]
    if total_wall is not None:
        head.append(f"| **total (this invocation)** | {total_wall:.1f} | | |")
    phase_names = ("socialize", "internalize", "autonomy", "evaluate", "trace")
    if any("demonstrate" in s.get("phase_seconds", {}) for s in walls.values()):  # learners shown the way
        phase_names = ("socialize", "demonstrate") + phase_names[1:]
    if any("phase_seconds" in s for s in walls.values()):
        head += ["", "Where the time went: wall seconds per phase (of which compiling).", "",
                 "| experiment | " + " | ".join(phase_names) + " |", "| --- |" + " --- |" * len(phase_names)]
        for k, s in walls.items():
            ph = s.get("phase_seconds", {})
            cells = [f"{ph[p]['wall']:.1f} ({ph[p]['compile']:.1f})" if p in ph else "" for p in phase_names]
            head.append(f"| {k} | " + " | ".join(cells) + " |")
    head += ["", "| experiment | claim | test (margin) | holds | value | p-value |",
             "| --- | --- | --- | --- | --- | --- |"]
    head += [f"| {e} | `{c['id']}` | {_test(c)} | {'yes' if c['holds'] else '**NO**'} | {_fmt(c['value'])} | "
             f"{_fmt(c['p_value'])} |" for e, c in claims]
    parts = {"paper": [], "open": []}
    for folder, section in zip(folders, sections):
        exp = known().get(walls[folder.name]["experiment"])
        parts["open" if exp is not None and exp.suite == "open" else "paper"].append(section)
    body = parts["paper"]
    if parts["open"]:
        if body:
            body = ["# The paper's experiments (SPEC 7)", ""] + body
        body += ["# Open questions (SPEC 9)", "",
                 "Each claim of this part is a hypothesis with a stated test, judged as measured (SPEC 9.1): no setting "
                 "was tuned to make one hold, and a hypothesis that fails is a finding.", ""] + parts["open"]
    text = "\n".join(head + [""] + body)
    path = out / "report.md"
    results.atomic_write_bytes(path, text.encode())
    return path


def _order(folder: Path) -> tuple[int, str]:
    """Experiments in the paper's order; runs of one experiment by folder name."""
    names = list(known())
    try:
        name = results.read_json(folder / "summary.json")["experiment"]
    except (OSError, ValueError, KeyError, TypeError):
        name = folder.name
    return (names.index(name) if name in names else len(names), folder.name)
