"""``kdlab grade`` on a class built from one smoke run: an honest student, careless ones, and hostile ones.

One batch grades them all (``gradebook`` fixture, bubblewrap containment where the machine has it, as CI does):
a forged result line, a patched checker, kdlab's own loss imported or pasted, an endless loop at import, a cell that
steals an instructor variable and another student's notebook and writes them outside its folder, a 6 GiB allocation,
a zip bomb, a zip-slip path, a symlink, an oversized notebook, an edited table. Expected: the honest student passes
everything; every cheat gets 0 for that exercise and a flag naming it; nothing is written outside the throw-away
folder and the secret appears nowhere; the batch finishes within a few timeouts.
"""

import csv
import functools
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import cell_source, exercise_cells
from kdlab.course.reported import RESULT_MIME, TABLE_MIME
from kdlab.exercises import EXERCISES
from kdlab.lm.config import LM_NOTEBOOK
from kdlab_grader.grader import Settings, grade_all, grade_student, load_rubric
from kdlab_grader.sandbox import Limits, Sandbox, bwrap_works

ROOT = Path(__file__).resolve().parents[2]
SECRET = "kdlab-secret-7f3a9c"  # an instructor variable the child must never see
TIMEOUT = 10.0  # per exercise: the endless loop costs this much


def _copy_submission(root: Path, results_path: Path, dest: Path, own_run: bool = True) -> Path:
    """alice's notebooks under another student's name; ``own_run``: with a results.json made that student's own
    (their id, the seed it gives, and students' predictions of their own), as if they had run the lab themselves."""
    dest.mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(root / name, dest / name)
    shutil.copy(results_path, dest / "results.json")
    if own_run and dest.name != "alice":
        _as_own_run(dest / "results.json", dest.name)
    return dest


@functools.cache
def _load_benchmark():
    """benchmarks/grading.py, whose ``own_run`` makes a copied submission a student's own run (one definition for the
    benchmark's class and these tests)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("grading_benchmark", ROOT / "benchmarks" / "grading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_own_run(path: Path, student: str) -> None:
    _load_benchmark().own_run(path, path, student)


def _replace_exercise(folder: Path, exercise: str, source: str) -> None:
    """Give ``exercise``'s cell a new source, inside the solution markers a student writes between (its saved
    outputs stay: the check output is then stale)."""
    name = EXERCISES[exercise].notebook
    nb = nbformat.read(folder / name, as_version=4)
    nb.cells[exercise_cells(nb)[exercise]].source = f"### BEGIN SOLUTION\n{source}\n### END SOLUTION\n"
    nbformat.write(nb, folder / name)


FORWARD_NOT_REVERSE = '''import torch.nn.functional as F


def masked_reverse_kl(student_logits, teacher_logits, mask):
    log_p_s = F.log_softmax(student_logits.float(), dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float(), dim=-1)
    per_token = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    return (per_token * mask).sum() / mask.sum()
'''

WRONG_KD = '''import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, T):
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    p_t = F.softmax(teacher_logits / T, dim=-1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean")  # no T²: wrong


print("KDLAB_" + "CHECK_RESULT " + '{"exercise": "kd_loss", "passed": true, "attempted": true}')
'''
PATCHING = '''import torch
import kdlab.exercises as checks

torch.allclose = lambda *args, **kwargs: True
checks.run_check = lambda *args, **kwargs: None


def attention_kl(q_s, k_s, q_t, k_t, mask):
    return torch.zeros(())
'''
IMPORTED = '''from kdlab.distillation.losses import kd_loss as _kdlab_kd_loss


def kd_loss(student_logits, teacher_logits, T):
    return _kdlab_kd_loss(student_logits, teacher_logits, T)
'''
LOOP = '''import torch

while True:
    pass


def softmax_with_temperature(z, T):
    return torch.softmax(z / T, dim=-1)
'''
HOG = '''import math

_hog = bytearray(6 * 2**30)


def mcnemar_p(b, c):
    n = b + c
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)
'''


def _thief(leak: Path, other_student: Path) -> str:
    """A mcnemar_p that is right only if it could read nothing: at import it tries the grader's environment and
    command line (another student's folder is on it), an instructor variable and another student's notebook, and
    writes what it got to ``leak`` and to the grader's working folder — through a private torch helper and the
    ``os`` module torch imported, which the static read does not catch (the containment has to)."""
    return f'''import math

from torch import serialization as _s


def _grab(path):
    try:
        with _s._open_file_like(path, "rb") as fh:
            return fh.read().decode(errors="ignore")
    except Exception:
        return ""


_env = _s.os.environ
_ppid = _s.os.getppid()
_stolen = (_env.get("KDLAB_TEST_SECRET", "") + _grab(f"/proc/{{_ppid}}/environ") + _grab(f"/proc/{{_ppid}}/cmdline")
           + _grab({str(other_student)!r}))
for _target in ({str(leak)!r}, f"/proc/{{_ppid}}/cwd/leak.txt"):
    try:
        with _s._open_file_like(_target, "wb") as fh:
            fh.write((_stolen or "nothing").encode())
    except Exception:
        pass
_saw_something = "{SECRET}" in _stolen or "nbformat" in _stolen


def mcnemar_p(b, c):
    n = b + c
    if _saw_something:
        return 0.5
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)
'''


def _zip(folder: Path, target: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in folder.rglob("*"):
            archive.write(path, Path(prefix) / path.relative_to(folder))


@pytest.fixture(scope="module")
def gradebook(executed_lab, tmp_path_factory):
    root, results_path = executed_lab
    subs = tmp_path_factory.mktemp("submissions")
    work = tmp_path_factory.mktemp("grader-cwd")
    leak = tmp_path_factory.mktemp("outside") / "leaked.txt"
    _copy_submission(root, results_path, subs / "alice")  # complete, clean, honest

    bob = _copy_submission(root, results_path, subs / "bob")  # an error output and cells run out of order
    nb = nbformat.read(bob / "03-Inference.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    code[5].execution_count, code[6].execution_count = code[6].execution_count, code[5].execution_count
    code[7].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    nbformat.write(nb, bob / "03-Inference.ipynb")

    carol = _copy_submission(root, results_path, tmp_path_factory.mktemp("c") / "carol")  # edited report(), zipped
    nb = nbformat.read(carol / "01-Setup.ipynb", as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("data", {}).get(RESULT_MIME, {}).get("key") == "teacher.accuracy":
                out["data"]["text/plain"] = re.sub(r"accuracy [\d.]+%", "accuracy 99.9%", out["data"]["text/plain"])
    nbformat.write(nb, carol / "01-Setup.ipynb")
    _zip(carol, subs / "carol.zip", "carol-lab")

    dave = subs / "dave"  # two notebooks only, results.json not JSON
    dave.mkdir()
    shutil.copy(root / "01-Setup.ipynb", dave / "01-Setup.ipynb")
    (dave / "02-Distill.ipynb").write_text("{not json")
    (dave / "results.json").write_text("")

    _replace_exercise(_copy_submission(root, results_path, subs / "eve"), "kd_loss", WRONG_KD)  # forged print
    _replace_exercise(_copy_submission(root, results_path, subs / "frank"), "attention_kl", PATCHING)
    _replace_exercise(_copy_submission(root, results_path, subs / "grace"), "kd_loss", IMPORTED)
    import inspect

    from kdlab.distillation import losses

    pasted = "from kdlab.errors import KDLabError\n\n\n" + inspect.getsource(losses.kd_loss).replace(
        "def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:",
        "def kd_loss(student_logits, teacher_logits, temperature):")
    _replace_exercise(_copy_submission(root, results_path, subs / "heidi"), "kd_loss", pasted)
    _replace_exercise(_copy_submission(root, results_path, subs / "ivan"), "softmax_temperature", LOOP)
    if bwrap_works() is None:  # without bwrap the thief would really reach the grader's files: left out
        _replace_exercise(_copy_submission(root, results_path, subs / "judy"), "mcnemar",
                          _thief(leak, subs / "alice" / "01-Setup.ipynb"))
    _replace_exercise(_copy_submission(root, results_path, subs / "kate"), "mcnemar", HOG)

    bomb = tmp_path_factory.mktemp("bomb")  # a zip bomb: 64 MB of zeros in a few hundred kB
    _copy_submission(root, results_path, bomb / "leo")
    with zipfile.ZipFile(subs / "leo.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bomb / "leo" / "01-Setup.ipynb", "01-Setup.ipynb")
        with archive.open("padding.bin", "w") as fh:
            for _ in range(64):
                fh.write(bytes(1 << 20))
    with zipfile.ZipFile(subs / "mallory.zip", "w") as archive:  # zip slip into another student's folder
        archive.writestr("01-Setup.ipynb", (root / "01-Setup.ipynb").read_text())
        archive.writestr("../alice2/01-Setup.ipynb", "{}")
    nick = _copy_submission(root, results_path, subs / "nick")  # a symlink to a file outside the submission
    (nick / "results.json").unlink()
    (nick / "results.json").symlink_to(results_path)
    olga = _copy_submission(root, results_path, subs / "olga")  # an edited accuracy table (text and HTML)
    nb = nbformat.read(olga / "03-Inference.ipynb", as_version=4)
    edited = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if (out.get("data", {}).get(TABLE_MIME) or {}).get("recipe") == "accuracy":
                text = out["data"]["text/plain"]
                line = next(line for line in text.splitlines() if "MiniLM KD" in line)
                out["data"]["text/plain"] = text.replace(line, re.sub(r"\d+\.\d+", "97.25", line, count=1))
                html = out["data"]["text/html"]
                row = re.search(r"<tr>(?:(?!</tr>).)*MiniLM KD(?:(?!</tr>).)*</tr>", html, re.S).group(0)
                out["data"]["text/html"] = html.replace(row, re.sub(r"<td>\d+\.\d+</td>", "<td>97.25</td>", row, 1))
                edited += 2
    assert edited == 2
    nbformat.write(nb, olga / "03-Inference.ipynb")
    _copy_submission(root, results_path, subs / "trudy", own_run=False)  # alice's run, handed in as trudy's
    from kdlab.course.assignments import write_solutions

    quinn = _copy_submission(root, results_path, subs / "quinn")  # + the optional 07, answered (not executed)
    write_solutions(ROOT, quinn, [LM_NOTEBOOK], Path(__file__).with_name("honest_solutions.py"))
    rita = _copy_submission(root, results_path, subs / "rita")  # + 07 with forward KL where reverse is asked
    write_solutions(ROOT, rita, [LM_NOTEBOOK], Path(__file__).with_name("honest_solutions.py"))
    _replace_exercise(rita, "masked_reverse_kl", FORWARD_NOT_REVERSE)
    peggy = _copy_submission(root, results_path, subs / "peggy")  # a notebook over the size limit
    with open(peggy / "02-Distill.ipynb", "a") as fh:
        fh.write(" " * (51 << 20))

    old_cwd, os.environ["KDLAB_TEST_SECRET"] = os.getcwd(), SECRET
    os.chdir(work)
    try:
        sandbox = Sandbox("auto" if bwrap_works() is None else "basic", Limits(memory_bytes=4 << 30, cpu_seconds=200))
        settings = Settings(load_rubric(), sandbox, TIMEOUT)
        out = tmp_path_factory.mktemp("grades")
        start = time.perf_counter()
        grades = grade_all(subs, out, settings, jobs=2, log=lambda m: None)
        seconds = time.perf_counter() - start
    finally:
        os.chdir(old_cwd)
        os.environ.pop("KDLAB_TEST_SECRET", None)
    with open(out / "gradebook.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return {g.student: g for g in grades}, rows, out, subs, seconds, sandbox, work, leak


LAB_EXERCISES = sorted(k for k, ex in EXERCISES.items() if ex.notebook in NOTEBOOKS)  # the optional 07's: below


def _item(grade, item):
    return next(i for i in grade.items if i.item == item)


def test_ci_grades_in_the_strongest_mode():
    """CI installs bubblewrap (.ci/run), so the strongest mode is what the tests exercise, not a skip."""
    if os.environ.get("CI"):
        assert bwrap_works() is None, bwrap_works()


def test_gradebook_has_a_row_per_student_and_points_possible(gradebook):
    grades, rows, out, *_ = gradebook
    assert set(rows) == {"points-possible", *grades}
    assert float(rows["points-possible"]["max"]) > 0
    assert (out / "gradebook_long.csv").is_file() and (out / "reflections.md").is_file()
    assert {p.name for p in (out / "feedback").iterdir()} == {f"{s}.md" for s in grades}
    assert rows["alice"]["containment"] in ("bwrap", "basic")
    assert (out / "containment.txt").read_text().startswith(rows["alice"]["containment"])


def test_honest_submission_scores_everything(gradebook):
    grades, rows, *_ = gradebook
    alice = grades["alice"]
    for exercise in LAB_EXERCISES:
        assert _item(alice, exercise).passed, _item(alice, exercise).message
    assert all(i.passed for i in alice.items if i.item == "executed")
    assert alice.flags == ["the same run as trudy's (identical students' predictions): a copied run, or one shared "
                           "seed"], alice.flags  # trudy copied alice's run: both are named, alice for nothing else
    assert rows["alice"]["status"] == "ok" and float(rows["alice"]["penalties"]) == 0


def test_errors_and_out_of_order_execution_are_flagged(gradebook):
    grades, rows, *_ = gradebook
    bob = grades["bob"]
    executed = {i.notebook: i for i in bob.items if i.item == "executed"}
    assert not executed["03-Inference.ipynb"].passed and executed["01-Setup.ipynb"].passed
    flags = " ".join(bob.flags)
    assert "out of order" in flags and "ValueError: boom" in flags
    assert float(rows["bob"]["total"]) < float(rows["alice"]["total"])


def test_hand_edited_number_is_flagged_and_penalised(gradebook):
    grades, rows, out, *_ = gradebook
    assert any("edited result" in f and "99.9%" in f for f in grades["carol"].flags)
    assert float(rows["carol"]["penalties"]) < 0
    assert "edited" in (out / "feedback" / "carol.md").read_text()


def test_broken_submission_gets_a_clear_row(gradebook):
    grades, rows, *_ = gradebook
    dave = grades["dave"]
    assert rows["dave"]["status"] == "incomplete"
    messages = {i.notebook: i.message for i in dave.items if i.item == "executed"}
    assert messages["03-Inference.ipynb"] == "notebook missing"
    assert "not a readable notebook" in messages["02-Distill.ipynb"]
    assert any("results.json is not valid JSON" in f for f in dave.flags)


def test_a_forged_result_line_does_not_pass_a_wrong_function(gradebook):
    grades, *_ = gradebook
    item = _item(grades["eve"], "kd_loss")
    assert item.points == 0 and "T² factor is missing" in item.message
    assert any("forged check result" in f for f in grades["eve"].flags)
    assert _item(grades["eve"], "attention_kl").passed  # the other exercises are graded as usual


def test_patching_the_checker_or_a_library_is_named(gradebook):
    grades, *_ = gradebook
    item = _item(grades["frank"], "attention_kl")
    assert item.points == 0 and "patches torch.allclose" in item.message and "uses kdlab's implementation" in \
        item.message
    assert any("patches torch.allclose" in f for f in grades["frank"].flags)


def test_kdlab_imported_or_pasted_gets_no_points_and_a_flag(gradebook):
    grades, _, out, *_ = gradebook
    grace, heidi = _item(grades["grace"], "kd_loss"), _item(grades["heidi"], "kd_loss")
    assert grace.points == 0 and "from kdlab.distillation.losses import kd_loss" in grace.message
    assert heidi.points == 0 and "reproduces kdlab's kd_loss" in heidi.message
    assert "kdlab" in (out / "feedback" / "grace.md").read_text()


def test_an_endless_loop_costs_one_exercise_and_one_timeout(gradebook):
    grades, *_, seconds, _, _, _ = gradebook
    ivan = grades["ivan"]
    assert _item(ivan, "softmax_temperature").points == 0
    assert "timed out" in _item(ivan, "softmax_temperature").message
    assert _item(ivan, "alternate_layer_map").passed and _item(ivan, "kd_loss").passed
    assert any("stopped by a limit" in f for f in ivan.flags)
    assert ivan.seconds < 3 * TIMEOUT + 30
    assert seconds < 4 * (3 * TIMEOUT + 30)  # the whole batch: within a few timeouts


def test_six_gib_are_stopped_by_the_memory_limit(gradebook):
    grades, *_ = gradebook
    item = _item(grades["kate"], "mcnemar")
    assert item.points == 0 and "MemoryError" in item.message
    assert any("stopped by a limit" in f for f in grades["kate"].flags)


def test_hostile_files_get_a_row_each_and_the_batch_goes_on(gradebook):
    grades, rows, *_ = gradebook
    assert rows["leo"]["status"] == "refused" and "zip bomb" in rows["leo"]["flags"]
    assert rows["mallory"]["status"] == "refused" and "outside the submission" in rows["mallory"]["flags"]
    assert rows["nick"]["status"] == "refused" and "symbolic link" in rows["nick"]["flags"]
    item = next(i for i in grades["peggy"].items if i.notebook == "02-Distill.ipynb" and i.item == "executed")
    assert "over the 50 MiB limit" in item.message and any("refused" in f for f in grades["peggy"].flags)


def test_an_edited_table_cell_is_flagged_and_penalised(gradebook):
    grades, rows, *_ = gradebook
    flags = " ".join(grades["olga"].flags)
    assert "accuracy table" in flags or "edited accuracy" in flags, flags
    assert "97.25" in flags
    assert float(rows["olga"]["penalties"]) < 0


def test_the_child_sees_no_secret_and_writes_nothing_outside(gradebook):
    grades, rows, out, subs, _, sandbox, work, leak = gradebook
    if sandbox.mode != "bwrap":
        pytest.skip("the filesystem and process isolation this test checks needs bubblewrap (CI installs it)")
    assert not leak.exists()
    assert list(work.iterdir()) == []  # the grader's working folder
    assert not (subs.parent / "alice2").exists()
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="ignore"), path
    assert _item(grades["judy"], "mcnemar").passed  # its function is right; what it tried reached nothing


def test_wrong_profile_gets_a_clear_row(executed_lab, tmp_path):
    """A run of another profile than the class's is flagged and earns no target points."""
    root, results_path = executed_lab
    alice = _copy_submission(root, results_path, tmp_path / "alice")
    settings = Settings({"profile": "full", "targets": {"retention": 2}}, Sandbox("basic"))
    grade = grade_student("alice", alice, settings)
    assert grade.status == "wrong profile"
    assert any("profile 'smoke' instead of 'full'" in f for f in grade.flags)
    target = _item(grade, "target retention")
    assert target.points == 0 and "wrong profile" in target.message


def test_exercise_cells_are_found_in_the_honest_notebooks(executed_lab):
    root, _ = executed_lab
    for exercise in (EXERCISES[k] for k in LAB_EXERCISES):
        nb = nbformat.read(root / exercise.notebook, as_version=4)
        assert "raise NotImplementedError" not in cell_source(nb.cells[exercise_cells(nb)[exercise.id]])


def test_a_copied_run_is_flagged_by_its_student_id_seed_and_predictions(gradebook):
    grades, *_ = gradebook
    flags = " ".join(grades["trudy"].flags)
    assert "belongs to student id 'alice', submitted as 'trudy'" in flags and "the same run as alice's" in flags
    assert not [f for f in grades["bob"].flags if "student id" in f or "same run" in f]  # bob ran his own


def test_a_class_of_runs_pools_into_one_multi_seed_study(executed_lab, tmp_path):
    """Three students' own runs and one copy: three runs pooled (mean ± sd over the class, paired comparisons);
    the copy is named and counted once."""
    from kdlab_grader.pooling import pool

    root, results_path = executed_lab
    subs = tmp_path / "subs"
    for name in ("alice", "bob", "carol"):
        _copy_submission(root, results_path, subs / name)
    _copy_submission(root, results_path, subs / "trudy", own_run=False)
    pooled = pool(subs, tmp_path / "class.md")
    table = pooled["table"].set_index("variant")
    assert set(table["seeds"]) == {3} and {"ce", "hinton", "minilm"} <= set(table.index)
    assert {(c["a"], c["b"]) for _, c in pooled["comparisons"].iterrows()} >= {("minilm", "ce")}
    assert any("trudy: the same run as alice's" in n for n in pooled["notes"])
    assert "multi-seed study (3 runs)" in (tmp_path / "class.md").read_text()


def test_the_optional_lm_notebook_is_graded_when_handed_in_and_costs_nothing_when_not(gradebook):
    grades, *_ = gradebook
    alice, quinn, rita = grades["alice"], grades["quinn"], grades["rita"]
    assert not [i for i in alice.items if i.item == "masked_reverse_kl"]
    assert _item(quinn, "masked_reverse_kl").passed, _item(quinn, "masked_reverse_kl").message
    assert quinn.max_points > alice.max_points and quinn.total > alice.total
    wrong = _item(rita, "masked_reverse_kl")
    assert not wrong.passed and wrong.points == 0 and wrong.message
