"""``python -m kdlab grade SUBMISSIONS_DIR``: a gradebook from students' executed notebooks.

A submission is a folder or a .zip per student holding the four executed notebooks (anywhere inside) and, for
the result checks, the run's ``results.json``. Per student the grader:

- checks each notebook: present, every code cell executed top to bottom (execution counts increasing), no error
  output;
- re-runs each exercise from the submitted code, in a separate Python process with a time limit (never in the
  grader's own process), through the same check the notebook shows; a saved check output older than the code is
  flagged as stale;
- compares every reported number (outputs carrying ``kdlab.course.reported.RESULT_MIME``) with the text shown beside it
  and with results.json: a number edited by hand is flagged;
- reads the targets (retention, speedup) from results.json (``kdlab.course.targets.targets``);
- collects the reflection answers into one file.

Points come from a rubric (``kdlab/course/rubric.toml``, editable). A broken submission (missing notebook, invalid JSON,
wrong profile) gets a row that says so; it never stops the batch. Outputs in ``--out``: ``gradebook.csv`` (one row
per student, first row the points possible), ``gradebook_long.csv`` (one row per item), ``feedback/<student>.md``
and ``reflections.md``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import cell_source, exercise_cells, exercise_source, function_source_sha, reflections
from kdlab.course.reported import RESULT_MIME, lookup, same_number
from kdlab.errors import KDLabError
from kdlab.exercises import EXERCISES, MIME

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")
RESULT_MARK = "KDLAB_CHECK_RESULT "


@dataclass
class Item:
    student: str
    notebook: str
    item: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass
class StudentGrade:
    student: str
    items: list[Item] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    status: str = "ok"
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(i.points for i in self.items)

    @property
    def max_points(self) -> float:
        return sum(i.max_points for i in self.items)


def load_rubric(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KDLabError(f"rubric {path} not found (the default is {DEFAULT_RUBRIC}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KDLabError(f"rubric {path} is not valid TOML: {exc}") from exc


# --- submissions -------------------------------------------------------------------------------------------------
def find_submissions(root: str | Path) -> list[tuple[str, Path]]:
    """``(student, path)`` for each sub-folder or .zip of ``root``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise KDLabError(f"{root} is not a folder of submissions (one folder or .zip per student).")
    found = [(p.stem if p.suffix == ".zip" else p.name, p) for p in sorted(root.iterdir())
             if (p.is_dir() and not p.name.startswith(".")) or p.suffix == ".zip"]
    if not found:
        raise KDLabError(f"{root} holds no submissions: put one folder or .zip per student there.")
    return found


def unpack(path: Path, into: Path) -> Path:
    """A submission's folder; a .zip is extracted into ``into`` (members escaping it are refused)."""
    if path.is_dir():
        return path
    target = into / path.stem
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            resolved = (target / member).resolve()
            if not str(resolved).startswith(str(target.resolve())):
                raise KDLabError(f"{path.name}: member {member!r} would be written outside the submission folder.")
        archive.extractall(target)
    return target


def find_file(folder: Path, name: str) -> Path | None:
    """The shallowest file called ``name`` under ``folder`` (Colab downloads nest folders)."""
    matches = sorted(folder.rglob(name), key=lambda p: (len(p.parts), str(p)))
    matches = [m for m in matches if "__MACOSX" not in m.parts and ".ipynb_checkpoints" not in m.parts]
    return matches[0] if matches else None


# --- one notebook ------------------------------------------------------------------------------------------------
def execution_problems(nb) -> list[str]:
    """Cells never run, execution out of order, error outputs (empty list when clean)."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code" and cell_source(c).strip()]
    missing = [i for i, c in code if c.get("execution_count") is None]
    if missing:
        problems.append(f"{len(missing)} code cell(s) never ran (first: cell {missing[0]})")
    previous = None
    for i, c in code:
        count = c.get("execution_count")
        if count is None:
            continue
        if previous is not None and count <= previous[1]:
            problems.append(f"executed out of order: cell {i} (run #{count}) comes after cell {previous[0]} "
                            f"(run #{previous[1]}); restart the kernel and run all cells top to bottom")
            break
        previous = (i, count)
    for i, c in enumerate(nb["cells"]):
        for out in c.get("outputs", []) or []:
            if out.get("output_type") == "error":
                problems.append(f"cell {i} ended in an error: {out.get('ename')}: {str(out.get('evalue'))[:160]}")
    return problems


def _text(data: dict) -> str:
    text = data.get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def saved_payloads(cell, mime: str) -> list[dict]:
    payloads = []
    for out in cell.get("outputs", []) or []:
        data = out.get("data") or {}
        if mime in data:
            payloads.append({"payload": data[mime], "text": _text(data)})
    return payloads


def recheck(cell_text: str, exercise: str, timeout: float) -> dict:
    """Re-run one exercise from the submitted cell in a fresh Python process; the check's payload, or a failure."""
    lines = [line for line in cell_text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    function = EXERCISES[exercise].function
    script = "\n".join([
        "import json, math", "import numpy as np", "import torch", "import torch.nn.functional as F",
        *lines, "",
        "from kdlab.exercises import run_check",
        f"_r = run_check({exercise!r}, {function})",
        f"print({RESULT_MARK!r} + json.dumps(_r.payload()))",
    ])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exercise.py"
        path.write_text(script, encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=timeout,
                                  cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            return {"passed": False, "attempted": True, "message": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"passed": False, "attempted": True, "message": f"the cell does not run on its own: {error[:200]}"}


# --- one student ---------------------------------------------------------------------------------------------------
def grade_student(student: str, folder: Path, rubric: dict, timeout: float = 60.0) -> StudentGrade:
    grade = StudentGrade(student)
    results, results_path = None, find_file(folder, "results.json")
    if results_path is None:
        grade.flags.append("no results.json: result and target checks skipped (submit runs/<profile>/results.json)")
    else:
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
            if not isinstance(results, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            grade.flags.append(f"results.json is not valid JSON ({exc}); result and target checks skipped")
            results = None
    expected_profile = rubric.get("profile") or ""
    wrong_profile = bool(results and expected_profile and results.get("profile") != expected_profile)
    if wrong_profile:
        grade.flags.append(f"profile {results.get('profile')!r} instead of {expected_profile!r}")
        grade.status = "wrong profile"
    nb_points = float(rubric.get("notebooks", {}).get("executed", 0))
    ex_points = {k: float(v) for k, v in rubric.get("exercises", {}).items()}
    penalties = rubric.get("penalties", {})
    missing = []
    for name in NOTEBOOKS:
        path = find_file(folder, name)
        if path is None:
            missing.append(name)
            grade.items.append(Item(student, name, "executed", 0, nb_points, False, "notebook missing"))
            for ex in (e for e in EXERCISES.values() if e.notebook == name and e.id in ex_points):
                grade.items.append(Item(student, name, ex.id, 0, ex_points[ex.id], False, "notebook missing"))
            continue
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            cells = nb["cells"]
            assert isinstance(cells, list)
        except (ValueError, KeyError, AssertionError, UnicodeDecodeError) as exc:
            missing.append(name)
            grade.items.append(Item(student, name, "executed", 0, nb_points, False,
                                    f"not a readable notebook ({type(exc).__name__})"))
            continue
        problems = execution_problems(nb)
        grade.items.append(Item(student, name, "executed", 0 if problems else nb_points, nb_points, not problems,
                                "; ".join(problems) or "all cells ran in order, no errors"))
        grade.flags += [f"{name}: {p}" for p in problems]
        _grade_exercises(grade, name, nb, ex_points, penalties, timeout)
        _check_reported(grade, name, nb, results, penalties)
        grade.answers.update({f"{name}:{k}": v for k, v in reflections(nb).items()})
    if missing:
        grade.status = "incomplete" if grade.status == "ok" else grade.status
    _grade_targets(grade, results, rubric, wrong_profile)
    per_answer = float(rubric.get("reflections", {}).get("answered", 0))
    if per_answer:
        for key, text in sorted(grade.answers.items()):
            grade.items.append(Item(student, key.split(":")[0], f"reflection {key.split(':')[1]}",
                                    per_answer if text else 0, per_answer, bool(text),
                                    "answered" if text else "no answer"))
    return grade


def _grade_exercises(grade: StudentGrade, name: str, nb, ex_points: dict, penalties: dict, timeout: float) -> None:
    cells = exercise_cells(nb)
    for ex in (e for e in EXERCISES.values() if e.notebook == name and e.id in ex_points):
        if ex.id not in cells:
            grade.items.append(Item(grade.student, name, ex.id, 0, ex_points[ex.id], False,
                                    "exercise cell not found (deleted or its function renamed)"))
            continue
        text = cell_source(nb["cells"][cells[ex.id]])
        result = recheck(exercise_source(nb, ex.id), ex.id, timeout)
        points = ex_points[ex.id] if result.get("passed") else 0
        grade.items.append(Item(grade.student, name, ex.id, points, ex_points[ex.id], bool(result.get("passed")),
                                result.get("message", "")))
        current = function_source_sha(text, ex.function)
        for saved in (p["payload"] for c in nb["cells"] for p in saved_payloads(c, MIME)):
            if saved.get("exercise") == ex.id and saved.get("source_sha") and current and \
                    saved["source_sha"] != current:
                grade.flags.append(f"{name}: the saved check of {ex.id} is older than its code (re-run the cell)")
                cost = float(penalties.get("stale", 0))
                if cost:
                    grade.items.append(Item(grade.student, name, f"stale {ex.id}", -cost, 0, False,
                                            "check output older than the code"))
                break


def _check_reported(grade: StudentGrade, name: str, nb, results: dict | None, penalties: dict) -> None:
    cost = float(penalties.get("edited_output", 0))
    for index, cell in enumerate(nb["cells"]):
        for item in saved_payloads(cell, RESULT_MIME):
            payload, shown = item["payload"], item["text"]
            problem = None
            if shown.strip() != str(payload.get("text", "")).strip():
                problem = f"cell {index} shows {shown.strip()[:80]!r} but the run reported {payload.get('text')!r}"
            elif results is not None:
                stored = lookup(results, payload.get("key", ""))
                if stored is not None and not same_number(stored, payload.get("value")):
                    problem = (f"cell {index}: {payload.get('key')} = {payload.get('value')} in the notebook but "
                               f"{stored} in results.json")
            if problem:
                grade.flags.append(f"{name}: edited result? {problem}")
                if cost:
                    grade.items.append(Item(grade.student, name, f"edited {payload.get('key')}", -cost, 0, False,
                                            problem))


def _grade_targets(grade: StudentGrade, results: dict | None, rubric: dict, wrong_profile: bool) -> None:
    from kdlab.course.targets import targets

    points = rubric.get("targets", {})
    checks = []
    if results is not None:
        try:
            checks = targets(results)
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            grade.flags.append(f"results.json is incomplete ({type(exc).__name__}: {exc})")
    for key, want in (("retention", "retention"), ("speedup", "speedup")):
        value = float(points.get(key, 0))
        if not value:
            continue
        mine = [c for c in checks if want in c["target"]]
        ok = bool(mine) and all(c["met"] for c in mine) and not wrong_profile
        message = "; ".join(f"{c['target']}: {c['measured']} ({'met' if c['met'] else 'missed'})" for c in mine)
        if not mine:
            message = "no measurement in results.json"
        if wrong_profile:
            message = "wrong profile: " + message
        grade.items.append(Item(grade.student, "results.json", f"target {key}", value if ok else 0, value, ok,
                                message))


# --- the batch ---------------------------------------------------------------------------------------------------
def grade_all(submissions: str | Path, out_dir: str | Path, rubric_path: str | Path | None = None,
              timeout: float = 60.0, log=print) -> list[StudentGrade]:
    """Grade every submission under ``submissions``; write the gradebooks, feedback and reflections to
    ``out_dir``. Returns the grades."""
    rubric = load_rubric(rubric_path)
    out_dir = Path(out_dir)
    (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
    grades = []
    with tempfile.TemporaryDirectory() as tmp:
        for student, path in find_submissions(submissions):
            try:
                grade = grade_student(student, unpack(path, Path(tmp)), rubric, timeout)
            except (KDLabError, zipfile.BadZipFile, OSError) as exc:
                grade = StudentGrade(student, status="unreadable", flags=[f"{type(exc).__name__}: {exc}"])
            grades.append(grade)
            log(f"{student}: {grade.total:g} / {grade.max_points:g} ({grade.status})")
            (out_dir / "feedback" / f"{student}.md").write_text(feedback(grade), encoding="utf-8")
    write_gradebooks(grades, out_dir)
    (out_dir / "reflections.md").write_text(reflections_file(grades), encoding="utf-8")
    return grades


def write_gradebooks(grades: list[StudentGrade], out_dir: Path) -> None:
    columns = list(dict.fromkeys(f"{i.notebook}:{i.item}" for g in grades for i in g.items if i.max_points > 0))
    possible = {}
    for g in grades:
        for i in g.items:
            if i.max_points > 0:
                possible[f"{i.notebook}:{i.item}"] = i.max_points
    with open(out_dir / "gradebook.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "status", "total", "max", "percent", *columns, "penalties", "flags"])
        writer.writerow(["points-possible", "", sum(possible.values()), sum(possible.values()), 100,
                         *[possible[c] for c in columns], "", ""])
        for g in grades:
            by = {f"{i.notebook}:{i.item}": i.points for i in g.items if i.max_points > 0}
            penalty = sum(i.points for i in g.items if i.max_points == 0)
            maximum = sum(possible.values())
            writer.writerow([g.student, g.status, round(g.total, 2), maximum,
                             round(100 * g.total / maximum, 1) if maximum else 0,
                             *[by.get(c, 0) for c in columns], penalty, " | ".join(g.flags)])
    with open(out_dir / "gradebook_long.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "item", "points", "max_points", "passed", "message"])
        for g in grades:
            for i in g.items:
                writer.writerow([i.student, i.notebook, i.item, i.points, i.max_points, i.passed, i.message])


def feedback(grade: StudentGrade) -> str:
    lines = [f"# Feedback — {grade.student}", "",
             f"Total: **{grade.total:g} / {grade.max_points:g}** (status: {grade.status})", ""]
    current = None
    for i in grade.items:
        if i.notebook != current:
            current = i.notebook
            lines += ["", f"## {current}", ""]
        mark = "✓" if i.passed else ("−" if i.max_points == 0 else "✗")
        lines.append(f"- {mark} {i.item}: {i.points:g}/{i.max_points:g} — {i.message}")
    if grade.flags:
        lines += ["", "## To look at", ""] + [f"- {f}" for f in grade.flags]
    return "\n".join(lines) + "\n"


def reflections_file(grades: list[StudentGrade]) -> str:
    questions = sorted({q for g in grades for q in g.answers})
    lines = ["# Reflection answers", "", "Grouped by question; an empty answer says so.", ""]
    for q in questions:
        lines += [f"## {q}", ""]
        for g in grades:
            if q in g.answers:
                answer = g.answers[q] or "_(no answer)_"
                lines += [f"### {g.student}", "", answer, ""]
    return "\n".join(lines)
