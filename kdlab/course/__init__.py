"""The course around the lab: assignments, grading, Colab, reference results.

- ``assignments``: exercise cells, the solved instructor copy, reflection answers.
- ``grading``: ``python -m kdlab grade``: a gradebook from students' executed notebooks; ``rubric.toml``.
- ``targets``: the lab's targets (retention, speedup) read from results.json.
- ``reported``: the machine-readable format of a reported number, which grading checks.
- ``reference``: multi-seed reference results shipped for one-seed runs (``reference_results.json``).
- ``colab``: Colab setup (Drive, install) and the Open-in-Colab badges.

Imports everything below it, ``kdlab.exercises`` included; never the notebook layer.
"""
