"""internalize: value internalization from social reward (Rong & Kleiman-Weiner, 2024) in JAX."""
import os as _os

__version__ = "0.1.0"


def _xla_flags() -> None:
    """XLA flags the package needs, set before JAX starts its CPU backend.

    XLA's concurrency-optimized scheduler deadlocks this jaxlib's CPU runtime on our
    vmapped-over-runs training loops (a loop of small matmuls over 8+ runs never finishes,
    0% CPU); turning it off fixes that (measured: docs/performance.md).
    """
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" not in flags:
        flags = (flags + " --xla_cpu_enable_concurrency_optimized_scheduler=false").strip()
    _os.environ["XLA_FLAGS"] = flags


_xla_flags()
