"""Adapters to other ecosystems, each an optional extra (e.g. ``pip install internalize[pettingzoo]``).

What does not live here: the worlds themselves (:mod:`internalize.worlds`); bringing a gymnax
environment in as a world (:mod:`internalize.worlds.gymnax`).

Importing the adapters runs JAX's single-device CPU computations inline
(``jax_cpu_enable_async_dispatch`` off). An outside client calls one small compiled program per
step and waits for its result at once, so JAX's async dispatch cannot overlap anything there: it
only hands each call to another thread and back, which measured about 70 µs a call on 2 cores,
a third of the vector env's step at N = 64 (docs/performance.md, change 17). Computations over
several devices, such as the package's sharded training, run as before ("only applies to
non-parallel computations", as JAX's flag says; training measured the same). The setting takes
effect when the adapters are imported before JAX's CPU backend starts (the first computation);
``INTERNALIZE_CPU_ASYNC_DISPATCH=1`` keeps JAX's default.
"""
import os as _os


def _inline_dispatch() -> None:
    if _os.environ.get("INTERNALIZE_CPU_ASYNC_DISPATCH", "") not in ("", "0"):
        return
    import jax

    try:  # (private, so guarded) once the backend has started the flag no longer applies: leave it as it is
        from jax._src.xla_bridge import backends_are_initialized
        if backends_are_initialized():
            return
    except ImportError:
        pass
    jax.config.update("jax_cpu_enable_async_dispatch", False)


_inline_dispatch()
