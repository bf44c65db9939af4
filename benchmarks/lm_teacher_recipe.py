"""One probe of 07's `cpu` teacher recipe: the 4 × 256 GPT-2-shaped teacher of the `cpu` profile trained with one
setting changed (batch, learning rate, dropout, weight decay, steps), through the lab's own trainer
(``kdlab.lm.trainer.train``, regime "ce", cosine schedule with warmup steps // 20), then its held-out perplexity
(the held-out lemmas' definitions, as 07 measures it) and its perplexity on the first 1,000 training entries (how
far it fits the text it saw). Used to choose the profile's recipe (BENCHMARKS.md, "Settling the teacher's recipe").

    python benchmarks/lm_teacher_recipe.py --steps 800 --batch 32 --lr 1e-3 --dropout 0 --json probe.json
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

import torch  # noqa: E402

from kdlab import lm_lab  # noqa: E402
from kdlab.lm import corpus, evaluation, models  # noqa: E402
from kdlab.lm.trainer import train  # noqa: E402


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    overrides = dict(teacher_dropout=args.dropout, num_threads=args.threads)
    if args.smoke:
        overrides.update(teacher_width=32, teacher_layers=1, teacher_heads=2, vocab_size=300)
    cfg = lm_lab.setup("cpu", runs_dir=args.work, **overrides)
    texts = corpus.load_texts(cfg)
    tokenizer = corpus.train_tokenizer(texts["train"], cfg.vocab_size)
    model = models.teacher_from_config(cfg, tokenizer)
    data = corpus.examples(texts["train"], tokenizer, cfg)
    heldout = corpus.examples(texts["validation"], tokenizer, cfg)
    collator = corpus.Collator(tokenizer.pad_token_id)
    teacher_cfg = dataclasses.replace(cfg, seed=cfg.teacher_seed, batch_size=args.batch, logging_steps=100)
    start = time.perf_counter()
    model, record = train(model, teacher_cfg, "ce", data, collator, len(tokenizer), Path(args.work) / "probe",
                          tokenizer=tokenizer, learning_rate=args.lr, max_steps=args.steps,
                          warmup_steps=max(1, args.steps // 20), name="teacher-probe",
                          arguments={"weight_decay": args.weight_decay})
    seconds = time.perf_counter() - start
    out = {"batch": args.batch, "lr": args.lr, "dropout": args.dropout, "weight_decay": args.weight_decay,
           "steps": args.steps, "epochs": args.steps * args.batch / len(data), "threads": args.threads,
           "train_seconds": seconds,
           "heldout_ppl": evaluation.perplexity(model, heldout, collator, len(tokenizer))["perplexity"],
           "train_1000_ppl": evaluation.perplexity(model, data.select(range(min(1000, len(data)))), collator,
                                                   len(tokenizer))["perplexity"],
           "losses": [(h["step"], h["loss"]) for h in record["history"] if "loss" in h]}
    print(json.dumps({k: v for k, v in out.items() if k != "losses"}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default=str(ROOT / "runs" / "teacher-probe"), help="scratch folder")
    p.add_argument("--json", default=None)
    p.add_argument("--smoke", action="store_true", help="a 1-block teacher of width 32 (tests)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    main()
