"""Hidden-state distillation (feature-based KD: FitNets, Romero et al. 2015; TinyBERT, Jiao et al. 2020).

A student hidden state is mapped into the teacher's width by a learned linear projection and compared with a
teacher hidden state by mean squared error over real (non-padding) positions:

    L_hidden = mean_{(m, n) in layer map} mean_batch [ Σ_{real i} ‖ W_m h^s_{m,i} + b_m − h^t_{n,i} ‖² / (N_b · W_t) ]

with h^s_m ``[B, S, W_s]`` the student's hidden state m, h^t_n ``[B, S, W_t]`` the teacher's hidden state n, N_b
the real tokens of example b. Indices follow ``output_hidden_states``: 0 = embedding output, L = last layer.
When the widths are equal the projection is the identity (no parameters).

The projections (``HiddenStateDistiller``) are trained together with the student but are not part of it: they
live in the trainer, and ``student.save_pretrained`` never sees them.
"""

from __future__ import annotations

import torch
from torch import nn

from kdlab.errors import KDLabError


def hidden_mse_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                    attention_mask: torch.Tensor) -> torch.Tensor:
    """MSE between (already projected) student and teacher hidden states over real positions.

        L = mean_b [ Σ_{i real} Σ_f (h^s_{b,i,f} − h^t_{b,i,f})² / (N_b · W) ]

    Args:
        student_hidden: ``[B, S, W]`` (projected into the teacher's width W).
        teacher_hidden: ``[B, S, W]`` (treated as constant).
        attention_mask: ``[B, S]``, 1 = real token; padded positions never change the value.
    Returns:
        float32 scalar (computed in float32 also under autocast).
    """
    if student_hidden.shape != teacher_hidden.shape:
        raise KDLabError(
            f"hidden_mse_loss: student {tuple(student_hidden.shape)} and teacher {tuple(teacher_hidden.shape)} "
            "hidden states differ in shape: project the student into the teacher's width first."
        )
    if student_hidden.dim() != 3 or attention_mask.shape != student_hidden.shape[:2]:
        raise KDLabError(f"hidden_mse_loss: expected [batch, seq, width] states and a [batch, seq] mask, got "
                         f"{tuple(student_hidden.shape)} and {tuple(attention_mask.shape)}.")
    with torch.autocast(device_type=student_hidden.device.type, enabled=False):
        mask = attention_mask.bool()
        sq = (student_hidden.float() - teacher_hidden.detach().float()).pow(2).sum(-1)  # [B, S]
        sq = sq.masked_fill(~mask, 0.0)
        per_example = sq.sum(-1) / (mask.sum(-1).clamp(min=1) * student_hidden.shape[-1]).to(sq.dtype)
        return per_example.mean()


def uniform_hidden_layer_map(student_layers: int, teacher_layers: int) -> list[list[int]]:
    """TinyBERT's uniform map over hidden-state indices: student layer m → teacher layer m·L_t // L_s,
    m = 1..L_s (the last student layer meets the last teacher layer). 2→4: [[1, 2], [2, 4]]."""
    return [[m, m * teacher_layers // student_layers] for m in range(1, student_layers + 1)]


def resolve_hidden_layer_map(layer_map, student_layers: int, teacher_layers: int) -> list[list[int]]:
    """Validate ``[[student_index, teacher_index], ...]`` over hidden states (0 = embeddings, L = last layer;
    negative indices count from the end) and return it with non-negative indices; None → the uniform map."""
    if layer_map is None:
        return uniform_hidden_layer_map(student_layers, teacher_layers)
    resolved = []
    for pair in layer_map:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise KDLabError(f"hidden_layer_map entry {pair!r}: use [student_index, teacher_index] pairs.")
        out = []
        for index, layers, who in ((pair[0], student_layers, "student"), (pair[1], teacher_layers, "teacher")):
            if isinstance(index, bool) or not isinstance(index, int) or not -(layers + 1) <= index <= layers:
                raise KDLabError(
                    f"hidden_layer_map pair {list(pair)}: {who} index {index!r} is beyond the {who}'s {layers} "
                    f"layers; hidden-state indices run 0..{layers} (0 = embeddings, {layers} = last layer)."
                )
            out.append(index % (layers + 1))
        resolved.append(out)
    if not resolved:
        raise KDLabError("hidden_layer_map is empty: give at least one [student_index, teacher_index] pair.")
    return resolved


class HiddenStateDistiller(nn.Module):
    """The learned projections of hidden-state distillation and the loss over a layer map.

    One ``nn.Linear(W_s, W_t)`` per mapped pair when the widths differ (``nn.Identity`` otherwise). Its
    parameters belong in the student's optimizer; it is not a submodule of the student, so saving the student
    saves none of it.

    >>> distiller = HiddenStateDistiller(32, 64, [[1, 2], [2, 4]])
    >>> loss = distiller(student_out.hidden_states, teacher_out.hidden_states, attention_mask)
    """

    def __init__(self, student_width: int, teacher_width: int, layer_map: list[list[int]]):
        super().__init__()
        if not layer_map:
            raise KDLabError("HiddenStateDistiller needs at least one [student_index, teacher_index] pair.")
        self.student_width, self.teacher_width = int(student_width), int(teacher_width)
        self.layer_map = [list(map(int, pair)) for pair in layer_map]
        self.projections = nn.ModuleList(
            nn.Linear(student_width, teacher_width) if student_width != teacher_width else nn.Identity()
            for _ in self.layer_map
        )

    @classmethod
    def for_models(cls, student: nn.Module, teacher: nn.Module, layer_map=None) -> "HiddenStateDistiller":
        """Projections for two BERT-family models; ``layer_map`` is validated against their depths."""
        resolved = resolve_hidden_layer_map(layer_map, int(student.config.num_hidden_layers),
                                            int(teacher.config.num_hidden_layers))
        return cls(int(student.config.hidden_size), int(teacher.config.hidden_size), resolved)

    def forward(self, student_hidden_states, teacher_hidden_states, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean over mapped pairs of ``hidden_mse_loss(W_m h^s_m + b_m, h^t_n, mask)``.

        ``*_hidden_states``: the models' ``output_hidden_states`` tuples (L + 1 tensors ``[B, S, W]``).
        """
        losses = []
        for (s_index, t_index), projection in zip(self.layer_map, self.projections):
            if s_index >= len(student_hidden_states) or t_index >= len(teacher_hidden_states):
                raise KDLabError(
                    f"hidden_layer_map pair [{s_index}, {t_index}]: the student returned {len(student_hidden_states)} "
                    f"and the teacher {len(teacher_hidden_states)} hidden states."
                )
            h_s = student_hidden_states[s_index]
            h_s = projection(h_s.to(projection.weight.dtype)) if isinstance(projection, nn.Linear) else h_s
            losses.append(hidden_mse_loss(h_s, teacher_hidden_states[t_index], attention_mask))
        return torch.stack(losses).mean()
