"""Plug-ins: what installed packages register through entry points, merged with what is built in.

Four groups, each ``name = "module:attribute"`` in a package's entry points:
``internalize.experiments`` (an Experiment, or a list or dict of them),
``internalize.worlds`` (a world spec class), ``internalize.caregivers`` (a caregiver class) and
``internalize.reward_models`` (a reward model). A plug-in that fails to load is reported by
name (:func:`problems`), never silently dropped and never fatal to the built-ins.

What does not live here: the built-ins themselves (each family's module) and the loading of a
user's experiment named on the command line (:mod:`internalize.experiments.registry`).
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

_PROBLEMS: dict[str, str] = {}


def entry_points(group: str) -> dict[str, Any]:
    """``{name: loaded object}`` of an entry point group; failures go to :func:`problems`."""
    out = {}
    for ep in metadata.entry_points(group=group):
        try:
            out[ep.name] = ep.load()
        except Exception as e:  # a broken plug-in must not break the tool
            _PROBLEMS[f"{group}:{ep.name}"] = f"{type(e).__name__}: {e}"
    return out


def merged(group: str, builtin: dict[str, Any]) -> dict[str, Any]:
    """Built-ins, then registered plug-ins (a plug-in may not replace a built-in of the same name)."""
    out = dict(builtin)
    for name, obj in entry_points(group).items():
        if name in out:
            _PROBLEMS[f"{group}:{name}"] = f"{name!r} is built in; the plug-in's is ignored"
            continue
        out[name] = obj
    return out


def problems() -> dict[str, str]:
    """Plug-ins that failed to load so far: ``{group:name: reason}``."""
    return dict(_PROBLEMS)
