"""Finding experiments: the built-in ones, those installed packages register, and a user's own
named on the command line as ``module:ATTRIBUTE`` or ``path/to/file.py[:ATTRIBUTE]``.

What does not live here: the experiments themselves (one module each) and entry-point loading
in general (:mod:`internalize.registry`).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .. import registry as plugins
from .feedback_kinds import FEEDBACK_KINDS
from .isr_accuracy import ISR_ACCURACY
from .leaving import LEAVING
from .noisy_caregiver import NOISY_CAREGIVER
from .ood import OOD_MAPS, OOD_WALLS
from .prosocial import PROSOCIAL
from .readiness import READINESS
from .reward_hacking import REWARD_HACKING
from .reward_learners import REWARD_LEARNERS
from .scale import SCALE
from .spec import Experiment
from .two_caregivers import TWO_CAREGIVERS
from .unlearning import UNLEARNING

BUILTIN: dict[str, Experiment] = {e.name: e for e in (UNLEARNING, ISR_ACCURACY, OOD_WALLS, OOD_MAPS,
                                                       REWARD_HACKING, PROSOCIAL,
                                                       NOISY_CAREGIVER, TWO_CAREGIVERS, FEEDBACK_KINDS,
                                                       READINESS, LEAVING, SCALE, REWARD_LEARNERS)}
SUITES = ("paper", "open")
"""The parts of the reproduction: the paper's experiments (SPEC 7) and the open questions (SPEC 9)."""


def suite(name: str) -> dict[str, Experiment]:
    """The built-in experiments of a suite (``paper``, ``open``, or ``all``)."""
    if name not in (*SUITES, "all"):
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}, all")
    return {k: e for k, e in BUILTIN.items() if name == "all" or e.suite == name}


def registered() -> dict[str, Experiment]:
    """Experiments that installed packages register (entry point group ``internalize.experiments``:
    an Experiment, or a list, tuple or dict of them)."""
    out = {}
    for ep_name, obj in plugins.entry_points("internalize.experiments").items():
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else [obj]
        for e in items:
            if isinstance(e, Experiment) and e.name not in BUILTIN:
                out[e.name] = e
    return out


def known() -> dict[str, Experiment]:
    """Built-in experiments, then registered ones, by name."""
    return {**BUILTIN, **registered()}


def is_reference(text: str) -> bool:
    """Whether ``text`` names a user's experiment rather than a registered name."""
    return ":" in text or text.endswith(".py") or "/" in text


def _load_file(path: Path):
    name = "internalize_user_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ValueError(f"{str(path)!r} failed to import: {type(e).__name__}: {e}") from None
    return module


def load_reference(ref: str) -> Experiment:
    """The experiment ``ref`` names: ``module:ATTRIBUTE``, ``file.py:ATTRIBUTE`` or ``file.py``
    (its one Experiment). ValueError (one line) when it cannot be found."""
    target, _, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"experiment file {target!r} does not exist")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ValueError(f"cannot import {target!r} for experiment {ref!r}: {e}") from None
        except Exception as e:
            raise ValueError(f"module {target!r} failed to import: {type(e).__name__}: {e}") from None
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Experiment):
            raise ValueError(f"{ref!r}: {target} has no Experiment named {attr!r}")
        return obj
    found = [v for v in vars(module).values() if isinstance(v, Experiment)]
    if len(found) != 1:
        raise ValueError(f"{ref!r} declares {len(found)} experiments; name one as {target}:ATTRIBUTE")
    return found[0]


def canonical_reference(ref: str) -> str:
    """A reference that finds the same experiment from another working directory (files absolute)."""
    target, sep, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if target.endswith(".py") or "/" in target:
        target = str(Path(target).resolve())
    return target + sep + attr


def resolve(name_or_ref: str) -> tuple[Experiment, str | None]:
    """``(experiment, reference)``: a built-in or registered name (reference None), or a user's
    module or file. ValueError (one line) when unknown."""
    exps = known()
    if name_or_ref in exps:
        return exps[name_or_ref], None
    if is_reference(name_or_ref):
        return load_reference(name_or_ref), canonical_reference(name_or_ref)
    raise ValueError(f"unknown experiment {name_or_ref!r}; known: {', '.join(exps)} "
                     "(or a user's module:EXPERIMENT, or path/to/file.py)")


def experiment_of(config: dict, folder) -> Experiment:
    """The declaration that made a stored run (its config.json): by its reference, else its name."""
    ref = config.get("experiment_ref")
    if ref:
        exp = load_reference(ref)
    else:
        exps = known()
        name = config.get("experiment")
        if name not in exps:
            raise ValueError(f"{str(folder)!r} holds experiment {name!r}, which is neither built in nor registered")
        exp = exps[name]
    if exp.name != config.get("experiment"):
        raise ValueError(f"{str(folder)!r} holds experiment {config.get('experiment')!r}, but its reference "
                         f"{ref!r} now declares {exp.name!r}")
    return exp
