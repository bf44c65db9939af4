"""Distillation quality on real SST-2 over several seeds: `ce`, `hinton`, `minilm` students of one profile.

Each variant is trained once per seed (the data and the teacher fixed; the training seed varied: data order and
dropout). Prints and appends to BENCHMARKS.md: the per-seed accuracies, mean ± sd per variant, and paired
comparisons (seed-level t-test; a bootstrap over seeds and sentences). Runs are saved under
``runs/quality/<tag>/seed-S/<variant>/`` and reused, so a long job can be stopped and started again.

    python benchmarks/quality.py --seeds 5                          # cpu profile on ../shared/data/sst2
    python benchmarks/quality.py --seeds 5 --tag transfer-4k --set max_train_samples=16000 labelled_train_samples=4000
    python benchmarks/quality.py --seeds 3 --tag aggressive --variants hinton --set alpha=0.1 beta=0.9 --baseline cpu
    python benchmarks/quality.py --profile smoke --seeds 2 --no-write   # seconds, synthetic data

``--baseline TAG`` pairs this run's students with another tag's saved runs of the same seeds (``ce@TAG``...), so a
sweep of one variant is compared with the baselines without training them again.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdlab import lab  # noqa: E402
from kdlab.config import VARIANTS  # noqa: E402
from kdlab.distillation.seeds import comparison_table, load_runs, seed_list, seed_table, train_seeds  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table, report_header  # noqa: E402

PAIRS = (("minilm", "ce"), ("hinton", "ce"), ("minilm", "hinton"))


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def setup_config(args: argparse.Namespace):
    """(config, overrides) of a script's ``--profile``/``--data``/``--set``: a smoke profile left on the default data
    folder uses synthetic sentences; no mid-training evaluations unless ``--set eval_steps=N`` (the final model is
    what is compared)."""
    overrides = {"eval_steps": None, **parse_overrides(args.set)}
    default_data = ROOT.parent / "shared" / "data" / "sst2"
    source = "synthetic" if args.profile.startswith("smoke") and args.data == str(default_data) else args.data
    return lab.setup(args.profile, data=source, **overrides), overrides


COMPARISON_LEGEND = ("mean_diff/sd_diff in points (a − b); t_p: paired t-test over seeds; boot_*: 95% interval and p "
                     "of a bootstrap over seeds and sentences; a_only/b_only: discordant sentences summed over seeds")


def prepare(cfg):
    """(teacher, data, dev labels, the teacher's dev metrics, seconds spent preparing the teacher) for a script."""
    start = time.perf_counter()
    teacher = lab.prepare_teacher(cfg)
    seconds = time.perf_counter() - start
    data = lab.load_data(cfg)
    return teacher, data, list(data["validation"]["label"]), lab.evaluate(cfg, teacher.model, teacher.tokenizer,
                                                                          data), seconds


def write_section(output, script: str, argv, title: str, notes: list[str], tables: list[str]) -> None:
    """Append a dated ``title`` section to ``output`` (BENCHMARKS.md): how the script ran, ``notes``, ``tables``."""
    command = f"python benchmarks/{script} " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = report_header(command, "cpu", lab.machine_info()["torch_threads"], notes)
    for table in tables:
        lines += ["", table]
    print(f"appended to {append_markdown(output, f'{title} — {dt.date.today().isoformat()}', lines)}")


def baseline_runs(root: Path, tag: str, seeds: list[int]) -> list[dict]:
    """Another tag's saved runs of ``seeds``, renamed ``variant@tag``; stops when there are none."""
    base = [dict(r, variant=f"{r['variant']}@{tag}") for r in load_runs(root / tag) if r["seed"] in seeds]
    if not base:
        raise SystemExit(f"--baseline {tag}: no saved runs of seeds {seeds} under {root / tag}; run that tag first.")
    return base


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"),
                   help="data source (folder, 'hub' or 'synthetic'); default ../shared/data/sst2")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3; 5 for BENCHMARKS.md)")
    p.add_argument("--first-seed", type=int, default=None, help="first seed (default: the profile's)")
    p.add_argument("--tag", default="defaults")
    p.add_argument("--root", default=str(ROOT / "runs" / "quality"), help="where runs are saved (per tag)")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--baseline", default=None, metavar="TAG",
                   help="also compare with another tag's saved runs of the same seeds (named variant@TAG)")
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg, overrides = setup_config(args)
    variants = args.variants.split(",")
    seeds = seed_list(cfg.seed if args.first_seed is None else args.first_seed, args.seeds)
    root = Path(args.root) / args.tag
    base = baseline_runs(Path(args.root), args.baseline, seeds) if args.baseline else []  # before any training
    start = time.perf_counter()
    teacher, data, labels, t_eval, teacher_seconds = prepare(cfg)
    rows = train_seeds(cfg, teacher.model, teacher.tokenizer, data, variants, seeds, root,
                       log=lambda msg: print(f"[{args.tag}] {msg}", flush=True))
    summary = seed_table(rows, variants)
    summary["retention_%"] = summary["mean_%"] / (100 * t_eval["accuracy"]) * 100
    pairs = [p for p in PAIRS if p[0] in variants and p[1] in variants]
    pairs += [(v, b) for v in variants for b in dict.fromkeys(r["variant"] for r in base)]
    comparisons = comparison_table(rows + base, pairs, labels)
    wall = time.perf_counter() - start
    result = {"tag": args.tag, "profile": cfg.profile, "overrides": overrides, "config": cfg.to_dict(),
              "seeds": seeds,
              "teacher_accuracy": t_eval["accuracy"], "summary": summary.to_dict(orient="records"),
              "comparisons": comparisons.to_dict(orient="records"),
              "runs": [{k: v for k, v in r.items() if k != "predictions"} for r in rows], "wall_seconds": wall}
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(result, indent=2))
    per_seed = markdown_table(summary[["variant", "seeds", "mean_%", "sd_%", "min_%", "max_%", "retention_%",
                                       "per_seed_%"]])
    compared = markdown_table(comparisons[["a", "b", "seeds", "mean_diff", "sd_diff", "wins", "t_p", "boot_low",
                                           "boot_high", "boot_p", "a_only", "b_only"]]) if len(comparisons) else ""
    print(per_seed, "", compared, sep="\n")
    if not args.no_write:
        n_train, n_labelled = len(data["train"]), sum(1 for y in data["train"]["label"] if y != -100)
        notes = [
            f"profile `{cfg.profile}`, overrides {overrides}; teacher {t_eval['accuracy']:.1%} dev "
            f"({'reused' if teacher_seconds < 60 else f'fine-tuned in {teacher_seconds:.0f} s'}); wall {wall / 60:.1f} min",
            f"students: {cfg.student_layers} layers, {n_train:,} training sentences ({n_labelled:,} labelled"
            f"{'; `ce` trains on the labelled ones only' if n_labelled < n_train else ''}), {cfg.num_epochs:g} epochs, "
            f"lr {cfg.learning_rate:g}, batch {cfg.batch_size}, T={cfg.temperature:g}, α={cfg.alpha:g} β={cfg.beta:g} "
            f"γ={cfg.gamma:g} δ={cfg.delta:g}; dev n={len(labels)}; seeds {seeds} (training seed: order, dropout)",
            COMPARISON_LEGEND,
        ]
        write_section(args.output, "quality.py", argv, f"Quality over {len(seeds)} seeds: `{args.tag}`", notes,
                      [per_seed, compared])
    return result


if __name__ == "__main__":
    main()
