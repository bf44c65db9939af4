"""The lab as a course: one source for the student and the solved notebooks, and what the executed notebooks must
show (computed numbers, visible settings, no library noise). The grader's tests are in tests/grading/.

The answered notebooks are executed once per session on the `smoke` profile (the ``executed_lab`` fixture, about a
minute); the tests here read those executed copies.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import (
    cell_source,
    exercise_cells,
    exercise_source,
    function_source_sha,
    reflections,
    solve_notebook,
)
from kdlab.course.reported import RESULT_MIME
from kdlab.exercises import EXERCISES, MIME, run_check
from kdlab.tables import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def _committed(name):
    return nbformat.read(ROOT / name, as_version=4)


def _function_from_cell(source: str, function: str):
    namespace: dict = {}
    exec(compile(source, "<exercise cell>", "exec"), namespace)
    return namespace[function]


# --- one source, two versions -------------------------------------------------------------------------------------
def test_every_exercise_has_one_cell_in_its_notebook():
    for exercise in EXERCISES.values():
        assert exercise.id in exercise_cells(_committed(exercise.notebook)), exercise.id


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_student_version_fails_with_a_helpful_message(exercise):
    ex = EXERCISES[exercise]
    nb = _committed(ex.notebook)
    source = cell_source(nb.cells[exercise_cells(nb)[exercise]])
    assert "raise NotImplementedError()" in source and "YOUR CODE HERE" in source
    result = run_check(exercise, _function_from_cell(exercise_source(nb, exercise), ex.function))
    assert not result.passed and "not attempted" in result.message


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_solved_copy_passes_the_check(exercise):
    ex = EXERCISES[exercise]
    solved = solve_notebook(_committed(ex.notebook))
    source = cell_source(solved.cells[exercise_cells(solved)[exercise]])
    assert "NotImplementedError" not in source and "### BEGIN SOLUTION" in source
    assert run_check(exercise, _function_from_cell(exercise_source(solved, exercise), ex.function)).passed


def test_solutions_command_writes_solved_notebooks(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kdlab", "solutions", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for name in NOTEBOOKS:
        text = (tmp_path / name).read_text()
        assert "raise NotImplementedError()" not in text
    assert "raise NotImplementedError()" in (ROOT / NOTEBOOKS[1]).read_text()  # the committed copy stays unsolved


def test_each_notebook_has_reflections_and_exercises():
    for name in NOTEBOOKS:
        nb = _committed(name)
        assert 2 <= len(reflections(nb)) <= 3, name
        assert 1 <= len(exercise_cells(nb)) <= 3, name


# --- the executed notebooks ---------------------------------------------------------------------------------------
def _outputs(nb):
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            yield index, out


def test_solved_notebooks_pass_every_check_when_run(executed_lab):
    root, _ = executed_lab
    seen = set()
    for name in NOTEBOOKS:
        for _, out in _outputs(nbformat.read(root / name, as_version=4)):
            payload = (out.get("data") or {}).get(MIME)
            if payload:
                assert payload["passed"], payload
                seen.add(payload["exercise"])
    assert seen == {k for k, ex in EXERCISES.items() if ex.notebook in NOTEBOOKS}  # the lab's; 07's: tests/lm


def test_no_stderr_and_no_errors_in_the_executed_notebooks(executed_lab):
    root, _ = executed_lab
    for name in NOTEBOOKS:
        for index, out in _outputs(nbformat.read(root / name, as_version=4)):
            assert out["output_type"] != "error", (name, index, out.get("evalue"))
            if out["output_type"] == "stream":
                assert out["name"] != "stderr", (name, index, out["text"][:300])


def test_every_listed_setting_is_visible(executed_lab):
    root, _ = executed_lab
    nb = nbformat.read(root / "01-Setup.ipynb", as_version=4)
    shown = next(out["data"]["text/plain"] for _, out in _outputs(nb)
                 if "text/plain" in out.get("data", {}) and "temperature T" in out["data"]["text/plain"])
    assert "..." not in shown
    for _, label in SETTINGS:
        assert label in shown, label


def test_numbers_are_computed_not_typed(executed_lab):
    root, results_path = executed_lab
    results = json.loads(results_path.read_text())
    nb = nbformat.read(root / "01-Setup.ipynb", as_version=4)
    text = "\n".join(str(out.get("text", "")) for _, out in _outputs(nb))
    share = re.search(r"has ([\d.]+)% of the teacher's parameters", text)
    params = {p["model"]: p["params"] for p in results["params"]}
    assert share and float(share.group(1)) == pytest.approx(
        100 * params[f"student-{results['config']['student_layers']}L"] / params["teacher"], abs=0.06)
    for name in NOTEBOOKS:
        source = "\n".join(cell_source(c) for c in _committed(name).cells)
        assert "61%" not in source and "seed lab" not in source and "seed_claim" not in source


def test_attention_kl_before_and_after_is_reported(executed_lab):
    root, results_path = executed_lab
    results = json.loads(results_path.read_text())
    kl = results["attention_kl_to_teacher"]
    assert kl["before"] > 0 and kl["after"] >= 0
    nb = nbformat.read(root / "02-Distill.ipynb", as_version=4)
    reported = [out["data"][RESULT_MIME] for _, out in _outputs(nb) if RESULT_MIME in out.get("data", {})]
    assert any(r["key"] == "attention_kl_to_teacher.after" and "before training" in r["text"] for r in reported)


def test_random_init_student_row(executed_lab):
    _, results_path = executed_lab
    students = json.loads(results_path.read_text())["students"]
    assert students["ce-random"]["student_init"] == "random" and students["ce"]["student_init"] == "teacher"
    assert any(row["model"].startswith("student, CE only (random")
               for row in json.loads(results_path.read_text())["comparison"])


def test_untrained_students_are_timing_only(executed_lab):
    _, results_path = executed_lab
    results = json.loads(results_path.read_text())
    untrained = [r for r in results["benchmark"] if "(untrained)" in r["model"]]
    assert untrained
    from kdlab.course.targets import targets
    from kdlab.report import recommendation

    assert "untrained" not in recommendation(results)
    assert all("untrained" not in t["target"] for t in targets(results))


def test_saved_checks_match_the_code_they_checked(executed_lab):
    """The grader's hash of each exercise function equals what the check recorded in the kernel (no false 'stale')."""
    root, _ = executed_lab
    for name in NOTEBOOKS:
        nb = nbformat.read(root / name, as_version=4)
        saved = {out["data"][MIME]["exercise"]: out["data"][MIME]["source_sha"]
                 for _, out in _outputs(nb) if MIME in out.get("data", {})}
        for exercise, index in exercise_cells(nb).items():
            current = function_source_sha(cell_source(nb.cells[index]), EXERCISES[exercise].function)
            assert current == saved[exercise], exercise
            edited = cell_source(nb.cells[index]).replace("### END SOLUTION", "x = 1\n    ### END SOLUTION")
            assert function_source_sha(edited, EXERCISES[exercise].function) != saved[exercise]


def test_stale_check_output_is_detected(tmp_path):
    """The grader's hash of a function in a cell equals what the check recorded with inspect.getsource."""
    import hashlib
    import importlib.util
    import inspect

    source = "import math\n\n\ndef f(x):\n    return x\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = hashlib.sha256(inspect.getsource(module.f).encode()).hexdigest()
    assert function_source_sha(source, "f") == expected
    assert function_source_sha(source.replace("return x", "return x + 1"), "f") != expected
