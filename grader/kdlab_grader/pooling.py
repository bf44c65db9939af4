"""``python -m kdlab pool SUBMISSIONS_DIR``: a class's runs as one multi-seed study.

Each student trains the lab's students with a seed of their own (``lab.setup(student_id=...)``) on the class's
shared data and teacher, so a class of submissions is a multi-seed study of the same settings — the study 03-Inference
shows from the shipped reference. This pools every submission's results.json (opened with the grader's file
limits): the seed-to-seed spread of each student variant (mean ± sd over the class) and the paired comparisons
(MiniLM − CE, Hinton − CE, MiniLM − Hinton) by seed and sentence, as ``kdlab.distillation.seeds`` computes them.
Runs that are one run (the same students' predictions: a copy, or no student id) count once; runs of other
settings or other dev labels than the first are left out, and the report says which and why.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from kdlab.distillation.runs import config_differences
from kdlab.distillation.seeds import comparison_table, seed_table
from kdlab_grader.submissions import FileLimits, SubmissionRefused, find_file, find_submissions, open_submission, \
    read_json

VARIANTS = ("ce", "hinton", "minilm")
PAIRS = (("minilm", "ce"), ("hinton", "ce"), ("minilm", "hinton"))
IGNORED = ("student_id", "student_seed", "data", "runs_dir")  # what may differ between a class's runs


def class_runs(submissions: str | Path, limits: FileLimits | None = None) -> tuple[list[dict], list, list[str]]:
    """``(rows, dev labels, notes)``: one row per (submission, variant) — ``variant``, ``seed``, ``accuracy``,
    ``acc_low``, ``acc_high``, ``f1``, ``predictions``, ``student`` — from every usable submission."""
    from kdlab.config import KDConfig

    limits = limits or FileLimits()
    rows, notes, labels, reference, seen = [], [], None, None, {}
    with tempfile.TemporaryDirectory(prefix="kdlab-pool-") as tmp:
        for student, path in find_submissions(submissions):
            try:
                folder = open_submission(path, Path(tmp) / student, limits)
                found = find_file(folder, "results.json")
                if found is None:
                    notes.append(f"{student}: no results.json")
                    continue
                results = read_json(found, limits.results_bytes, "results.json", limits.json_depth)
                if not isinstance(results, dict):
                    raise SubmissionRefused(f"results.json is a JSON {type(results).__name__}, not an object")
            except (SubmissionRefused, ValueError, UnicodeDecodeError, OSError) as exc:
                notes.append(f"{student}: left out ({exc})")
                continue
            students = results.get("students") if isinstance(results.get("students"), dict) else {}
            config = results.get("config") if isinstance(results.get("config"), dict) else {}
            dev = results.get("dev_labels")
            if not isinstance(dev, list) or not students or not config:
                notes.append(f"{student}: left out (no dev labels, students or config in results.json: an unfinished "
                             "run, or one made before kdlab recorded them)")
                continue
            if reference is None:
                reference, labels = config, dev
            try:
                differ = {k: v for k, v in config_differences(reference, KDConfig(**{
                    k: v for k, v in config.items() if k in KDConfig.__dataclass_fields__})).items()
                    if k not in IGNORED}
            except Exception as exc:  # noqa: BLE001 - a config of the wrong types: that run is left out, said why
                notes.append(f"{student}: left out (its config cannot be read: {type(exc).__name__}: {exc})")
                continue
            if differ or dev != labels:
                why = ", ".join(f"{k}: {b!r} (first run: {a!r})" for k, (a, b) in sorted(differ.items())) or \
                    "other dev labels"
                notes.append(f"{student}: left out (other settings than the first run: {why})")
                continue
            print_ = hashlib.sha256(json.dumps({k: (students.get(k) if isinstance(students.get(k), dict) else {}).get("predictions")
                                                for k in VARIANTS},
                                               sort_keys=True).encode()).hexdigest()
            if print_ in seen:
                notes.append(f"{student}: the same run as {seen[print_]}'s, counted once")
                continue
            seen[print_] = student
            for variant in VARIANTS:
                entry = students.get(variant)
                if isinstance(entry, dict) and isinstance(entry.get("predictions"), list):
                    rows.append({"variant": variant, "seed": entry.get("seed", config.get("seed")),
                                 "student": student, "predictions": entry["predictions"],
                                 **{k: entry.get(k) for k in ("accuracy", "acc_low", "acc_high", "f1")}})
    return rows, labels or [], notes


def pool(submissions: str | Path, out: str | Path | None = None) -> dict:
    """The class's seed table and paired comparisons (DataFrames), written as Markdown to ``out`` when given."""
    from kdlab.measurement.records import markdown_table

    rows, labels, notes = class_runs(submissions)
    if not rows:
        raise SubmissionRefused("no submission has a usable results.json to pool: " + "; ".join(notes))
    # seeds are per student: key the rows by student so two students with one shared seed still pair correctly
    keyed = [{**r, "seed": r["student"]} for r in rows]
    table = seed_table(keyed, [v for v in VARIANTS if any(r["variant"] == v for r in rows)])
    table = table.drop(columns=["per_seed_%"])
    comparisons = comparison_table(keyed, PAIRS, labels)
    lines = [f"# The class's runs as a multi-seed study ({len({r['student'] for r in rows})} runs)", "",
             "Each run trained the lab's students with its student's own seed on the shared data and teacher; mean ± "
             "sd over the runs, paired comparisons by run and sentence (95% bootstrap interval over both).", "",
             markdown_table(table.round(2)), ""]
    if len(comparisons):
        lines += [markdown_table(comparisons[["a", "b", "seeds", "mean_diff", "sd_diff", "wins", "t_p", "boot_low",
                                              "boot_high", "boot_p"]].round(3)), ""]
    if notes:
        lines += ["Left out or merged:", "", *[f"- {n}" for n in notes], ""]
    if out is not None:
        Path(out).write_text("\n".join(lines), encoding="utf-8")
    return {"table": table, "comparisons": comparisons, "notes": notes, "markdown": "\n".join(lines)}
