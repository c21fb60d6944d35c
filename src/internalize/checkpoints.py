"""Checkpoints of a run in progress, so that a crash (even SIGKILL) loses minutes, not hours.

A run checkpoints at chunk boundaries (every ``every`` seconds of work) and at the end of each
phase, under ``<run folder>/checkpoint/``. Every file is written atomically and carries its own
SHA-256, so a truncated or changed checkpoint is detected and that part of the run is computed
again, never used. Resuming gives results identical to an uninterrupted run: the learner's
whole state, its random key included, is saved exactly (flax.serialization, msgpack).

What does not live here: what a phase saves and when (:mod:`internalize.phases`,
:mod:`internalize.experiments.pipeline`); finished results (:mod:`internalize.results`).
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization

from . import results

DEFAULT_EVERY = 60.0  # seconds of work between chunk checkpoints


class Checkpoints:
    def __init__(self, folder: Path, every: float = DEFAULT_EVERY):
        self.dir = Path(folder) / "checkpoint"
        self.every = every
        self.last = time.monotonic()
        self.resumed: list[str] = []  # what was picked up (for the run's log)
        self.prefix = ""

    def scoped(self, prefix: str) -> "Checkpoints":
        """The same checkpoints, with every name under ``prefix`` (one part of a run, e.g. a variant)."""
        import copy

        view = copy.copy(self)  # shares the folder and the list of what was resumed
        view.prefix = self.prefix + prefix
        return view

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def _path(self, name: str) -> Path:
        return self.dir / f"{self.prefix}{name}.msgpack"

    def save(self, name: str, tree: Any) -> None:
        results.write_checked(self._path(name), serialization.msgpack_serialize(_plain(tree)))
        self.last = time.monotonic()

    def load(self, name: str) -> Any | None:
        """A saved tree, or None if there is none or it is damaged (a damaged one is removed)."""
        path = self._path(name)
        if not path.is_file():
            return None
        try:
            tree = serialization.msgpack_restore(results.read_checked(path))
        except Exception as e:  # CorruptFile, or bytes msgpack cannot read
            print(f"internalize: checkpoint {path} is damaged ({type(e).__name__}); computing that part again",
                  file=sys.stderr)
            path.unlink(missing_ok=True)
            return None
        self.resumed.append(self.prefix + name)
        return tree

    def drop(self, *names: str) -> None:
        for name in names:
            self._path(name).unlink(missing_ok=True)
        for part in self.dir.glob("*.part*.msgpack") if self.dir.is_dir() else ():
            if part.name.split(".part")[0] in {self.prefix + n for n in names}:
                part.unlink()

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _plain(tree: Any) -> Any:
    """Nested dicts of NumPy arrays (what msgpack stores); lists and tuples become dicts '0', '1', ..."""
    if isinstance(tree, dict):
        return {str(k): _plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return {str(i): _plain(v) for i, v in enumerate(tree)}
    return np.asarray(tree)


def as_list(tree: dict) -> list:
    """Undo :func:`_plain` on a list."""
    return [tree[str(i)] for i in range(len(tree))]
