"""One deployment verdict for a run, from its measured numbers (04-Benchmark's exercise, its report, its summary
plot all use this, so they give the same answer).

The rule, stated once (``RULE``): among the trained models — the teacher and every trained student, each in fp32 and
in INT8 (fp16 on a GPU), each with its own measured dev accuracy — deploy the most accurate whose batch-1 P50
latency fits the budget (half the fp32 teacher's) and whose accuracy keeps the retention target of the run
(``kdlab.course.targets.retention_target``); on a tie the faster. No model fitting both: deploy nothing, and say which
limit each came closest to. The same function (``kdlab.exercises.deploy.reference_choice``) checks the student's
rule; no argument here rests on overlapping intervals (01 explains why that would not be a test).
"""

from __future__ import annotations

from kdlab.course.targets import UNTRAINED, measured, retention_target, student_entries, teacher_entry
from kdlab.exercises.deploy import reference_choice

RULE = ("the most accurate trained model whose batch-1 P50 fits the budget (half the fp32 teacher's) and whose dev "
        "accuracy keeps the run's retention target; the faster on a tie; nothing if no model fits both")
BUDGET_SHARE = 0.5  # of the fp32 teacher's batch-1 P50
PADDED_SEQ = 128  # 04's first benchmark: random tokens padded to this length


def _latency(results: dict, model: str, precision: str, key: str = "benchmark") -> float | None:
    for row in results.get(key) or []:
        if (isinstance(row, dict) and row.get("model") == model and row.get("precision") == precision
                and int(row.get("batch", 0)) == 1 and row.get("status", "ok") == "ok"):
            return float(row["p50_ms"])
    return None


def deployment_rows(results: dict, key: str = "benchmark") -> list[dict]:
    """``{name, model, precision, p50_ms, accuracy, trained, timed_as, n}`` per (trained model, measured precision): students
    share their architecture's latency row (``student-<L>L``; speed does not depend on the weights) and carry their
    own accuracy (INT8 ones from ``int8_students``). When 06-Compression ran, its variants join (``06: …``), their
    latency its measured speed-up over the teacher applied to 04's fp32 teacher. ``key``: the timing read
    (``benchmark``: random tokens padded to 128; ``benchmark_real_lengths``: SST-2's dev sentences)."""
    rows = []
    teacher = teacher_entry(results)
    precisions = sorted({r.get("precision") for r in results.get(key) or [] if isinstance(r, dict)
                         and r.get("status", "ok") == "ok" and r.get("precision") in ("fp32", "fp16", "int8")})
    int8 = results.get("int8_students") if isinstance(results.get("int8_students"), dict) else {}
    models = [("teacher", "teacher", teacher, results.get("int8_teacher"))]
    for name, entry in student_entries(results).items():
        models.append((name, f"student-{entry.get('layers')}L", entry, int8.get(name)))
    for name, timed_as, entry, int8_entry in models:
        if UNTRAINED in timed_as or not measured(entry):
            continue
        for precision in precisions:
            p50 = _latency(results, timed_as, precision, key)
            scored = (int8_entry or {}) if precision == "int8" else entry
            if p50 is None or scored.get("accuracy") is None:
                continue
            rows.append({"name": f"{name} {precision}", "model": name, "precision": precision, "p50_ms": p50,
                         "accuracy": float(scored["accuracy"]), "trained": True, "timed_as": timed_as,
                         "n": scored.get("n")})
    teacher_p50 = _latency(results, "teacher", "fp32", key)
    for row in results.get("compression") or []:  # 06-Compression's variants, timed there against the teacher
        if (not isinstance(row, dict) or row.get("variant") == "teacher" or not row.get("speed_x_b1")
                or row.get("accuracy_%") is None or teacher_p50 is None):
            continue
        rows.append({"name": f"06: {row['variant']}", "model": row["variant"], "precision": "cpu (06)",
                     "p50_ms": teacher_p50 / float(row["speed_x_b1"]), "accuracy": float(row["accuracy_%"]) / 100,
                     "trained": True, "timed_as": None, "n": None})
    return rows


def verdict(results: dict, key: str = "benchmark") -> dict:
    """``{rule, rows, budget_ms, floor, basis, choice, teacher_accuracy, key}``: the rule applied to this run's rows,
    timed as ``key`` says (``deployment_rows``); the budget is half the fp32 teacher's P50 in the same timing."""
    rows = deployment_rows(results, key)
    teacher = teacher_entry(results)
    teacher_p50 = _latency(results, "teacher", "fp32", key)
    floor, basis = retention_target(results)
    if not rows or teacher is None or teacher_p50 is None:
        return {"rule": RULE, "rows": rows, "budget_ms": None, "floor": floor, "basis": basis, "choice": None,
                "teacher_accuracy": teacher["accuracy"] if teacher else None, "key": key}
    budget = BUDGET_SHARE * teacher_p50
    choice = reference_choice(rows, teacher["accuracy"], budget, floor)
    return {"rule": RULE, "rows": rows, "budget_ms": budget, "floor": floor, "basis": basis, "choice": choice,
            "teacher_accuracy": teacher["accuracy"], "key": key}


def real_length_reading(results: dict, found: dict) -> str:
    """The same rule on SST-2's real lengths (04's second benchmark), said only when it picks another model."""
    if not results.get("benchmark_real_lengths") or found["budget_ms"] is None:
        return ""
    real = verdict(results, "benchmark_real_lengths")
    if real["budget_ms"] is None or real["choice"] == found["choice"]:
        return ""
    precisions = sorted({r["precision"] for r in real["rows"]})
    pick = (f"deploy `{real['choice']}` at {next(r for r in real['rows'] if r['name'] == real['choice'])['p50_ms']:.1f} ms"
            if real["choice"] else "deploy nothing")
    return (f"Two readings disagree: padded to {PADDED_SEQ} tokens (above) the rule picks "
            f"`{found['choice'] or 'nothing'}`; at SST-2's real lengths (budget {real['budget_ms']:.1f} ms, "
            f"timed in {', '.join(precisions)}) it would {pick}. Real lengths are what users of this service feel; "
            "the padded timing is the worst case for inputs up to the maximum length.")


def verdict_text(found: dict, results: dict | None = None) -> str:
    """The verdict in two sentences, with the numbers; given ``results``, followed by its noise
    (``kdlab.course.noise.noise_text``) and the real-length reading where it disagrees."""
    text = _verdict_sentences(found)
    if results is None or found["budget_ms"] is None:
        return text
    from kdlab.course.noise import noise_text

    repeats = (results.get("config") or {}).get("bench_repeats")
    extra = [noise_text(found, results, repeats), real_length_reading(results, found)]
    return " ".join([text] + [e for e in extra if e])


def _verdict_sentences(found: dict) -> str:
    if found["budget_ms"] is None:
        return "No verdict: the run has no teacher accuracy or no batch-1 latency yet (run 03 and 04)."
    t_acc = found["teacher_accuracy"]
    head = (f"Rule: {found['rule']}. Here: budget {found['budget_ms']:.1f} ms, retention target {found['floor']:.1%} "
            f"({found['basis']}).")
    if found["choice"] is None:
        closest = max(found["rows"], key=lambda r: r["accuracy"] / t_acc - r["p50_ms"] / found["budget_ms"])
        return (f"{head} Deploy nothing: no model fits both; the closest, `{closest['name']}`, keeps "
                f"{closest['accuracy'] / t_acc:.1%} at {closest['p50_ms']:.1f} ms.")
    row = next(r for r in found["rows"] if r["name"] == found["choice"])
    return (f"{head} Deploy `{row['name']}`: {100 * row['accuracy']:.2f}% dev accuracy "
            f"({row['accuracy'] / t_acc:.1%} of the teacher's) at {row['p50_ms']:.1f} ms batch-1 P50.")


def _agreement(results: dict, model: str) -> float | None:
    teacher = (results.get("teacher") or {}).get("predictions")
    entry = (results.get("students") or {}).get(model) or {}
    preds = entry.get("predictions")
    if not teacher or not preds or len(teacher) != len(preds):
        return None
    return sum(a == b for a, b in zip(teacher, preds)) / len(preds)


def arm_size(accuracy: float, gap: float, z: float = 1.96) -> int:
    """Labelled sentences per arm for a two-sided 95% test to tell two accuracies ``gap`` apart (normal approx.)."""
    gap = max(gap, 0.005)
    return int(2 * z * z * accuracy * (1 - accuracy) / gap**2) + 1


def checklist(results: dict) -> str:
    """The course's deployment checklist (部署檢查清單) for the chosen model, written from this run's numbers:
    serving latency (P50/P95/P99) and throughput, what to monitor with which thresholds, an A/B test's size and a
    rollback rule."""
    found = verdict(results)
    if found["choice"] is None:
        return f"**No model to deploy.** {verdict_text(found, results)}"
    row = next(r for r in found["rows"] if r["name"] == found["choice"])
    t_acc = found["teacher_accuracy"]
    layers = ((results.get("students") or {}).get(row["model"]) or {}).get("layers")
    timed_as = "teacher" if row["model"] == "teacher" else f"student-{layers}L"
    bench = {(r.get("model"), r.get("precision"), int(r.get("batch", 0))): r for r in results.get("benchmark") or []
             if isinstance(r, dict) and r.get("status", "ok") == "ok"}
    one = bench.get((timed_as, row["precision"], 1), {})
    many = bench.get((timed_as, row["precision"], 32), {})
    device = (results.get("environment") or {}).get("device", "this machine")
    agreement = _agreement(results, row["model"])
    gap = max(0.0, t_acc - row["accuracy"])
    floor_acc = found["floor"] * t_acc
    lines = [f"**Deploy `{row['name']}`** — {100 * row['accuracy']:.2f}% dev accuracy, "
             f"{row['accuracy'] / t_acc:.1%} of the teacher's ({found['rule']}).", "",
             f"- **Serving** (measured on {device}): batch 1 P50 / P95 / P99 = "
             f"{one.get('p50_ms', row['p50_ms']):.1f} / "
             f"{one.get('p95_ms', float('nan')):.1f} / {one.get('p99_ms', float('nan')):.1f} ms"
             + (f"; batch 32: {many['samples_per_s']:.0f} sentences/s" if many.get("samples_per_s") else "") + ".",
             f"- **Monitor latency**: alert when the 5-minute P95 exceeds "
             f"{1.5 * one.get('p95_ms', row['p50_ms']):.1f} ms "
             "(1.5× the measured P95: a slower machine, longer inputs, or a neighbour on the CPU).",
             f"- **Monitor accuracy drift**: label a sample of live sentences each week; alert when its accuracy falls "
             f"under {100 * floor_acc:.1f}% (the retention floor × the teacher's dev accuracy)"
             + (f", or when agreement with the teacher on a shadow sample falls under {100 * (agreement - 0.03):.1f}% "
                f"(measured on dev: {100 * agreement:.1f}%, minus 3 points)" if agreement is not None else "") + ".",
             f"- **A/B test** before the switch: route 5–10% of traffic to it; to tell apart a drop the size of this "
             f"run's teacher − model gap ({100 * gap:.1f} points) at 95% confidence, each arm needs about "
             f"{arm_size(row['accuracy'], gap):,} labelled sentences.",
             "- **Rollback**: keep the teacher (or the model it replaces) deployed beside it; any alert above that "
             "lasts an hour sends 100% of traffic back, and the A/B sample decides whether to try again."]
    return "\n".join(lines)


def p95_readings(results: dict) -> dict:
    """R4.3's two readings: ``{key: (budget_ms, [names])}`` for ``benchmark`` (padded) and
    ``benchmark_real_lengths``: the trained rows whose batch-1 **P95** fits half the fp32 teacher's P50 of the same
    timing and whose accuracy keeps the retention target (the rule's limits, with the tail instead of the median)."""
    out = {}
    for key in ("benchmark", "benchmark_real_lengths"):
        found = verdict(results, key)
        if found["budget_ms"] is None:
            continue
        p95 = {(r.get("model"), r.get("precision")): r.get("p95_ms") for r in results.get(key) or []
               if isinstance(r, dict) and int(r.get("batch", 0)) == 1 and r.get("status", "ok") == "ok"}
        fits = [r["name"] for r in found["rows"] if p95.get((r["timed_as"], r["precision"])) is not None
                and p95[(r["timed_as"], r["precision"])] <= found["budget_ms"]
                and r["accuracy"] >= found["floor"] * found["teacher_accuracy"]]
        out[key] = (found["budget_ms"], fits)
    return out
