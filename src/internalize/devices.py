"""Runs across devices: a batch of runs (the leading axis of every array) is sharded over the
available devices, padded to a multiple of their number with copies of its last run.

On CPU, ``import internalize`` splits the machine into one host device per core, so the runs
of an experiment train on every core at once (docs/performance.md); on one device these
functions do nothing. Each run's arithmetic does not depend on which device computes it, and a
padded copy never reaches the results (:func:`unpad` drops it).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def count() -> int:
    return len(jax.devices())


def padded(runs: int) -> int:
    """The batch size ``runs`` is padded to (a multiple of the device count)."""
    n = count()
    return -(-runs // n) * n


def pad(tree: Any, runs: int) -> Any:
    """Pad the leading (runs) axis to :func:`padded` by repeating the last run."""
    extra = padded(runs) - runs
    if not extra:
        return tree
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]), tree)


def unpad(tree: Any, runs: int) -> Any:
    """Drop padded runs (NumPy or JAX arrays with a leading runs axis)."""
    return jax.tree.map(lambda x: x[:runs], tree)


def _sharding() -> NamedSharding:
    mesh = Mesh(np.array(jax.devices()), ("runs",))
    return NamedSharding(mesh, PartitionSpec("runs"))


def shard(tree: Any, runs: int) -> Any:
    """Pad to the device count and place each device's share of runs on it."""
    tree = pad(tree, runs)
    if count() == 1:
        return tree
    return jax.device_put(tree, _sharding())
