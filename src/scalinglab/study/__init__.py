"""Studies: declarative families of runs, their dry-run costs, and their execution exactly once.

A study file (TOML, or a Python function returning a :class:`StudyConfig`) names a base run, a
recipe and designs; :func:`expand_study` turns it into run configs, :func:`plan_study` costs them,
:func:`run_study` trains them on a local pool, Ray or SLURM, and :func:`collect` tabulates the
results. See :mod:`scalinglab.study.config` for the file format.
"""

from scalinglab.study.collect import collect, write_tables
from scalinglab.study.config import StudyConfig, StudyRun, expand_study, load_study, study_from_dict
from scalinglab.study.executors import ExecutorConfig
from scalinglab.study.plan import plan_study, plan_totals
from scalinglab.study.runner import run_study, study_status

__all__ = [
    "ExecutorConfig",
    "StudyConfig",
    "StudyRun",
    "collect",
    "expand_study",
    "load_study",
    "plan_study",
    "plan_totals",
    "run_study",
    "study_from_dict",
    "study_status",
    "write_tables",
]
