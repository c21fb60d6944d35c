"""Experiments: declarations of the paper's six (SPEC 7) and of a user's own, run through one
pipeline into results folders, judged from those files.

One module per job:

- :mod:`.spec`: what an experiment is (:class:`Experiment`, :class:`Arm`, :class:`Budget`,
  :class:`Claim`) and the settings a run can be told (:class:`Settings`);
- :mod:`.pipeline`: socialize -> internalize -> autonomy -> evaluate;
- :mod:`.store`: a run's identity (its whole declaration), its folder, its files, loading it;
- :mod:`.runner`: running an experiment into its folder (reuse, resume, checkpoints);
- :mod:`.sweep`: a grid of settings, points batched where they differ only in traced numbers,
  here or on Ray;
- :mod:`.report` and :mod:`.markdown`: a run's summary and figures; the reproduction's report.md;
- :mod:`.claims`: how claims are tested (equivalence by TOST, SPEC 9.1);
- :mod:`.capacity`: limits and the memory a run will need, checked before it starts;
- :mod:`.registry`: built-in, registered (entry points) and user experiments by name or reference;
- one module per paper experiment: :mod:`.unlearning`, :mod:`.isr_accuracy`, :mod:`.ood`
  (walls and maps), :mod:`.reward_hacking`, :mod:`.prosocial`.

What does not live here: the phases, the learner, worlds and caregivers (their own modules).
"""
from __future__ import annotations

from .claims import END_FRACTION
from .isr_accuracy import ISR_ACCURACY
from .ood import MAPS, OOD_MAPS, OOD_WALLS
from .pipeline import TRACE_STEPS, compile_seconds, run_pipeline, seed_keys, total_steps, trace_record
from .prosocial import PROSOCIAL
from .registry import BUILTIN as EXPERIMENTS
from .registry import known, resolve
from .report import failures, report
from .reward_hacking import REWARD_HACKING
from .spec import (DEFAULT_SEEDS, Arm, Budget, Claim, Experiment, Presences, Settings, Worlds, configure,
                   settings_for, with_budget)
from .runner import run
from .store import STORED_FILES, check_schema, describe, identity, load, run_folder, run_id
from .unlearning import UNLEARNING

__all__ = ["END_FRACTION", "EXPERIMENTS", "ISR_ACCURACY", "MAPS", "OOD_MAPS", "OOD_WALLS", "PROSOCIAL",
           "REWARD_HACKING", "STORED_FILES", "TRACE_STEPS", "UNLEARNING", "Arm", "Budget", "Claim", "DEFAULT_SEEDS",
           "Experiment", "Presences", "Settings", "Worlds", "check_schema", "compile_seconds", "configure", "describe",
           "failures", "identity", "known", "load", "report", "resolve", "run", "run_folder", "run_id", "run_pipeline",
           "seed_keys", "settings_for", "total_steps", "trace_record", "with_budget"]
