"""Every code example of docs/adapters.md runs (see tests/test_docs.py)."""
from test_docs import run_doc


def test_doc_examples_run(tmp_path):
    run_doc("adapters.md", tmp_path)
