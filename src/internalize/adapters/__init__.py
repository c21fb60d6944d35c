"""Adapters to other ecosystems, each an optional extra (e.g. ``pip install internalize[pettingzoo]``)."""
