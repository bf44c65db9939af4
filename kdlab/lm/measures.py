"""Measures that can tell distillation regimes apart beyond held-out perplexity (issue 35, item 4).

- **n-gram baselines** (``ngram_perplexities``): on the same token ids and the same targets as a model's held-out
  perplexity (every token after the first of each example), a unigram model with add-one smoothing and a bigram
  model with Witten–Bell interpolation, P(b | a) = (c(a, b) + T(a)·P₁(b)) / (c(a) + T(a)), T(a) = the number of
  distinct tokens seen after a — counted on the training ids. A teacher worth distilling must beat both clearly.
- **ROUGE-L** (``rouge_l``): the F-measure of the longest common subsequence of words between a response and its
  reference (Lin 2004), computed by Google's ``rouge-score`` package (``evaluate.load("rouge")`` wraps the same
  code but fetches its script from the Hub, so it fails offline); with several references (a polysemous prompt)
  the best one counts (``score_multi``). Mean over prompts.
- **Sense coverage and precision** (``sense_scores``): for a prompt with known senses (WordNet: a lemma's
  definitions), each of several samples is matched to the sense whose definition it shares the longest common
  subsequence with (ROUGE-L F ≥ ``threshold``, else to none). Coverage: distinct senses hit / senses, averaged
  over prompts (how many modes a model produces); precision: samples that match some sense / samples (how often
  it writes a real definition). Forward KL should cover more, reverse KL should be more precise.
- **Sense spread and sense KL** (``sense_spread``, from ``evaluation.sequence_logprobs`` of each definition): the same
  senses scored by likelihood, with no sampling and no threshold. For a prompt x with K known definitions d_1 … d_K,
  the model's distribution over its senses is q(k) = p(d_k | x) / Σ_j p(d_j | x) (each definition's summed
  log-probability, its end-of-text included). Sense spread: exp(H(q)) / K, the effective number of senses as a share
  of the senses (1/K: one sense takes all the mass; 1: all equally likely); sense KL: KL(p_T ‖ q) over the senses, p_T
  the teacher's own q (how far the student's mix of senses is from its teacher's). Mean over prompts with ≥ 2
  definitions. Forward KL (mean-seeking) should spread its mass like the teacher; reverse KL (mode-seeking) should put
  it on fewer senses. Why beside the sampled measures: a model of perplexity > 40 rarely writes a 16-token sample
  within ROUGE-L 0.5 of a definition (the 4 × 256 teacher's precision was 0.005 in the first 3-seed run), so the
  sampled measures read ~0 for every model; a likelihood reads for all.
- **Exposure-bias curve** (``exposure_curve``): the teacher's mean −log p of a model's own continuation at each
  generated position 1, 2, … A student trained only on the data's prefixes meets its own mistakes at generation
  time; if that compounds, the curve rises with the position. On-policy training (λ > 0) should flatten it.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from kdlab.errors import KDLabError
from kdlab.lm import losses


def ngram_perplexities(train_ids: list[list[int]], heldout_ids: list[list[int]], vocab_size: int,
                       heldout_starts: list[int] | None = None) -> dict:
    """``{"unigram": ppl, "bigram": ppl, "tokens": N}`` on the held-out targets (module docstring);
    ``heldout_starts``: per held-out row, the first position that is a target (a prompt's length: the models'
    perplexity then counts only the response, and so do these)."""
    unigram, bigram, followers, context = Counter(), Counter(), {}, Counter()
    for row in train_ids:
        for a, b in zip(row[:-1], row[1:]):
            unigram[b] += 1
            bigram[(a, b)] += 1
            context[a] += 1
            followers.setdefault(a, set()).add(b)
    total = sum(unigram.values())
    if not total:
        raise KDLabError("ngram_perplexities needs training examples of at least 2 tokens.")
    nll_1 = nll_2 = 0.0
    n = 0
    for r, row in enumerate(heldout_ids):
        start = max(1, heldout_starts[r]) if heldout_starts is not None else 1
        for a, b in zip(row[start - 1:-1], row[start:]):
            p1 = (unigram[b] + 1) / (total + vocab_size)
            seen = len(followers.get(a, ()))
            p2 = (bigram[(a, b)] + seen * p1) / (context[a] + seen) if seen else p1
            nll_1 -= math.log(p1)
            nll_2 -= math.log(p2)
            n += 1
    if not n:
        raise KDLabError("ngram_perplexities needs held-out examples of at least 2 tokens.")
    return {"unigram": math.exp(nll_1 / n), "bigram": math.exp(nll_2 / n), "tokens": n}


def _scorer():
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:  # pragma: no cover - the llm extra installs it
        raise KDLabError("ROUGE-L needs the rouge-score package: pip install 'kdlab[llm]' (or rouge-score).") from exc
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(predictions: list[str], references: list[list[str]] | list[str]) -> float:
    """Mean over prompts of ROUGE-L F between each prediction and its best reference (module docstring)."""
    if len(predictions) != len(references):
        raise KDLabError(f"{len(predictions)} predictions for {len(references)} reference sets.")
    if not predictions:
        raise KDLabError("rouge_l needs at least one prediction.")
    scorer = _scorer()
    total = 0.0
    for prediction, refs in zip(predictions, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        total += scorer.score_multi(refs, prediction)["rougeL"].fmeasure
    return total / len(predictions)


def sense_scores(samples: dict[str, list[str]], senses: dict[str, list[str]], threshold: float = 0.5) -> dict:
    """``{"coverage", "precision", "prompts", "samples"}`` for ``samples`` (prompt → responses) against ``senses``
    (prompt → the definitions of its senses); module docstring."""
    scorer = _scorer()
    covered, matched, count = [], 0, 0
    for prompt, responses in samples.items():
        defs = senses.get(prompt)
        if not defs:
            raise KDLabError(f"no known senses for the prompt {prompt!r}.")
        hit = set()
        for response in responses:
            scores = [scorer.score(d, response)["rougeL"].fmeasure for d in defs]
            best = max(range(len(defs)), key=scores.__getitem__)
            if scores[best] >= threshold:
                hit.add(best)
                matched += 1
            count += 1
        covered.append(len(hit) / len(defs))
    if not count:
        raise KDLabError("sense_scores needs at least one sample.")
    return {"coverage": sum(covered) / len(covered), "precision": matched / count, "prompts": len(covered),
            "samples": count}


@torch.inference_mode()
def exposure_curve(teacher, sequences: list[list[int]], prompt_lengths: list[int], rows: int, pad_id: int,
                   positions: int, batch_size: int = 64) -> list[dict]:
    """For generated positions k = 1 … ``positions``: the teacher's mean −log p of the k-th generated token of
    ``sequences`` (prompt + continuation ids; the end-of-text counts as a token) over the sequences that reach k,
    and their number: ``[{"position": k, "teacher_nll": …, "n": …}, …]``."""
    if len(sequences) != len(prompt_lengths):
        raise KDLabError(f"{len(sequences)} sequences for {len(prompt_lengths)} prompt lengths.")
    device = next(teacher.parameters()).device
    teacher = teacher.eval()
    sums, counts = [0.0] * positions, [0] * positions
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start: start + batch_size]
        plens = prompt_lengths[start: start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq)] = 1
        logits = teacher(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1, :rows]
        nll = -losses.log_probs(logits).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
        for row, (seq, p) in enumerate(zip(chunk, plens)):
            for k in range(min(positions, len(seq) - p)):
                sums[k] += float(nll[row, p + k - 1])  # logit j predicts token j + 1
                counts[k] += 1
    return [{"position": k + 1, "teacher_nll": sums[k] / counts[k] if counts[k] else float("nan"), "n": counts[k]}
            for k in range(positions)]


def sense_spread(model_logprobs: list[list[float]], teacher_logprobs: list[list[float]]) -> dict:
    """``{"spread", "kl_to_teacher", "prompts"}`` from per-prompt lists of log p(d_k | x)
    (``evaluation.sequence_logprobs`` of each prompt's definitions), the model's and the teacher's; prompts with one
    definition are left out (module docstring: spread = exp(H(q)) / K, KL(p_T ‖ q))."""
    if len(model_logprobs) != len(teacher_logprobs):
        raise KDLabError(f"{len(model_logprobs)} prompts for {len(teacher_logprobs)} teacher prompts.")
    spreads, kls = [], []
    for lq, lp in zip(model_logprobs, teacher_logprobs):
        if len(lq) != len(lp):
            raise KDLabError(f"{len(lq)} definitions for the model, {len(lp)} for the teacher.")
        if len(lq) < 2:
            continue
        log_q = torch.log_softmax(torch.tensor(lq, dtype=torch.float64), 0)
        log_p = torch.log_softmax(torch.tensor(lp, dtype=torch.float64), 0)
        entropy = -float((log_q.exp() * log_q).sum())
        spreads.append(math.exp(entropy) / len(lq))
        kls.append(float((log_p.exp() * (log_p - log_q)).sum()))
    if not spreads:
        raise KDLabError("sense_spread needs at least one prompt with two or more definitions.")
    return {"spread": sum(spreads) / len(spreads), "kl_to_teacher": sum(kls) / len(kls), "prompts": len(spreads)}

