"""The lab's targets, measured from a run's ``results.json``: the MiniLM student's retention of the teacher's
accuracy, and each trained student's speedup over the teacher (``targets``); and reading results.json's entries
(a teacher or student entry counts only when it holds an accuracy with its interval)."""

from __future__ import annotations

RETENTION_TARGET = 0.97  # the MiniLM student keeps >= 97% of the teacher's accuracy
SPEEDUP_FRACTION = 0.9  # a student should reach >= 90% of its layer ratio (12->6: 1.8x)
UNTRAINED = "(untrained)"  # benchmark rows of timing-only students carry this in their name


def measured(m) -> bool:
    """A metrics entry that holds an accuracy with its interval (partial entries of an interrupted run do not)."""
    return isinstance(m, dict) and all(isinstance(m.get(k), (int, float)) for k in ("accuracy", "acc_low", "acc_high"))


def student_entries(results: dict) -> dict:
    students = results.get("students")
    return {k: v for k, v in students.items() if measured(v)} if isinstance(students, dict) else {}


def teacher_entry(results: dict) -> dict | None:
    teacher = results.get("teacher")
    return teacher if measured(teacher) else None


def speedups(results: dict) -> list[dict]:
    """Measured fp/same-precision speedups of each trained student over the teacher, from the benchmark rows
    (timing-only untrained students are left out)."""
    out = []
    rows = results.get("benchmark")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or row.get("status", "ok") != "ok" or row.get("model") == "teacher" \
                or not row.get("speedup_vs_teacher") or not row.get("layers"):
            continue
        if UNTRAINED in str(row.get("model")):
            continue
        out.append(row)
    return out


def targets(results: dict) -> list[dict]:
    """Targets with the measured value and met/missed: retention of each student, speedup of each student."""
    checks = []
    teacher = teacher_entry(results)
    for variant, entry in student_entries(results).items():
        if teacher and variant == "minilm":
            retention = entry["accuracy"] / teacher["accuracy"]
            checks.append(dict(target=f"{variant} retention >= {RETENTION_TARGET:.0%}", measured=f"{retention:.1%}",
                               met=retention >= RETENTION_TARGET))
    teacher_layers = (teacher or {}).get("layers")
    for row in speedups(results):
        if row.get("precision") not in ("fp32", "fp16") or not teacher_layers:
            continue
        want = SPEEDUP_FRACTION * teacher_layers / row["layers"]
        speed = row.get("speedup_same_precision") or row["speedup_vs_teacher"]  # teacher at the same precision
        checks.append(dict(
            target=f"{row['model']} {row['precision']} batch {row['batch']} speedup over the teacher >= {want:.2f}x",
            measured=f"{speed:.3f}x", met=speed >= want))
    return checks
