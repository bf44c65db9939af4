"""What a distilled language model is measured by.

- **Held-out perplexity** exp(Σ NLL / N) over every real target of the held-out examples (token-weighted, not a mean
  of per-example perplexities). Protocol, stated because it changes the number: ``sentences`` mode scores each
  held-out sentence on its own, from its start-of-text token to its end-of-text; ``blocks`` mode (WikiText-103)
  scores non-overlapping ``context``-token blocks, each from scratch (no sliding window, which gives lower numbers:
  DistilGPT2's card reports 21.1 one way and 18.25 with a sliding window). Perplexities are comparable only within
  one tokenizer and one protocol.
- **Teacher NLL of the student's samples**: the teacher's mean −log p per generated token of the student's
  continuations — how teacher-like (how likely under the teacher) what the student writes is. Low is teacher-like;
  a degenerate student that repeats one likely phrase can also score low, hence distinct-n beside it.
- **distinct-n** (Li et al. 2016): unique n-grams / all n-grams over the samples' continuations, corpus-level.
- **Speed and size**: forward tokens/s at the training batch shape, generation tokens/s, parameters, MB on disk.
"""

from __future__ import annotations

import math
import time

import torch

from kdlab.lm import losses


@torch.inference_mode()
def perplexity(model, dataset, collator, rows: int, batch_size: int = 32, device=None) -> dict:
    """``{"nll", "perplexity", "tokens"}`` of ``model`` on ``dataset`` (see the module docstring)."""
    device = device or next(model.parameters()).device
    model = model.eval()
    total, count = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits[:, :-1, :rows]
        targets = batch["labels"][:, 1:].to(device)
        mask = targets != -100
        nll = -losses.log_probs(logits).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        total += float((nll * mask).sum())
        count += int(mask.sum())
    nll = total / max(1, count)
    return {"nll": nll, "perplexity": math.exp(nll), "tokens": count}


@torch.inference_mode()
def teacher_nll(teacher, sequences: list[list[int]], prompt_len: int, rows: int, pad_id: int,
                batch_size: int = 64) -> float:
    """The teacher's mean −log p per generated token (positions ≥ ``prompt_len``, the end-of-text included) of
    ``sequences`` (prompt + continuation ids)."""
    device = next(teacher.parameters()).device
    teacher = teacher.eval()
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start: start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        targets_mask = torch.zeros_like(ids, dtype=torch.bool)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq)] = 1
            targets_mask[row, prompt_len: len(seq)] = True
        logits = teacher(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1, :rows]
        targets = ids[:, 1:].to(device)
        keep = targets_mask[:, 1:].to(device)
        nll = -losses.log_probs(logits).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        total += float((nll * keep).sum())
        count += int(keep.sum())
    return total / max(1, count)


def distinct_n(continuations: list[list[int]], n: int) -> float:
    """Unique n-grams / all n-grams over every continuation (token ids); 0 when there is none."""
    grams = [tuple(seq[i: i + n]) for seq in continuations for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_length(continuations: list[list[int]]) -> float:
    return sum(map(len, continuations)) / max(1, len(continuations))


@torch.inference_mode()
def forward_tokens_per_second(model, batch_size: int, seq_len: int, repeats: int = 5, device=None) -> float:
    """Tokens per second of a plain forward at ``batch_size × seq_len`` (median of ``repeats`` after a warm-up)."""
    import statistics

    from kdlab.measurement.timing import sync_for

    device = device or next(model.parameters()).device
    ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), device=device)
    sync = sync_for(torch.device(device) if isinstance(device, str) else device)
    model = model.eval()
    model(input_ids=ids)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(input_ids=ids)
        sync()
        times.append(time.perf_counter() - start)
    return batch_size * seq_len / statistics.median(times)


def disk_megabytes(model) -> float:
    """Size of the model's weights as safetensors would store them (fp32 here), tied weights counted once."""
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() * p.element_size() for p in unique) / 2**20
