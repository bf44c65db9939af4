"""benchmarks/quality.py on the smoke profile: per-seed runs saved and summarised, and --baseline pairing."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "quality.py"


def load_script():
    spec = importlib.util.spec_from_file_location("quality_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_runs_seeds_and_pairs_with_a_baseline_tag(tmp_path):
    quality = load_script()
    common = ["--profile", "smoke", "--seeds", "1", "--root", str(tmp_path / "q"), "--no-write",
              "--set", f"runs_dir={tmp_path / 'runs'}", "num_epochs=1.0", "teacher_epochs=2.0",
              "teacher_train_samples=256", "max_train_samples=128", "max_eval_samples=64"]
    base = quality.main([*common, "--tag", "base", "--variants", "ce"])
    assert [s["variant"] for s in base["summary"]] == ["ce"]
    saved = json.loads((tmp_path / "q" / "base" / "summary.json").read_text())
    assert saved["config"]["num_epochs"] == 1.0 and saved["seeds"] == [42]

    sweep = quality.main([*common, "beta=0.9", "--tag", "kd", "--variants", "hinton", "--baseline", "base"])
    assert [(c["a"], c["b"]) for c in sweep["comparisons"]] == [("hinton", "ce@base")]
    assert sweep["config"]["beta"] == 0.9


def test_a_missing_baseline_stops_before_any_training(tmp_path, monkeypatch):
    quality = load_script()

    def no_teacher(*a, **k):
        raise AssertionError("the teacher should not be prepared when the baseline is missing")

    monkeypatch.setattr(quality.lab, "prepare_teacher", no_teacher)
    with pytest.raises(SystemExit, match="no saved runs"):
        quality.main(["--profile", "smoke", "--seeds", "1", "--root", str(tmp_path), "--no-write",
                      "--set", f"runs_dir={tmp_path / 'runs'}", "--tag", "kd", "--baseline", "nothere"])
