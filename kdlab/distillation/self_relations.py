"""Self-relations of one attention layer and the KL between a teacher's and a student's: the shared core of
MiniLM's attention/value transfer (``kdlab.distillation.losses``) and MiniLMv2's relation heads
(``kdlab.distillation.relations``).

    R = softmax(a bᵀ / √D)  per head, padding keys masked          a, b: [B, H, S, D]
    L = mean_batch mean_{heads, real queries} Σ_keys R_t (log R_t − log R_s)

Computed in float32 even under ``torch.autocast``; teacher tensors are treated as constants.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_NEG = torch.finfo(torch.float32).min


def _fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float()


def _masked_log_relation(a: torch.Tensor, b: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """log softmax(a bᵀ / √D) over keys, padding keys excluded.  a, b: ``[B, H, S, D]`` → ``[B, H, S, S]``."""
    scores = torch.matmul(a, b.transpose(-1, -2)) / math.sqrt(a.shape[-1])
    return F.log_softmax(scores.masked_fill(~key_mask, _NEG), dim=-1)


def _mean_over_real_queries(per_query: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, H, S]`` → scalar: mean over heads and real query positions of each example, then over the batch."""
    q = mask[:, None, :].to(per_query.dtype)  # [B, 1, S]
    per_example = (per_query * q).sum(dim=(1, 2)) / (q.sum(dim=(1, 2)) * per_query.shape[1]).clamp(min=1.0)
    return per_example.mean()


def relation_kl(
    s_a: torch.Tensor, s_b: torch.Tensor, t_a: torch.Tensor, t_b: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """KL between teacher and student self-relations, averaged MiniLM-style.

        R = softmax(a bᵀ / √D)                                     (per head, padding keys masked)
        L = mean_batch mean_{heads, real queries} Σ_keys R_t (log R_t − log R_s)

    Args:
        s_a, s_b: student ``[B, H, S, D_s]``; t_a, t_b: teacher ``[B, H, S, D_t]``; attention_mask ``[B, S]``.
    """
    with torch.autocast(device_type=s_a.device.type, enabled=False):
        mask = attention_mask.bool()
        key_mask = mask[:, None, None, :]  # [B, 1, 1, S]
        log_r_s = _masked_log_relation(_fp32(s_a), _fp32(s_b), key_mask)
        log_r_t = _masked_log_relation(_fp32(t_a.detach()), _fp32(t_b.detach()), key_mask)
        kl = (log_r_t.exp() * (log_r_t - log_r_s)).masked_fill(~key_mask, 0.0).sum(dim=-1)  # [B, H, S]
        return _mean_over_real_queries(kl, mask)
