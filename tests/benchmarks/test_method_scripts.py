"""benchmarks/advanced.py and benchmarks/compression.py on the smoke profile: results saved per seed and method,
reused on a second call, paired comparisons, and the combined table with the course's claims."""

import importlib.util
import json
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SMALL = ["max_train_samples=64", "max_eval_samples=32", "teacher_train_samples=128", "num_epochs=1.0",
         "teacher_epochs=1.0"]


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_script", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_advanced_saves_each_method_per_seed_and_reuses_it(tmp_path, capsys):
    script = load("advanced")
    args = ["--profile", "smoke", "--seeds", "2", "--methods", "mutual,assistant", "--root", str(tmp_path / "a"),
            "--no-write", "--set", *SMALL]
    first = script.main(args)
    pairs = {(c["a"], c["b"]) for c in first["comparisons"]}
    assert ("mutual peer 0", "CE alone peer 0") in pairs and ("1L via assistant", "1L direct") in pairs
    assert all(c["seeds"] == 2 for c in first["comparisons"])
    saved = json.loads((tmp_path / "a" / "defaults" / "seed-43" / "assistant.json").read_text())
    assert saved["config"]["seed"] == 43 and {r["variant"] for r in saved["rows"]} >= {"1L direct"}
    capsys.readouterr()
    again = script.main(args)
    assert capsys.readouterr().out.count("saved result reused") == 4
    assert again["summary"] == first["summary"]


def test_compression_trains_prunes_and_tables_every_variant(tmp_path):
    script = load("compression")
    out = script.main(["--profile", "smoke", "--seeds", "1", "--root", str(tmp_path / "c"), "--no-time",
                       "--no-write", "--bilstm", "bilstm:hidden=16", "--set", *SMALL])
    variants = [r["variant"] for r in out["table"]]
    assert {"teacher", "distilled", "distilled + pruned", "distilled + INT8", "distilled + pruned + INT8",
            "BiLSTM (labels only)", "BiLSTM + KD (KL)", "BiLSTM + KD (logits MSE)"} <= set(variants)
    claims = {r["variant"]: r["course_claim"] for r in out["table"]}
    assert claims["distilled + pruned + INT8"].startswith("10–15×") and claims["BiLSTM + KD (KL)"] == ""
    record = json.loads((tmp_path / "c" / "defaults" / "seed-42" / "pruned" / "kdlab.json").read_text())
    assert record["pruning"] == [0.5, 0.5] and record["before_recovery"]["accuracy"] <= 1
