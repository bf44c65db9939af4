"""A distillation loss whose KD and MiniLM terms are computed by functions a student wrote (02-Distill's loss race).

``with_functions(loss, kd_loss=..., attention_kl=..., value_relation_kl=...)`` is the same ``DistillationLoss`` —
same weights, temperature, masking, logging — with the given terms swapped for the student's functions (same
signatures as the exercises: ``kd_loss(student_logits [B, C], teacher_logits [B, C], T)``,
``attention_kl(q_s, k_s, q_t, k_t, mask)``, ``value_relation_kl(v_s, v_t, mask)``; Q/K/V ``[B, H, S, D]``, mask
``[B, S]``). Trained through the lab's own trainer, the run shows what the student's loss does to learning: a missing
T² or a reversed KL shows in the curve and the accuracy, beside kdlab's run with the same seed and batches.
"""

from __future__ import annotations

import copy
from typing import Callable

from kdlab.distillation.losses import DistillationLoss
from kdlab.errors import KDLabError

TERMS = {"kd_loss": "_kd", "attention_kl": "_attention", "value_relation_kl": "_value"}


def with_functions(loss: DistillationLoss, **functions: Callable | None) -> DistillationLoss:
    """A copy of ``loss`` computing the named terms (``kd_loss``, ``attention_kl``, ``value_relation_kl``) with
    the given functions; ``None`` keeps kdlab's. Its ``settings()`` name the swapped terms, so a saved run says so."""
    unknown = sorted(set(functions) - set(TERMS))
    if unknown:
        raise KDLabError(f"unknown loss term(s) {unknown}: use {', '.join(TERMS)}.")
    out = copy.copy(loss)
    swapped = []
    for name, fn in functions.items():
        if fn is None:
            continue
        if not callable(fn):
            raise KDLabError(f"{name} must be a function, got {type(fn).__name__}.")
        setattr(out, TERMS[name], fn)
        swapped.append(name)
    if swapped:
        out.__dict__["_swapped"] = swapped
    return out


def swapped_terms(loss: DistillationLoss) -> list[str]:
    """The terms of ``loss`` that a student's functions compute (empty for kdlab's own loss)."""
    return list(loss.__dict__.get("_swapped", []))
