"""MiniLMv2 multi-head self-attention relation distillation, for teachers and students of any head count.

MiniLM's attention/value transfer (``kdlab.distillation.losses``) compares head h of the teacher with head h of the
student, so both need the same number of heads. MiniLMv2 (Wang et al. 2021, "MiniLMv2: Multi-Head Self-Attention
Relation Distillation for Compressing Pretrained Transformers") removes that restriction: it concatenates one
layer's queries (and keys, values) over all heads, re-splits the concatenation into A_r *relation heads*, and
transfers the scaled dot-product relations between them:

    X ∈ {Q, K, V} of one layer, [B, S, W]   →   split into A_r heads: X_a  [B, A_r, S, W/A_r]
    R_XY,a = softmax(X_a Y_aᵀ / √d_r)        (d_r = W / A_r, per model; padding keys masked)
    L_XY   = mean_batch mean_{relation heads, real queries} KL(R^t_XY,a ‖ R^s_XY,a)
    L      = Σ_{XY in kinds} L_XY            (kinds default: Q-Q, K-K, V-V, as in MiniLMv2)

Teacher and student widths may differ (W_t, W_s); A_r must divide both. The teacher's layer is selectable:
MiniLMv2 found an upper-middle layer of a large teacher transfers better than its last one.

Shapes: B batch, S sequence, W width (heads × head width), A_r relation heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kdlab.distillation.self_relations import relation_kl
from kdlab.errors import KDLabError
from kdlab.models.layers import encoder_layers, self_attention
from kdlab.validation import RELATION_KINDS, check_relation_kinds

_INDEX = {"q": 0, "k": 1, "v": 2}


def common_relation_heads(*widths: int) -> list[int]:
    """Every relation-head count that divides all ``widths`` (the divisors of their gcd), ascending."""
    g = math.gcd(*widths)
    return [d for d in range(1, g + 1) if g % d == 0]


def check_relation_heads(relation_heads: int, student_width: int, teacher_width: int) -> None:
    """Raise KDLabError unless ``relation_heads`` divides both widths, listing the counts that would."""
    if not isinstance(relation_heads, int) or relation_heads < 1:
        raise KDLabError(f"relation_heads={relation_heads!r}: it must be a positive integer.")
    if student_width % relation_heads or teacher_width % relation_heads:
        raise KDLabError(
            f"relation_heads={relation_heads} does not divide both the teacher's Q/K/V width ({teacher_width}) and "
            f"the student's ({student_width}). Counts that divide both: "
            f"{', '.join(map(str, common_relation_heads(student_width, teacher_width)))}."
        )


def split_relation_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Re-split concatenated heads: ``[B, S, W]`` → ``[B, heads, S, W / heads]``.

    Relation head a holds features ``a·W/heads … (a+1)·W/heads − 1`` of every position, so with
    ``heads`` equal to the model's attention heads it is exactly attention head a.
    """
    if x.dim() != 3:
        raise KDLabError(f"split_relation_heads expects [batch, seq, width], got shape {tuple(x.shape)}.")
    b, s, width = x.shape
    if width % heads:
        raise KDLabError(f"{heads} relation heads do not divide the width {width}.")
    return x.reshape(b, s, heads, width // heads).transpose(1, 2)


def _check_states(student_states, teacher_states, attention_mask: torch.Tensor) -> None:
    if len(student_states) != 3 or len(teacher_states) != 3:
        raise KDLabError("relation_heads_loss needs (query, key, value) of one layer for the student and the teacher.")
    b, s = attention_mask.shape
    for x in (*student_states, *teacher_states):
        if x.dim() != 3 or x.shape[:2] != (b, s):
            raise KDLabError(
                f"relation_heads_loss: every Q/K/V must be [batch, seq, width] = [{b}, {s}, W] like the attention "
                f"mask, got {tuple(x.shape)}."
            )


def relation_heads_terms(
    student_states: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    teacher_states: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    attention_mask: torch.Tensor,
    relation_heads: int,
    kinds=RELATION_KINDS,
) -> dict[str, torch.Tensor]:
    """Each relation kind's loss L_XY (see the module docstring), as ``{"qq": ..., "kk": ..., "vv": ...}``.

    Args:
        student_states: student (Q, K, V) of one layer, each ``[B, S, W_s]`` (``QKVCapture.raw()``).
        teacher_states: teacher (Q, K, V), each ``[B, S, W_t]`` (treated as constants).
        attention_mask: ``[B, S]``, 1 = real token; padding is excluded as key and as query.
        relation_heads: A_r, dividing W_s and W_t.
        kinds: two-letter names over ``q``, ``k``, ``v`` ("qq", "kk", "vv"; "qk" is the attention map).
    """
    kinds = check_relation_kinds(kinds)
    _check_states(student_states, teacher_states, attention_mask)
    check_relation_heads(relation_heads, student_states[0].shape[-1], teacher_states[0].shape[-1])
    s_heads = [split_relation_heads(x, relation_heads) for x in student_states]
    t_heads = [split_relation_heads(x, relation_heads) for x in teacher_states]
    terms = {}
    for kind in kinds:
        a, b = _INDEX[kind[0]], _INDEX[kind[1]]
        terms[kind] = relation_kl(s_heads[a], s_heads[b], t_heads[a], t_heads[b], attention_mask)
    return terms


def relation_heads_loss(
    student_states: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    teacher_states: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    attention_mask: torch.Tensor,
    relation_heads: int,
    kinds=RELATION_KINDS,
) -> torch.Tensor:
    """MiniLMv2 relation loss  L = Σ_kinds mean KL(R_t ‖ R_s)  (float32 scalar; gradients reach the student only).

    Arguments as ``relation_heads_terms``: Q/K/V ``[B, S, W]`` of one layer per model, mask ``[B, S]``.
    With equal widths and ``relation_heads`` = the models' attention heads, the ``vv`` term equals
    ``kdlab.distillation.losses.value_relation_loss`` and ``qk`` equals ``attention_distribution_loss``.
    """
    return sum(relation_heads_terms(student_states, teacher_states, attention_mask, relation_heads, kinds).values())


def _resolve_layer(layer: int, n_layers: int, what: str) -> int:
    if not isinstance(layer, int) or isinstance(layer, bool) or not -n_layers <= layer < n_layers:
        raise KDLabError(
            f"{what}={layer!r} is beyond the model's {n_layers} encoder layers: use 0..{n_layers - 1} "
            f"(or -{n_layers}..-1 counting from the last; -1 = last)."
        )
    return layer % n_layers


def check_relation_setup(teacher: nn.Module, student: nn.Module, relation_heads: int | None,
                         teacher_layer: int = -1, student_layer: int = -1) -> tuple[int, int]:
    """Validate relation distillation between two models before training; returns the layers as 0-based indices.

    Raises KDLabError for a missing ``relation_heads``, a layer beyond either model, or relation heads that do
    not divide both Q/K/V widths.
    """
    t_layer = _resolve_layer(teacher_layer, len(encoder_layers(teacher)), "relation_teacher_layer")
    s_layer = _resolve_layer(student_layer, len(encoder_layers(student)), "relation_student_layer")
    t_width = self_attention(teacher, t_layer).query.out_features
    s_width = self_attention(student, s_layer).query.out_features
    if relation_heads is None:
        raise KDLabError(
            "relation_weight > 0 needs relation_heads (the number of MiniLMv2 relation heads); counts that divide "
            f"both Q/K/V widths (teacher {t_width}, student {s_width}): "
            f"{', '.join(map(str, common_relation_heads(s_width, t_width)))}."
        )
    check_relation_heads(relation_heads, s_width, t_width)
    return t_layer, s_layer
