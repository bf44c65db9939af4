"""Token-level distillation losses for causal language models, as plain functions of tensors.

Shapes: ``student_logits`` and ``teacher_logits`` are ``[B, S, V]`` (already aligned: position j of both predicts
token j + 1), ``mask`` is ``[B, S]`` (1 where position j is a real target). With p = the teacher's next-token
distribution softmax(z_t / T) and q = the student's softmax(z_s / T), per position:

- forward KL    KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)          mean-seeking: q must cover all of p
- reverse KL    KL(q ‖ p) = Σ_v q_v (log q_v − log p_v)          mode-seeking: q may drop modes of p
- generalized JSD(β) = β KL(p ‖ m) + (1 − β) KL(q ‖ m), m = β p + (1 − β) q  (Agarwal et al. 2024, GKD; TRL's
  convention: β = 0 is taken as forward KL and β = 1 as reverse KL — the formula itself vanishes at both ends)
- skew forward KL(α) = KL(p ‖ α p + (1 − α) q); skew reverse KL(α) = KL(q ‖ α q + (1 − α) p)  (DistiLLM, Ko et al.
  2024: α ≈ 0.1 keeps the mixture away from 0 where q is, so its gradient stays bounded)

**Reduction**: the per-position values are summed over the real targets and divided by ``num_items`` — the number
of targets in the whole (accumulated) batch, which ``transformers.Trainer`` passes as ``num_items_in_batch`` — or by
this batch's own count when None. Dividing each micro-batch by its own count and averaging them instead gives a
different loss when micro-batches hold different numbers of tokens (trl #4719): tests/lm pins accumulation 1 vs 2.

**Temperature**: three conventions are in use, and they are different losses as soon as T ≠ 1
(``CONVENTIONS``; the divergence D is any of the kinds above):

- ``"hinton"`` (Hinton et al. 2015; DistillKit's ``lossfuncs``; the lab's classification KD): T² · D(softmax(z_t/T),
  softmax(z_s/T)). The T² keeps the gradients' size as T changes.
- ``"trl-gkd"`` (TRL's ``GKDTrainer``): D at T = 1 whatever T is; ``temperature`` only changes the sampling of the
  on-policy continuations.
- ``"trl-distillation"`` (TRL's ``DistillationTrainer``): D(softmax(z_t/T), softmax(z_s/T)) without T² (its
  ``compute_loss`` passes its ``temperature`` to the divergence and scales nothing).

At T = 1 the three are the same loss.

**Mixing with CE**: ``mix(kd, ce, ce_weight)`` = (1 − w)·KD + w·CE, the course text's λ·KD + (1 − λ)·CE with
λ = 1 − w (w = 0: pure distillation, as TRL; DistillKit suggests w ≈ 0.5).

**Memory** (``chunk_tokens``): computed whole, the loss over ``[B, S, V]`` logits holds several fp32 ``[B·S, V]``
temporaries at once (measured: ~5 for forward KL, ~12 for the JSD; BENCHMARKS-lm.md), padding rows included —
at B = 8, S = 511, V = 50,257 gigabytes before any activation. With ``chunk_tokens`` = c, ``token_sum`` takes the
real (unmasked) positions only, c at a time: each chunk's values and their gradient with respect to the student's
logits are computed at once (the gradient written into one buffer of the logits' own shape and dtype, which
backpropagation needs anyway), and the chunk's temporaries are freed before the next — so no fp32 ``[N, V]``
tensor larger than one chunk is alive (torchtune's chunked output loss, Liger's fused losses work the same way).
Values and gradients equal the unchunked loss (tests/lm).

**Precision**: every softmax is taken in fp32 (an autocast fp16 logit tensor is upcast first), and terms with a
zero probability contribute exactly 0 (``p·log p`` → 0 and no ``0 · −inf`` NaN), so masked vocabulary rows
(−inf logits) are safe. An all-zero mask gives a loss of 0 with a gradient, not 0/0.
"""

from __future__ import annotations

import math

import torch

KINDS = ("forward", "reverse", "jsd", "skew-forward", "skew-reverse")
CONVENTIONS = {
    "hinton": "T² · D(softmax(z_t/T) ‖ softmax(z_s/T)) (Hinton et al. 2015, DistillKit)",
    "trl-gkd": "D at T = 1 whatever T (TRL GKDTrainer: T only for sampling)",
    "trl-distillation": "D(softmax(z_t/T) ‖ softmax(z_s/T)), no T² (TRL DistillationTrainer)",
}


def temperature_terms(temperature: float, convention: str = "hinton") -> tuple[float, float]:
    """``(T used in both softmaxes, factor on the loss)`` for a temperature convention (module docstring)."""
    if convention == "hinton":
        return temperature, temperature**2
    if convention == "trl-gkd":
        return 1.0, 1.0
    if convention == "trl-distillation":
        return temperature, 1.0
    raise ValueError(f"convention={convention!r}: use one of {', '.join(CONVENTIONS)}.")


def mix(kd: torch.Tensor, ce: torch.Tensor | None, ce_weight: float) -> torch.Tensor:
    """(1 − w)·KD + w·CE (the course's λ·KD + (1 − λ)·CE with λ = 1 − w); KD alone when w = 0."""
    if not ce_weight:
        return kd
    return (1 - ce_weight) * kd + ce_weight * ce


def log_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(z / T) in fp32, ``[..., V]``."""
    return torch.log_softmax(logits.float() / temperature, dim=-1)


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Σ_v p_v (log p_v − log q_v) over the last dimension, 0 where p_v = 0. ``[..., V]`` → ``[...]``."""
    p = log_p.exp()
    # the log-ratio is zeroed where p = 0 before multiplying, so neither the value nor its gradient meets 0·∞
    return (p * torch.where(p > 0, log_p - log_q, torch.zeros_like(p))).sum(-1)


def _mixture(log_a: torch.Tensor, log_b: torch.Tensor, weight_a: float) -> torch.Tensor:
    """log(w·a + (1 − w)·b) computed from log a and log b (stable)."""
    return torch.logsumexp(torch.stack([log_a + math.log(weight_a), log_b + math.log1p(-weight_a)]), dim=0)


def per_token_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str = "forward",
                         temperature: float = 1.0, beta: float = 0.5, alpha: float = 0.1) -> torch.Tensor:
    """The divergence of ``kind`` at every position, ``[B, S]`` (unreduced, unmasked, without the T² factor)."""
    log_q = log_probs(student_logits, temperature)
    log_p = log_probs(teacher_logits, temperature)
    if kind == "forward" or (kind == "jsd" and beta == 0):
        return _kl(log_p, log_q)
    if kind == "reverse" or (kind == "jsd" and beta == 1):
        return _kl(log_q, log_p)
    if kind == "jsd":
        log_m = _mixture(log_p, log_q, beta)
        return beta * _kl(log_p, log_m) + (1 - beta) * _kl(log_q, log_m)
    if kind == "skew-forward":
        return _kl(log_p, log_q if alpha == 0 else _mixture(log_p, log_q, alpha))
    if kind == "skew-reverse":
        return _kl(log_q, log_p if alpha == 0 else _mixture(log_q, log_p, alpha))
    raise ValueError(f"kind={kind!r}: use one of {', '.join(KINDS)}.")


class _ChunkedTokenSum(torch.autograd.Function):
    """Σ over the real positions of ``fn(student rows, *other rows)``; the student's gradient made chunk by chunk
    in the forward pass and handed back in ``backward`` (module docstring, **Memory**)."""

    @staticmethod
    def forward(ctx, student_logits, mask, fn, chunk_tokens, *others):
        # (row, position) pairs of the real targets; a chunk's rows are gathered from the [B, S, ...] tensors as
        # they are (a strided view such as logits[:, :-1, :rows] is never copied whole)
        where = mask.nonzero(as_tuple=True)
        grad = torch.zeros_like(student_logits) if ctx.needs_input_grad[0] else None
        total = torch.zeros((), dtype=torch.float32, device=student_logits.device)
        for start in range(0, where[0].numel(), chunk_tokens):
            at = tuple(w[start: start + chunk_tokens] for w in where)
            with torch.enable_grad():
                chunk = student_logits[at].detach().requires_grad_(grad is not None)
                value = fn(chunk, *(o[at] for o in others)).sum()
            if grad is not None:
                (chunk_grad,) = torch.autograd.grad(value, chunk)
                grad[at] = chunk_grad.to(grad.dtype)
            total += value.detach().float()
            del chunk, value
        # kept as a plain attribute, not saved_tensors: backward hands the buffer itself on (no second [N, V] copy)
        ctx.grad, ctx.n_others = grad, len(others)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        grad, ctx.grad = ctx.grad, None
        if grad is not None:
            grad.mul_(grad_output.to(grad.dtype))
        return (grad, None, None, None, *([None] * ctx.n_others))


def token_sum(fn, student_logits: torch.Tensor, mask: torch.Tensor, *others: torch.Tensor,
              chunk_tokens: int | None = None) -> torch.Tensor:
    """Σ over the real positions (``mask`` [B, S]) of ``fn(student [..., V], *others [..., ...]) → [...]``, the rows
    taken at the same positions of ``student_logits`` [B, S, V] and ``others`` [B, S, ...]. ``chunk_tokens=None``:
    all positions at once (plain autograd, padding included); else ``chunk_tokens`` real positions at a time
    (module docstring, **Memory**), the gradient flowing to ``student_logits`` only."""
    mask = mask.bool()
    if chunk_tokens is None:
        values = fn(student_logits, *others)
        return torch.where(mask, values, torch.zeros_like(values)).sum()
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens={chunk_tokens} must be at least 1 (or None: unchunked).")
    return _ChunkedTokenSum.apply(student_logits, mask, fn, chunk_tokens, *others)


def _divide(total: torch.Tensor, mask: torch.Tensor, num_items=None) -> torch.Tensor:
    count = num_items if num_items is not None else mask.sum()
    if isinstance(count, torch.Tensor):
        return total / count.to(total.device, total.dtype).clamp_min(1)
    return total / max(count, 1)


def reduce_tokens(values: torch.Tensor, mask: torch.Tensor, num_items=None) -> torch.Tensor:
    """Σ over real targets of ``values`` [B, S], divided by ``num_items`` (the accumulated batch's target count)
    or by this batch's count; 0 (with a gradient) when there is no target."""
    mask = mask.to(values.dtype)
    total = (values * mask).sum()
    count = num_items if num_items is not None else mask.sum()
    if isinstance(count, torch.Tensor):
        count = count.to(total.device, total.dtype)
    return total / (count.clamp_min(1) if isinstance(count, torch.Tensor) else max(count, 1))


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                      kind: str = "forward", temperature: float = 1.0, beta: float = 0.5, alpha: float = 0.1,
                      num_items=None, convention: str = "hinton", chunk_tokens: int | None = None) -> torch.Tensor:
    """The token-level KD loss: ``per_token_divergence`` summed over the real targets and divided by
    ``num_items`` (or their count), with the temperature of ``convention`` (``temperature_terms``: T² for
    Hinton's); ``chunk_tokens``: computed that many real positions at a time (module docstring). Scalar."""
    t, factor = temperature_terms(temperature, convention)
    if chunk_tokens is None:
        loss = reduce_tokens(per_token_divergence(student_logits, teacher_logits, kind, t, beta, alpha), mask,
                             num_items)
    else:
        def fn(s, p):
            return per_token_divergence(s, p, kind, t, beta, alpha)

        loss = _divide(token_sum(fn, student_logits, mask, teacher_logits, chunk_tokens=chunk_tokens), mask,
                       num_items)
    return loss * factor if factor != 1 else loss


def _nll(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -log_probs(student_logits).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)


def cross_entropy(student_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, num_items=None,
                  chunk_tokens: int | None = None):
    """CE of the next tokens ``targets`` [B, S] (any value where ``mask`` is 0), reduced as the KD losses."""
    if chunk_tokens is None:
        return reduce_tokens(_nll(student_logits, targets), mask, num_items)
    return _divide(token_sum(_nll, student_logits, mask, targets, chunk_tokens=chunk_tokens), mask, num_items)


def sparse_forward_kl(student_logits: torch.Tensor, top_ids: torch.Tensor, top_log_probs: torch.Tensor,
                      mask: torch.Tensor, num_items=None, chunk_tokens: int | None = None) -> torch.Tensor:
    """Forward KL from a cached top-k teacher: ``top_ids`` ``[B, S, k]`` (long) and ``top_log_probs`` ``[B, S, k]``
    (the teacher's log p of those tokens at T = 1). Only T = 1 is possible: softmax(z/T) of the teacher needs all
    its logits (the tail's normaliser), which the cache no longer has, so the trainer refuses ``kd-cached`` at
    T ≠ 1 (under the "hinton" and "trl-distillation" conventions) instead of silently training at T = 1.

    Both distributions are coarsened to the k cached tokens plus one bucket "every other token": p_rest =
    1 − Σ_k p_k, q_rest = Σ_{v not cached} q_v (a logsumexp over the student's other logits, exact), and
    KL = Σ_k p_k (log p_k − log q_k) + p_rest (log p_rest − log q_rest). With k = V it is the full forward KL; with
    k < V it is a lower bound that still pushes the student's leftover mass to the teacher's."""
    if chunk_tokens is None:
        return reduce_tokens(_sparse_terms(student_logits, top_ids, top_log_probs), mask, num_items)
    return _divide(token_sum(_sparse_terms, student_logits, mask, top_ids, top_log_probs, chunk_tokens=chunk_tokens),
                   mask, num_items)


def _sparse_terms(student_logits: torch.Tensor, top_ids: torch.Tensor, top_log_probs: torch.Tensor) -> torch.Tensor:
    """Per position: the top-k + rest forward KL of ``sparse_forward_kl``, ``[...]``."""
    log_q = log_probs(student_logits)
    top_ids = top_ids.long()
    top_log_p = top_log_probs.float()
    log_q_top = log_q.gather(-1, top_ids)
    rest = log_q.scatter(-1, top_ids, float("-inf"))
    log_q_rest = torch.logsumexp(rest, dim=-1, keepdim=True)
    p_rest = (1 - top_log_p.exp().sum(-1, keepdim=True)).clamp_min(0)
    # no other token left (k = V), or only rounding left (fp16 log p summing to ~1): the bucket is empty
    p_rest = torch.where(torch.isinf(log_q_rest) | (p_rest < 1e-6), torch.zeros_like(p_rest), p_rest)
    log_p_rest = torch.log(p_rest.clamp_min(1e-30))
    log_p = torch.cat([top_log_p, log_p_rest], -1)
    log_q_all = torch.cat([log_q_top, log_q_rest], -1)
    p = torch.cat([top_log_p.exp(), p_rest], -1)
    terms = p * torch.where(p > 0, log_p - log_q_all, torch.zeros_like(p))
    return terms.sum(-1)


def masked_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor):
    """The exercise's reference: mean over real targets of KL(q ‖ p) at T = 1 (``distillation_loss`` with
    ``kind="reverse"``)."""
    return distillation_loss(student_logits, teacher_logits, mask, kind="reverse")
