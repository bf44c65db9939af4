"""The instructor's kit (instructor/kit.py): a model answer for every reflection question, written from a run's
numbers; a finished run exported and imported for a student whose session died, visibly."""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import reflections

ROOT = Path(__file__).resolve().parents[2]


def _kit():
    spec = importlib.util.spec_from_file_location("instructor_kit", ROOT / "instructor" / "kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_reflection_has_a_model_answer_written_from_the_run(executed_lab):
    root, results_path = executed_lab
    asked = {q for name in NOTEBOOKS for q in reflections(nbformat.read(ROOT / name, as_version=4))}
    found = _kit().answers(results_path.parent)
    assert asked == set(found)
    for question, answer in found.items():
        assert len(answer) > 80 and "n/a" not in answer and "missing" not in answer, (question, answer)
    results = json.loads(results_path.read_text())
    assert f"{100 * results['students']['ce']['accuracy']:.1f}%" in found["R2.2"]  # the run's own numbers


def test_an_exported_run_imports_visibly_and_the_grader_flags_it(executed_lab, tmp_path):
    from kdlab_grader.grader import StudentGrade, _check_seed

    kit = _kit()
    _, results_path = executed_lab
    archive = kit.export_run(results_path.parent, tmp_path / "run.zip")
    target = kit.import_run(archive, tmp_path / "runs" / "smoke")
    assert (target / "students" / "minilm" / "model.safetensors").is_file()
    results = json.loads((target / "results.json").read_text())
    assert results["imported_from"]["file"] == "run.zip"
    grade = StudentGrade("bob")
    _check_seed(grade, results)
    assert any("imported" in f for f in grade.flags)
    with pytest.raises(SystemExit, match="already holds a run"):
        kit.import_run(archive, target)


def test_the_class_plan_and_objectives_name_cells_that_exist():
    plan = (ROOT / "instructor" / "class-plan.md").read_text()
    objectives = (ROOT / "instructor" / "objectives.md").read_text()
    assert "02" in plan and "min" in plan
    for notebook, heading in re.findall(r"`(0\d-[A-Za-z]+\.ipynb)` § “([^”]+)”", objectives):
        text = (ROOT / notebook).read_text()
        assert heading in text, (notebook, heading)
    assert len(re.findall(r"^\| \d \|", objectives, re.M)) == 7


def test_the_lm_reflections_are_answered_from_the_lm_runs(tmp_path):
    kit = _kit()
    assert kit.lm_answers(tmp_path) == {}  # 07 not run: nothing claimed
    for regime, ppl, d2 in (("ce", 390.0, 0.93), ("kd-forward", 260.5, 0.936), ("kd-reverse", 261.0, 0.935)):
        for seed in (42, 43):
            folder = tmp_path / "lm" / "students" / regime / f"seed-{seed}"
            folder.mkdir(parents=True)
            (folder / "kdlab.json").write_text(json.dumps({"regime": regime, "metrics": {
                "perplexity": ppl + seed - 42, "distinct_2": d2, "teacher_nll_of_samples": 5.5}}))
    found = kit.lm_answers(tmp_path)
    assert "`kd-forward` 261.0 against `ce` 390.5 (-129.5; 2 seeds here)" in found["R7.1"]
    assert "`kd-reverse` distinct-2 0.935" in found["R7.2"] and "onpolicy" not in found["R7.2"]
    nb = nbformat.read(ROOT / "advanced" / "07-LLM-Distillation.ipynb", as_version=4)
    assert set(reflections(nb)) == set(found)


def test_the_agreement_and_latency_answers_state_what_the_run_shows(executed_lab):
    """Issue 33: R3.2's evidence is minilm's agreement against ce's (ce never saw the teacher), on every dev
    sentence; R4.3 answers for both latency readings 04 shows (padded, real lengths)."""
    _, results_path = executed_lab
    kit = _kit()
    found = kit.answers(results_path.parent)
    r = json.loads(results_path.read_text())
    teacher = r["teacher"]["predictions"]

    def agreement(name):
        preds = r["students"][name]["predictions"]
        return sum(a == b for a, b in zip(teacher, preds)) / len(preds)

    for name in ("minilm", "ce"):
        assert kit._pct(agreement(name)) in found["R3.2"], name
    assert f"all {len(teacher)} dev sentences" in found["R3.2"]
    assert "padded tokens" in found["R4.3"] and "real lengths" in found["R4.3"]
