"""The notebooks' one import: ``from kdlab import Lab``, then ``lab = Lab(PROFILE)`` and one call per step.

A ``Lab`` holds what every step of a run shares — the config, the teacher, the data, the run folder — so a cell
reads as the lesson it teaches (``lab.train("minilm")``, ``lab.compare()``) rather than as plumbing threaded through
``(cfg, teacher, data)``. Each method is one step of 01–04, built from ``kdlab.lab`` (the steps, shared with
``python -m kdlab run`` and the benchmarks), ``kdlab.tables`` and ``kdlab.plots``. Numbers the grader checks are shown
with their provenance by the method that computes them (``kdlab.display.report``): a student cell holds no
results.json keys. The exercise checks take the student's function by its name: ``lab.check(kd_loss)``.
"""

from __future__ import annotations

from kdlab.notebook.benchmark import BenchmarkSteps
from kdlab.notebook.distill import DistillSteps
from kdlab.notebook.inference import InferenceSteps
from kdlab.notebook.run import LabRun
from kdlab.notebook.setup import SetupSteps

__all__ = ["Lab", "LabRun"]


class Lab(SetupSteps, DistillSteps, InferenceSteps, BenchmarkSteps):
    """One run of the lab: ``Lab(PROFILE, student_id=STUDENT_ID)``, then one method per notebook step
    (``kdlab.notebook.setup``: 01, ``distill``: 02, ``inference``: 03, ``benchmark``: 04)."""
