"""Test-session set-up: the same persistent compilation cache as the command line, so programs
compiled once (in this process or in a CLI subprocess) are loaded, not compiled, again."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)
from internalize.cli import setup_jax

setup_jax()


# The suite's longest test files (each over a minute on a cold compilation cache, 2 cores), run
# first: pytest-xdist hands files to the workers in this order, and starting the long ones last
# left one worker finishing alone for minutes.
SLOW_FIRST = ("test_reproduction.py", "test_experiments_open.py", "test_reliability.py", "test_docs_howto.py", "test_docs_quickstart.py",
              "test_docs_own_world.py", "test_experiments_store.py", "test_cli.py", "test_learner.py",
              "test_experiments_pipeline.py", "test_worlds_gymnax.py", "test_bench.py", "test_registry.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests stay in order
