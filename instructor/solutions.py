"""Instructor solutions of the notebooks' exercises, written the way a student would (short and readable).

Kept in the repository, not in the kdlab package that students install (on Colab too): the instructor commands
read this file (``kdlab solutions``, and ``kdlab grade``'s copy detection), or one given with ``--solutions``.
``python -m kdlab solutions OUT_DIR`` writes solved copies of the notebooks: each exercise cell's block between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` receives the body of the function of the same name below. The
checks in ``kdlab.exercises`` must pass on every function here (tests/course/test_exercises.py). kdlab's own,
production versions of the losses are in ``kdlab.distillation.losses``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def softmax_with_temperature(z, T):
    """softmax(z / T) over the classes (last dimension). z: [B, C] logits; T > 0."""
    z = z / T
    z = z - z.max(dim=-1, keepdim=True).values  # exp of large logits would overflow
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)


def alternate_layer_map(teacher_layers, student_layers):
    """Student layer i starts as a copy of teacher layer i·L_t // L_s."""
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def kd_loss(student_logits, teacher_logits, T):
    """Hinton KD: T² · mean over the batch of KL(p_teacher^T ‖ p_student^T). Logits: [B, C]."""
    log_p_s = F.log_softmax(student_logits / T, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)  # one KL per example: [B]
    return T * T * kl.mean()


def attention_kl(q_s, k_s, q_t, k_t, mask):
    """MiniLM attention transfer: mean KL(A_t ‖ A_s), A = softmax(QKᵀ/√d) with padded keys masked; averaged over
    heads and real queries, then over the batch. q/k: [B, H, S, D] (D may differ), mask: [B, S] (1 = token)."""
    keys = mask.bool()[:, None, None, :]  # [B, 1, 1, S]

    def log_attention(q, k):
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B, H, S, S]
        return F.log_softmax(scores.masked_fill(~keys, -1e9), dim=-1)

    log_a_s, log_a_t = log_attention(q_s, k_s), log_attention(q_t.detach(), k_t.detach())
    kl = (log_a_t.exp() * (log_a_t - log_a_s)).masked_fill(~keys, 0.0).sum(-1)  # [B, H, S]
    real = mask[:, None, :].float()  # [B, 1, S]: average over real query positions only
    per_head = (kl * real).sum(-1) / real.sum(-1)  # [B, H]
    return per_head.mean()


def value_relation_kl(v_s, v_t, mask):
    """MiniLM value relation: the same KL on softmax(VVᵀ/√d). v: [B, H, S, D]."""
    return attention_kl(v_s, v_s, v_t, v_t, mask)


def mcnemar_p(b, c):
    """Exact two-sided McNemar p: b sentences right only for model A, c right only for model B."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2**n  # P(X <= min(b, c)), X ~ Bin(n, 1/2)
    return min(1.0, 2 * tail)


def choose_deployment(rows, teacher_accuracy, max_latency_ms, min_retention):
    """The most accurate trained row within the latency budget that keeps min_retention of the teacher's accuracy
    (the faster one on a tie), by name; None when no row qualifies."""
    ok = [r for r in rows if r["trained"] and r["p50_ms"] <= max_latency_ms
          and r["accuracy"] >= min_retention * teacher_accuracy]
    if not ok:
        return None
    return min(ok, key=lambda r: (-r["accuracy"], r["p50_ms"]))["name"]


def masked_reverse_kl(student_logits, teacher_logits, mask):
    """Mean over the real targets of KL(q ‖ p) = Σ_v q_v (log q_v − log p_v); logits [B, S, V], mask [B, S]."""
    log_q = F.log_softmax(student_logits.float(), dim=-1)
    log_p = F.log_softmax(teacher_logits.float(), dim=-1)
    per_position = (log_q.exp() * (log_q - log_p)).sum(-1)  # [B, S]
    mask = mask.float()
    return (per_position * mask).sum() / mask.sum().clamp_min(1)
