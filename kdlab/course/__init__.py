"""The course around the lab: assignments, Colab, reference results (the grader is the instructor's own
distribution, ``grader/``: ``kdlab_grader``, not installed with kdlab).

- ``assignments``: exercise cells, the solved instructor copy, reflection answers.
- ``targets``: the lab's targets (retention, speedup) read from results.json.
- ``reported``: the machine-readable format of a reported number, which grading checks.
- ``reference``: multi-seed reference results shipped for one-seed runs (``reference_results.json``), and the
  controls and multi-seed results the notebooks' text quotes, rendered by code (``reference_controls.json``).
- ``colab``: Colab setup (Drive, install) and the Open-in-Colab badges.

Imports everything below it, ``kdlab.exercises`` included; never the notebook layer.
"""
