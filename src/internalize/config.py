"""Typed, frozen configuration: learner (PPO), ISR and the presets.

``paper`` follows SPEC 4 and 5 exactly (as the authors ran Stable-Baselines3). ``fast`` is
ours: a small MLP on a compact encoding of the same observation, 16 vectorized environments
and fewer, larger minibatches; it must reproduce every qualitative claim (SPEC 7).

What does not live here: an experiment's own settings (:mod:`internalize.experiments.spec`)
and any checking of a run's size (:mod:`internalize.experiments.capacity`).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import json
import math
import textwrap
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PPOConfig:
    network: str = "paper_cnn"
    """Policy/value network: ``paper_cnn`` (SPEC 4) or ``mlp`` (compact encoding)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layers of each head (paper: two tanh layers of 64 on top of the CNN trunk)."""
    n_envs: int = 1
    """Environments stepped in parallel per run (paper: 1)."""
    n_steps: int = 2048
    """Steps per environment per update (paper: 2048)."""
    n_epochs: int = 10
    """Passes over each rollout (paper: 10)."""
    minibatch_size: int = 64
    """Samples per gradient step (paper: 64)."""
    gamma: float = 0.99
    """Discount factor (paper: 0.99)."""
    gae_lambda: float = 0.95
    """GAE lambda (paper: 0.95)."""
    clip: float = 0.2
    """PPO's clip range of the probability ratio (paper: 0.2)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus (paper: 0)."""
    vf_coef: float = 0.5
    """Weight of the value loss (paper: 0.5)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (paper: 0.5)."""
    lr: float = 1e-4
    """Adam learning rate (paper: 1e-4)."""
    adam_eps: float = 1e-5
    """Adam epsilon (paper: 1e-5, Stable-Baselines3's)."""
    normalize_advantage: bool = True
    """Normalize advantages per minibatch (paper: yes)."""
    bootstrap_truncated: bool = True
    """Add gamma * V(final obs) on truncated steps, as Stable-Baselines3 does."""

    @property
    def batch_size(self) -> int:
        return self.n_envs * self.n_steps

    @property
    def n_minibatches(self) -> int:
        return self.batch_size // self.minibatch_size

    def validate(self) -> None:
        if self.network not in ("paper_cnn", "mlp"):
            raise ValueError(f"unknown network {self.network!r}; known: paper_cnn, mlp")
        for name in ("n_envs", "n_steps", "n_epochs", "minibatch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ppo.{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ValueError(
                f"ppo.minibatch_size {self.minibatch_size} must divide n_envs * n_steps = {self.batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"ppo.lr must be positive, got {self.lr}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"ppo.hidden sizes must be at least 1, got {list(self.hidden)}")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"ppo.{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class ISRConfig:
    lr: float = 3e-4
    """Adam learning rate of the ISR fit (paper: 3e-4)."""
    batch_size: int = 1
    """Samples per ISR gradient step (paper: 1)."""
    epochs: float = 1.0
    """Samples drawn (with replacement, class-balanced) = epochs * training steps."""
    adam_eps: float = 1e-5
    """Adam epsilon of the ISR fit."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip of the ISR fit (paper: 1)."""
    train_fraction: float = 0.9
    """The first fraction of socialization steps trains, the rest tests (SPEC 5)."""
    balanced: bool = True
    """Sample rewarded and unrewarded steps 50/50 (SPEC 5)."""
    action_planes: str = "onehot"
    """``onehot`` (one plane per action; our default, SPEC 5) or ``index`` (the authors')."""
    network: str = "cnn"
    """``cnn`` (SPEC 5's conv net) or ``mlp`` (ours: an MLP on the world's compact encoding)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layers of the ``mlp`` network."""
    clip_target: bool = True
    """Clip R_s at 0 before fitting (SPEC 5: step costs are never targets). Our R_s never holds a
    step cost, so the clip only matters for a caregiver whose feedback can be negative (noise,
    correction, scolding); the open-question experiments with such caregivers turn it off."""

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"isr.batch_size must be at least 1, got {self.batch_size}")
        if not self.epochs > 0:
            raise ValueError(f"isr.epochs must be positive, got {self.epochs}")
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"isr.train_fraction must be in (0, 1), got {self.train_fraction}")
        if self.action_planes not in ("onehot", "index"):
            raise ValueError(f"unknown isr.action_planes {self.action_planes!r}; known: onehot, index")
        if self.network not in ("cnn", "mlp"):
            raise ValueError(f"unknown isr.network {self.network!r}; known: cnn, mlp")
        if not self.lr > 0:
            raise ValueError(f"isr.lr must be positive, got {self.lr}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"isr.hidden sizes must be at least 1, got {list(self.hidden)}")


@dataclass(frozen=True)
class Preset:
    name: str
    ppo: PPOConfig
    isr: ISRConfig
    updates_per_chunk: int = 4
    """PPO updates per compiled call (progress, checkpoints)."""


PAPER = Preset(
    name="paper",
    ppo=PPOConfig(),  # SPEC 4 exactly
    isr=ISRConfig(),  # SPEC 5 exactly (batch 1, one epoch, lr 3e-4)
    updates_per_chunk=2,
)

FAST = Preset(
    name="fast",
    # Ours (SPEC 4 leaves it open). SPEC 10: a small MLP PPO with 16 envs x 128 steps, 4 epochs,
    # 4 minibatches learns at lr 3e-3 and collapses at 3e-4.
    ppo=PPOConfig(
        network="mlp",
        hidden=(64, 64),
        n_envs=16,
        n_steps=128,
        n_epochs=4,
        minibatch_size=512,
        lr=3e-3,
    ),
    # Departures: batches of 32 and a higher rate instead of batch 1 (allowed by SPEC 5), and
    # an MLP on the compact encoding instead of SPEC 5's conv net (ours, for speed: the conv
    # ISR's fits and R_i were two thirds of a quick reproduction's time; docs/performance.md).
    isr=ISRConfig(lr=1e-3, batch_size=32, epochs=2.0, network="mlp"),
    updates_per_chunk=8,
)

PRESETS: dict[str, Preset] = {"paper": PAPER, "fast": FAST}


def to_dict(obj: Any) -> Any:
    """A config as plain JSON-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


@dataclass(frozen=True)
class PresenceSpec:
    """A presence schedule as settings (see :mod:`internalize.presence`)."""

    start: float = 1.0
    """Probability that the caregiver is present at the start of the phase (0 to 1)."""
    end: float = 1.0
    """Probability once `horizon` steps have passed (equal to start: a constant schedule)."""
    horizon: float = 1.0
    """Environment steps of the phase (all environments together, as budgets count) over which the
    probability moves from start to end; with unit = phase, a fraction of the phase."""
    mode: str = "expected"
    """How presence P follows the probability: expected (P = p), per_step or per_episode draws."""
    delay: float = 0.0
    """Environment steps (or, with unit = phase, the fraction of the phase) before the ramp starts."""
    unit: str = "steps"
    """What horizon and delay count: steps (environment steps) or phase (fractions of the phase's budget)."""


# ---------------------------------------------------------------------------------------------
# Settings by dotted name (``ppo.lr``), for the command line and TOML files


@dataclass(frozen=True)
class Setting:
    name: str  # dotted, e.g. "ppo.lr"
    type: Any  # the field's annotation
    default: Any
    help: str


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's description: the docstring written under it in the class body, on one line."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


def settings(obj: Any, prefix: str = "") -> list[Setting]:
    """Every leaf setting of a (nested) frozen dataclass instance, by dotted name."""
    hints = typing.get_type_hints(type(obj))
    docs = field_help(type(obj))
    hidden = getattr(type(obj), "not_settings", ())  # fields a class declares but a user does not set
    out = []
    for f in dataclasses.fields(obj):
        if f.name in hidden:
            continue
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if f.metadata.get("group") and value is None:
            continue  # an optional group of settings this object does not have
        if not f.metadata.get("pytree_node", True):
            continue  # a static part of a declaration (a function), not a number to set
        if dataclasses.is_dataclass(value):
            out += settings(value, name + ".")
        else:
            out.append(Setting(name, hints.get(f.name, Any), value, docs.get(f.name, "")))
    return out


def type_name(typ: Any) -> str:
    if typ is bool:
        return "BOOL"
    if typ is int:
        return "INT"
    if typ is float:
        return "FLOAT"
    if typ is str:
        return "TEXT"
    args = typing.get_args(typ)
    if typing.get_origin(typ) is tuple:
        return f"{type_name(args[0])},..."
    if type(None) in args:
        return type_name(next(a for a in args if a is not type(None))) + "|none"
    return "VALUE"


def parse_text(name: str, text: str, typ: Any) -> Any:
    """A command-line string as the setting's type; ValueError (one line) naming the setting."""
    args = typing.get_args(typ)
    if type(None) in args:
        if text.strip().lower() in ("none", "null", ""):
            return None
        return parse_text(name, text, next(a for a in args if a is not type(None)))
    if typing.get_origin(typ) is tuple:
        parts = [p for p in text.replace(" ", "").split(",") if p]
        return tuple(parse_text(name, p, args[0]) for p in parts)
    t = text.strip().lower()
    if typ is bool:
        if t in ("true", "yes", "1", "on"):
            return True
        if t in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"setting {name}: expected true or false, got {text!r}")
    if typ is int:
        try:
            return int(text)
        except ValueError:
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if math.isfinite(v) and v == int(v):
                return int(v)
            raise ValueError(f"setting {name}: expected a whole number, got {text!r}") from None
    if typ is float:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"setting {name}: expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"setting {name}: expected a finite number, got {text!r}")
        return v
    return text


def coerce(name: str, value: Any, typ: Any) -> Any:
    """A value read from a TOML file as the setting's type; ValueError (one line) on a mismatch."""
    args = typing.get_args(typ)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return coerce(name, value, next(a for a in args if a is not type(None)))
    if typing.get_origin(typ) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"setting {name}: expected a list, got {value!r}")
        return tuple(coerce(name, v, args[0]) for v in value)
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str)}.get(typ, True)
    if not ok:
        raise ValueError(f"setting {name}: expected {type_name(typ).lower()}, got {value!r}")
    if typ is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"setting {name}: expected a finite number, got {value!r}")
    return value


def override(obj: Any, values: dict[str, Any], *, parsed: bool = True) -> Any:
    """``obj`` with the settings ``values`` ({dotted name: value}) replaced.

    ``parsed``: values are typed (from TOML; checked against each field's type); otherwise they
    are command-line strings. Unknown names raise ValueError naming them.
    """
    known = {s.name: s for s in settings(obj)}
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"unknown setting {name!r}{hint}")
    return _replace(obj, {n: (coerce(n, v, known[n].type) if parsed else parse_text(n, v, known[n].type))
                          for n, v in values.items()})


def _replace(obj: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """``obj`` with the changed values replaced; a part where nothing changes stays the same
    object (some, like a gymnax world, cannot be rebuilt field by field)."""
    changes = {}
    for f in dataclasses.fields(obj):
        name = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            inner = {k: v for k, v in values.items() if k.startswith(name + ".")}
            if inner:
                new = _replace(value, inner, name + ".")
                if new is not value:
                    changes[f.name] = new
        elif name in values and not (type(values[name]) is type(value) and values[name] == value):
            changes[f.name] = values[name]
    return dataclasses.replace(obj, **changes) if changes else obj


def flatten_toml(table: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(flatten_toml(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_toml(path) -> dict[str, Any]:
    """A TOML settings file as {dotted name: value}; ValueError (one line) if unreadable."""
    import tomllib
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist" if not path.exists()
                         else f"config file {str(path)!r} is not a file")
    try:
        return flatten_toml(tomllib.loads(path.read_text()))
    except UnicodeDecodeError:
        raise ValueError(f"config file {str(path)!r} is not text") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {e}") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def to_toml(obj: Any) -> str:
    """Settings as a TOML file that :func:`load_toml` reads back, each with its description."""
    groups: dict[str, list[Setting]] = {}
    for s in settings(obj):
        table, _, _ = s.name.rpartition(".")
        groups.setdefault(table, []).append(s)
    lines = []
    for table, items in groups.items():
        if table:
            lines += ["", f"[{table}]"]
        for s in items:
            key = s.name.rpartition(".")[2]
            if s.help:
                lines.append(f"# {s.help}")
            lines.append(f"{key} = {_toml_value(s.default)}" if s.default is not None
                         else f'{key} = "none"')
    return "\n".join(lines).lstrip("\n") + "\n"
