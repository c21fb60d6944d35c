"""Test-session set-up: the same persistent compilation cache as the command line, so programs
compiled once (in this process or in a CLI subprocess) are loaded, not compiled, again; and one
tiny run of the unlearning experiment, shared by the files that read one."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)
from internalize.cli import setup_jax

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Every program the suite compiles is cached, the quick ones too: the suite's ~40 files and their
# CLI subprocesses (which inherit this) compile many of the same small programs again otherwise.
os.environ.setdefault("INTERNALIZE_JAX_CACHE_MIN_SECONDS", "0")
setup_jax()


# The suite's longest test files (each over a minute on a cold compilation cache, 2 cores), run
# first: pytest-xdist hands files to the workers in this order, and starting the long ones last
# left one worker finishing alone for minutes.
SLOW_FIRST = ("test_reproduction.py", "test_experiments_open.py", "test_sweep.py", "test_experiments_open_ii.py",
              "test_reliability.py", "test_experiments_reward_learners.py", "test_demonstrations.py",
              "test_docs_howto.py", "test_docs_quickstart.py", "test_docs_own_world.py", "test_caregiver_app.py",
              "test_experiments_store.py",
              "test_cli.py", "test_learner.py", "test_experiments_pipeline.py", "test_worlds_gymnax.py",
              "test_bench.py", "test_registry.py")


def pytest_configure(config):
    # pytest-xdist (3.6 and later) sorts the files of --dist loadfile by their number of tests
    # unless told not to: the longest files, which hold few tests (a doc's file holds one), then
    # started last, whatever the order above.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests stay in order


TINY_RUN = ["run", "unlearning", "--seeds", "2", "--socialize-steps", "4096", "--autonomy-steps", "4096",
            "--no-progress"]


@pytest.fixture(scope="session")
def tiny_unlearning_run(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One tiny run through the command line, ``internalize run unlearning`` with ``TINY_RUN``'s
    flags and TensorBoard logs: (results folder, TensorBoard folder, the finished process).

    Made once per test session: the first test to ask runs it, and the other pytest-xdist workers
    (separate processes) wait for it, under a lock in the session's shared temporary folder,
    then read it. It is for reading: a test that changes files copies it first.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    where = root / "tiny_unlearning_run"
    record = where / "process.json"
    with open(root / "tiny_unlearning_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.is_file():
            where.mkdir(exist_ok=True)
            args = [*TINY_RUN, "--out", str(where / "results"), "--tensorboard", str(where / "tb")]
            proc = subprocess.run([sys.executable, "-m", "internalize.cli", *args], capture_output=True, text=True,
                                  timeout=600, env=dict(os.environ))
            record.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr}))
    done = json.loads(record.read_text())
    proc = subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"], done["stderr"])
    return where / "results", where / "tb", proc
