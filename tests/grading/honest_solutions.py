"""Correct answers written differently from instructor/solutions.py: the honest student of the grading tests (a
copy of the instructor's solutions would rightly be flagged as one)."""

import math

import torch


def softmax_with_temperature(z, T):
    scaled = z / T
    return torch.exp(scaled - torch.logsumexp(scaled, dim=1, keepdim=True))


def alternate_layer_map(teacher_layers, student_layers):
    picked = []
    for layer in range(student_layers):
        picked.append((layer * teacher_layers) // student_layers)
    return picked


def kd_loss(student_logits, teacher_logits, T):
    soft_targets = torch.softmax(teacher_logits.detach() / T, dim=1)
    student_log = torch.log_softmax(student_logits / T, dim=1)
    teacher_log = torch.log_softmax(teacher_logits.detach() / T, dim=1)
    per_row = torch.sum(soft_targets * (teacher_log - student_log), dim=1)
    return per_row.sum() / student_logits.shape[0] * T ** 2


def attention_kl(q_s, k_s, q_t, k_t, mask):
    real = mask.to(torch.bool)
    blocked = ~real[:, None, None, :]
    student = torch.log_softmax((q_s @ k_s.transpose(2, 3) / q_s.shape[-1] ** 0.5).masked_fill(blocked, -1e9), -1)
    teacher = torch.log_softmax((q_t @ k_t.transpose(2, 3) / q_t.shape[-1] ** 0.5).masked_fill(blocked, -1e9), -1)
    kl = torch.where(blocked, torch.zeros_like(teacher), teacher.exp() * (teacher - student)).sum(-1)
    queries = real[:, None, :].to(kl.dtype)
    per_example = (kl * queries).sum((1, 2)) / (queries.sum((1, 2)) * kl.shape[1])
    return per_example.mean()


def value_relation_kl(v_s, v_t, mask):
    return attention_kl(v_s, v_s, v_t, v_t, mask)


def mcnemar_p(b, c):
    if b + c == 0:
        return 1.0
    smaller = min(b, c)
    one_tail = 0.0
    for k in range(smaller + 1):
        one_tail += math.comb(b + c, k) * 0.5 ** (b + c)
    return min(1.0, 2.0 * one_tail)


def choose_deployment(rows, teacher_accuracy, max_latency_ms, min_retention):
    best = None
    for row in rows:
        fits = row["trained"] and row["p50_ms"] <= max_latency_ms
        if fits and row["accuracy"] >= min_retention * teacher_accuracy:
            if best is None or (row["accuracy"], -row["p50_ms"]) > (best["accuracy"], -best["p50_ms"]):
                best = row
    return None if best is None else best["name"]


def masked_reverse_kl(student_logits, teacher_logits, mask):
    q_log = torch.log_softmax(student_logits.to(torch.float32), -1)
    p_log = torch.log_softmax(teacher_logits.to(torch.float32), -1)
    kl = torch.sum(torch.exp(q_log) * (q_log - p_log), dim=-1)
    real = mask.to(kl.dtype)
    return torch.sum(kl * real) / torch.clamp(torch.sum(real), min=1.0)
