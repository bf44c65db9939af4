"""Distillation losses: Hinton KD and MiniLM self-attention transfer, as plain functions of tensors.

Every function computes in float32, also when called under ``torch.autocast``, and takes teacher tensors
as constants (they are detached; gradients reach the student only).

Shapes used below:  B batch, H heads, S sequence, D head width (may differ between teacher and student),
C classes. ``attention_mask`` is ``[B, S]`` with 1 for real tokens and 0 for padding.

References: Hinton et al. 2015, "Distilling the Knowledge in a Neural Network";
Wang et al. 2020, "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained
Transformers" (attention distribution transfer + value relation, last layer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdlab.config import VARIANTS, LossSettings
from kdlab.distillation.relations import relation_heads_loss
from kdlab.distillation.schedules import scheduled_temperature, scheduled_weights
from kdlab.distillation.self_relations import _fp32, _masked_log_relation, _mean_over_real_queries, relation_kl
from kdlab.errors import KDLabError
from kdlab.validation import check_loss, check_relation_kinds, check_types


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton knowledge distillation.

        L_KD = T² · mean_b KL( softmax(z_t / T) ‖ softmax(z_s / T) )

    The T² keeps the gradient scale independent of T (Hinton et al. 2015, §2).

    Args:
        student_logits: ``[B, C]``.
        teacher_logits: ``[B, C]`` (treated as constant).
        temperature: T > 0.
    Returns:
        scalar tensor (float32).
    """
    if not temperature > 0:
        raise KDLabError(f"temperature={temperature}: the KD temperature must be > 0.")
    if student_logits.shape != teacher_logits.shape:
        raise KDLabError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ: "
            "teacher and student must have the same number of labels."
        )
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        log_p_s = F.log_softmax(_fp32(student_logits) / temperature, dim=-1)
        log_p_t = F.log_softmax(_fp32(teacher_logits.detach()) / temperature, dim=-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)  # [B]
        return temperature**2 * kl.mean()


def logits_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Tang et al. (2019)'s distillation term for a BiLSTM student: MSE between the logits themselves,

        L = (1/(B·C)) Σ_b ‖z_s,b − z_t,b‖²

    ``[B, C]`` each (teacher constant); no temperature: the raw logits carry the teacher's confidence."""
    if student_logits.shape != teacher_logits.shape:
        raise KDLabError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: teacher and student must have the same labels.")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        return F.mse_loss(_fp32(student_logits), _fp32(teacher_logits.detach()))


def _check_relation_inputs(student: tuple, teacher: tuple, attention_mask: torch.Tensor, what: str) -> None:
    ref = student[0]
    if ref.dim() != 4:
        raise KDLabError(f"{what}: expected [batch, heads, seq, head_dim] tensors, got shape {tuple(ref.shape)}.")
    b, h, s, _ = ref.shape
    for x in (*student, *teacher):
        if x.dim() != 4 or x.shape[0] != b or x.shape[2] != s:
            raise KDLabError(
                f"{what}: tensors must share batch and sequence sizes, got {tuple(ref.shape)} and {tuple(x.shape)}."
            )
    h_t = teacher[0].shape[1]
    if h_t != h:
        raise KDLabError(
            f"{what}: the teacher has {h_t} attention heads and the student {h}. MiniLM attention/value transfer "
            "needs equal head counts: give the student the teacher's number of heads, or set gamma=delta=0."
        )
    if attention_mask.shape != (b, s):
        raise KDLabError(f"{what}: attention_mask must be [batch, seq] = {(b, s)}, got {tuple(attention_mask.shape)}.")


def attention_distribution_loss(
    q_s: torch.Tensor, k_s: torch.Tensor, q_t: torch.Tensor, k_t: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """MiniLM self-attention distribution transfer (last layer).

        A = softmax(Q Kᵀ / √D_head)      L_AT = mean KL(A_t ‖ A_s)

    averaged over heads and real query positions of each example, then over the batch; padding keys are
    masked out of both softmaxes, so padding never changes the value.

    Args:
        q_s, k_s: student ``[B, H, S, D_s]``. q_t, k_t: teacher ``[B, H, S, D_t]`` (same H; D may differ).
        attention_mask: ``[B, S]``, 1 = real token.
    """
    _check_relation_inputs((q_s, k_s), (q_t, k_t), attention_mask, "attention_distribution_loss")
    return relation_kl(q_s, k_s, q_t, k_t, attention_mask)


def value_relation_loss(v_s: torch.Tensor, v_t: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM value-relation transfer (last layer).

        VR = softmax(V Vᵀ / √D_head)      L_VR = mean KL(VR_t ‖ VR_s)

    averaged like ``attention_distribution_loss``.  v_s ``[B, H, S, D_s]``, v_t ``[B, H, S, D_t]``.
    """
    _check_relation_inputs((v_s,), (v_t,), attention_mask, "value_relation_loss")
    return relation_kl(v_s, v_s, v_t, v_t, attention_mask)


def _masked_attention(q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    return _masked_log_relation(q, k, key_mask).exp()


def attention_mse_loss(
    q_s: torch.Tensor, k_s: torch.Tensor, q_t: torch.Tensor, k_t: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """The course text's simpler variant: MSE between attention probabilities.

        L = mean over (heads, real query, real key) of (A_s − A_t)²,  then mean over the batch.
    """
    _check_relation_inputs((q_s, k_s), (q_t, k_t), attention_mask, "attention_mse_loss")
    with torch.autocast(device_type=q_s.device.type, enabled=False):
        mask = attention_mask.bool()
        key_mask = mask[:, None, None, :]
        a_s = _masked_attention(_fp32(q_s), _fp32(k_s), key_mask)
        a_t = _masked_attention(_fp32(q_t.detach()), _fp32(k_t.detach()), key_mask)
        sq = ((a_s - a_t) ** 2).masked_fill(~key_mask, 0.0).sum(-1)  # [B, H, S]
        real_keys = mask.sum(-1).clamp(min=1).to(sq.dtype)[:, None, None]
        return _mean_over_real_queries(sq / real_keys, mask)


def value_mse_loss(
    q_s: torch.Tensor, k_s: torch.Tensor, v_s: torch.Tensor,
    q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """The course text's simpler variant: MSE between attention outputs A·V (needs equal head widths).

        L = mean over (heads, real query, feature) of (A_s V_s − A_t V_t)²,  then mean over the batch.
    """
    _check_relation_inputs((q_s, k_s, v_s), (q_t, k_t, v_t), attention_mask, "value_mse_loss")
    if v_s.shape[-1] != v_t.shape[-1]:
        raise KDLabError(
            f"value_mse_loss compares A·V directly and needs equal head widths (student {v_s.shape[-1]}, "
            f"teacher {v_t.shape[-1]}): use relation_style='kl' (MiniLM value relation) instead."
        )
    with torch.autocast(device_type=q_s.device.type, enabled=False):
        mask = attention_mask.bool()
        key_mask = mask[:, None, None, :]
        out_s = torch.matmul(_masked_attention(_fp32(q_s), _fp32(k_s), key_mask), _fp32(v_s))
        out_t = torch.matmul(_masked_attention(_fp32(q_t.detach()), _fp32(k_t.detach()), key_mask), _fp32(v_t.detach()))
        sq = ((out_s - out_t) ** 2).mean(-1)  # [B, H, S]
        return _mean_over_real_queries(sq, mask)


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy with the gold labels, per example, where a label exists:

        CE = (1/B) Σ_b 1[y_b ≠ ignore] · (−log softmax(z_b)[y_b])

    ``logits`` ``[B, C]``, ``labels`` ``[B]`` (``ignore_index`` = an unlabelled transfer-set sentence). Dividing by
    the batch size B (not by the number of labelled rows) keeps every labelled example's weight the same whatever
    batch it falls in; with every row labelled this is the ordinary mean CE. A batch without labels gives 0 (with
    a gradient path, so mixed-precision scaling still sees the graph)."""
    logits = logits.float()
    labelled = labels != ignore_index
    if bool(labelled.all()):
        return F.cross_entropy(logits, labels)
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    per_example = F.cross_entropy(logits[labelled], labels[labelled], reduction="sum")
    return per_example / labels.shape[0]


@dataclass
class Outputs:
    """What ``DistillationLoss`` reads from one model's forward pass (None: not captured; the trainer captures
    only what the loss's active terms need)."""

    logits: torch.Tensor  # [B, C]
    qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # last layer, heads split: [B, H, S, D]
    relation_states: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # Q/K/V [B, S, W] (raw())
    hidden_states: tuple[torch.Tensor, ...] | None = None  # output_hidden_states: embeddings, then each layer


@dataclass
class DistillationLoss(LossSettings):
    """L = α·CE + β·KD + γ·attention + δ·value [+ λ_r·relation heads + λ_h·hidden], every component returned
    for logging.

    Its settings are the fields of ``kdlab.config.LossSettings`` (declared there once, checked by
    ``kdlab.validation.check_loss``); build it for a lab variant with ``from_config(cfg, variant)``.
    ``relation_style="kl"`` uses MiniLM's KL losses, ``"mse"`` the course text's MSE on attention probabilities and
    on A·V. Optional cross-architecture terms:
    ``relation_weight`` · MiniLMv2 relation heads (``kdlab.distillation.relations``) and ``hidden_weight`` ·
    hidden-state MSE through learned projections (``kdlab.distillation.hidden``). Terms whose weight is 0 are not
    computed.
    """

    def __post_init__(self):
        self.relation_kinds = check_relation_kinds(self.relation_kinds)  # a list: JSON round trips compare equal
        if self.hidden_layer_map is not None:
            self.hidden_layer_map = [list(pair) for pair in self.hidden_layer_map]
        check_types(self)
        # A `staged` schedule without inner terms keeps its weights (kdlab.distillation.schedules): no empty stage.
        check_loss(self, logits_weight_needed=self.needs_inner_states)

    # The functions behind the KD and MiniLM terms; kdlab.distillation.custom swaps in a student's own.
    _kd = staticmethod(kd_loss)
    _attention = staticmethod(attention_distribution_loss)
    _value = staticmethod(value_relation_loss)

    def settings(self) -> dict:
        """The loss's settings as saved with a run (what decides whether a saved run is reused)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if vars(self).get("_swapped"):  # kdlab.distillation.custom: terms computed by a student's functions
            out["student_functions"] = list(vars(self)["_swapped"])
        return out

    @classmethod
    def from_config(cls, cfg: LossSettings, variant: str) -> "DistillationLoss":
        """The loss of ``variant`` under ``cfg`` (a ``KDConfig``, or any ``LossSettings``): each setting whose
        ``metadata["variants"]`` names the variant comes from ``cfg``; of the others, the weights are 0 and the
        rest keep their defaults. ``ce``: CE alone, weight 1 (no teacher); ``hinton``: α·CE + β·KD with the KD
        style and schedules; ``minilm``: every term."""
        if variant not in VARIANTS:
            raise KDLabError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}.")
        values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(LossSettings)
                  if variant in f.metadata["variants"]}
        values.update({name: 0.0 for name in ("alpha", "beta", "gamma", "delta") if name not in values})
        if variant == "ce":
            values["alpha"] = 1.0
        return cls(**values)

    @classmethod
    def for_variant(cls, variant: str, **settings) -> "DistillationLoss":
        """``from_config`` over the ``LossSettings`` defaults with ``settings`` (keyword arguments) changed, e.g.
        ``DistillationLoss.for_variant("hinton", alpha=0.5, beta=0.5)``."""
        return cls.from_config(LossSettings(**settings), variant)

    @property
    def needs_teacher(self) -> bool:
        return self.beta > 0 or self.needs_inner_states

    @property
    def needs_inner_states(self) -> bool:
        """Whether the loss reads inside the models (Q/K/V, relation states or hidden states), not only logits."""
        return self.needs_qkv or self.needs_relation_states or self.needs_hidden_states

    @property
    def needs_relation_states(self) -> bool:
        """Whether the loss needs un-split Q/K/V ``[B, S, W]`` of the relation layers (MiniLMv2 relation heads)."""
        return self.relation_weight > 0

    @property
    def needs_hidden_states(self) -> bool:
        return self.hidden_weight > 0

    @property
    def needs_qkv(self) -> bool:
        return self.gamma > 0 or self.delta > 0

    def __call__(
        self,
        student: Outputs | torch.Tensor,
        labels: torch.Tensor,
        teacher: Outputs | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        hidden_distiller=None,
        progress: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Returns ``{"loss": total, "ce": ..., "kd": ..., "attention": ..., "value": ..., "relation": ...,
        "hidden": ...}`` (active terms only).

        ``student``, ``teacher``: what the loss reads from each model's forward pass (``Outputs``; a bare logits
        tensor ``[B, C]`` stands for ``Outputs(logits)``); ``labels`` ``[B]``; ``attention_mask`` ``[B, S]``, needed
        by every term inside the models; ``hidden_distiller``: the ``kdlab.distillation.hidden.HiddenStateDistiller``
        holding the projections; ``progress``: the share of training done (0..1), read by the weight and
        temperature schedules (None = the start). A term whose scheduled weight is 0 at ``progress`` is not
        computed.
        """
        student = student if isinstance(student, Outputs) else Outputs(student)
        teacher = teacher if isinstance(teacher, Outputs) or teacher is None else Outputs(teacher)
        student_logits, teacher_logits = student.logits, teacher.logits if teacher else None
        student_qkv, teacher_qkv = student.qkv, teacher.qkv if teacher else None
        weights = scheduled_weights(self.weight_schedule, progress, self.loss_weights())
        temperature = scheduled_temperature(self.temperature_schedule, progress, self.temperature,
                                            self.final_temperature)
        parts: dict[str, torch.Tensor] = {}
        if weights["ce"] > 0:
            parts["ce"] = masked_cross_entropy(student_logits, labels)
        if weights["kd"] > 0:
            if teacher_logits is None:
                raise KDLabError("the KD term (beta > 0) needs the teacher's logits (teacher_logits).")
            parts["kd"] = (self._kd(student_logits, teacher_logits, temperature) if self.kd_style == "kl"
                           else logits_mse_loss(student_logits, teacher_logits))
        if self.needs_qkv and (weights["attention"] > 0 or weights["value"] > 0):
            if student_qkv is None or teacher_qkv is None or attention_mask is None:
                raise KDLabError("attention/value terms (gamma/delta > 0) need both models' Outputs.qkv and "
                                 "attention_mask.")
            (q_s, k_s, v_s), (q_t, k_t, v_t) = student_qkv, teacher_qkv
            if self.relation_style == "kl":
                if weights["attention"] > 0:
                    parts["attention"] = self._attention(q_s, k_s, q_t, k_t, attention_mask)
                if weights["value"] > 0:
                    parts["value"] = self._value(v_s, v_t, attention_mask)
            else:
                if weights["attention"] > 0:
                    parts["attention"] = attention_mse_loss(q_s, k_s, q_t, k_t, attention_mask)
                if weights["value"] > 0:
                    parts["value"] = value_mse_loss(q_s, k_s, v_s, q_t, k_t, v_t, attention_mask)
        if self.needs_relation_states and weights["relation"] > 0:
            if student.relation_states is None or teacher is None or teacher.relation_states is None \
                    or attention_mask is None:
                raise KDLabError("the relation-heads term (relation_weight > 0) needs both models' "
                                 "Outputs.relation_states and attention_mask.")
            parts["relation"] = relation_heads_loss(student.relation_states, teacher.relation_states, attention_mask,
                                                    self.relation_heads, self.relation_kinds)
        if self.needs_hidden_states and weights["hidden"] > 0:
            if (student.hidden_states is None or teacher is None or teacher.hidden_states is None
                    or attention_mask is None or hidden_distiller is None):
                raise KDLabError("the hidden-state term (hidden_weight > 0) needs both models' Outputs.hidden_states, "
                                 "attention_mask and hidden_distiller (a kdlab.distillation.hidden."
                                 "HiddenStateDistiller).")
            parts["hidden"] = hidden_distiller(student.hidden_states, teacher.hidden_states, attention_mask)
        parts["loss"] = sum(weights[name] * value for name, value in parts.items())
        if self.temperature_schedule != "constant":
            parts["temperature"] = torch.tensor(temperature)  # logged, not part of the loss
        return parts
