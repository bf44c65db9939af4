"""Distil, then quantize, then prune (the course's order): pruning a distilled student with a KD recovery run, and
the combined-compression table that sets every variant beside the course's claims.

    distilled student ──prune heads + FFN neurons (kdlab.compression.pruning)──► pruned ──KD recovery (hinton)──►
    recovered
          │                                                                                          │
          └── INT8 (kdlab.measurement.quantize) ─────────────────────────────────────────────────────────────────┴──
          INT8
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from kdlab.artifacts import update_json
from kdlab.compression.pruning import importance_scores, prune_model, prune_plan
from kdlab.config import KDConfig
from kdlab.distillation.runs import RESULTS
from kdlab.distillation.training import distill
from kdlab.measurement.benchmark import benchmark_models, real_length_inputs
from kdlab.measurement.quantize import quantize_int8
from kdlab.metrics.classification import evaluate_model

# The course text's combined-compression table: (variant, compression, retention) as it states them.
COURSE_CLAIMS = {
    "distilled": ("2–3×", "90–95%"),
    "distilled + INT8": ("6–9×", "85–90%"),
    "distilled + pruned": ("3–5×", "80–85%"),
    "distilled + pruned + INT8": ("10–15×", "70–80%"),
}


def scoring_batches(data, tokenizer, max_length: int, sentences: int = 1024, batch_size: int = 32):
    """The first ``sentences`` training sentences as padded batches (labels dropped: the teacher scores them)."""

    def encode(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=max_length)

    train = data["train"].select(range(min(sentences, len(data["train"]))))
    train = train.map(encode, batched=True, desc="tokenize")
    train = train.remove_columns([c for c in train.column_names if c not in ("input_ids", "attention_mask",
                                                                            "token_type_ids")])
    return DataLoader(train, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))


def prune_and_recover(cfg: KDConfig, teacher, tokenizer, data, student, output_dir: str | Path,
                      head_fraction: float = 0.5, neuron_fraction: float = 0.5, recovery_epochs: float = 1.0,
                      score_sentences: int = 1024):
    """Score ``student``'s heads and FFN neurons against ``teacher`` on ``score_sentences`` training sentences,
    remove ``head_fraction`` / ``neuron_fraction`` of them (a copy; the caller's student is untouched), then
    distil the pruned model from the teacher (``hinton``) for ``recovery_epochs``. Returns
    ``(TrainResult, plan, dev metrics of the pruned model before recovery)``; saved under ``output_dir``."""
    device = "cuda" if torch.cuda.is_available() else "cpu"  # where the lab trains (the recovery run too)
    scores = importance_scores(copy.deepcopy(student), scoring_batches(data, tokenizer, cfg.max_length,
                                                                       score_sentences), teacher=teacher,
                               device=device)
    plan = prune_plan(scores, head_fraction, neuron_fraction)
    pruned = prune_model(copy.deepcopy(student).float(), plan)
    before = evaluate_model(pruned, tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size, device)
    before = {k: v for k, v in before.items() if k not in ("predictions", "probs")}
    cfg_r = dataclasses.replace(cfg, num_epochs=recovery_epochs).validate()
    result = distill(cfg_r, teacher, tokenizer, data, "hinton", student=pruned, output_dir=output_dir,
                     resume=False, checkpoint_name="pruned-recovery")
    return result, plan, before


def combined_table(accuracy: dict[str, list[float]], timings, sizes: dict[str, float], teacher: str = "teacher"):
    """The combined-compression table: per variant, mean ± sd dev accuracy (over the seeds in ``accuracy``, in
    [0, 1]), retention of the teacher's accuracy, size (MB) and its ratio to the teacher's, and P50 latency ratios
    at batch 1 and 32 from ``timings`` (``benchmark_models`` rows: model, batch, p50_ms), with the course's claim
    beside each variant it makes one for."""
    t_acc = float(np.mean(accuracy[teacher]))
    p50 = {(r["model"], int(r["batch"])): float(r["p50_ms"]) for _, r in timings.iterrows()}
    rows = []
    for name, accs in accuracy.items():
        accs = np.asarray(accs, dtype=float) * 100
        claim = COURSE_CLAIMS.get(name, ("", ""))
        rows.append({
            "variant": name, "seeds": accs.size, "accuracy_%": accs.mean(),
            "sd_%": accs.std(ddof=1) if accs.size > 1 else float("nan"),
            "retention_%": accs.mean() / (100 * t_acc) * 100, "size_MB": sizes.get(name, float("nan")),
            "size_x": sizes[teacher] / sizes[name] if name in sizes else float("nan"),
            **{f"speed_x_b{b}": p50[(teacher, b)] / p50[(name, b)] if (name, b) in p50 and (teacher, b) in p50
               else float("nan") for b in (1, 32)},
            "course_claim": f"{claim[0]} at {claim[1]}" if claim[0] else "",
        })
    return pd.DataFrame(rows)


def unstructured_zeros(model, amount: float = 0.5):
    """A copy of ``model`` with the ``amount`` smallest-magnitude weights of every encoder Linear set to zero
    (``torch.nn.utils.prune.l1_unstructured``, made permanent): as sparse as structured pruning or more, but the
    matrices keep their shapes, so dense kernels do the same work — the lesson of its (absent) speedup."""
    out = copy.deepcopy(model).eval()
    for name, module in out.named_modules():
        if isinstance(module, nn.Linear) and ".encoder." in f".{name}.":
            prune.l1_unstructured(module, "weight", amount)
            prune.remove(module, "weight")
    return out


def measure_variants(cfg: KDConfig, tokenizer, data, models: dict, int8: bool = True, teacher: str = "teacher"):
    """``combined_table`` of one seed: dev accuracy, saved size and CPU latency (batch 1 and 32, real dev sentences,
    round-robin) of ``models`` (name → float model, the teacher among them) and, with ``int8``, of an INT8 copy of
    each (named ``"<name> + INT8"``). Evaluated and timed on the CPU whatever device trained the models."""
    models = {name: copy.deepcopy(model).float().cpu().eval() for name, model in models.items()}
    accuracy = {}
    for name, model in models.items():
        accuracy[name] = [evaluate_model(model, tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size,
                                         "cpu")["accuracy"]]
    if int8:
        for name, model in models.items():
            accuracy[f"{name} + INT8"] = [evaluate_model(quantize_int8(model), tokenizer, data["validation"],
                                                         cfg.max_length, cfg.eval_batch_size, "cpu")["accuracy"]]
    inputs = real_length_inputs(tokenizer, list(data["validation"]["sentence"]), cfg.max_length)
    timings = benchmark_models(models, (1, 32), cfg.max_length, ("fp32", "int8") if int8 else ("fp32",), "cpu",
                               cfg.bench_warmup, cfg.bench_repeats, cfg.num_threads, reference=teacher, inputs=inputs)
    timings["model"] = [m if p == "fp32" else f"{m} + INT8" for m, p in zip(timings["model"], timings["precision"])]
    sizes = {m: float(d) for m, d in zip(timings["model"], timings["disk_MB"])}
    return combined_table(accuracy, timings, sizes, teacher)


def record(cfg: KDConfig, table) -> None:
    """Store the combined table in the run's results.json (``"compression"``), where 04-Benchmark's deployment
    recommendation reads it."""
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in table.to_dict(orient="records")]
    update_json(cfg.run_dir() / RESULTS, {"compression": rows})
