"""Tests of spreading runs over host devices (internalize.devices)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import os

import jax
import jax.numpy as jnp
import numpy as np

from internalize import devices


def test_the_device_count_flag_is_set_and_takes_effect():
    import re

    flags = os.environ.get("XLA_FLAGS", "")
    found = re.findall(r"--xla_force_host_platform_device_count=(\d+)", flags)
    assert found, flags
    assert devices.count() == int(found[-1])
    assert 1 <= devices.count() <= max(8, int(found[-1]))


def test_pad_repeats_the_last_run_and_unpad_drops_it():
    n = devices.count()
    runs = n + 1 if n > 1 else 3
    x = {"a": jnp.arange(runs * 2.0).reshape(runs, 2)}
    padded = devices.pad(x, runs)
    assert padded["a"].shape[0] == devices.padded(runs) and devices.padded(runs) % n == 0
    np.testing.assert_array_equal(np.asarray(padded["a"][runs:]), np.repeat(np.asarray(x["a"][-1:]),
                                                                             devices.padded(runs) - runs, 0))
    back = devices.unpad(padded, runs)
    np.testing.assert_array_equal(np.asarray(back["a"]), np.asarray(x["a"]))
    assert isinstance(back["a"], np.ndarray)  # whole, in host memory: no sharded array leaks out


def test_per_device_gives_the_same_runs_as_one_vmap():
    runs = 2 * devices.count() + 1  # needs padding whenever there is more than one device

    def f(w, x, scale):
        def body(c, _):
            return jnp.tanh(c @ w) * scale, None
        return jax.lax.scan(body, x, None, length=20)[0]

    key = jax.random.PRNGKey(0)
    w = jax.random.normal(key, (runs, 8, 8)) / 3
    x = jax.random.normal(jax.random.PRNGKey(1), (runs, 4, 8))
    scale = jnp.float32(1.5)
    ref = jax.jit(jax.vmap(f, in_axes=(0, 0, None)))(w, x, scale)
    fn = jax.jit(devices.per_device(jax.vmap(f, in_axes=(0, 0, None)), sharded=(0, 1)))
    ws, xs = devices.shard((w, x), runs)
    out = devices.unpad(fn(ws, xs, scale), runs)
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-6)
