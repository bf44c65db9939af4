"""How much of the teacher a student took on, measured on dev sentences (03-Inference, 02's attention maps):

- ``prediction_agreement``: share of sentences where student and teacher predict the same label;
- ``attention_kl_to_teacher``: MiniLM's own measure, mean KL(A_teacher ‖ A_student) of the last layer's
  self-attention distributions (heads matched one to one), padding excluded;
- ``feature_cosine``: mean cosine similarity of the [CLS] hidden state of the last layer (equal widths only).

``similarity_table`` puts them side by side, also for a student before training (the cut from the teacher), so
the change that distillation makes shows.
"""

from __future__ import annotations

import numpy as np
import torch

from kdlab.capture import QKVCapture, num_heads
from kdlab.errors import KDLabError
from kdlab.losses import attention_distribution_loss


def prediction_agreement(pred_a, pred_b) -> float:
    """Share of examples on which two models predict the same label."""
    a, b = np.asarray(pred_a), np.asarray(pred_b)
    return float((a == b).mean())


def _batches(tokenizer, sentences: list[str], max_length: int, batch_size: int, device):
    for start in range(0, len(sentences), batch_size):
        yield tokenizer(sentences[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)


def _check_transformer(model, what: str) -> None:
    if not hasattr(model.config, "num_attention_heads"):
        raise KDLabError(f"{what}: the {type(model).__name__} student has no attention layers or [CLS] state "
                         "to compare; only prediction agreement applies to it.")


@torch.inference_mode()
def attention_kl_to_teacher(teacher, student, tokenizer, sentences: list[str], max_length: int = 128,
                            batch_size: int = 64) -> float:
    """Mean over sentences of MiniLM's last-layer attention KL(teacher ‖ student) (``attention_distribution_loss``
    on hooked Q/K; needs equal head counts). Lower = closer to the teacher; 0 = the same attention."""
    _check_transformer(student, "attention_kl_to_teacher")
    if num_heads(teacher) != num_heads(student):
        raise KDLabError("attention_kl_to_teacher compares head h with head h: teacher and student need the same "
                         "number of heads.")
    device = next(student.parameters()).device
    teacher, student = teacher.to(device).eval(), student.eval()
    total, count = 0.0, 0
    for batch in _batches(tokenizer, sentences, max_length, batch_size, device):
        with QKVCapture(teacher) as cap:
            teacher(**batch)
            q_t, k_t, _ = cap.qkv()
        with QKVCapture(student) as cap:
            student(**batch)
            q_s, k_s, _ = cap.qkv()
        n = batch["input_ids"].shape[0]
        total += float(attention_distribution_loss(q_s, k_s, q_t, k_t, batch["attention_mask"])) * n
        count += n
    return total / count


@torch.inference_mode()
@torch.inference_mode()
def feature_cosine(teacher, student, tokenizer, sentences: list[str], max_length: int = 128,
                   batch_size: int = 64) -> float:
    """Mean cosine similarity between the teacher's and the student's last-layer [CLS] hidden states."""
    _check_transformer(student, "feature_cosine")
    if teacher.config.hidden_size != student.config.hidden_size:
        raise KDLabError("feature_cosine compares hidden states directly: the widths differ "
                         f"({teacher.config.hidden_size} vs {student.config.hidden_size}).")
    device = next(student.parameters()).device
    teacher, student = teacher.to(device).eval(), student.eval()
    sims = []
    for batch in _batches(tokenizer, sentences, max_length, batch_size, device):
        h_t = teacher(**batch, output_hidden_states=True).hidden_states[-1][:, 0].float()
        h_s = student(**batch, output_hidden_states=True).hidden_states[-1][:, 0].float()
        sims.append(torch.nn.functional.cosine_similarity(h_t, h_s, dim=-1).cpu())
    return float(torch.cat(sims).mean())


@torch.no_grad()
def predict(model, tokenizer, sentences: list[str], max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """Predicted labels ``[N]`` of ``model`` for ``sentences``."""
    device = next(model.parameters()).device
    model.eval()
    return np.concatenate([model(**batch).logits.argmax(-1).cpu().numpy()
                           for batch in _batches(tokenizer, sentences, max_length, batch_size, device)])


def similarity_table(teacher, students: dict, tokenizer, sentences: list[str], teacher_predictions,
                     student_predictions: dict, max_length: int = 128):
    """One row per student: prediction agreement with the teacher, last-layer attention KL to the teacher, [CLS]
    cosine similarity (NaN where widths or head counts differ). A student missing from ``student_predictions``
    (e.g. the untrained cut, to compare before and after distillation) is run on ``sentences`` here."""
    import pandas as pd

    rows = []
    for name, model in students.items():
        predictions = student_predictions.get(name)
        if predictions is None:
            predictions = predict(model, tokenizer, sentences, max_length)
        row = {"student": name, "agreement_%": 100 * prediction_agreement(predictions, teacher_predictions)}
        try:
            row["attention_KL_to_teacher"] = attention_kl_to_teacher(teacher, model, tokenizer, sentences, max_length)
        except KDLabError:
            row["attention_KL_to_teacher"] = float("nan")
        try:
            row["cls_cosine"] = feature_cosine(teacher, model, tokenizer, sentences, max_length)
        except KDLabError:
            row["cls_cosine"] = float("nan")
        rows.append(row)
    return pd.DataFrame(rows).round(4)
