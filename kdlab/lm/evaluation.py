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

from kdlab.errors import KDLabError
from kdlab.lm import losses


@torch.inference_mode()
def per_example_nll(model, dataset, collator, rows: int, batch_size: int = 32, device=None) -> tuple[list, list]:
    """``(nll_sums, token_counts)``: for each example of ``dataset``, the summed −log p of its real targets and their
    number (what a paired bootstrap over held-out sentences resamples)."""
    device = device or next(model.parameters()).device
    model = model.eval()
    sums, counts = [], []
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits[:, :-1, :rows]
        targets = batch["labels"][:, 1:].to(device)
        mask = targets != -100
        nll = -losses.log_probs(logits).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        sums += (nll * mask).sum(-1).tolist()
        counts += mask.sum(-1).tolist()
    return sums, counts


@torch.inference_mode()
def perplexity(model, dataset, collator, rows: int, batch_size: int = 32, device=None) -> dict:
    """``{"nll", "perplexity", "tokens"}`` of ``model`` on ``dataset`` (see the module docstring)."""
    sums, counts = per_example_nll(model, dataset, collator, rows, batch_size, device)
    nll = sum(sums) / max(1, sum(counts))
    return {"nll": nll, "perplexity": math.exp(nll), "tokens": int(sum(counts))}


def paired_nll_bootstrap(a, b, counts, n_boot: int = 4000, seed: int = 0) -> dict:
    """Paired comparison of two regimes' held-out NLL per token (nats), ``a`` − ``b``, from per-example sums
    ``a``, ``b`` ``[seeds, examples]`` and token counts ``counts`` ``[examples]``: the mean difference, and a 95%
    interval and two-sided p of a bootstrap that resamples seeds and sentences (as the lab's accuracy comparisons
    do). Negative: ``a`` is better (lower NLL)."""
    import numpy as np

    a, b, counts = np.asarray(a, float), np.asarray(b, float), np.asarray(counts, float)
    diff = (a - b).sum(1) / counts.sum()  # per seed, nats per token
    rng = np.random.default_rng(seed)
    n_seeds, n_ex = a.shape
    boot = np.empty(n_boot)
    for i in range(n_boot):
        s = rng.integers(0, n_seeds, n_seeds)
        e = rng.integers(0, n_ex, n_ex)
        boot[i] = ((a[s][:, e] - b[s][:, e]).sum(1) / counts[e].sum()).mean()
    low, high = np.quantile(boot, [0.025, 0.975])
    p = min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean()))
    return {"mean_diff_nll": float(diff.mean()), "sd_diff_nll": float(diff.std(ddof=1)) if n_seeds > 1 else 0.0,
            "wins": int((diff < 0).sum()), "boot_low": float(low), "boot_high": float(high), "boot_p": float(p)}


@torch.inference_mode()
def sequence_logprobs(model, sequences: list[list[int]], starts: list[int], rows: int, pad_id: int,
                      batch_size: int = 64) -> list[float]:
    """Σ log p of each sequence's tokens from position ``starts[i]`` on (the prompt given): one float per sequence."""
    if len(sequences) != len(starts):
        raise KDLabError(f"{len(sequences)} sequences for {len(starts)} starts.")
    device = next(model.parameters()).device
    model = model.eval()
    out = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start: start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        keep = torch.zeros((len(chunk), width), dtype=torch.bool)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq)] = 1
            keep[row, starts[start + row]: len(seq)] = True
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1, :rows]
        lp = losses.log_probs(logits).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
        out += [float((lp[row] * keep[row, 1:]).sum()) for row in range(len(chunk))]
    return out


def teacher_nll(teacher, sequences: list[list[int]], prompt_len: int | list[int], rows: int, pad_id: int,
                batch_size: int = 64) -> float:
    """The teacher's mean −log p per generated token (positions ≥ ``prompt_len``, the end-of-text included) of
    ``sequences`` (prompt + continuation ids); ``prompt_len``: one for all, or one per sequence."""
    lengths = [prompt_len] * len(sequences) if isinstance(prompt_len, int) else list(prompt_len)
    total = sum(sequence_logprobs(teacher, sequences, lengths, rows, pad_id, batch_size))
    count = sum(max(0, len(s) - max(1, p)) for s, p in zip(sequences, lengths))
    return -total / max(1, count)


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
    mask = torch.ones_like(ids)
    model(input_ids=ids, attention_mask=mask)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        sync()
        times.append(time.perf_counter() - start)
    return batch_size * seq_len / statistics.median(times)


def disk_megabytes(model) -> float:
    """Size of the model's weights as safetensors would store them (fp32 here), tied weights counted once."""
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() * p.element_size() for p in unique) / 2**20
