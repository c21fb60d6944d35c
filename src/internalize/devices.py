"""Runs across devices: a batch of runs (the leading axis of every array) is sharded over the
available devices, padded to a multiple of their number with copies of its last run.

On CPU, ``import internalize`` splits the machine into one host device per core, so the runs
of an experiment train on every core at once (docs/performance.md); on one device these
functions do nothing. Each run's arithmetic does not depend on which device computes it, and a
padded copy never reaches the results (:func:`unpad` drops it).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache (``INTERNALIZE_JAX_CACHE``, default
    ``~/.cache/internalize/jax``), so a rerun (or a sweep's worker) does not compile again.
    Programs that compile in under ``INTERNALIZE_JAX_CACHE_MIN_SECONDS`` (default 0.5) are not
    stored."""
    import os
    from pathlib import Path

    cache = os.environ.get("INTERNALIZE_JAX_CACHE", str(Path.home() / ".cache" / "internalize" / "jax"))
    try:
        least = float(os.environ.get("INTERNALIZE_JAX_CACHE_MIN_SECONDS", "0.5"))
    except ValueError:
        least = 0.5
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", least)
    except OSError:
        pass  # no cache is slower, not wrong


def describe() -> list[str]:
    """The devices runs are spread over, as JAX names them (e.g. ``TFRT_CPU_0``, ``cuda:0``)."""
    return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]


def count() -> int:
    return len(jax.devices())


def padded(runs: int) -> int:
    """The batch size ``runs`` is padded to (a multiple of the device count)."""
    n = count()
    return -(-runs // n) * n


def pad(tree: Any, runs: int) -> Any:
    """Pad the leading (runs) axis to :func:`padded` by repeating the last run (as NumPy arrays:
    host-side glue done with JAX ops would compile one small XLA program per leaf and shape)."""
    extra = padded(runs) - runs
    if not extra:
        return tree

    def one(x):
        x = np.asarray(x)
        return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])

    return jax.tree.map(one, tree)


def unpad(tree: Any, runs: int) -> Any:
    """Drop padded runs (arrays with a leading runs axis). Results come back as NumPy arrays in
    host memory (free on CPU, and no per-leaf XLA programs), so no sharded array leaks into
    code that is not meant to run per device (see :func:`per_device` on LAPACK)."""
    return jax.tree.map(lambda x: np.asarray(x)[:runs], tree)


def _sharding() -> NamedSharding:
    mesh = Mesh(np.array(jax.devices()), ("runs",))
    return NamedSharding(mesh, PartitionSpec("runs"))


def shard(tree: Any, runs: int) -> Any:
    """Pad to the device count and place each device's share of runs on it."""
    tree = pad(tree, runs)
    if count() == 1:
        return tree
    # From host memory: moving arrays that already live on one device would compile a copy.
    return jax.device_put(jax.tree.map(np.asarray, tree), _sharding())


def per_device(f: Callable, sharded: tuple[int, ...]) -> Callable:
    """``f`` (already vmapped over runs) run by each device on its own share of the runs.

    Arguments at positions ``sharded`` carry the runs axis (split across devices); the others
    are passed whole to every device. Built with ``shard_map``, so no device ever waits for
    another: the runs are independent. Inputs must be padded (:func:`shard`).

    Never put a LAPACK call (e.g. a QR) in ``f``: this jaxlib's CPU runtime deadlocks when two
    run at the same time (each waits for helper threads the other holds; found with gdb,
    docs/performance.md). Our networks' orthogonal initializer uses none
    (``networks.orthogonal``).
    """
    if count() == 1:
        return f
    mesh = Mesh(np.array(jax.devices()), ("runs",))

    def wrapped(*args):
        specs = tuple(PartitionSpec("runs") if i in sharded else PartitionSpec() for i in range(len(args)))
        return jax.shard_map(f, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("runs"), check_vma=False)(*args)

    return wrapped
