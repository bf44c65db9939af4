"""``python -m kdlab grade SUBMISSIONS_DIR``: a gradebook from students' executed notebooks.

Per submission (a folder or a .zip per student, opened with the limits of ``kdlab_grader.submissions``):

- each notebook: present, under its size limit, every code cell executed top to bottom, no error output;
- each exercise cell read first (``kdlab_grader.static``): kdlab's implementations imported or reproduced, files,
  processes, the environment or the network reached for, a library patched, a check output forged — no points for
  that exercise, and a flag naming it;
- the other exercise cells run in one contained child (``kdlab_grader.sandbox``), which only computes the
  functions' outputs on inputs drawn from a fresh seed; the grader judges them with the notebook checks' own code
  (``kdlab_grader.checks``); a saved check output older than its code is flagged as stale;
- every reported number and results table compared with results.json (``kdlab_grader.outputs``): an edit is
  flagged and penalised;
- the targets read from results.json (``kdlab.course.targets``); the reflection answers collected.

Submissions are graded in parallel (``jobs``). A broken or hostile submission gets a row that says why; it never
stops the batch: files are read with size and nesting bounds (``submissions.read_json``), each notebook's and the
run's checks turn any exception into an item or flag of that student, and a submission the grader still cannot
grade gets a row with status ``error`` and the reason; the gradebook is always written. Two submissions that name
one student (``twin/`` and ``twin.zip``, or ``Alice/`` and ``alice.zip``) are graded under distinct names
(``twin #1``, ``twin #2``), each flagged with both files. Points come from a rubric (``grader/kdlab_grader/rubric.toml``,
editable).
"""

from __future__ import annotations

import json
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import cell_source, exercise_cells, exercise_source, function_source_sha, reflections
from kdlab.errors import KDLabError
from kdlab.exercises import EXERCISES
from kdlab.exercises.core import MIME
from kdlab_grader import checks, outputs, recipes, static
from kdlab_grader.reflection_rubric import points as reflection_points
from kdlab_grader.sandbox import Limits, Sandbox
from kdlab_grader.submissions import (
    FileLimits,
    NotJSON,
    SubmissionRefused,
    find_file,
    find_submissions,
    open_submission,
    read_json,
)
from kdlab.lm.config import LM_NOTEBOOK

OPTIONAL_NOTEBOOKS = (LM_NOTEBOOK,)  # graded when a submission has them (advanced/07's exercise)

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")


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
    containment: str = ""
    seconds: float = 0.0
    fingerprint: str = ""  # of the run's own numbers (its students' dev predictions): copies share it
    claimed: str = ""  # the name the submission's file gives, when ``student`` had to be made distinct from it

    @property
    def total(self) -> float:
        return sum(i.points for i in self.items)

    @property
    def max_points(self) -> float:
        return sum(i.max_points for i in self.items)


@dataclass
class Settings:
    """How to grade: the rubric, the child's containment, the per-exercise timeout, the file limits, and the
    instructor's solutions (``{exercise: source}``, for copy detection; optional)."""

    rubric: dict
    sandbox: Sandbox
    timeout: float = 60.0
    files: FileLimits = field(default_factory=FileLimits)
    solutions: dict[str, str] = field(default_factory=dict)


def load_rubric(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KDLabError(f"rubric {path} not found (the default is {DEFAULT_RUBRIC}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KDLabError(f"rubric {path} is not valid TOML: {exc}") from exc


def _read_results(folder: Path, grade: StudentGrade, limits: FileLimits) -> dict | None:
    path = find_file(folder, "results.json")
    if path is None:
        grade.flags.append("no results.json: result and target checks skipped (submit runs/<profile>/results.json)")
        return None
    try:
        results = read_json(path, limits.results_bytes, "results.json", limits.json_depth)
    except SubmissionRefused as exc:
        grade.flags.append(f"{exc}; result and target checks skipped")
        return None
    if not isinstance(results, dict):
        grade.flags.append(f"results.json is not valid: a JSON {type(results).__name__}, not an object; result and "
                           "target checks skipped")
        return None
    return results


def _guarded(grade: StudentGrade, what: str, step, *args) -> bool:
    """Run one reading or judging step of a submission; any exception becomes a flag of that student (the batch and
    the student's other steps go on). True when the step finished."""
    try:
        step(*args)
        return True
    except Exception as exc:  # noqa: BLE001 - a submission nobody foresaw must not stop the class
        grade.flags.append(f"{what}: could not be checked ({type(exc).__name__}: {str(exc)[:200]}); look at it by "
                           "hand")
        return False


def grade_student(student: str, folder: Path, settings: Settings, claimed: str = "") -> StudentGrade:
    """Grade one unpacked submission (``claimed``: the name its file gives, when ``student`` differs from it)."""
    import time

    start = time.perf_counter()
    rubric = settings.rubric
    grade = StudentGrade(student, containment=settings.sandbox.mode, claimed=claimed)
    results = _read_results(folder, grade, settings.files)
    if results is not None and not _guarded(grade, "results.json (student id and seed)", _check_seed, grade,
                                            results):
        results = None
    expected_profile = rubric.get("profile") or ""
    wrong_profile = bool(results and expected_profile and results.get("profile") != expected_profile)
    if wrong_profile:
        grade.flags.append(f"profile {results.get('profile')!r} instead of {expected_profile!r}")
        grade.status = "wrong profile"
    nb_points = float(rubric.get("notebooks", {}).get("executed", 0))
    ex_points = {k: float(v) for k, v in rubric.get("exercises", {}).items()}
    penalties = rubric.get("penalties", {})
    to_run: list[tuple] = []  # (notebook, exercise, its own cell's text, the notebook)
    missing = []
    for name in (*NOTEBOOKS, *OPTIONAL_NOTEBOOKS):
        path = find_file(folder, Path(name).name)
        if path is None and name in OPTIONAL_NOTEBOOKS:
            continue  # an optional notebook earns its points when handed in and costs nothing when not
        problem = "notebook missing" if path is None else None
        nb = None
        if path is not None:
            try:
                nb = read_json(path, settings.files.notebook_bytes, name, settings.files.json_depth)
                problem = _notebook_shape(nb)
            except NotJSON as exc:
                problem = f"not a readable notebook ({exc})"
            except SubmissionRefused as exc:
                problem = f"refused: {exc}"
        if problem:
            missing.append(name)
            grade.items.append(Item(student, name, "executed", 0, nb_points, False, problem))
            if problem.startswith("refused"):
                grade.flags.append(f"{name}: {problem}")
            for ex in (e for e in EXERCISES.values() if e.notebook == name and e.id in ex_points):
                grade.items.append(Item(student, name, ex.id, 0, ex_points[ex.id], False, problem))
            continue
        try:
            problems = outputs.execution_problems(nb)
        except Exception as exc:  # noqa: BLE001 - a shape _notebook_shape did not foresee
            problems = [f"its cells could not be read ({type(exc).__name__}: {str(exc)[:160]})"]
        grade.items.append(Item(student, name, "executed", 0 if problems else nb_points, nb_points, not problems,
                                "; ".join(problems) or "all cells ran in order, no errors"))
        grade.flags += [f"{name}: {p}" for p in problems]
        before = len(grade.items)
        if not _guarded(grade, f"{name}: exercise cells", lambda: to_run.extend(
                _read_exercises(grade, name, nb, ex_points, settings))):
            done = {i.item for i in grade.items[before:]} | {e.id for n, e, _, _ in to_run if n == name}
            for ex in (e for e in EXERCISES.values() if e.notebook == name and e.id in ex_points and e.id not in done):
                grade.items.append(Item(student, name, ex.id, 0, ex_points[ex.id], False,
                                        "the exercise cells could not be read (see the flags)"))
        _guarded(grade, f"{name}: reported numbers and tables", _check_outputs, grade, name, nb, results, penalties)
        _guarded(grade, f"{name}: reflections", lambda: grade.answers.update(
            {f"{name}:{k}": v for k, v in reflections(nb).items()}))
    before = len(grade.items)
    if not _guarded(grade, "the exercises' re-check", _run_exercises, grade, to_run, ex_points, penalties, settings):
        judged = {(i.notebook, i.item) for i in grade.items[before:]}
        for notebook, exercise, _, _ in to_run:
            if (notebook, exercise.id) not in judged:
                grade.items.append(Item(student, notebook, exercise.id, 0, ex_points[exercise.id], False,
                                        "could not be re-checked (see the flags)"))
    if missing:
        grade.status = "incomplete" if grade.status == "ok" else grade.status
    _guarded(grade, "results.json (targets)", _grade_targets, grade, results, rubric, wrong_profile)
    for key, text in sorted(grade.answers.items()):  # points per idea (reflection_rubric), not for answering
        notebook, question = key.split(":")
        got, top, message = reflection_points(question, text, rubric)
        if top:
            grade.items.append(Item(student, notebook, f"reflection {question}", got, top, bool(text) and got > 0,
                                    message))
    grade.seconds = time.perf_counter() - start
    return grade


def _notebook_shape(nb) -> str | None:
    """Why ``nb`` (parsed JSON) is not a notebook the grader can read, or None: an nbformat-4 object whose cells are
    objects with a ``cell_type``, a ``source`` (text or list of text) and, for code cells, a list of ``outputs``
    (missing is read as none) whose items are objects."""
    if not isinstance(nb, dict):
        return f"not a readable notebook (a JSON {type(nb).__name__}, not an object)"
    if nb.get("nbformat") != 4:
        return (f"not a readable notebook (nbformat {nb.get('nbformat')!r}; save it from Jupyter or Colab as "
                "nbformat 4)")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return "not a readable notebook (no list of cells)"
    for index, cell in enumerate(cells):
        source = cell.get("source") if isinstance(cell, dict) else None
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str) or not (
                isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            return f"not a readable notebook (cell {index} is not a cell: no cell_type or source text)"
        outs = cell.get("outputs", [])
        if outs is None:
            cell["outputs"] = outs = []
        if not isinstance(outs, list) or not all(isinstance(o, dict) for o in outs):
            return f"not a readable notebook (cell {index}'s outputs are not a list of outputs)"
        count = cell.get("execution_count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            return f"not a readable notebook (cell {index}'s execution_count is {count!r}, not a number)"
    return None


def _read_exercises(grade, name, nb, ex_points, settings) -> list:
    """Items for the exercises a static read refuses; the others, to run."""
    cells = exercise_cells(nb)
    out = []
    for ex in (e for e in EXERCISES.values() if e.notebook == name and e.id in ex_points):
        if ex.id not in cells:
            grade.items.append(Item(grade.student, name, ex.id, 0, ex_points[ex.id], False,
                                    "exercise cell not found (deleted or its function renamed)"))
            continue
        own = cell_source(nb["cells"][cells[ex.id]])
        source = "\n".join(line for line in exercise_source(nb, ex.id).splitlines()
                           if not line.lstrip().startswith(("%", "!")))
        found = static.problems("\n".join(line for line in own.splitlines()
                                          if not line.lstrip().startswith(("%", "!"))))
        copy = static.copied_from(own, ex.function, static.originals_for(ex.id, settings.solutions))
        if copy:
            found.append(copy)
        if found:
            message = f"0 points: the cell {'; '.join(found)}"
            grade.items.append(Item(grade.student, name, ex.id, 0, ex_points[ex.id], False, message))
            grade.flags.append(f"{name}: {ex.id}: {message}")
            continue
        seed = secrets.randbits(31) | 1  # fresh inputs each run, never 0 (the notebook's fixed ones)
        out.append((name, checks.Exercise(ex.id, ex.function, source, seed, checks.probe(ex.id, seed)), own, nb))
    return out


def _run_exercises(grade, to_run, ex_points, penalties, settings) -> None:
    if not to_run:
        return
    exercises = [e for _, e, _, _ in to_run]
    budget = 30 + settings.timeout * len(exercises)
    done = settings.sandbox.run(checks.HARNESS.read_text(encoding="utf-8"),
                                checks.job_files(exercises, settings.timeout), checks.output_names(len(exercises)),
                                budget)
    entries, tensors = checks.load_outputs(done.files)
    if done.timed_out:
        grade.flags.append(f"the exercise child was stopped after {budget:.0f} s (its time limit)")
    if any(mark in done.stdout for mark in static.FORGED_MARKS):
        grade.flags.append("an exercise cell printed a forged check result (ignored: results are judged here, not read "
                           "from the child's output)")
    for notebook, exercise, own, nb in to_run:
        entry = entries.get(exercise.id, (None, None))[1]
        result = checks.judge(exercise, entry, tensors, settings.timeout)
        message = result.message
        if entry is None and not done.files.get("results.json"):
            message += f" [child exit {done.returncode}: {done.stderr.strip()[-160:]}]"
        cell_error = (entry or {}).get("cell_error", {})
        if cell_error.get("type") == "MemoryError" or "timed out" in result.message:
            grade.flags.append(f"{notebook}: {exercise.id}: stopped by a limit: {result.message}")
        points = ex_points[exercise.id] if result.passed else 0
        grade.items.append(Item(grade.student, notebook, exercise.id, points, ex_points[exercise.id], result.passed,
                                message))
        _stale(grade, notebook, exercise, own, penalties, nb)


def _stale(grade, notebook, exercise, own, penalties, nb) -> None:
    """Flag a saved check output whose code has changed since (the cell was edited after its check ran)."""
    current = function_source_sha(own, exercise.function)
    for cell in nb["cells"]:
        for saved in outputs.saved_payloads(cell, MIME):
            payload = saved["payload"] if isinstance(saved["payload"], dict) else {}
            if payload.get("exercise") == exercise.id and payload.get("source_sha") and current and \
                    payload["source_sha"] != current:
                grade.flags.append(f"{notebook}: the saved check of {exercise.id} is older than its code (re-run the "
                                   "cell)")
                cost = float(penalties.get("stale", 0))
                if cost:
                    grade.items.append(Item(grade.student, notebook, f"stale {exercise.id}", -cost, 0, False,
                                            "check output older than the code"))
                return


def _check_seed(grade: StudentGrade, results: dict) -> None:
    """Whether the run is this student's own: its student id is the submission's, its students' training seed the
    one that id gives (``kdlab.config.seed_for_student``); and a fingerprint of its students' predictions, which
    ``grade_all`` compares across the class."""
    import hashlib

    from kdlab.config import seed_for_student

    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    student_id = config.get("student_id")
    submitted = grade.claimed or grade.student
    students = results.get("students") if isinstance(results.get("students"), dict) else {}
    seeds = {s.get("seed") for s in students.values() if isinstance(s, dict) and s.get("seed") is not None}
    if not student_id:
        grade.flags.append("no student id in the run (lab.setup(student_id=...)): its students used the class's "
                           "shared seed, so the run cannot be told from another student's")
    else:
        if str(student_id).strip().lower() != submitted.strip().lower():
            grade.flags.append(f"the run belongs to student id {student_id!r}, submitted as {submitted!r}")
        expected = seed_for_student(str(student_id))
        if config.get("student_seed") != expected or (seeds and seeds != {expected}):
            grade.flags.append(f"the students' training seed {sorted(seeds) or config.get('student_seed')} is not "
                               f"the one student id {student_id!r} gives ({expected}): edited or copied settings")
    imported = results.get("imported_from")
    if imported:
        grade.flags.append(f"the run was imported ({imported}): its teacher and students were trained in another "
                           "session (the instructor's fallback for a lost one), not by this submission's notebooks")
    predictions = {k: v.get("predictions") for k, v in sorted(students.items()) if isinstance(v, dict)}
    if any(predictions.values()):
        grade.fingerprint = hashlib.sha256(json.dumps(predictions, sort_keys=True).encode()).hexdigest()


def _check_outputs(grade: StudentGrade, name: str, nb, results: dict | None, penalties: dict) -> None:
    """Reported numbers and results tables against results.json."""
    cost = float(penalties.get("edited_output", 0))
    found = [(f"edited {key}", problem) for key, problem in outputs.reported_problems(nb, results)]
    if results is not None:
        for index, saved in outputs.tables_in(nb):
            if saved is None:
                found.append(("edited table", f"cell {index}: a results table shows no provenance (its output was "
                                              "replaced or edited by hand)"))
                continue
            recipe = (saved["payload"] or {}).get("recipe") if isinstance(saved["payload"], dict) else None
            problems = recipes.problems(recipe, saved, results)
            if problems:  # one edited table is one penalty, however many of its cells show it
                found.append((f"edited {recipe} table", f"cell {index} ({recipe} table): " + "; ".join(problems)))
    for item, problem in found:
        grade.flags.append(f"{name}: edited result? {problem}")
        if cost:
            grade.items.append(Item(grade.student, name, item, -cost, 0, False, problem))


def _grade_targets(grade: StudentGrade, results: dict | None, rubric: dict, wrong_profile: bool) -> None:
    from kdlab.course.targets import targets

    points = rubric.get("targets", {})
    checks_ = []
    if results is not None:
        try:
            checks_ = targets(results)
        except (KeyError, TypeError, ZeroDivisionError, AttributeError) as exc:
            grade.flags.append(f"results.json is incomplete ({type(exc).__name__}: {exc})")
    for key, want in (("retention", "retention"), ("speedup", "speedup")):
        value = float(points.get(key, 0))
        if not value:
            continue
        mine = [c for c in checks_ if want in c["target"]]
        ok = bool(mine) and all(c["met"] for c in mine) and not wrong_profile
        message = "; ".join(f"{c['target']}: {c['measured']} ({'met' if c['met'] else 'missed'})" for c in mine)
        if not mine:
            message = "no measurement in results.json"
        if wrong_profile:
            message = "wrong profile: " + message
        grade.items.append(Item(grade.student, "results.json", f"target {key}", value if ok else 0, value, ok,
                                message))


def _one(student: str, path: Path, settings: Settings, tmp: Path, claimed: str = "",
         flags: tuple[str, ...] = ()) -> StudentGrade:
    """One submission's grade; never raises: whatever goes wrong becomes the student's row (status and reason)."""
    try:
        folder = open_submission(path, Path(tempfile.mkdtemp(dir=tmp)), settings.files)
        grade = grade_student(student, folder, settings, claimed)
    except SubmissionRefused as exc:
        grade = StudentGrade(student, status="refused", flags=[f"refused: {exc}"], containment=settings.sandbox.mode)
    except (KDLabError, OSError, UnicodeDecodeError) as exc:
        grade = StudentGrade(student, status="unreadable", flags=[f"{type(exc).__name__}: {exc}"],
                             containment=settings.sandbox.mode)
    except Exception as exc:  # noqa: BLE001 - a submission nobody foresaw: its row says so, the batch goes on
        grade = StudentGrade(student, status="error", containment=settings.sandbox.mode,
                             flags=[f"the grader could not grade this submission ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); nothing was scored: look at it by hand"])
    grade.claimed = claimed
    grade.flags[:0] = flags
    return grade


def distinct_names(found: list[tuple[str, Path]]) -> list[tuple[str, Path, str, tuple[str, ...]]]:
    """``(student, path, claimed, flags)`` per submission: a name that two submissions share, exactly or after
    case-folding (``twin/`` and ``twin.zip``; ``Alice/`` and ``alice.zip``), becomes ``name #1``, ``name #2``, …
    (in file-name order), each with a flag naming every file, so no row and no feedback file silently stands for
    two students."""
    groups: dict[str, list[tuple[str, Path]]] = {}
    for student, path in found:
        groups.setdefault(student.casefold(), []).append((student, path))
    out = []
    for student, path in found:
        group = groups[student.casefold()]
        if len(group) == 1:
            out.append((student, path, "", ()))
            continue
        k = group.index((student, path)) + 1
        files = ", ".join(p.name + ("/" if p.is_dir() else "") for _, p in group)
        out.append((f"{student} #{k}", path, student, (
            f"name collision: {files} all name student {student!r} (case-folded); graded separately as "
            f"{student!r} #1..#{len(group)} ({path.name}{'/' if path.is_dir() else ''} is #{k}): keep the one that "
            "is theirs",)))
    return out


def _flag_copies(grades: list[StudentGrade]) -> None:
    """Submissions whose runs trained students with the very same dev predictions are one run: flag each."""
    by_print: dict[str, list[str]] = {}
    for grade in grades:
        if grade.fingerprint:
            by_print.setdefault(grade.fingerprint, []).append(grade.student)
    for grade in grades:
        others = [s for s in by_print.get(grade.fingerprint, []) if s != grade.student]
        if others:
            grade.flags.append(f"the same run as {', '.join(others)}'s (identical students' predictions): a copied "
                               "run, or one shared seed")


def grade_all(submissions: str | Path, out_dir: str | Path, settings: Settings, jobs: int = 1,
              log=print) -> list[StudentGrade]:
    """Grade every submission under ``submissions`` (``jobs`` at a time); write the gradebooks, feedback and
    reflections to ``out_dir``. Returns the grades, in name order."""
    from kdlab_grader.gradebook import write_outputs

    found = distinct_names(find_submissions(submissions))
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="kdlab-grade-") as tmp, ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(_one, student, path, settings, Path(tmp), claimed, flags)
                   for student, path, claimed, flags in found]
        grades = [future.result() for future in futures]
    try:
        _flag_copies(grades)
    finally:  # the gradebook is always written
        for grade in grades:
            log(f"{grade.student}: {grade.total:g} / {grade.max_points:g} ({grade.status}, {grade.seconds:.1f} s)")
        write_outputs(grades, out_dir, settings.sandbox.protections())
    return grades


__all__ = ["DEFAULT_RUBRIC", "Item", "Limits", "Settings", "StudentGrade", "grade_all", "grade_student",
           "load_rubric"]
