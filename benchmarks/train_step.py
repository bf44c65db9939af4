"""Cost of one optimization step: CE, teacher forward, Hinton, MiniLM (hooks) and MiniLM (naive), side by side;
and how many token slots a batch computes with padding to 128 vs dynamic padding on SST-2.

    python benchmarks/train_step.py [--quick] [--threads N] [--repeats N] [--output PATH]

Prints the tables and appends a dated section to BENCHMARKS.md (repo root, or ``--output``). Default: teacher
12 layers / student 6 layers at BERT-base dimensions, batch 8, seq 128. ``--quick`` uses tiny models for CI.
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

from kdlab.measurement.benchmark import bert_base_models, tiny_models  # noqa: E402
from kdlab.measurement.padding import padding_table  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table, report_header  # noqa: E402
from kdlab.measurement.timing import cpu_cores  # noqa: E402
from kdlab.measurement.train_step import train_step_benchmark  # noqa: E402

DEFAULT_SST2 = ROOT.parent / "shared" / "data" / "sst2"  # shared/ lies beside every checkout


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models, few repeats: a smoke test of the code path")
    p.add_argument("--threads", type=int, default=None, help="torch threads; default: all cores (quick: 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 10; quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 1)")
    p.add_argument("--batch", type=int, default=None, help="training batch size (default 8; quick 4)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 128; quick 16)")
    p.add_argument("--layers", default="12,6", help="teacher,student encoder layers (default 12,6)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--data", default=str(DEFAULT_SST2),
                   help="folder with SST-2 train.tsv/dev.tsv for the padding table; synthetic sentences if missing")
    p.add_argument("--pad-batch", type=int, default=32, help="batch size for the padding table (default 32)")
    p.add_argument("--max-length", type=int, default=128, help="truncation / fixed padding length (default 128)")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"), help="markdown file the section is appended to")
    p.add_argument("--no-write", action="store_true", help="print only, append nothing")
    return p.parse_args(argv)


def sentence_lengths(data: str, quick: bool) -> tuple[list[int], str]:
    """Token counts of SST-2 training sentences (or synthetic ones) and a note saying which and how counted."""
    from kdlab.data.loading import load_sst2
    from kdlab.data.tokens import token_lengths
    from kdlab.models.teacher import minilm_l6_path
    from kdlab.models.tiny import build_tiny_tokenizer

    limit = 2000 if quick else None
    real = Path(data).is_dir() and (Path(data) / "train.tsv").is_file()
    ds = load_sst2(data if real else "synthetic", max_train_samples=limit)["train"]
    source = f"SST-2 train from {data} ({len(ds):,} sentences)" if real else \
        f"synthetic sentences ({len(ds):,}; no SST-2 at {data})"
    try:
        from transformers import AutoTokenizer

        tokenizer, how = AutoTokenizer.from_pretrained(str(minilm_l6_path())), "bert-base-uncased WordPiece vocabulary"
    except Exception:  # the MiniLM package is optional
        tokenizer, how = build_tiny_tokenizer(), "the synthetic-vocabulary tokenizer (unknown words count 1 token)"
    return token_lengths(ds, tokenizer), f"{source}, tokenised with {how}"


def main(argv=None):
    args = parse_args(argv)
    quick = args.quick
    teacher_layers, student_layers = (int(n) for n in args.layers.split(","))
    batch = args.batch or (4 if quick else 8)
    seq = args.seq or (16 if quick else 128)
    threads = args.threads or (None if args.device.startswith("cuda") else 1 if quick else cpu_cores())
    command = ("python benchmarks/train_step.py " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = report_header(command, args.device, threads or torch.get_num_threads())

    build = tiny_models if quick else bert_base_models
    models = build((teacher_layers, student_layers))
    teacher, student = models["teacher"], models[f"student-{student_layers}L"]
    result = train_step_benchmark(teacher, student, batch_size=batch, seq_len=seq,
                                  warmup=args.warmup if args.warmup is not None else 1,
                                  repeats=args.repeats or (3 if quick else 10), device=args.device,
                                  num_threads=threads)
    lengths, source = sentence_lengths(args.data, quick)
    padding = padding_table(lengths, args.pad_batch, args.max_length)

    steps = markdown_table(result.table, ["step", "what", "p50_ms", "p95_ms", "mean_ms", "samples_per_s"])
    ratios = [f"{name}: {value:.2f}" for name, value in result.ratios.items()]
    pads = markdown_table(padding)
    print(steps, "", *ratios, "", pads, sep="\n")
    if not args.no_write:
        what = "tiny models (hidden 32): checks the code path, the numbers mean nothing" if quick else \
            "BertForSequenceClassification at BERT-base dims, random weights"
        s = result.settings
        notes = [
            f"models: teacher {s['teacher_layers']} layers, student {s['student_layers']} layers cut from it; {what}",
            f"steps: batch {s['batch']}, seq {s['seq']} (random padding, real lengths S/2..S), AdamW; "
            f"{s['warmup']} warm-up + {s['repeats']} timed rounds, the five steps round-robin",
            "(d) = MiniLM as kdlab.distillation.training trains: sdpa attention, last-layer Q/K/V captured by hooks; "
            "(e) = naive: eager attention, output_attentions=True (all layers' maps returned), attention term from "
            "the returned last-layer maps, value relation from hooked V",
        ]
        title = (f"{started} · Training step{' (quick)' if quick else ''} · {s['device']}, {s['threads']} threads")
        lines = header + [f"- {note}" for note in notes]
        lines += ["", steps, "", "Ratios of P50s:", "", *[f"- {r}" for r in ratios], "",
                  f"Padding per batch of {args.pad_batch}, max length {args.max_length}: {source}.", "", pads]
        path = append_markdown(args.output, title, lines)
        print(f"\nappended to {path}")
    return result, padding


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
