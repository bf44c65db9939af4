"""Distillation quality on real SST-2: teacher, `ce`, `hinton`, `minilm` students of one profile.

Prints dev accuracy with 95% intervals, retention (student / teacher), McNemar's paired test of each student
against `ce`, and wall time; appends a dated section to BENCHMARKS.md.

    python benchmarks/quality.py                                  # cpu profile on ../shared/data/sst2
    python benchmarks/quality.py --set max_train_samples=16000 --tag more-data
    python benchmarks/quality.py --profile smoke --output /tmp/B.md   # seconds, synthetic data

Students are written under runs/quality/<tag>/ (the teacher is the profile's, fine-tuned once and reused).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdlab import lab  # noqa: E402
from kdlab.config import VARIANTS  # noqa: E402
from kdlab.distill import distill  # noqa: E402
from kdlab.metrics import mcnemar  # noqa: E402


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"),
                        help="data source (folder, 'hub' or 'synthetic'); default ../shared/data/sst2")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--tag", default="defaults")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    overrides = parse_overrides(args.set)
    data_source = "synthetic" if args.profile == "smoke" and args.data == parser.get_default("data") else args.data
    cfg = lab.setup(args.profile, data=data_source, **overrides)
    start = time.perf_counter()
    teacher = lab.prepare_teacher(cfg)
    teacher_ready = time.perf_counter() - start
    data = lab.load_data(cfg)
    labels = list(data["validation"]["label"])
    t_eval = lab.evaluate(cfg, teacher.model, teacher.tokenizer, data)
    rows = [dict(model="teacher", layers=t_eval["layers"], **_acc(t_eval), retention="100%", p_vs_ce="",
                 train_s=(lab.results(cfg).get("teacher_finetune") or {}).get("train_seconds"))]
    predictions = {}
    for variant in args.variants.split(","):
        result = distill(cfg, teacher.model, teacher.tokenizer, data, variant,
                         output_dir=ROOT / "runs" / "quality" / args.tag / variant, resume=False)
        predictions[variant] = result.predictions
        m = result.metrics
        rows.append(dict(model=variant, layers=cfg.student_layers, **_acc(m),
                         retention=f"{m['accuracy'] / t_eval['accuracy']:.1%}", p_vs_ce="",
                         train_s=round(result.train_seconds)))
        print(json.dumps({"tag": args.tag, **rows[-1]}), flush=True)
    if "ce" in predictions:
        for row in rows[1:]:
            if row["model"] != "ce":
                test = mcnemar(labels, predictions[row["model"]], predictions["ce"])
                row["p_vs_ce"] = f"{test['p_value']:.3f} (+{test['a_only']}/-{test['b_only']})"
    wall = time.perf_counter() - start
    table = _markdown(rows)
    print(table)
    if not args.no_write:
        changed = {k: getattr(cfg, k) for k in overrides}
        section = [
            f"\n## Quality: `{args.tag}` — {dt.date.today().isoformat()}",
            "",
            f"Command: `python benchmarks/quality.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ",
            f"Machine: {platform.processor() or platform.machine()}, {lab.environment()['cpu_count']} cores, "
            f"torch threads {lab.environment()['torch_threads']}; profile `{cfg.profile}`, overrides {changed or 'none'}; "
            f"teacher {'reused' if teacher_ready < 60 else 'fine-tuned'} ({teacher_ready:.0f} s); wall {wall / 60:.1f} min.  ",
            f"Students: {cfg.student_layers} layers, {len(data['train'])} training sentences, {cfg.num_epochs:g} epochs, "
            f"lr {cfg.learning_rate:g}, T={cfg.temperature:g}, α={cfg.alpha:g} β={cfg.beta:g} γ={cfg.gamma:g} "
            f"δ={cfg.delta:g}; dev n={len(labels)}. `p_vs_ce`: exact McNemar p (+right only / −wrong only vs ce).",
            "",
            table,
            "",
        ]
        with open(args.output, "a", encoding="utf-8") as fh:
            fh.write("\n".join(section))
        print(f"appended to {args.output}")
    return 0


def _acc(m: dict) -> dict:
    return {"accuracy": f"{m['accuracy']:.1%}", "95% CI": f"[{m['acc_low']:.1%}, {m['acc_high']:.1%}]",
            "f1": f"{m['f1']:.3f}"}


def _markdown(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_markdown(index=False)


if __name__ == "__main__":
    sys.exit(main())
