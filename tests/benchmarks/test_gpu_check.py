"""benchmarks/gpu_check.py --smoke: the GPU acceptance script's code path on the CPU (tiny models, seconds).

The real run needs a CUDA GPU (BENCHMARKS.md holds its numbers); here it must run end to end and report every
stage, so that a broken script is found in CI and not on a lent GPU."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("gpu_check")
    report = module.main(["--smoke", "--out", str(out), "--work", str(out / "work")])
    return report, out


def test_writes_json_and_markdown(smoke_report):
    report, out = smoke_report
    assert json.loads((out / "gpu_check.json").read_text())["smoke"] is True
    md = (out / "gpu_check.md").read_text()
    assert md.startswith("## ") and "GPU acceptance run (smoke)" in md and "Checks:" in md


def test_every_stage_ran(smoke_report):
    report, _ = smoke_report
    assert report["teacher"]["loss"]["finite"] and report["teacher"]["metrics"]["n"] > 0
    assert set(report["students"]) == {"2L", "1L"}
    for student in report["students"].values():
        assert set(student["precision"]) == {"fp32", "fp16-autocast", "fp16"}
        assert student["loss"]["finite"] and student["loss"]["logged"] > 0
        assert {"loss_ce", "loss_kd", "loss_attention", "loss_value"} <= set(student["loss"]["components"])
    assert {r["step"] for r in report["train_step"]["rows"]["fp32"]} == set("abcde")
    rows = report["inference"]
    assert {r["model"] for r in rows} == {"teacher", "student-2L", "student-1L"}
    assert all(r["status"] == "ok" and r["p50_ms"] > 0 for r in rows)


def test_checks_are_reported_not_assumed(smoke_report):
    report, _ = smoke_report
    names = [c["check"] for c in report["checks"]]
    assert any("loss goes down" in n for n in names) and any("fp16 accuracy" in n for n in names)
    assert any("speedup" in n for n in names)
    for c in report["checks"]:
        assert isinstance(c["ok"], bool) and c["measured"] and c["target"]
    # a float16 copy on the CPU still predicts: its accuracy is a number, not a skipped row
    assert all(math.isfinite(s["precision"]["fp16"]["accuracy"]) for s in report["students"].values())


def test_the_gpu_profiles_distillation_is_timed_on_the_device(smoke_report):
    """Issue 32: the first lent GPU gives real numbers for the class profile's 02 (step kinds timed, minutes)."""
    report, out = smoke_report
    found = report["class_estimate"]
    assert set(found["step_seconds"]) == {"a", "c", "d"} and all(v > 0 for v in found["step_seconds"].values())
    assert found["total_minutes"] == sum(found["runs"].values()) > 0
    assert "02 trains for about" in (out / "gpu_check.md").read_text()
