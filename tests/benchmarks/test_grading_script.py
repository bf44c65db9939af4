"""benchmarks/grading.py on an executed smoke lab: a small class graded, seconds per submission reported."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "grading.py"


def test_grading_benchmark_grades_a_class_of_clean_copies(executed_lab, capsys):
    spec = importlib.util.spec_from_file_location("grading_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root, _ = executed_lab
    out = script.main(["--students", "3", "--jobs", "2", "--lab", str(root), "--no-write"])
    assert out["students"] == 3 and out["per_submission"] > 0 and len(out["scores"]) == 1
    assert "s per submission" in capsys.readouterr().out
