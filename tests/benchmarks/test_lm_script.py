"""benchmarks/lm.py on the smoke profile: every regime per seed, paired comparisons over seeds and sentences, the
cache study at two k (the notebook's own and one in its own folder), the markdown it appends."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lm.py"


def test_lm_benchmark_tables_regimes_pairs_and_the_cache(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("lm_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out_md = tmp_path / "BENCH.md"
    args = ["--profile", "smoke", "--seeds", "2", "--regimes", "ce,kd-forward,kd-reverse,kd-cached",
            "--cache-k", "8,4", "--root", str(tmp_path / "runs"), "--output", str(out_md)]
    summary = script.main(args)
    regimes = {r["regime"]: r for r in summary["regimes"]}
    assert set(regimes) == {"teacher", "ce", "kd-forward", "kd-reverse", "kd-cached"}
    assert all(regimes[r]["seeds"] == 2 for r in ("ce", "kd-forward", "kd-reverse", "kd-cached"))
    pairs = {(p["a"], p["b"]): p for p in summary["pairs"]}
    assert {("kd-forward", "ce"), ("kd-reverse", "kd-forward"), ("kd-cached", "kd-forward")} <= set(pairs)
    assert pairs[("kd-forward", "ce")]["seeds"] == 2 and pairs[("kd-forward", "ce")]["boot_95"].startswith("[")
    cache = {c["k"]: c for c in summary["cache"]}
    assert set(cache) == {8, 4} and int(cache[4]["bytes_per_token"]) < int(cache[8]["bytes_per_token"])
    assert "vs_full_d_nll" in cache[4]
    assert (tmp_path / "runs" / "smoke" / "lm" / "cache-study-k4" / "smoke" / "lm" / "cache-k4").is_dir() or \
        any((tmp_path / "runs").rglob("cache-k4"))
    saved = json.loads((tmp_path / "runs" / "smoke" / "lm" / "benchmark.json").read_text())
    assert saved["seeds"] == [42, 43]
    text = out_md.read_text()
    assert "Distilling a causal LM over 2 seeds" in text and "| kd-forward | ce |" in text
    capsys.readouterr()
    again = script.main(args[:-2] + ["--no-write"])  # everything reused: same numbers
    assert again["regimes"] == summary["regimes"]
