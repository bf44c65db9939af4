"""The instructor's grader (``python -m kdlab grade``), a distribution of its own (``grader/``, ``pip install
./grader``) that students never install: it reads what kdlab's notebooks show, and ships the rubric
(``rubric.toml``) and the static rules that decide what counts as copying (``static``).

- ``grader``: one submission and a batch of them, in parallel; the rubric.
- ``submissions``: submissions as hostile files (zip limits, links, paths, sizes).
- ``static``: what an exercise cell must not do (kdlab's code imported or copied, files, processes, patches).
- ``checks``: the exercises re-checked — the child evaluates on fresh inputs, the grader judges.
- ``harness``: the child's side (run in the sandbox, imports no kdlab).
- ``sandbox``: the child's containment (bubblewrap, Docker, or basic limits).
- ``outputs``, ``recipes``: executed cells, reported numbers and results tables against results.json.
- ``gradebook``: the CSVs, feedback and reflections.
"""
