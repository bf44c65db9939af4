"""Cross-architecture distillation on real SST-2: Hinton vs Hinton + MiniLMv2 relation heads, into a student whose
head count differs from the teacher's (so MiniLM's per-head attention/value transfer cannot be used).

    python benchmarks/cross_arch.py                     # cpu teacher (runs/cpu/teacher) → 3L/384/6-head student
    python benchmarks/cross_arch.py --quick --no-write  # 256 sentences, 1 epoch: checks the code path only
    python benchmarks/cross_arch.py --init random       # a randomly initialized student instead

Teacher: the `cpu` profile's fine-tuned all-MiniLM-L6 (6 layers, 384 wide, 12 heads of 32), loaded from
``runs/cpu/teacher``. Student: ``--layers`` layers, 384 wide, ``--heads`` heads; ``--init teacher`` copies every
weight from the teacher's alternate layers (the widths agree; only the split of Q/K/V into heads differs),
``--init random`` starts from random weights. Data: ``--data`` (default ../shared/data/sst2), 4,000 training
sentences (seeded shuffle), the whole dev split, max length 64, 2 epochs, lr 1e-4, batch 32 (the `cpu` profile).

Prints dev accuracy with 95% Wilson intervals, McNemar's paired test, wall time, and appends a dated section to
BENCHMARKS.md (``--output``; ``--no-write`` only prints).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from kdlab.config import load_config  # noqa: E402
from kdlab.data.loading import load_data  # noqa: E402
from kdlab.distillation.training import distill  # noqa: E402
from kdlab.errors import KDLabError  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table, report_header  # noqa: E402
from kdlab.metrics.classification import evaluate_model, mcnemar  # noqa: E402
from kdlab.models.student import count_parameters, init_student_from_teacher  # noqa: E402
from kdlab.models.teacher import load_teacher  # noqa: E402

DEFAULT_TEACHER = ROOT / "runs" / "cpu" / "teacher"
DEFAULT_SST2 = ROOT.parent / "shared" / "data" / "sst2"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="256 sentences, 128 dev, 1 epoch: the code path only")
    p.add_argument("--teacher", default=str(DEFAULT_TEACHER), help="fine-tuned teacher folder (default runs/cpu/teacher)")
    p.add_argument("--data", default=str(DEFAULT_SST2), help="SST-2 folder with train.tsv/dev.tsv")
    p.add_argument("--layers", type=int, default=3, help="student encoder layers (default 3)")
    p.add_argument("--heads", type=int, default=6, help="student attention heads (default 6; the teacher has 12)")
    p.add_argument("--init", choices=("teacher", "random"), default="teacher",
                   help="student weights: copied from the teacher's alternate layers, or random")
    p.add_argument("--relation-heads", type=int, default=12, help="MiniLMv2 relation heads (default 12)")
    p.add_argument("--relation-weight", type=float, default=0.5, help="weight of the summed Q-Q/K-K/V-V KLs")
    p.add_argument("--relation-teacher-layer", type=int, default=-1, help="teacher layer for relations (-1 = last)")
    p.add_argument("--alpha", type=float, default=0.5, help="CE weight (default 0.5)")
    p.add_argument("--beta", type=float, default=0.5, help="KD weight (default 0.5; T = 4)")
    p.add_argument("--variants", default="hinton,hinton+relations",
                   help="comma list of: ce, hinton, hinton+relations")
    p.add_argument("--epochs", type=float, default=None, help="default 2 (quick: 1)")
    p.add_argument("--train-samples", type=int, default=4000, help="training sentences (default 4000; quick 256)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "cross_arch"), help="where students are saved")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="markdown file the section is appended to")
    p.add_argument("--no-write", action="store_true", help="print only, append nothing")
    return p.parse_args(argv)


def make_student(teacher: torch.nn.Module, layers: int, heads: int, init: str, seed: int) -> torch.nn.Module:
    """A student of the teacher's width with ``layers`` layers and ``heads`` heads.

    ``init="teacher"``: every weight copied from the teacher's alternate layers (``init_student_from_teacher``),
    then the same weights re-read with ``heads`` heads; ``"random"``: a fresh random model of that shape.
    """
    width = teacher.config.hidden_size
    if width % heads:
        raise KDLabError(f"{heads} heads do not divide the width {width}.")
    if init == "teacher":
        cut = init_student_from_teacher(teacher, layers)
        config = copy.deepcopy(cut.config)
        config.num_attention_heads = heads
        student = type(cut)(config)
        student.load_state_dict(cut.state_dict(), strict=True)
        return student
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers, config.num_attention_heads = layers, heads
    config.dtype = torch.float32
    torch.manual_seed(seed)
    return type(teacher)(config)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = ("python benchmarks/cross_arch.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = report_header(command, "cpu", torch.get_num_threads())
    if not Path(args.teacher, "config.json").is_file():
        raise KDLabError(f"no fine-tuned teacher at {args.teacher}: run 01-Setup with KDLAB_PROFILE=cpu first "
                         "(or pass --teacher FOLDER).")
    # Every setting pinned here, so the numbers do not move when the `cpu` profile does.
    cfg = load_config("cpu", data=args.data, runs_dir=args.runs_dir, seed=args.seed, alpha=args.alpha,
                      beta=args.beta, temperature=4.0, num_epochs=args.epochs or (1.0 if args.quick else 2.0),
                      max_train_samples=256 if args.quick else args.train_samples,
                      max_eval_samples=128 if args.quick else None, max_length=64, learning_rate=1e-4,
                      batch_size=32, warmup_steps=25, weight_decay=0.01, eval_steps=None, save_steps=None,
                      logging_steps=25, gradient_accumulation_steps=1, num_threads=args.threads)
    teacher = load_teacher(args.teacher, seed=args.seed)
    data = load_data(cfg)
    tc = teacher.model.config
    print(f"teacher {args.teacher}: {tc.num_hidden_layers} layers, {tc.hidden_size} wide, {tc.num_attention_heads} "
          f"heads; train {len(data['train'])}, dev {len(data['validation'])}")
    t_metrics = evaluate_model(teacher.model, teacher.tokenizer, data["validation"], cfg.max_length,
                               cfg.eval_batch_size, "cpu")

    rel_cfg = dataclasses.replace(cfg, gamma=0.0, delta=0.0, relation_weight=args.relation_weight,
                                  relation_heads=args.relation_heads,
                                  relation_teacher_layer=args.relation_teacher_layer).validate()
    plans = {"ce": (cfg, "ce"), "hinton": (cfg, "hinton"), "hinton+relations": (rel_cfg, "minilm")}
    rows, predictions = [], {}
    for name in args.variants.split(","):
        if name not in plans:
            raise KDLabError(f"unknown variant {name!r}: choose from {', '.join(plans)}.")
        run_cfg, variant = plans[name]
        student = make_student(teacher.model, args.layers, args.heads, args.init, args.seed)
        start = time.perf_counter()
        result = distill(run_cfg, teacher.model, teacher.tokenizer, data, variant, student=student,
                         output_dir=Path(args.runs_dir) / f"{args.init}-{args.layers}L{args.heads}h" / name,
                         resume=False)
        wall = time.perf_counter() - start
        m = result.metrics
        predictions[name] = result.predictions
        logs = [h for h in result.history if "loss" in h and "eval_loss" not in h]
        last = {k: v for k, v in logs[-1].items() if k.startswith("loss_")} if logs else {}
        rows.append(dict(variant=name, loss=_loss_text(result), accuracy=m["accuracy"], acc_low=m["acc_low"],
                         acc_high=m["acc_high"], f1=m["f1"], train_s=result.train_seconds, wall_s=wall,
                         last_logged=", ".join(f"{k[5:]} {v:.3g}" for k, v in last.items())))
        print(f"{name}: {m['accuracy']:.2%} [{m['acc_low']:.2%}, {m['acc_high']:.2%}]  train {result.train_seconds:.0f} s")

    table = pd.DataFrame(rows)
    table_md = markdown_table(table.assign(**{c: (table[c] * 100).round(1) for c in ("accuracy", "acc_low",
                                                                                       "acc_high")}),
                              ["variant", "loss", "accuracy", "acc_low", "acc_high", "f1", "train_s", "last_logged"])
    tests = []
    names = list(predictions)
    labels = data["validation"]["label"]
    for other in names[1:]:
        t = mcnemar(labels, predictions[other], predictions[names[0]])
        tests.append(f"McNemar {other} vs {names[0]}: {other} alone right on {t['a_only']}, {names[0]} alone right "
                     f"on {t['b_only']}, p = {t['p_value']:.3f}")
    print("", table_md, "", *tests, sep="\n")
    if not args.no_write:
        student = make_student(teacher.model, args.layers, args.heads, args.init, args.seed)
        notes = [
            f"teacher: {args.teacher} ({tc.num_hidden_layers} layers, {tc.hidden_size} wide, {tc.num_attention_heads} "
            f"heads), dev accuracy here {t_metrics['accuracy']:.1%} [{t_metrics['acc_low']:.1%}, "
            f"{t_metrics['acc_high']:.1%}]",
            f"student: {args.layers} layers, {student.config.hidden_size} wide, {args.heads} heads "
            f"({count_parameters(student) / 1e6:.1f} M parameters), init `{args.init}`"
            + (" (every weight copied from teacher layers " + str(student.config.kdlab_layer_map)
               + "; only the head split differs)" if args.init == "teacher" else ""),
            f"data: {args.data}, {len(data['train'])} training sentences (seed {cfg.seed}), dev n = "
            f"{len(data['validation'])}; max length {cfg.max_length}, {cfg.num_epochs:g} epochs, lr {cfg.learning_rate:g}, "
            f"batch {cfg.batch_size}, warmup {cfg.warmup_steps}, T = {cfg.temperature:g}, one seed",
            f"relations: {args.relation_heads} relation heads (teacher {tc.hidden_size // args.relation_heads}-wide, "
            f"student {student.config.hidden_size // args.relation_heads}-wide), Q-Q + K-K + V-V, teacher layer "
            f"{args.relation_teacher_layer}, student layer -1, weight {args.relation_weight:g}",
            "accuracy in %, 95% Wilson interval; `last_logged` = loss terms averaged over the last logging window",
        ]
        title = f"{started} · Cross-architecture distillation{' (quick)' if args.quick else ''} · cpu, " \
                f"{torch.get_num_threads()} threads"
        lines = header + [f"- {n}" for n in notes] + ["", table_md, ""] + [f"- {t}" for t in tests]
        path = append_markdown(args.output, title, lines)
        print(f"\nappended to {path}")
    return table


def _loss_text(result) -> str:
    """The loss a saved student was trained with, e.g. ``0.5·CE + 0.5·KD + 1·rel(12)`` (from its kdlab.json)."""
    loss = json.loads((result.output_dir / "kdlab.json").read_text())["loss"]
    terms = [f"{loss['alpha']:g}·CE"] if loss["alpha"] else []
    if loss["beta"]:
        terms.append(f"{loss['beta']:g}·KD")
    if loss.get("relation_weight"):
        terms.append(f"{loss['relation_weight']:g}·rel({loss['relation_heads']})")
    return " + ".join(terms)


if __name__ == "__main__":
    main()
