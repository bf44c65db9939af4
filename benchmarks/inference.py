"""Inference latency of the teacher (12 layers) and students (6, 4 layers) at BERT-base dimensions.

    python benchmarks/inference.py [--quick] [--threads N] [--repeats N] [--output PATH]

Prints the table and the speedup/size targets, and appends a dated section to BENCHMARKS.md (repo root, or
``--output``). ``--quick`` times tiny models (hidden 32) for CI: it checks the code path, not the speed.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from kdlab.measurement.benchmark import benchmark_models, bert_base_models, tiny_models  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table, report_header  # noqa: E402
from kdlab.measurement.timing import cpu_cores  # noqa: E402

SPEEDUP_TARGETS = {6: 1.9, 4: 2.8}  # student layers -> fp32 speedup over the 12-layer teacher, same batch
INT8_SIZE_TARGET = 2.4  # teacher fp32 safetensors size / teacher int8 torch.save size
TABLE_COLUMNS = ["model", "precision", "batch", "p50_ms", "p95_ms", "p99_ms", "samples_per_s", "peak_mem_MB",
                 "disk_MB", "max_abs_diff", "speedup_vs_teacher", "status"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models, few repeats: a smoke test of the code path")
    p.add_argument("--threads", type=int, default=None, help="torch (and onnxruntime) threads; default: all cores")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per batch size (default 10 CPU, 50 CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 2 CPU, 5 CUDA)")
    p.add_argument("--batch-sizes", default=None, help="comma-separated, default 1,32 (quick: 1,4)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence, default 128 (quick: 16)")
    p.add_argument("--precisions", default=None,
                   help="comma-separated from fp32,fp16,int8,onnx; default fp32,int8,onnx on CPU, fp32,fp16 on CUDA")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="markdown file the section is appended to")
    p.add_argument("--no-write", action="store_true", help="print only, append nothing")
    return p.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """Resolve defaults that depend on --quick and the device."""
    cuda = args.device.startswith("cuda")
    return dict(
        batch_sizes=[int(b) for b in (args.batch_sizes or ("1,4" if args.quick else "1,32")).split(",")],
        seq_len=args.seq or (16 if args.quick else 128),
        precisions=(args.precisions or ("fp32,fp16" if cuda else "fp32,int8,onnx")).split(","),
        repeats=args.repeats or (3 if args.quick else 50 if cuda else 10),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 5 if cuda else 2),
        num_threads=args.threads or (None if cuda else 1 if args.quick else cpu_cores()),
    )


def target_lines(table) -> list[str]:
    """Speedups of the 6L/4L students (fp32, each batch) and the INT8 size ratio, each marked met/missed."""
    ok = table[table["status"] == "ok"]
    lines = []
    for layers, want in SPEEDUP_TARGETS.items():
        rows = ok[(ok["model"] == f"student-{layers}L") & (ok["precision"] == "fp32")]
        for _, r in rows.iterrows():
            got = r["speedup_vs_teacher"]
            lines.append(f"student-{layers}L fp32 batch {r['batch']}: {got:.2f}x faster than the teacher "
                         f"(target >= {want}x: {'met' if got >= want else 'MISSED'})")
    teacher = table[table["model"] == "teacher"].drop_duplicates("precision").set_index("precision")["disk_MB"]
    if "int8" in teacher and "fp32" in teacher and teacher["int8"] > 0:
        ratio = teacher["fp32"] / teacher["int8"]
        lines.append(f"INT8 teacher on disk: {teacher['fp32']:.1f} MB -> {teacher['int8']:.1f} MB, {ratio:.2f}x smaller "
                     f"(target >= {INT8_SIZE_TARGET}x: {'met' if ratio >= INT8_SIZE_TARGET else 'MISSED'})")
    return lines


def main(argv=None):
    args = parse_args(argv)
    s = settings(args)
    command = "python benchmarks/inference.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = report_header(command.strip(), args.device, s["num_threads"] or torch.get_num_threads())  # load now
    models = tiny_models((12, 6, 4)) if args.quick else bert_base_models((12, 6, 4))
    table = benchmark_models(models, device=args.device, **s)
    targets = target_lines(table)
    print(markdown_table(table, TABLE_COLUMNS))
    print("\n".join(["", *targets]))
    if not args.no_write:
        what = "tiny models (hidden 32): checks the code path, the numbers mean nothing" if args.quick else \
            "BertForSequenceClassification at BERT-base dims (hidden 768, 12 heads, FFN 3072), random weights"
        notes = [
            f"models: {what}; students cut from the teacher's alternate layers",
            f"inputs: random token ids, batch {s['batch_sizes']}, seq {s['seq_len']}, attention mask all ones; "
            f"{s['warmup']} warm-up + {s['repeats']} timed rounds; every row of a batch size timed round-robin",
            "speedup_vs_teacher = teacher fp32 P50 / row P50 at the same batch size",
            f"peak_mem_MB: {', '.join(sorted(set(table['memory_method']) - {''}))}",
            "disk_MB: save_pretrained safetensors (fp32/fp16), torch.save of the int8 state_dict, .onnx + data",
            "max_abs_diff: max |logits - torch fp32 logits| on one batch (onnx rows must be <= 1e-4)",
        ]
        title = (f"{started} · Inference latency{' (quick)' if args.quick else ''} · {table['device'].iloc[0]}, "
                 f"{int(table['threads'].iloc[0])} threads")
        lines = header + [f"- {note}" for note in notes]
        lines += ["", markdown_table(table, TABLE_COLUMNS), "", *[f"- {t}" for t in targets]]
        path = append_markdown(args.output, title, lines)
        print(f"\nappended to {path}")
    return table


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
