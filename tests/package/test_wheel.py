"""What students install: the wheel holds every subpackage and data file kdlab needs, and no answers and no grader
(issue 31 item 5); the grader is a distribution of its own (grader/, ``kdlab_grader``) that builds and imports."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRADER_MARKS = ("grading", "grader", "rubric", "static.py", "sandbox.py", "harness.py", "gradebook")


def _wheel(source: Path, out: Path, name: str) -> set[str]:
    """The names in the wheel of ``source``, built from a clean copy (a stale ``build/`` of an older tree in the
    checkout would otherwise be packaged too)."""
    import shutil

    clean = out / "src"
    shutil.copytree(source, clean, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*",
                                                                 "*.ipynb", "runs", "tests", "benchmarks", "advanced",
                                                                 "grader" if source == ROOT else "-"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(out), str(clean)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(zipfile.ZipFile(next(out.glob(f"{name}-*.whl"))).namelist())


def test_the_wheel_ships_kdlab_without_the_solutions_or_the_grader(tmp_path):
    names = _wheel(ROOT, tmp_path, "kdlab")
    packaged = {n for n in names if n.startswith("kdlab/")}
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "kdlab").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert source <= packaged, sorted(source - packaged)  # every module and data file (metrics, reference results)
    assert not [n for n in names if "solution" in n.lower() or n.startswith("instructor")]
    assert not [n for n in names if any(mark in n.lower() for mark in GRADER_MARKS)], sorted(
        n for n in names if any(mark in n.lower() for mark in GRADER_MARKS))
    assert not [n for n in names if n.startswith("kdlab_grader")]


def test_the_grader_distribution_builds_with_its_rubric_and_imports(tmp_path):
    names = _wheel(ROOT / "grader", tmp_path, "kdlab_grader")
    for needed in ("kdlab_grader/grader.py", "kdlab_grader/static.py", "kdlab_grader/harness.py",
                   "kdlab_grader/rubric.toml"):
        assert needed in names, sorted(names)
    import kdlab_grader.grader as grader

    assert grader.DEFAULT_RUBRIC.is_file() and grader.load_rubric()["exercises"]


def test_kdlab_grade_says_how_to_install_the_grader_when_it_is_missing(tmp_path):
    """A student's kdlab (no grader importable, no repository beside it): one line saying how to install it."""
    import shutil

    student = tmp_path / "site"
    shutil.copytree(ROOT / "kdlab", student / "kdlab", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    # sys.modules["kdlab_grader"] = None: no grader importable, as on a student's machine (CI's venv has it installed)
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.path[:0] = [sys.argv[1]]; "
                           "sys.modules['kdlab_grader'] = None; from kdlab.cli import main;"
                           " raise SystemExit(main(['grade', sys.argv[2], '--sandbox', 'basic']))", str(student),
                           str(tmp_path / "subs")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "the grader is not installed" in proc.stderr and "pip install ./grader" in proc.stderr
