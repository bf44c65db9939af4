"""The instructor's kit (instructor/kit.py): a model answer for every reflection question, written from a run's
numbers; a finished run exported and imported for a student whose session died, visibly."""

import importlib.util
import json
import math
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


def _lm_student(root, shape, regime, seed, **metrics):
    folder = root / "lm" / "students" / shape / regime / f"seed-{seed}-abcdef12"
    folder.mkdir(parents=True)
    (folder / "kdlab.json").write_text(json.dumps({"regime": regime, "settings": {"regime": regime, "seed": seed},
                                                   "metrics": metrics}))


def test_the_lm_reflections_are_answered_from_the_lm_runs(tmp_path):
    """R7.1/R7.2 state what the saved students show: the KD − CE gap with its seed count, each shape's distance
    above the teacher, and whether the mode-seeking prediction held in these numbers (it may fail: said so)."""
    kit = _kit()
    assert kit.lm_answers(tmp_path) == {}  # 07 not run: nothing claimed
    for seed in (0, 1):
        _lm_student(tmp_path, "random-2x128", "ce", seed, perplexity=90.0 + seed, sense_precision=0.10,
                    sense_coverage=0.20, rouge_l=0.20)
        _lm_student(tmp_path, "random-2x128", "kd-forward", seed, perplexity=70.0 + seed, sense_precision=0.30,
                    sense_coverage=0.40, rouge_l=0.25)
        _lm_student(tmp_path, "random-2x128", "kd-reverse", seed, perplexity=72.0, sense_precision=0.20,
                    sense_coverage=0.10, rouge_l=0.24)
    _lm_student(tmp_path, "random-1x64", "ce", 0, perplexity=150.0)
    _lm_student(tmp_path, "random-1x64", "kd-forward", 0, perplexity=100.0)
    (tmp_path / "lm" / "teacher-metrics.json").write_text(json.dumps({"metrics": {"perplexity": 50.0}}))
    found = kit.lm_answers(tmp_path)
    assert "`kd-forward` 70.5 against `ce` 90.5 (lower by 20.0; 2 seeds here)" in found["R7.1"]
    assert "The teacher: 50.0" in found["R7.1"]
    assert f"`random-1x64` {math.log(2):+.3f} nats/token above the teacher with KD" in found["R7.1"]
    assert "Farthest from the teacher with KD: `random-1x64`; KD narrowed its gap" in found["R7.1"]
    # forward KL is both more precise and covers more here: the prediction fails, and the answer says so
    assert "Highest precision: `kd-forward`" in found["R7.2"] and "does not hold" in found["R7.2"]
    assert "onpolicy" not in found["R7.2"]
    # with the sense spread (by likelihood) the verdict is read from it: reverse KL narrower, forward KL wider
    for seed in (0, 1):
        for regime, spread, kl in (("kd-forward", 0.8, 0.2), ("kd-reverse", 0.5, 0.9)):
            path = tmp_path / "lm" / "students" / "random-2x128" / regime / f"seed-{seed}-abcdef12" / "kdlab.json"
            record = json.loads(path.read_text())
            record["metrics"].update(sense_spread=spread, sense_kl=kl)
            path.write_text(json.dumps(record))
    spread = kit.lm_answers(tmp_path)["R7.2"]
    assert "Narrowest sense spread: `kd-reverse`; widest: `kd-forward`" in spread and " holds in" in spread
    assert "`kd-forward` sense precision 0.300, coverage 0.400, spread 0.800, sense KL to the teacher 0.200" in spread
    assert "Sense mix nearest the teacher's: `kd-forward`" in spread and "it is here" in spread
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


def _review_run(tmp_path):
    """A run with the numbers of the 2026-12-06 `cpu` review (issue 33): teacher 89.3%, `ce` 84.3% agreeing 90.6%
    with the teacher, `minilm` 86.6% agreeing 94.0%, `hinton` 87.39%; fp32 students 11.0 ms P50 padded, P95 7.3 ms at
    real lengths; attention KL 1.3561 → 0.2469 against 0.80 for uniform attention. The real-length teacher's P50
    (15.0 ms) is a fixture value: it puts R4.3's real-length budget (7.5 ms) above the student's P95, as the review's
    10 ms service budget did, so the two readings disagree."""
    n = 872
    teacher = [i % 2 for i in range(n)]

    def agreeing(k):  # predictions equal to the teacher's on the first k sentences
        return [t if i < k else 1 - t for i, t in enumerate(teacher)]

    def bench(model, precision, p50, p95, speedup=None, seq=128):
        return {"model": model, "precision": precision, "batch": 1, "p50_ms": p50, "p95_ms": p95, "seq": seq,
                **({"speedup_vs_teacher": speedup} if speedup else {})}

    def student(accuracy, k, **more):
        return {"accuracy": accuracy, "acc_low": accuracy - 0.024, "acc_high": accuracy + 0.021, "layers": 3,
                "predictions": agreeing(k), **more}

    results = {
        "profile": "cpu", "config": {"student_layers": 3},
        "teacher": {"accuracy": 0.893, "acc_low": 0.871, "acc_high": 0.912, "n": n, "layers": 6, "predictions": teacher},
        "students": {
            "ce": student(0.843, 790), "ce-random": student(0.570, 500), "hinton": student(0.8739, 815),
            "minilm": student(0.866, 820, mcnemar_vs_ce_p=0.0105, right_only_vs_ce=45, wrong_only_vs_ce=25)},
        "params": [{"model": "teacher", "params": 22_700_000, "vs_teacher": 1.0},
                   {"model": "student-3L", "params": 17_400_000, "vs_teacher": 0.766}],
        "benchmark": [bench("teacher", "fp32", 21.4, 24.0), bench("student-3L", "fp32", 11.0, 13.2, 1.94),
                      bench("teacher", "int8", 15.0, 17.1, 1.43), bench("student-3L", "int8", 7.7, 10.6, 2.78),
                      {**bench("teacher", "fp32", 412.0, 430.0), "batch": 32},
                      {**bench("student-3L", "fp32", 209.0, 220.0, 1.97), "batch": 32}],
        "benchmark_real_lengths": [bench("teacher", "fp32", 15.0, 17.2, seq=27),
                                   bench("student-3L", "fp32", 6.2, 7.3, 1.94, seq=27)],
        "int8_students": {"minilm": {"accuracy": 0.8647}, "hinton": {"accuracy": 0.8612}},
        "attention_kl_to_teacher": {"before": 1.3561, "after": 0.2469, "uniform": 0.80, "sentences": n},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    return results


OLD_ANSWERS = {  # instructor/model-answers.md before issue 33: each one claims what the review's run refutes
    "R3.2": "Agreement with the teacher 94.0% against the student's accuracy 86.6%. Agreement above accuracy means "
            "the student also copies the teacher's mistakes: it learned the teacher's function, not only the "
            "answers — what distillation asks of it.",
    "R4.3": "With P95 ≤ 10 ms and ≥ 97% of the teacher's accuracy, these rows qualify: none. With P50 instead of P95 "
            "the budget is easier to meet (P95 is the tail users notice; on a shared CPU it can be several times "
            "the P50), so the choice can change; the run's own rule (04) chose `minilm int8`.",
    "R2.3": "The last-layer attention KL to the teacher went from 1.356 before training to 0.247 after. A lower KL "
            "alone is not proof: attending uniformly has a bounded KL too (03's table shows that bound, and an "
            "untrained student sits near it), so the KL must be read against the uniform row.",
    "R4.1": "76.6% of the parameters, 1.92× faster at batch 1 and 1.97× at batch 32 (39.3 → 20.5 ms; 823 → 419 ms). "
            "The speed-up is near the layer ratio (6/3) because the compute is in the layers.",
}


def test_claims_the_run_refutes_fail_the_check(tmp_path):
    """Issue 33: the old R3.2 (`ce` also agrees above its accuracy), R4.3 (one answer where the padded and real
    readings give two), R2.3 (the untrained student is above uniform, not near it) and R4.1 (another machine's
    latencies) fail against the run they are checked with."""
    kit = _kit()
    results = _review_run(tmp_path)
    facts = kit.answer_facts(tmp_path)
    errors = {q: kit.claim_errors(q, a, results, facts) for q, a in OLD_ANSWERS.items()}
    assert any("refuted by this run: `ce` never saw the teacher and agrees 90.6% at 84.3%" in e for e in errors["R3.2"])
    assert any("one answer where the two readings give two" in e for e in errors["R4.3"])
    assert any("`hinton fp32` qualifies" in e for e in errors["R4.3"])
    assert any("untrained" not in e and "before KL is near uniform, but it reads above uniform" in e
               for e in errors["R2.3"])
    assert any(e.startswith("39.3 (ms)") for e in errors["R4.1"]) and any(e.startswith("20.5 (ms)") for e in errors["R4.1"]) and not any("6/3" in e for e in errors["R4.1"])


def test_the_kits_answers_pass_the_check_on_the_run_they_were_written_from(tmp_path, executed_lab):
    kit = _kit()
    _review_run(tmp_path)
    found = kit.answers(tmp_path)
    assert kit.check(tmp_path, found) == {}
    assert "`ce` — which never saw the teacher — on 90.6%" in found["R3.2"] and "+4.0" not in found["R3.2"]
    assert "hinton fp32" in found["R4.3"] and "padded" in found["R4.3"] and "real" in found["R4.3"]
    assert "45 sentences" in found["R3.1"] and "25 sentences" in found["R3.1"] and "supports it" in found["R3.1"]
    assert "above uniform" in found["R2.3"] and "0.800" in found["R2.3"]
    assert "6/3 = 2.00×" in found["R4.1"] and "97%" in found["R4.1"]
    _, results_path = executed_lab
    assert kit.check(results_path.parent) == {}  # the smoke run's answers too


def test_the_instructor_docs_say_where_numbers_depend_on_the_machine_and_link_the_known_issues():
    """Issue 33 finding 9: the kit and the class plan state that latency and INT8 accuracy vary by machine
    (regenerate per machine); a known-issues sheet (symptom → cause → fix) is linked from the grading doc and plan."""
    plan, grading = ((ROOT / "instructor" / n).read_text() for n in ("class-plan.md", "grading.md"))
    issues = (ROOT / "instructor" / "known-issues.md").read_text()
    assert "known-issues.md" in plan and "known-issues.md" in grading
    assert re.search(r"^\| symptom.*\| cause.*\| fix", issues, re.M)
    for text in (plan, (ROOT / "instructor" / "kit.py").read_text(), grading):
        text = " ".join(text.split())
        assert "depend on the machine" in text and "per machine" in text
