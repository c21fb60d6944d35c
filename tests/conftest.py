"""Test-session set-up: the same persistent compilation cache as the command line, so programs
compiled once (in this process or in a CLI subprocess) are loaded, not compiled, again."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)
from internalize.cli import setup_jax

setup_jax()

