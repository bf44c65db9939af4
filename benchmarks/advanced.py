"""The course's advanced distillation methods on real SST-2 over several seeds (kdlab.distillation.advanced).

For each training seed (the teacher and the data fixed, as in ``quality.py``):

- ``born-again``: generations 1 and 2 of a student of the teacher's size, against the teacher;
- ``ensemble``: a ``hinton`` student of the lab's size taught by the mean soft label of the lab's teacher and a
  second teacher (another fine-tuning seed, trained once and shared), against the ``hinton`` student of one teacher;
- ``mutual``: two peers of the lab's size trained together (deep mutual learning), against the same two peers in
  the same loop without the mutual term (CE alone);
- ``assistant``: teacher → assistant → small student against teacher → small student directly (``minilm`` loss).

Each (seed, method) result is saved as ``runs/advanced/<tag>/seed-S/<method>.json`` and reused, so the job can be
stopped and started again. Prints and appends to BENCHMARKS.md the per-seed table and paired comparisons
(``kdlab.distillation.seeds``: seed-level t-test and a bootstrap over seeds and sentences).

    python benchmarks/advanced.py --seeds 3                         # cpu profile on ../shared/data/sst2
    python benchmarks/advanced.py --seeds 3 --methods mutual,assistant
    python benchmarks/advanced.py --profile smoke --seeds 2 --no-write   # a minute, synthetic data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import COMPARISON_LEGEND, prepare, setup_config, write_section  # noqa: E402

from kdlab import lab  # noqa: E402
from kdlab.artifacts import atomic_write_json, read_json  # noqa: E402
from kdlab.distillation import advanced
from kdlab.distillation.runs import config_differences  # noqa: E402
from kdlab.distillation.seeds import comparison_table, saved_run, seed_list, seed_table  # noqa: E402
from kdlab.measurement.records import markdown_table  # noqa: E402

METHODS = ("mutual", "ensemble", "assistant", "born-again")
QUALITY_RUNS = ROOT / "runs" / "quality" / "transfer-4k"  # quality.py's 5-seed runs of the cpu defaults


def _row(name: str, seed: int, metrics: dict, predictions, seconds=None) -> dict:
    return {"variant": name, "seed": seed, "accuracy": float(metrics["accuracy"]),
            "acc_low": float(metrics["acc_low"]), "acc_high": float(metrics["acc_high"]),
            "f1": float(metrics["f1"]), "train_seconds": seconds, "predictions": [int(p) for p in predictions]}


def _result_row(name: str, seed: int, result) -> dict:
    return _row(name, seed, result.metrics, result.predictions, result.train_seconds)


def run_method(method: str, cfg, teacher, data, seed: int, second_teacher=None) -> tuple[list[dict], list]:
    """Train one method's models for one seed (``cfg`` already carries the seed and this seed's folders).
    Returns the rows and the (a, b) pairs to compare."""
    if method == "born-again":
        gens = advanced.born_again(cfg, teacher.model, teacher.tokenizer, data, base=advanced.base_encoder(cfg))
        rows = [_result_row(f"born-again-{g}", seed, r) for g, r in enumerate(gens, start=1)]
        return rows, [("born-again-1", "teacher"), ("born-again-2", "teacher"), ("born-again-2", "born-again-1")]
    if method == "ensemble":
        ens = advanced.ensemble_distill(cfg, [teacher.model, second_teacher], teacher.tokenizer, data)
        one = saved_run(QUALITY_RUNS, seed, "hinton", cfg)  # quality.py's run of the same settings, when saved
        if one is None:
            res = lab.train_variant(cfg, teacher, data, "hinton", tag="advanced-baselines", name="hinton")
            one = _result_row("hinton", seed, res)
        rows = [_result_row("ensemble", seed, ens), {**one, "variant": "hinton (one teacher)"}]
        return rows, [("ensemble", "hinton (one teacher)"), ("ensemble", "teacher")]
    if method == "mutual":
        from kdlab.models.student import load_student_model

        base, tokenizer = load_student_model(advanced.base_encoder(cfg), teacher.model.config.num_labels,
                                             seed=cfg.seed)
        rows = []
        for name, weight in (("mutual", 1.0), ("CE alone", 0.0)):  # same peers, same batches: only the KL differs
            peers = advanced.mutual_peers(base, cfg.student_layers, count=2, seed=cfg.seed)
            res = advanced.deep_mutual_learning(cfg, peers, tokenizer, data, weight=weight)  # T = 1, the paper's
            rows += [_row(f"{name} peer {k}", seed, m, p, res.train_seconds)
                     for k, (m, p) in enumerate(zip(res.metrics, res.predictions))]
        return rows, [(f"mutual peer {k}", f"CE alone peer {k}") for k in range(2)]
    if method == "assistant":
        a_layers, f_layers = advanced.assistant_sizes(teacher.model.config.num_hidden_layers)
        chain = advanced.teacher_assistant(cfg, teacher.model, teacher.tokenizer, data, a_layers, f_layers)
        rows = [_result_row(f"assistant {a_layers}L", seed, chain["assistant"]),
                _result_row(f"{f_layers}L via assistant", seed, chain["via_assistant"]),
                _result_row(f"{f_layers}L direct", seed, chain["direct"])]
        return rows, [(f"{f_layers}L via assistant", f"{f_layers}L direct")]
    raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"),
                   help="data source (folder, 'hub' or 'synthetic'); default ../shared/data/sst2")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=None, help="first seed (default: the profile's)")
    p.add_argument("--tag", default="defaults")
    p.add_argument("--root", default=str(ROOT / "runs" / "advanced"), help="where results are saved (per tag)")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    methods = args.methods.split(",")
    for method in methods:
        if method not in METHODS:
            raise SystemExit(f"--methods: unknown method {method!r}; choose from {', '.join(METHODS)}")
    cfg, overrides = setup_config(args)
    seeds = seed_list(cfg.seed if args.first_seed is None else args.first_seed, args.seeds)
    root = Path(args.root) / args.tag
    start = time.perf_counter()
    teacher, data, labels, t_eval, _ = prepare(cfg)
    second = None
    if "ensemble" in methods:  # one extra teacher for every seed, saved under runs/<profile>/advanced/teachers
        second = advanced.extra_teachers(cfg, [cfg.seed + 1])[0]
        s_eval = lab.evaluate(cfg, second, teacher.tokenizer, data)
    rows, pairs = [], []
    for seed in seeds:
        rows.append(_row("teacher", seed, t_eval, t_eval["predictions"]))
        if second is not None:
            rows.append(_row("second teacher", seed, s_eval, s_eval["predictions"]))
        cfg_s = dataclasses.replace(cfg, seed=seed, runs_dir=str(root / f"seed-{seed}"))
        for method in methods:
            path = root / f"seed-{seed}" / f"{method}.json"
            saved = read_json(path)
            if saved and not config_differences(saved["config"], cfg_s):
                method_rows, method_pairs = saved["rows"], [tuple(p) for p in saved["pairs"]]
                note = "saved result reused"
            else:
                t0 = time.perf_counter()
                method_rows, method_pairs = run_method(method, cfg_s, teacher, data, seed, second)
                atomic_write_json(path, {"config": cfg_s.to_dict(), "rows": method_rows, "pairs": method_pairs,
                                         "seconds": time.perf_counter() - t0})
                note = f"{time.perf_counter() - t0:.0f} s"
            print(f"[{args.tag}] seed {seed} {method}: " + ", ".join(
                f"{r['variant']} {r['accuracy']:.2%}" for r in method_rows) + f" ({note})", flush=True)
            rows += method_rows
            pairs += [p for p in method_pairs if p not in pairs]
    summary = seed_table(rows)
    summary["retention_%"] = summary["mean_%"] / (100 * t_eval["accuracy"]) * 100
    comparisons = comparison_table(rows, pairs, labels)
    wall = time.perf_counter() - start
    result = {"tag": args.tag, "profile": cfg.profile, "overrides": overrides, "config": cfg.to_dict(),
              "seeds": seeds, "methods": methods, "teacher_accuracy": t_eval["accuracy"],
              "summary": summary.to_dict(orient="records"), "comparisons": comparisons.to_dict(orient="records"),
              "wall_seconds": wall}
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(result, indent=2))
    per_seed = markdown_table(summary[["variant", "seeds", "mean_%", "sd_%", "min_%", "max_%", "retention_%",
                                       "per_seed_%"]])
    compared = markdown_table(comparisons[["a", "b", "seeds", "mean_diff", "sd_diff", "wins", "t_p", "boot_low",
                                           "boot_high", "boot_p", "a_only", "b_only"]]) if len(comparisons) else ""
    print(per_seed, "", compared, sep="\n")
    if not args.no_write:
        n_train = len(data["train"])
        n_labelled = sum(1 for y in data["train"]["label"] if y != -100)
        notes = [
            f"profile `{cfg.profile}`, overrides {overrides}; methods {methods}; wall {wall / 60:.1f} min",
            f"teacher {t_eval['accuracy']:.1%} dev ({teacher.model.config.num_hidden_layers} layers); students see "
            f"{n_train:,} sentences ({n_labelled:,} labelled), {cfg.num_epochs:g} epochs, lr {cfg.learning_rate:g}, "
            f"T={cfg.temperature:g}, α={cfg.alpha:g} β={cfg.beta:g}; dev n={len(labels)}; seeds {seeds}",
            "the teacher (and the second teacher) are the same models for every seed: their rows repeat",
            COMPARISON_LEGEND,
        ]
        write_section(args.output, "advanced.py", argv, f"Advanced methods over {len(seeds)} seeds: `{args.tag}`",
                      notes, [per_seed, compared])
    return result


if __name__ == "__main__":
    main()
