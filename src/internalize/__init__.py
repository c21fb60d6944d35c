"""internalize: value internalization from social reward (Rong & Kleiman-Weiner, 2024) in JAX.

What lives here: the XLA flags the package needs, set before JAX starts. Everything else is in
the modules (the README's Layout lists them).
"""
import os as _os

__version__ = "0.1.0"


def _xla_flags() -> None:
    """XLA flags the package needs, set before JAX starts its CPU backend.

    XLA's concurrency-optimized scheduler deadlocks this jaxlib's CPU runtime on our
    vmapped-over-runs training loops (a loop of small matmuls over 8+ runs never finishes,
    0% CPU); turning it off fixes that (measured: docs/performance.md).

    The CPU is split into one host device per core (at most 8; ``INTERNALIZE_HOST_DEVICES``
    overrides), and batches of runs are sharded across them (:mod:`internalize.devices`):
    on 2 cores that trains the fast preset 1.6x faster than one device using XLA's threads
    (docs/performance.md).

    LLVM's optimization level 1 instead of 2 compiles our programs about a quarter faster and
    trains as fast (measured side by side with ``internalize bench``: docs/performance.md).
    No flag is touched if ``XLA_FLAGS`` already names it.
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" not in flags:
        flags = (flags + " --xla_cpu_enable_concurrency_optimized_scheduler=false").strip()
    if "xla_backend_optimization_level" not in flags:
        flags = (flags + " --xla_backend_optimization_level=1").strip()
    if "xla_force_host_platform_device_count" not in flags:
        n = _os.environ.get("INTERNALIZE_HOST_DEVICES") or str(min(_os.cpu_count() or 1, 8))
        flags = (flags + f" --xla_force_host_platform_device_count={int(n)}").strip()
    _os.environ["XLA_FLAGS"] = flags


_xla_flags()
