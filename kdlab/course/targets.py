"""The lab's targets, measured from a run's ``results.json``: the MiniLM student's retention of the teacher's
accuracy, and each trained student's speedup over the teacher (``targets``); and reading results.json's entries
(a teacher or student entry counts only when it holds an accuracy with its interval)."""

from __future__ import annotations

import math

RETENTION_TARGET = 0.97  # the course's: the MiniLM student keeps >= 97% of the teacher's accuracy
SPREAD_SDS = 2.0  # a target set from a measured spread sits this many seed-to-seed sds under the mean
# Config fields that do not change what a reference run measured (where the data came from, bookkeeping).
REFERENCE_IGNORED = ("data", "runs_dir", "num_threads", "bench_repeats", "bench_warmup", "logging_steps",
                     "eval_steps", "save_steps", "compare_variants", "extra_student_layers", "eval_batch_size",
                     "num_seeds", "challenges", "fp16", "student_id", "student_seed", "race_sentences")
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


def matching_reference(config: dict | None) -> dict | None:
    """The shipped multi-seed reference (``kdlab.course.reference``) measured with ``config``'s training settings
    (the data's source and bookkeeping fields aside; a field the reference predates counts as its default)."""
    from kdlab.config import KDConfig
    from kdlab.course.reference import load_reference

    if not isinstance(config, dict):
        return None
    defaults = KDConfig().to_dict()
    for ref in load_reference().values():
        saved = ref.get("config") or {}
        if all(saved.get(k, defaults[k]) == config.get(k, defaults[k]) for k in defaults if k not in REFERENCE_IGNORED):
            return ref
    return None


def retention_target(results: dict) -> tuple[float, str]:
    """``(target, where it comes from)`` for the MiniLM student's retention. When the run's settings are those of a
    shipped multi-seed reference, the target is that reference's mean − 2 sd over seeds divided by its teacher
    (rounded down to 0.5%): a fresh run of the same settings clears it whatever its seed (~98% of seeds under a
    normal spread), where a target at the mean would fail half of them. Otherwise the course's 97%."""
    ref = matching_reference(results.get("config"))
    summary = {s["variant"]: s for s in (ref or {}).get("summary", [])}
    minilm = summary.get("minilm")
    if not ref or not minilm or not math.isfinite(minilm.get("sd_%", float("nan"))):
        return RETENTION_TARGET, "the course's target"
    floor = minilm["mean_%"] - SPREAD_SDS * minilm["sd_%"]
    target = math.floor(2 * floor / ref["teacher_accuracy"]) / 200
    teacher = 100 * ref["teacher_accuracy"]
    return target, (f"the {minilm['seeds']}-seed spread of these settings: mean {minilm['mean_%']:.1f}% − "
                    f"{SPREAD_SDS:g} sd ({minilm['sd_%']:.2f}), over the teacher's {teacher:.1f}%")


def targets(results: dict) -> list[dict]:
    """Targets with the measured value and met/missed: retention of the MiniLM student (``retention_target``), speedup
    of each student."""
    checks = []
    teacher = teacher_entry(results)
    want_retention, basis = retention_target(results)
    for variant, entry in student_entries(results).items():
        if teacher and variant == "minilm":
            retention = entry["accuracy"] / teacher["accuracy"]
            checks.append(dict(target=f"{variant} retention >= {want_retention:.1%}", measured=f"{retention:.1%}",
                               met=retention >= want_retention - 1e-12, basis=basis))
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
