"""The combined-compression table on real SST-2, beside the course's claims: teacher; distilled (the `minilm`
student of ``quality.py``'s runs); distilled + INT8; distilled + pruned (heads and FFN neurons removed, KD
recovery); distilled + pruned + INT8; a BiLSTM student trained on labels alone, with KD (T²·KL) and with Tang et
al.'s logits MSE (+ INT8).

Accuracy over several seeds (the distilled student of each seed is pruned with that seed's recovery run; the
BiLSTMs are trained per seed), paired comparisons; size and CPU latency (P50, batch 1 and 32, real dev sentences
padded per batch) of the first seed's models, timed round-robin. Runs are saved under
``runs/compression/<tag>/seed-S/`` and reused.

    python benchmarks/compression.py --seeds 3                     # train what is missing, time, write BENCHMARKS.md
    python benchmarks/compression.py --seeds 3 --no-time --no-write  # accuracy only
    python benchmarks/compression.py --profile smoke --seeds 2 --no-write   # a minute, synthetic data
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

from quality import parse_overrides, prepare, setup_config, write_section  # noqa: E402

from kdlab.compression.combined import combined_table, prune_and_recover  # noqa: E402
from kdlab.distillation.runs import config_differences  # noqa: E402
from kdlab.distillation.seeds import comparison_table, run_folder, saved_run, seed_list  # noqa: E402
from kdlab.measurement.records import markdown_table  # noqa: E402

BILSTM = {"BiLSTM (labels only)": ("ce", "kl"), "BiLSTM + KD (KL)": ("hinton", "kl"),
          "BiLSTM + KD (logits MSE)": ("hinton", "mse")}
PAIRS = [("distilled + INT8", "distilled"), ("distilled + pruned", "distilled"),
         ("distilled + pruned", "distilled + recovery epoch, unpruned"),
         ("distilled + recovery epoch, unpruned", "distilled"),
         ("distilled + pruned + INT8", "distilled + pruned"), ("BiLSTM + KD (KL)", "BiLSTM (labels only)"),
         ("BiLSTM + KD (logits MSE)", "BiLSTM (labels only)"), ("BiLSTM + KD (logits MSE)", "BiLSTM + KD (KL)"),
         ("BiLSTM + KD (logits MSE) + INT8", "BiLSTM + KD (logits MSE)")]


def _row(name, seed, metrics):
    return {"variant": name, "seed": seed, "accuracy": float(metrics["accuracy"]),
            "predictions": [int(p) for p in metrics["predictions"]]}


def _load(folder: Path):
    import kdlab.models.bilstm  # noqa: F401  (registers the BiLSTM with the Auto classes)
    from kdlab.compression.pruning import load_pruned

    return load_pruned(folder)


def train_or_load(cfg, teacher, data, variant: str, folder_root: Path, seed: int, name: str,
                  read_from: Path | None = None):
    """(model, row) of a student saved under ``read_from/seed-S/name`` or ``folder_root/seed-S/name`` with
    ``cfg``'s settings, trained into ``folder_root`` first when there is none (``read_from`` is only read)."""
    from kdlab.distillation.training import distill

    if read_from is not None:
        row = saved_run(read_from, seed, name, cfg)
        if row is not None:
            return _load(run_folder(read_from, seed, name)), row
    row = saved_run(folder_root, seed, name, cfg)
    if row is None:
        distill(cfg, teacher.model, teacher.tokenizer, data, variant, output_dir=run_folder(folder_root, seed, name),
                resume=False, checkpoint_name=f"compression-{name}")
        row = saved_run(folder_root, seed, name, cfg)
    return _load(run_folder(folder_root, seed, name)), row


FOLDERS = {"distilled + pruned": "pruned", "distilled + recovery epoch, unpruned": "recovered-unpruned"}


def pruned_run(args, cfg_s, teacher, data, distilled, folder: Path, fractions: tuple[float, float]) -> dict:
    """The record of ``distilled`` pruned by ``fractions`` (heads, FFN neurons) and recovered for
    ``--recovery-epochs`` of KD, saved in ``folder`` (reused when it holds the same settings)."""
    from kdlab.artifacts import read_json
    from kdlab.distillation.training import RESULT_FILE

    cfg_r = dataclasses.replace(cfg_s, num_epochs=args.recovery_epochs)
    record = read_json(folder / RESULT_FILE)
    if not (record and not config_differences(record.get("config", {}), cfg_r)
            and record.get("pruning") == list(fractions)):
        result, plan, before = prune_and_recover(cfg_s, teacher.model, teacher.tokenizer, data, distilled, folder,
                                                 *fractions, args.recovery_epochs)
        record = read_json(folder / RESULT_FILE)
        record.update(pruning=list(fractions), plan=plan, before_recovery=before)
        (folder / RESULT_FILE).write_text(json.dumps(record, indent=2))
    return record


def seed_models(args, cfg, teacher, data, seed: int, root: Path) -> tuple[dict, list[dict]]:
    """This seed's models by variant name (float ones; INT8 copies are made from them) and their dev rows."""
    cfg_s = dataclasses.replace(cfg, seed=seed)
    models, rows = {}, []
    distilled, row = train_or_load(cfg_s, teacher, data, "minilm", root / "distilled", seed, "minilm",
                                   read_from=Path(args.distilled_runs))
    models["distilled"] = distilled
    rows.append({**row, "variant": "distilled"})
    # The pruned student gets one recovery epoch more than `distilled`: the control is the same epoch on the
    # unpruned student (nothing removed), so "pruned" and its control differ in the pruning alone.
    for name, fractions in (("distilled + pruned", (args.head_fraction, args.neuron_fraction)),
                            ("distilled + recovery epoch, unpruned", (0.0, 0.0))):
        record = pruned_run(args, cfg_s, teacher, data, distilled, run_folder(root, seed, FOLDERS[name]), fractions)
        print(f"seed {seed}: {name}: {record['before_recovery']['accuracy']:.2%} before recovery, "
              f"{record['metrics']['accuracy']:.2%} after", flush=True)
        models[name] = _load(run_folder(root, seed, FOLDERS[name]))
        rows.append({"variant": name, "seed": seed, "accuracy": record["metrics"]["accuracy"],
                     "predictions": record["predictions"], "before_recovery": record["before_recovery"]["accuracy"]})
    for name, (variant, style) in BILSTM.items():
        cfg_b = dataclasses.replace(cfg_s, student=args.bilstm, student_layers=1, kd_style=style,
                                    **parse_overrides(args.bilstm_set)).validate()
        models[name], row = train_or_load(cfg_b, teacher, data, variant, root, seed, name.replace(" ", "_"))
        rows.append({**row, "variant": name})
    return models, rows


def int8_rows(cfg, teacher, data, models: dict, seed: int) -> list[dict]:
    from kdlab.measurement.quantize import quantize_int8
    from kdlab.metrics.classification import evaluate_model

    out = []
    for name in ("distilled", "distilled + pruned", "BiLSTM + KD (logits MSE)"):
        m = evaluate_model(quantize_int8(models[name]), teacher.tokenizer, data["validation"], cfg.max_length,
                           cfg.eval_batch_size, "cpu")
        out.append(_row(f"{name} + INT8", seed, m))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"))
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tag", default="defaults")
    p.add_argument("--root", default=str(ROOT / "runs" / "compression"))
    p.add_argument("--distilled-runs", default=str(ROOT / "runs" / "quality" / "transfer-4k"),
                   help="quality.py runs whose `minilm` students are pruned (only read; a missing or "
                        "differently trained one is trained under <root>/<tag>/distilled)")
    p.add_argument("--head-fraction", type=float, default=0.5)
    p.add_argument("--neuron-fraction", type=float, default=0.5)
    p.add_argument("--recovery-epochs", type=float, default=1.0)
    p.add_argument("--bilstm", default="bilstm:hidden=300")
    p.add_argument("--bilstm-set", nargs="*", default=["learning_rate=0.001"], metavar="FIELD=VALUE")
    p.add_argument("--no-time", action="store_true")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    import pandas as pd

    from kdlab.measurement.benchmark import benchmark_models, real_length_inputs

    args = parse_args(argv)
    cfg, _ = setup_config(args)
    seeds = seed_list(cfg.seed, args.seeds)
    root = Path(args.root) / args.tag
    start = time.perf_counter()
    teacher, data, labels, t_eval, _ = prepare(cfg)
    rows, first_models = [], None
    for seed in seeds:
        models, seed_rows = seed_models(args, cfg, teacher, data, seed, root)
        rows += [_row("teacher", seed, t_eval)] + seed_rows + int8_rows(cfg, teacher, data, models, seed)
        first_models = first_models or models
    accuracy = {}
    for r in rows:
        accuracy.setdefault(r["variant"], []).append(r["accuracy"])
    comparisons = comparison_table(rows, PAIRS, labels)
    timings, sizes = pd.DataFrame(columns=["model", "batch", "p50_ms"]), {}
    if not args.no_time:
        timed = {"teacher": teacher.model, "distilled": first_models["distilled"],
                 "distilled + pruned": first_models["distilled + pruned"],
                 "BiLSTM + KD (logits MSE)": first_models["BiLSTM + KD (logits MSE)"]}
        inputs = real_length_inputs(teacher.tokenizer, list(data["validation"]["sentence"]), cfg.max_length)
        bench = benchmark_models(timed, (1, 32), cfg.max_length, ("fp32", "int8"), "cpu", cfg.bench_warmup,
                                 cfg.bench_repeats, reference="teacher", inputs=inputs)
        bench["model"] = [m if p == "fp32" else f"{m} + INT8" for m, p in zip(bench["model"], bench["precision"])]
        timings = bench
        sizes = {m: float(d) for m, d in zip(bench["model"], bench["disk_MB"])}
    table = combined_table(accuracy, timings, sizes)
    root.mkdir(parents=True, exist_ok=True)
    result = {"seeds": seeds, "args": vars(args), "table": table.to_dict(orient="records"),
              "comparisons": comparisons.to_dict(orient="records"),
              "timings": timings.drop(columns=[c for c in timings.columns if c == "predictions"]).to_dict(
                  orient="records"), "wall_seconds": time.perf_counter() - start}
    (root / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    shown = markdown_table(table)
    compared = markdown_table(comparisons[["a", "b", "seeds", "mean_diff", "sd_diff", "wins", "t_p", "boot_low",
                                           "boot_high", "boot_p"]]) if len(comparisons) else ""
    print(shown, "", compared, sep="\n")
    if not args.no_write:
        notes = [f"profile `{cfg.profile}`; teacher {t_eval['accuracy']:.1%}; seeds {seeds}; pruning "
                 f"{args.head_fraction:.0%} of heads and {args.neuron_fraction:.0%} of FFN neurons (gradient-of-mask "
                 f"importance on 1,024 training sentences), then {args.recovery_epochs:g} epoch of KD recovery; "
                 f"BiLSTM `{args.bilstm}` {args.bilstm_set}; wall {(time.perf_counter() - start) / 60:.1f} min",
                 "size: the saved weights (safetensors; INT8: torch.save of the quantized state dict); speed_x: the "
                 "teacher's P50 / the variant's, CPU, real dev sentences; course_claim: the course text's table"]
        write_section(args.output, "compression.py", argv, f"Combined compression over {len(seeds)} seeds: "
                      f"`{args.tag}`", notes, [shown, compared])
    return result


if __name__ == "__main__":
    main()
