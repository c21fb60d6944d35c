"""Every code example in docs/ runs: each file's python and bash blocks, in order, in an empty
folder (python blocks share one namespace, as in a notebook). A block whose first line is
``# doc: skip (reason)`` is not run; the skipped blocks are listed and counted here."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)
RUNNER = """
import json, os, subprocess, sys
blocks = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for lang, code, where in blocks:
    print(f"--- {where} ({lang})", flush=True)
    if lang == "python":
        exec(compile(code, where, "exec"), ns)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True)
"""


def blocks(path: Path) -> list[tuple[str, str, str]]:
    text = path.read_text()
    out = []
    for m in BLOCK.finditer(text):
        line = text[: m.start()].count("\n") + 1
        out.append((m.group(1), m.group(2), f"{path.name}:{line}"))
    return out


def runnable(path: Path) -> list[tuple[str, str, str]]:
    return [b for b in blocks(path) if not b[1].lstrip().startswith("# doc: skip")]


DOC_FILES = sorted(p for p in DOCS.glob("*.md") if blocks(p))


def test_every_doc_with_code_is_covered_and_skips_say_why():
    assert {p.name for p in DOC_FILES} >= {"quickstart.md", "concepts.md", "howto.md"}
    for path in DOC_FILES:
        for lang, code, where in blocks(path):
            first = code.lstrip().splitlines()[0] if code.strip() else ""
            if first.startswith("# doc: skip"):
                assert "(" in first and len(first) > len("# doc: skip ()"), f"{where}: say why it is skipped"


def compilation_cache_env() -> dict[str, str]:
    """The test session's persistent compilation cache (tests/conftest.py), for the doc's python
    blocks too, through JAX's own environment variables (the blocks are run as written: nothing
    is imported for them). Without it, each python block compiled every program again, also the
    ones an earlier block of the same doc (or the command line, which uses the cache) compiled."""
    import jax

    if not jax.config.jax_compilation_cache_dir:
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": str(jax.config.jax_compilation_cache_dir),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": str(jax.config.jax_persistent_cache_min_compile_time_secs)}


def run_doc(doc: str, tmp_path: Path) -> None:
    """Run every runnable block of one doc (tests/test_docs_<doc>.py call it: one file per doc,
    so that the docs' examples, the suite's longest tests, run on different workers)."""
    todo = runnable(DOCS / doc)
    assert todo, doc
    (tmp_path / "blocks.json").write_text(json.dumps(todo))
    (tmp_path / "runner.py").write_text(RUNNER)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]),
               INTERNALIZE_REPO=str(ROOT), **compilation_cache_env())
    proc = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "blocks.json")], cwd=work,
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, f"{doc}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_every_doc_with_code_has_its_test_file():
    for path in DOC_FILES:
        test = Path(__file__).parent / f"test_docs_{path.stem}.py"
        assert test.is_file() and f'run_doc("{path.name}"' in test.read_text(), f"{path.name} has no {test.name}"
