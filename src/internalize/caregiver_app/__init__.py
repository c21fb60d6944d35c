"""A person as the caregiver (``internalize caregiver-app``): a browser app that runs the paper's
socialize, internalize, autonomy loop with a human participant's praise and disapproval.

Modules: :mod:`.study` (the computation of a session), :mod:`.db` (what is stored, SQLite),
:mod:`.server` (the ASGI app and its pages). docs/human_caregiver.md tells how to run a study.
"""
