"""Every code example of docs/human_caregiver.md runs (see tests/test_docs.py)."""
from test_docs import run_doc


def test_doc_examples_run(tmp_path):
    run_doc("human_caregiver.md", tmp_path)
