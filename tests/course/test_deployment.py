"""04's one deployment verdict: every trained model in fp32 and INT8, one rule, the same answer in the exercise, the
report and the checklist (and no argument from overlapping intervals)."""

import pytest

from kdlab.course.deployment import arm_size, checklist, deployment_rows, verdict
from kdlab.exercises.deploy import reference_choice
from kdlab.report import recommendation


def _entry(acc, layers, preds=None):
    return {"accuracy": acc, "acc_low": acc - 0.02, "acc_high": acc + 0.02, "layers": layers,
            "predictions": preds or [1, 0, 1, 1]}


RESULTS = {
    "teacher": _entry(0.90, 6, [1, 0, 1, 1]),
    "students": {"ce": _entry(0.85, 3, [1, 1, 1, 1]), "hinton": _entry(0.88, 3, [1, 0, 1, 0]),
                 "minilm": _entry(0.879, 3, [1, 0, 1, 1])},
    "int8_teacher": {"accuracy": 0.895}, "int8_students": {"ce": {"accuracy": 0.84}, "hinton": {"accuracy": 0.876},
                                                           "minilm": {"accuracy": 0.877}},
    "benchmark": [{"model": m, "precision": p, "batch": b, "p50_ms": ms * (20 if b == 32 else 1), "p95_ms": ms * 1.2,
                   "p99_ms": ms * 1.5, "samples_per_s": 1000 / ms, "status": "ok"}
                  for m, p, ms in (("teacher", "fp32", 20.0), ("teacher", "int8", 15.0), ("student-3L", "fp32", 10.5),
                                   ("student-3L", "int8", 8.0), ("student-2L (untrained)", "fp32", 7.0))
                  for b in (1, 32)],
    "environment": {"device": "cpu"},
}


def test_every_trained_student_gets_its_own_fp32_and_int8_rows_and_no_untrained_one():
    rows = {r["name"]: r for r in deployment_rows(RESULTS)}
    assert set(rows) == {f"{m} {p}" for m in ("teacher", "ce", "hinton", "minilm") for p in ("fp32", "int8")}
    assert rows["hinton int8"]["accuracy"] == 0.876 and rows["hinton int8"]["p50_ms"] == 8.0


def test_one_rule_gives_one_answer_in_the_exercise_the_report_and_the_checklist():
    found = verdict(RESULTS)  # budget 10 ms: the fp32 students (10.5 ms) are over it
    assert found["budget_ms"] == pytest.approx(10.0)
    assert found["choice"] == reference_choice(found["rows"], 0.90, found["budget_ms"], found["floor"]) == "minilm int8"
    text = recommendation(RESULTS)
    assert "Deploy `minilm int8`" in text and "overlap" not in text
    sheet = checklist(RESULTS)
    assert "**Deploy `minilm int8`**" in sheet and "P50 / P95 / P99 = 8.0 / 9.6 / 12.0 ms" in sheet
    assert "Rollback" in sheet and f"{arm_size(0.877, 0.023):,} labelled sentences" in sheet


def test_no_model_fitting_both_limits_is_said_plainly():
    slow = {**RESULTS, "benchmark": [dict(r, p50_ms=r["p50_ms"] * 3) if r["model"] != "teacher" else r
                                     for r in RESULTS["benchmark"]]}
    found = verdict(slow)
    assert found["choice"] is None and "Deploy nothing" in recommendation(slow)
    assert checklist(slow).startswith("**No model to deploy.**")
