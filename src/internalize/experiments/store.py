"""Where a run's results go: its identity, its folder, its files, and loading it back.

A run's identity is derived from its whole declaration: every field of the experiment (its
worlds, arms, caregivers and reward model included; functions by qualified name), the preset
and the settings, through :func:`describe`. Two runs with the same identity are the same
computation: the second finds the first's folder and reuses it. Any change gets a new folder,
and nothing stored is overwritten.

What does not live here: the computation (:mod:`.pipeline`), running it into a folder
(:mod:`.runner`), judging claims (:mod:`.report`), the file formats (:mod:`internalize.results`).
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .. import config as cfg
from .. import results
from ..config import Preset
from .spec import Experiment, Settings, configure, settings_for

STORED_FILES = ("config.json", "curves.npz", "curves.parquet", "params.msgpack")
"""A run's computed files, checksummed in its manifest (summary and figures are rebuilt from them)."""


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function, class or method."""
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def describe(obj: Any) -> Any:
    """A declaration as plain JSON-able data, every field of it: dataclasses as their class and
    fields, functions and classes by qualified name, arrays as lists. Never an address."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"class": qualified_name(type(obj)),
                **{f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, enum.Enum):
        return qualified_name(type(obj)) + "." + obj.name
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in obj.items()}
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        return np.asarray(obj).tolist()
    if callable(obj) and hasattr(obj, "__qualname__"):
        return qualified_name(obj)
    text = repr(obj)
    return qualified_name(type(obj)) if " at 0x" in text else text


def identity(exp: Experiment, preset: Preset, settings: Settings) -> dict:
    """What makes two runs the same computation: the declaration, preset and settings, whole."""
    return {
        "schema": results.SCHEMA,
        "version": results.versions()["internalize"],
        "experiment": exp.name,
        "declaration": describe(exp),
        "preset_config": describe(preset),
        "settings_config": describe(settings),
    }


def run_id(ident: dict) -> str:
    """A short fingerprint of a computation (its identity)."""
    text = json.dumps(results._jsonable(ident), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def check_schema(folder: Path, config) -> None:
    """ValueError (one line) if ``config`` (a run's config.json) comes from an incompatible version."""
    if isinstance(config, dict) and "experiment" in config and config.get("schema") != results.SCHEMA:
        raise ValueError(f"{str(folder)!r} holds results of internalize {config.get('version', '?')} (results "
                         f"schema {config.get('schema', '?')}); this version uses schema {results.SCHEMA}: "
                         "move it away or choose another --out")


def _folder_state(folder: Path, want: dict) -> str:
    """``free`` (missing or empty), ``stored`` (this computation, complete and intact),
    ``broken`` (this computation, unfinished or damaged) or ``other`` (anything else)."""
    if not folder.exists():
        return "free"
    if not folder.is_dir():
        return "other"
    if not any(folder.iterdir()):
        return "free"
    try:
        config = results.read_json(folder / "config.json")
    except (OSError, ValueError):
        return "other"
    check_schema(folder, config)
    if not isinstance(config, dict) or any(config.get(k) != v for k, v in results._jsonable(want).items()):
        return "other"
    return "broken" if results.verify(folder) else "stored"


def resolve_settings(exp: Experiment, preset: Preset, seeds: int | None = None, *, quick: bool = False,
                     root_seed: int = 0, settings: Settings | None = None) -> Settings:
    """The settings of a run: as given, or the experiment's own with ``seeds`` and ``root_seed``."""
    if settings is not None:
        return settings
    s = settings_for(exp, preset, quick=quick)
    return replace(s, seeds=seeds or s.seeds, seed=root_seed)


def run_folder(out: Path, exp: Experiment, preset: Preset, settings: Settings, *,
               unique: bool = False) -> tuple[Path, str]:
    """Where this computation's results go, and what is there: ``(folder, state)``.

    ``out/<experiment>`` when it is free or holds this same computation, otherwise
    ``out/<experiment>-<run id>``: a changed declaration or setting gets a new folder and nothing
    stored is overwritten, while the same one finds its results again. ``unique``: always the
    second (a sweep's points: each named by its computation alone, whichever runs first).
    """
    want = identity(exp, preset, settings)
    first, second = Path(out) / exp.name, Path(out) / f"{exp.name}-{run_id(want)}"
    state2 = _folder_state(second, want)
    if unique and state2 == "other":
        raise ValueError(f"results folder {str(second)!r} holds something else; move it away")
    if state2 in ("stored", "broken") or unique:  # found again, even if <experiment> has been freed since
        return second, state2
    state = _folder_state(first, want)
    if state != "other":
        return first, state
    if state2 == "other":
        raise ValueError(f"results folder {str(second)!r} holds something else; move it away")
    return second, state2


def curve_table(curves: dict, config: dict) -> dict[str, np.ndarray]:
    """The learning curves as one tidy table: a row per (phase, seed, arm, update), a column per
    metric (what ``curves.parquet`` holds; read it with pandas or pyarrow). Socialization rows
    name their caregiver in ``arm`` (``caregiver <g>``) when the arms have several."""
    parts = []
    for phase in ("socialize", "autonomy"):
        names = sorted(k.split("/", 1)[1] for k in curves if k.startswith(phase + "/"))
        if not names:
            continue
        first = curves[f"{phase}/{names[0]}"]
        if phase == "socialize" and first.ndim == 2:
            lift = lambda v: v[:, None]  # noqa: E731
            arms = [""]
        elif phase == "socialize":
            lift = lambda v: v  # noqa: E731
            arms = [f"caregiver {g}" for g in range(first.shape[1])]
        else:
            lift = lambda v: v  # noqa: E731
            arms = list(config["arms"])
        seeds, n_arms, updates = lift(first).shape
        steps = np.asarray(curves[f"env_steps/{phase}"], np.int64)
        grid = np.meshgrid(np.arange(seeds), np.arange(n_arms), np.arange(updates), indexing="ij")
        part = {"phase": np.full(grid[0].size, phase, dtype=object), "seed": grid[0].ravel().astype(np.int32),
                "arm": np.asarray(arms, dtype=object)[grid[1].ravel()], "update": grid[2].ravel().astype(np.int32) + 1,
                "env_steps": steps[grid[2].ravel()]}
        for n in names:
            part[n] = lift(curves[f"{phase}/{n}"]).reshape(-1).astype(np.float32)
        parts.append(part)
    keys = list(dict.fromkeys(k for p in parts for k in p))
    return {k: np.concatenate([p[k] if k in p else np.full(len(p["seed"]), np.nan, np.float32) for p in parts])
            for k in keys}


def read_config(folder: Path) -> dict:
    """A run folder's config.json, checked; ValueError (one line) if unreadable or incompatible."""
    folder = Path(folder)
    try:
        config = results.read_json(folder / "config.json")
    except (OSError, ValueError) as e:
        raise ValueError(f"{str(folder)!r} is not a readable run folder ({type(e).__name__})") from None
    check_schema(folder, config)
    if not isinstance(config, dict) or "experiment" not in config:
        raise ValueError(f"{str(folder)!r} is not a run folder (its config.json names no experiment)")
    return config


def load(folder: Path, exp: Experiment | None = None) -> tuple[Experiment, Preset, Settings]:
    """The experiment (configured), preset and settings that made a stored run.

    ``exp``: the declaration (default: found by the name or reference in config.json: built
    in, registered, or the user's module or file that the run was started from).
    """
    from ..config import PRESETS
    from .registry import experiment_of

    config = read_config(folder)
    exp = exp or experiment_of(config, folder)
    if config.get("preset") not in PRESETS:
        raise ValueError(f"{str(folder)!r} was made with preset {config.get('preset')!r}, which this version lacks")
    preset = PRESETS[config["preset"]]
    s = cfg.override(settings_for(exp, preset, quick=bool(config.get("quick"))), config["settings"])
    exp, preset = configure(exp, preset, s)
    return exp, preset, s
