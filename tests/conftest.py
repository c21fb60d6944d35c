"""Test-session set-up: the same persistent compilation cache as the command line, so programs
compiled once (in this process or in a CLI subprocess) are loaded, not compiled, again."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)
from internalize.cli import setup_jax

setup_jax()


def pytest_collection_modifyitems(items):
    """Side by side on every core (``make test``: pytest-xdist ``--dist loadgroup``), each test
    file stays on one worker, so its module fixtures (e.g. one tiny reproduction shared by several
    tests) run once; the examples of each doc in docs/ are independent and spread out instead
    (together, one file's worth of them was the suite's longest wait)."""
    import pytest

    for item in items:
        group = item.nodeid if item.path.name == "test_docs.py" else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
