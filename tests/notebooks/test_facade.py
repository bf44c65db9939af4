"""The notebooks' one façade (issue 31): 01–04 import kdlab through ``from kdlab import Lab`` alone, every
``lab.<step>`` they call exists, and no student cell carries grading plumbing (results.json keys, ``report(``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from kdlab.config import NOTEBOOKS
from kdlab.notebook import Lab

ROOT = Path(__file__).resolve().parents[2]
COLAB_IMPORT = "from kdlab.course.colab import prepare"  # the first cell: install + Drive, Colab only


def _code(name: str) -> list[str]:
    nb = nbformat.read(ROOT / name, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _python(source: str) -> ast.Module:
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_imports_kdlab_from_one_place(name):
    found = set()
    for source in _code(name):
        if COLAB_IMPORT in source:
            continue
        for node in ast.walk(_python(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdlab"):
                found.add(f"from {node.module} import {', '.join(a.name for a in node.names)}")
            elif isinstance(node, ast.Import):
                found |= {f"import {a.name}" for a in node.names if a.name.startswith("kdlab")}
    assert found == {"from kdlab import Lab"}, found


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_step_a_notebook_calls_exists(name):
    called = set()
    for source in _code(name):
        for node in ast.walk(_python(source)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lab":
                called.add(node.attr)
    missing = sorted(a for a in called if not hasattr(Lab, a))
    assert called and not missing, f"{name} calls lab.{missing} that Lab does not have"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_grading_plumbing_in_student_cells(name):
    key = re.compile(r"""["'](teacher|students|student_before|int8|attention_kl_to_teacher)\.[\w.]+["']""")
    for source in _code(name):
        assert "report(" not in source.replace("write_report(", ""), source
        assert not key.search(source), source
        assert "cfg" not in re.findall(r"\b\w+\b", source), source  # the run's context lives in `lab`


def test_a_check_names_the_exercises_when_the_function_is_unknown():
    from kdlab.errors import KDLabError

    lab = Lab.__new__(Lab)  # no run folder needed to dispatch a check

    def my_loss(a, b, T):
        return a

    with pytest.raises(KDLabError, match="kd_loss"):
        lab.check(my_loss)


def test_a_check_runs_the_exercise_named_by_the_function(capsys):
    import torch.nn.functional as F

    lab = Lab.__new__(Lab)

    def kd_loss(student_logits, teacher_logits, T):
        p = F.softmax(teacher_logits / T, dim=-1)
        return T * T * F.kl_div(F.log_softmax(student_logits / T, dim=-1), p, reduction="batchmean")

    lab.check(kd_loss)
    assert "kd_loss" in capsys.readouterr().out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_notebook_types_a_time_into_its_text(name):
    """Times are the profile's own, printed by code (``kdlab.course.runtimes.describe_minutes``, 02's timed steps):
    a minute count typed into Markdown is another profile's, or another machine's (issue 32)."""
    typed = re.compile(r"\d+(?:\.\d+)?\s*(?:[–-]\s*\d+(?:\.\d+)?\s*)?(?:分鐘|minutes?\b|min\b)")
    nb = nbformat.read(ROOT / name, as_version=4)
    found = [m.group(0) for c in nb.cells if c.cell_type == "markdown" for m in typed.finditer(c.source)]
    assert not found, found


def test_each_profile_says_its_own_time():
    from kdlab.config import load_config
    from kdlab.course.runtimes import describe_minutes, expected_minutes

    full, cpu = expected_minutes(load_config("full")), expected_minutes(load_config("cpu"))
    assert "T4" in full[1] and "measured" in cpu[1]
    assert full[0]["02-Distill.ipynb"] != cpu[0]["02-Distill.ipynb"]
    assert describe_minutes(load_config("smoke")) is None  # no typed-in guess where nothing was timed
