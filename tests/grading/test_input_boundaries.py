"""Issue 34 item 2: property tests (Hypothesis) at every boundary a user feeds — a submission's results.json and
notebooks, a TSV data folder, ``KDLAB_OVERRIDES``, a submission's zip members. Each input gives a clear
``KDLabError`` (or, in the grader, a row that says why), never another exception or a hang, and nothing already
saved is changed. Bounded: few examples each, so all of them together take well under a minute on two cores."""

import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdlab.errors import KDLabError
from kdlab_grader.grader import Settings, grade_student
from kdlab_grader.sandbox import Completed
from kdlab_grader.submissions import FileLimits, SubmissionRefused, open_submission

BOUNDED = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])

# JSON values of any shape: scalars of every type (NaN, ±Infinity, huge integers and floats, odd text), nested
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
           | st.sampled_from([10**400, -10**400]) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=20)
RESULTS_KEYS = ["config", "students", "profile", "teacher", "benchmark", "benchmark_real_lengths", "dev_labels",
                "imported_from", "targets", "compression"]
CONFIG_KEYS = ["student_id", "student_seed", "seed", "profile"]


class NoChild:
    """A sandbox that runs nothing (these inputs are about reading and judging, not about student code)."""

    mode = "basic"

    def run(self, script, files, outputs, timeout):
        return Completed(returncode=1, timed_out=False, seconds=0.0, stdout="", stderr="not run")

    def protections(self):
        return "basic: not run"


RUBRIC = {"profile": "smoke", "notebooks": {"executed": 1}, "exercises": {"kd_loss": 2, "mcnemar": 2},
          "targets": {"retention": 1, "speedup": 1}, "penalties": {"edited_output": 1, "stale": 1},
          "reflections": {"answered": 1}}


def _grade(folder: Path):
    """Grade ``folder``: never raises, and leaves every file it holds as it was."""
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    grade = grade_student("student", folder, Settings(RUBRIC, NoChild(), 5.0))
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert grade.status in ("ok", "incomplete", "wrong profile")
    return grade


def _results_like():
    config = st.fixed_dictionaries({}, optional={k: JSON for k in CONFIG_KEYS})
    students = st.dictionaries(st.sampled_from(["ce", "hinton", "minilm"]), JSON | st.fixed_dictionaries(
        {}, optional={"seed": JSON, "predictions": JSON, "accuracy": JSON}), max_size=3)
    return st.fixed_dictionaries({}, optional={**{k: JSON for k in RESULTS_KEYS}, "config": config,
                                               "students": students})


@BOUNDED
@given(results=_results_like() | JSON)
def test_results_json_of_any_shape_gives_a_row(results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("s")
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    _grade(folder)


@BOUNDED
@given(data=st.binary(max_size=200) | st.sampled_from([b"\xff\xfe{}", b'{"a": "\xc3\x28"}', b"[" * 5000,
                                                        b'{"profile": ' + b"9" * 5000 + b"}", b"NaN", b""]))
def test_results_json_bytes_of_any_kind_give_a_row(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("s")
    (folder / "results.json").write_bytes(data)
    grade = _grade(folder)
    assert grade.flags  # what was wrong with it (or, for a valid empty run, what it lacks) is said


def _cell():
    source = st.text(max_size=40) | st.lists(st.text(max_size=20), max_size=3) | JSON
    output = st.fixed_dictionaries({"output_type": st.sampled_from(["error", "stream", "display_data"]) | JSON},
                                   optional={"data": JSON | st.dictionaries(st.sampled_from(
                                       ["text/plain", "text/html", "application/vnd.kdlab.result+json",
                                        "application/vnd.kdlab.table+json"]), JSON, max_size=2),
                                       "ename": JSON, "evalue": JSON})
    cell = st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", "raw"]) | JSON},
                                 optional={"source": source, "outputs": st.lists(output, max_size=2) | JSON,
                                           "execution_count": st.integers(0, 5) | JSON, "metadata": JSON})
    return cell | JSON


@BOUNDED
@given(nb=st.fixed_dictionaries({"cells": st.lists(_cell(), max_size=5) | JSON},
                                optional={"nbformat": st.sampled_from([3, 4]) | JSON, "metadata": JSON}) | JSON,
       results=_results_like())
def test_notebook_json_of_any_shape_gives_a_row(nb, results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("s")
    if isinstance(nb, dict) and nb.get("nbformat") in (3, 4):
        nb.setdefault("nbformat", 4)
    (folder / "01-Setup.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    _grade(folder)


# --- TSV data through kdlab's loader -------------------------------------------------------------------------------
LABELS = st.sampled_from(["0", "1", "2", "-1", "7", "positive", "negative", "", " ", "1.0", "²", "١", "x\ty"])
ROW = st.tuples(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"),
                        max_size=15) | st.just(""), LABELS)


@BOUNDED
@given(header=st.sampled_from(["sentence\tlabel", "label\tsentence", "", "sentence", "\ufeffsentence\tlabel"]),
       train=st.lists(ROW, max_size=6), dev=st.lists(ROW, max_size=4), newline=st.sampled_from(["\n", "\r\n"]),
       bom=st.booleans(), bad_bytes=st.booleans())
def test_tsv_data_of_any_shape_loads_or_says_why(header, train, dev, newline, bom, bad_bytes, tmp_path_factory):
    from kdlab.data.loading import load_sst2

    folder = tmp_path_factory.mktemp("data")
    for name, rows in (("train.tsv", train), ("dev.tsv", dev)):
        text = newline.join([header, *[f"{s}\t{label}" for s, label in rows]]) + newline
        data = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
        (folder / name).write_bytes(data + (b"\xff\n" if bad_bytes and name == "dev.tsv" else b""))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    try:
        ds = load_sst2(str(folder))
    except KDLabError:
        pass
    else:
        assert len(ds["train"]) == len(train) and len(ds["validation"]) == len(dev) + 0
        assert all(isinstance(s, str) for s in ds["train"]["sentence"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# --- KDLAB_OVERRIDES through load_config ---------------------------------------------------------------------------
FIELDS = ["seed", "num_epochs", "learning_rate", "temperature", "alpha", "batch_size", "max_length", "warmup_steps",
          "student_layers", "layer_map", "teacher", "data", "student", "no_such_field", "Seed", ""]


@BOUNDED
@given(overrides=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3) | JSON)
def test_kdlab_overrides_of_any_type_give_a_config_or_a_kdlab_error(overrides, tmp_path_factory):
    from kdlab.config import load_config

    runs = tmp_path_factory.mktemp("runs")
    (runs / "keep.json").write_text("{}")
    saved = os.environ.get("KDLAB_OVERRIDES")
    os.environ["KDLAB_OVERRIDES"] = json.dumps(overrides)
    try:
        load_config("smoke", runs_dir=str(runs))
    except KDLabError:
        pass
    finally:
        if saved is None:
            os.environ.pop("KDLAB_OVERRIDES", None)
        else:
            os.environ["KDLAB_OVERRIDES"] = saved
    assert [p.name for p in runs.iterdir()] == ["keep.json"] and (runs / "keep.json").read_text() == "{}"


# --- zip members ---------------------------------------------------------------------------------------------------
MEMBER_NAMES = (st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        min_size=1, max_size=30)
                | st.sampled_from(["../x", "/etc/x", "C:\\x", "a/../../x", "a\\..\\..\\x", "./", "a/", "~/x",
                                   "CON", "a" * 250, "b" * 300, "d/" * 3000, "ü.ipynb", "dir/", "."]))


@BOUNDED
@given(members=st.lists(st.tuples(MEMBER_NAMES, st.integers(0, 3000), st.booleans()), min_size=1, max_size=5),
       cp437=st.booleans())
def test_zip_members_of_any_name_size_and_encoding_unpack_inside_or_are_refused(members, cp437, tmp_path_factory):
    root = tmp_path_factory.mktemp("z")
    path = root / "student.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, size, deflate in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            if cp437:
                info.flag_bits &= ~0x800
            try:
                archive.writestr(info, b"x" * size)
            except (ValueError, UnicodeEncodeError):
                pass
    into = root / "into"
    into.mkdir()
    outside = {p for p in root.rglob("*")}
    try:
        folder = open_submission(path, into, FileLimits(unpacked_bytes=1 << 20))
    except SubmissionRefused:
        folder = None
    except OSError as exc:  # a name the filesystem itself cannot hold (too long): must be a refusal instead
        pytest.fail(f"OSError escaped: {exc}")
    new = {p for p in root.rglob("*")} - outside
    assert all(into in p.parents for p in new), sorted(new)
    if folder is not None:
        assert into in folder.parents
