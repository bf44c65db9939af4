"""benchmarks/lm_wordnet.py --smoke: the whole experiment on a tiny teacher (CI installs wordnet-base)."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lm_wordnet.py"


def test_the_wordnet_experiment_runs_every_student_regime_and_measure(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("lm_wordnet", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--smoke", "--root", str(tmp_path / "runs"), "--json", str(tmp_path / "r.json"),
            "--students", "random-1x64,cut-2", "--regimes", "ce,kd-forward",
            "--extra", "random-1x64:onpolicy@lmbda=1;random-1x64:kd-forward@temperature=2"]
    result = script.main(args)
    runs = result["runs"]
    assert set(runs) == {f"{s}|{r}|0" for s in ("random-1x64", "cut-2") for r in ("step0", "ce", "kd-forward")} | {
        "random-1x64|onpolicy@lmbda=1|0", "random-1x64|kd-forward@temperature=2|0"}
    assert runs["random-1x64|step0|0"]["steps"] == 0 and runs["random-1x64|ce|0"]["steps"] == 4
    for r in runs.values():
        assert 0 <= r["rouge_l"] <= 1 and 0 <= r["sense_coverage"] <= 1 and 0 <= r["sense_precision"] <= 1
        assert 0 < r["sense_spread"] <= 1 and r["sense_kl"] >= 0
        assert len(r["exposure"]) == 6 and r["heldout_ppl"] > 1
    # the untrained random student is worse than the trained one, and the cut student starts next to the teacher
    assert runs["random-1x64|ce|0"]["heldout_ppl"] < runs["random-1x64|step0|0"]["heldout_ppl"]
    assert runs["cut-2|step0|0"]["heldout_ppl"] < runs["random-1x64|step0|0"]["heldout_ppl"]
    assert result["ngrams"]["tokens"] == result["teacher"]["tokens"]  # baselines on the model's own targets
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved["runs"]) == set(runs)
    assert runs["random-1x64|kd-forward@temperature=2|0"]["heldout_ppl"] != runs["random-1x64|kd-forward|0"]["heldout_ppl"]
    printed = capsys.readouterr().out
    assert "| cut-2 | kd-forward | 1 |" in printed and "| bigram (Witten–Bell) |" in printed
    assert "| random-1x64 | kd-forward@temperature=2 | kd-forward | 1 |" in printed  # the paired T row
    script.main(["--tables", str(tmp_path / "r.json"), "--reference", str(tmp_path / "ref.json")])
    ref = json.loads((tmp_path / "ref.json").read_text())
    assert {r["regime"] for r in ref["rows"]} >= {"step0", "ce", "kd-forward"} and ref["pairs"][0]["a"] == "kd-forward"


def test_the_teacher_recipe_probe_trains_and_measures_one_setting(tmp_path):
    """benchmarks/lm_teacher_recipe.py (the probes behind the `cpu` teacher's recipe) on a tiny teacher."""
    path = SCRIPT.parent / "lm_teacher_recipe.py"
    spec = importlib.util.spec_from_file_location("lm_teacher_recipe", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = script.main(["--smoke", "--steps", "3", "--batch", "8", "--dropout", "0.1", "--work", str(tmp_path),
                       "--json", str(tmp_path / "p.json")])
    assert out["steps"] == 3 and out["dropout"] == 0.1 and out["heldout_ppl"] > 1 and out["train_1000_ppl"] > 1
    assert json.loads((tmp_path / "p.json").read_text())["batch"] == 8


def test_runs_of_separate_seeds_merge_into_one(tmp_path):
    spec = importlib.util.spec_from_file_location("lm_wordnet", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    summary = {"teacher": {}, "ngrams": {}, "heldout_counts": [1]}
    for name, seed in (("a", 0), ("b", 1)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"summary": summary, "args": {"seeds": 1},
                                                           "runs": {f"cut-2|ce|{seed}": {"seed": seed}}}))
    merged = script.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--seeds", "2",
                          "--json", str(tmp_path / "all.json")])
    assert set(merged["runs"]) == {"cut-2|ce|0", "cut-2|ce|1"} and merged["args"]["seeds"] == 2
    assert json.loads((tmp_path / "all.json").read_text())["runs"] == merged["runs"]
