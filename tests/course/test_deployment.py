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


# --- the verdict against its noise (kdlab.course.noise) -----------------------------------------------------------
from kdlab.course.deployment import verdict_text  # noqa: E402
from kdlab.course.noise import close_calls, format_p, margins, unreachable, wilson_half_width  # noqa: E402


def _noisy(n=872, spread=0.25, fp32_ms=10.3, int8_hinton_preds=None):
    """A run shaped like the 2026-12-06 `cpu` run: budget 10 ms; the fp32 3L students just over it; minilm int8 and
    hinton int8 both fit, a few sentences apart; dev labels and every row's predictions stored."""
    labels = [i % 2 for i in range(n)]

    def preds(wrong):  # right on all but the first ``wrong`` sentences
        return [1 - y if i < wrong else y for i, y in enumerate(labels)]

    def entry(wrong, layers, **extra):
        acc = 1 - wrong / n
        return {"accuracy": acc, "acc_low": acc - 0.02, "acc_high": acc + 0.02, "layers": layers, "n": n,
                "predictions": preds(wrong), **extra}

    bench = [{"model": m, "precision": p, "batch": 1, "p50_ms": ms, "p95_ms": ms + spread, "p99_ms": ms + 2 * spread,
              "status": "ok"} for m, p, ms in (("teacher", "fp32", 20.0), ("teacher", "int8", 15.0),
                                               ("student-3L", "fp32", fp32_ms), ("student-3L", "int8", 8.0))]
    hinton_int8 = entry(110, 3)
    if int8_hinton_preds is not None:
        hinton_int8["predictions"] = int8_hinton_preds(labels)
    return {"teacher": entry(90, 6), "dev_labels": labels,
            "students": {"hinton": entry(100, 3), "minilm": entry(112, 3)},
            "int8_teacher": entry(95, 6), "int8_students": {"hinton": hinton_int8, "minilm": entry(107, 3)},
            "benchmark": bench, "config": {"bench_repeats": 20}}


def test_wilson_half_width_matches_the_formula_and_shrinks_with_n():
    p, n, z = 0.87, 872, 1.96
    by_hand = z / (1 + z * z / n) * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)
    assert wilson_half_width(p, n) == pytest.approx(by_hand) and 0.021 < by_hand < 0.023
    assert wilson_half_width(p, 4 * n) < wilson_half_width(p, n) / 1.9


def test_each_row_carries_its_margins_beside_its_own_noise():
    results = _noisy()
    found = verdict(results)
    rows = {m["name"]: m for m in margins(found, results)}
    hinton = rows["hinton fp32"]
    assert hinton["budget margin ms"] == pytest.approx(10.0 - 10.3)
    assert hinton["P95−P50 ms"] == pytest.approx(0.25) and hinton["latency in noise"] is False  # 0.30 > 0.25
    assert hinton["± pts (95%)"] == pytest.approx(100 * wilson_half_width(1 - 100 / 872, 872))
    floor_acc = found["floor"] * (1 - 90 / 872)
    assert hinton["floor margin pts"] == pytest.approx(100 * ((1 - 100 / 872) - floor_acc))
    assert rows["minilm int8"]["fits"] and not rows["hinton fp32"]["fits"]


def test_a_budget_the_layer_ratio_cannot_reach_is_named_unreachable():
    results = _noisy()
    found = verdict(results)
    (sentence,) = unreachable(found, results)
    assert "unreachable" in sentence and "6 → 3" in sentence and "2.00×" in sentence and "embeddings" in sentence
    assert "(measured 1.94×)" in sentence
    four = {**results, "students": {k: {**v, "layers": 2} for k, v in results["students"].items()}}
    assert unreachable(verdict(four), four) == []  # a 6 → 2 cut can reach 2×


def test_a_winner_inside_the_noise_is_said_with_what_would_decide_it():
    results = _noisy(spread=0.6)  # hinton fp32 misses by 0.3 ms with a 0.6 ms spread
    found = verdict(results)
    assert found["choice"] == "minilm int8"
    text = verdict_text(found, results)
    assert "inside the noise" in text and "`hinton fp32`" in text and "What would decide it" in text
    assert "more timing repeats (this run: 20 per model)" in text
    assert "`hinton int8` also fits, 0.34 points behind" in text  # 3 sentences of 872
    assert "McNemar (exact) `minilm int8` vs `hinton int8`" in text and "p = " in text


def test_a_clear_winner_is_not_called_noise():
    results = _noisy(spread=0.1, fp32_ms=14.0)
    results["int8_students"]["hinton"] = {**results["int8_students"]["hinton"], "accuracy": 0.80}
    results["teacher"] = {**results["teacher"], "accuracy": 0.86}  # the winner keeps the target by 4 points
    found = verdict(results)
    assert close_calls(found, results) == [] and "inside the noise" not in verdict_text(found, results)


def test_the_paired_test_counts_the_sentences_each_gets_right_alone():
    def swapped(labels):  # hinton int8 wrong on 110 other sentences: 107 + 110 discordant pairs, far from tied
        return [1 - y if 200 <= i < 310 else y for i, y in enumerate(labels)]

    results = _noisy(int8_hinton_preds=swapped)
    text = verdict_text(verdict(results), results)
    assert "110 right only for the first, 107 only for the second" in text


def test_real_length_reading_is_given_when_it_disagrees():
    results = _noisy()
    results["benchmark_real_lengths"] = [dict(r, p50_ms=r["p50_ms"] * (0.45 if r["model"] == "student-3L" and
                                                                         r["precision"] == "fp32" else 1))
                                         for r in results["benchmark"]]
    text = verdict_text(verdict(results), results)
    assert "Two readings disagree" in text and "real lengths" in text and "deploy `hinton fp32`" in text
    assert "Two readings" not in verdict_text(verdict(_noisy()), _noisy())


def test_p_values_never_print_as_zero():
    assert format_p(1e-9) == "p < 0.001" and format_p(0.2149) == "p = 0.21" and format_p(0.0012) == "p = 0.0012"
    from kdlab.report import _p

    assert _p(0.0) == "< 0.001" and _p(0.5) == "0.5"


def test_the_course_claims_say_why_this_run_differs_from_its_own_numbers():
    from kdlab.course.deploy_claims import claims_table, fixed_params

    # 6 layers of 1.78M on 12M of embeddings and head: teacher 22.7M, 3-layer student 17.3M
    pt, ps = 12_000_000 + 6 * 1_780_000, 12_000_000 + 3 * 1_780_000
    assert fixed_params(pt, 6, ps, 3) == pytest.approx(12_000_000)
    results = {"teacher": {"layers": 6}, "environment": {"device": "cpu (2 threads)"}, "benchmark": [
        {"model": "teacher", "precision": "fp32", "batch": 1, "p50_ms": 21.4, "params": pt, "peak_mem_MB": 100.0,
         "disk_MB": 90.0},
        {"model": "student-3L", "precision": "fp32", "batch": 1, "p50_ms": 11.0, "params": ps, "peak_mem_MB": 77.0,
         "disk_MB": 69.0},
        {"model": "student-3L", "precision": "int8", "batch": 1, "p50_ms": 7.7, "params": ps, "disk_MB": 53.0},
        {"model": "student-2L (untrained)", "precision": "fp32", "batch": 1, "p50_ms": 8.0, "params": 1}]}
    table = claims_table(results).set_index("claim")
    assert table.loc["speed-up of the distilled student", "this run"].startswith("1.95× (batch 1, 6 → 3 layers)")
    assert "2.00×" in table.loc["speed-up of the distilled student", "why"]
    assert table.loc["memory of the distilled student", "this run"] == "-23% peak memory; -23% on disk"
    assert "12.0M of the teacher's 22.7M parameters (53%)" in table.loc["memory of the distilled student", "why"]
    assert "at most 24% of the weights" in table.loc["memory of the distilled student", "why"]
    bound = 4 * pt / (4 * 12_000_000 + 3 * 1_780_000)
    assert table.loc["distillation + INT8", "this run"] == "1.7× smaller, 2.78× faster (batch 1)"
    assert f"at most {bound:.1f}×" in table.loc["distillation + INT8", "why"]


def test_r43_reads_the_p95_against_the_rules_budget_in_both_timings():
    from kdlab.course.deployment import p95_readings

    results = _noisy(spread=1.5)  # int8 P95 9.5 ms fits the 10 ms budget; fp32 P95 11.8 ms does not
    results["benchmark_real_lengths"] = [dict(r, p50_ms=r["p50_ms"] / 2, p95_ms=r["p95_ms"] / 2)
                                         for r in results["benchmark"]]
    got = p95_readings(results)
    assert got["benchmark"] == (pytest.approx(10.0), ["hinton int8", "minilm int8"])
    budget, real = got["benchmark_real_lengths"]  # halved teacher: a 5 ms budget; fp32 P95 5.9, int8 4.75
    assert budget == pytest.approx(5.0) and real == ["hinton int8", "minilm int8"]


def test_report_md_has_a_margins_table_and_no_zero_p_values():
    from kdlab.report import render_markdown

    results = _noisy(spread=0.6)
    text = render_markdown(results)
    section = text.split("### Margins to the rule's limits, beside the run's noise", 1)[1]
    assert "| name" in section and "budget margin ms" in section and "P95−P50 ms" in section
    assert "| hinton fp32 " in section and "inside the noise" in text
    results["students"]["hinton"]["mcnemar_vs_ce_p"] = 1e-12
    from kdlab.report import accuracy_table

    assert accuracy_table(results).set_index("model").loc["student, Hinton KD", "McNemar p vs ce"] == "< 0.001"
