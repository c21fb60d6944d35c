"""Adapters to other ecosystems, each an optional extra (e.g. ``pip install internalize[pettingzoo]``).

What does not live here: the worlds themselves (:mod:`internalize.worlds`); bringing a gymnax
environment in as a world (:mod:`internalize.worlds.gymnax`).
"""
