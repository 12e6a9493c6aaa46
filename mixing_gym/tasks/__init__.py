"""The lm-eval tasks shipped with mixing-gym.

This folder is an lm-eval ``--include_path``: ``_bpb.yaml`` and ``_mc.yaml`` are the two templates
and every ``mg_*.yaml`` names one task built from them (``mixing-gym tasks`` lists them with the
command line that runs them on a saved checkpoint). :class:`mixing_gym.evaluation.Evaluator` builds
the same tasks from the same templates in memory.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).parent
