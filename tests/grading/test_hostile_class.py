"""Issue 34 items 1, 3 and 4 on one class: an honest submission beside a malformed one of every kind
(``benchmarks/grading.py:hostile_class``). The batch finishes with a row per submission, the honest row is what
grading it alone gives, no CSV cell can become a formula, and no two submissions share a row or a feedback file."""

import csv
import functools
import importlib.util
import shutil
import time
from pathlib import Path

import pytest

from kdlab_grader.grader import Settings, grade_all, load_rubric
from kdlab_grader.sandbox import Limits, Sandbox, bwrap_works

ROOT = Path(__file__).resolve().parents[2]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@functools.cache
def _benchmark():
    spec = importlib.util.spec_from_file_location("grading_benchmark", ROOT / "benchmarks" / "grading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings():
    # the honest notebooks are this repository's own answers: basic is safe for them where bwrap is missing
    return Settings(load_rubric(), Sandbox("auto" if bwrap_works() is None else "basic",
                                           Limits(memory_bytes=4 << 30, cpu_seconds=200)), 30.0)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def hostile(executed_lab, tmp_path_factory):
    lab, results = executed_lab
    subs = tmp_path_factory.mktemp("class")
    made = _benchmark().hostile_class(lab, results, subs)
    out = tmp_path_factory.mktemp("grades")
    start = time.perf_counter()
    grades = grade_all(subs, out, _settings(), jobs=2, log=lambda m: None)
    seconds = time.perf_counter() - start
    alone = tmp_path_factory.mktemp("alone")
    shutil.copytree(subs / "alice", alone / "alice")
    solo = grade_all(alone, tmp_path_factory.mktemp("solo"), _settings(), jobs=1, log=lambda m: None)
    return {g.student: g for g in grades}, made, out, seconds, solo[0], subs


def test_the_batch_finishes_with_a_row_per_submission(hostile):
    grades, made, out, seconds, *_ = hostile
    assert len(grades) == len(made)  # twin/ + twin.zip and Zed/ + zed.zip are four rows
    students = [r[0] for r in _rows(out / "gradebook.csv")[2:]]
    assert len(students) == len(made) and len(set(s.casefold() for s in students)) == len(students)
    assert seconds < 600


def test_deep_json_becomes_a_refusal_not_a_crash(hostile):
    grades, *_ = hostile
    deep = grades["deep"]
    assert any("results.json nests 200000 levels deep" in f for f in deep.flags), deep.flags
    setup = next(i for i in deep.items if i.notebook == "01-Setup.ipynb" and i.item == "executed")
    assert "nests" in setup.message and not setup.passed


@pytest.mark.parametrize("student, expected", [
    ("shapes", "a JSON list, not an object"),
    ("types", "results.json"),
    ("huge", "not valid JSON"),
    ("old", "nbformat 3"),
])
def test_every_malformed_kind_gets_a_plain_reason(hostile, student, expected):
    grades, *_ = hostile
    grade = grades[student]
    text = " ".join(grade.flags + [i.message for i in grade.items])
    assert expected in text, text[:2000]
    assert grade.status in ("incomplete", "ok", "wrong profile")  # graded: a row of items, never a traceback
    assert grade.total == 0 or student == "types"


def test_shapes_each_get_their_own_message(hostile):
    grades, *_ = hostile
    messages = {i.notebook: i.message for i in grades["shapes"].items if i.item == "executed"}
    assert "a JSON str, not an object" in messages["01-Setup.ipynb"]
    assert "cell 0 is not a cell" in messages["02-Distill.ipynb"]
    assert "outputs are not a list" in messages["03-Inference.ipynb"]
    assert "execution_count is '7'" in messages["04-Benchmark.ipynb"]
    assert "not UTF-8" in " ".join(i.message for i in grades["huge"].items)


def test_cells_without_outputs_are_read_as_unexecuted_output(hostile):
    grades, *_ = hostile
    bare = grades["bare"]
    assert all(i.item != "executed" or i.passed for i in bare.items)  # executed, just no outputs saved
    assert any(i.item == "kd_loss" and i.passed for i in bare.items)  # its exercises still re-checked


def test_pooling_the_hostile_class_leaves_each_malformed_run_out_with_a_note(hostile, tmp_path):
    from kdlab_grader.pooling import pool

    *_, subs = hostile
    pooled = pool(subs, tmp_path / "class.md")
    notes = " ".join(pooled["notes"])
    assert "deep: left out (results.json nests" in notes and "shapes: left out" in notes
    assert {r for r in pooled["table"]["seeds"]} == {1}  # alice's run, the one usable one


def test_the_honest_row_is_what_grading_it_alone_gives(hostile):
    grades, _, _, _, solo, _ = hostile
    alice = grades["alice"]

    def key(grade):
        return (grade.status, grade.flags, round(grade.total, 6), round(grade.max_points, 6),
                [(i.notebook, i.item, i.points, i.max_points, i.passed) for i in grade.items])

    assert key(alice) == key(solo)
    assert alice.status == "ok" and not alice.flags
    assert all(i.passed for i in alice.items if i.item in ("executed", "kd_loss", "mcnemar", "attention_kl"))


def test_no_csv_cell_can_become_a_formula_and_names_stay_readable(hostile):
    grades, _, out, *_ = hostile
    checked = 0
    for name in ("gradebook.csv", "gradebook_long.csv"):
        for row in _rows(out / name):
            for cell in row:
                checked += 1
                try:
                    float(cell)
                    continue  # a number (points, a negative penalty) is not a formula
                except ValueError:
                    pass
                assert not cell.startswith(FORMULA_STARTS), (name, cell)
    assert checked > 100
    students = {r[0] for r in _rows(out / "gradebook.csv")}
    assert "'=HYPERLINK(\"evil.example\",\"open me\")" in students and "'@SUM(1+1)" in students
    assert "'-2+3" in students and "'+cmd" in students and "alice" in students
    flags = next(r for r in _rows(out / "gradebook.csv") if r[0] == "'+cmd")[-1]
    assert "=cmd|' /C calc'!A0" in flags  # the student's text is kept, only its start made inert


def test_colliding_names_are_graded_apart_with_a_flag_and_their_own_feedback(hostile):
    grades, _, out, *_ = hostile
    for name, files in (("twin", "twin/, twin.zip"), ("Zed", "Zed/, zed.zip")):
        pair = [g for s, g in grades.items() if s.casefold().startswith(name.casefold() + " #")]
        assert len(pair) == 2, sorted(grades)
        for grade in pair:
            assert any("name collision" in f and files in f for f in grade.flags), grade.flags
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert len(feedback) == len(grades) and len({f.casefold() for f in feedback}) == len(feedback)
    assert all(not f.startswith(".") and "/" not in f and '"' not in f for f in feedback)
    twin = [f for f in feedback if f.casefold().startswith("twin")]
    assert len(twin) == 2 and {(out / "feedback" / f).read_text().splitlines()[0] for f in twin} == {
        "# Feedback — twin #1", "# Feedback — twin #2"}
