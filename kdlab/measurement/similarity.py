"""How much of the teacher a student took on, measured on dev sentences (03-Inference, 02's attention maps):

- ``prediction_agreement``: share of sentences where student and teacher predict the same label;
- ``attention_kl_to_teacher``: MiniLM's own measure, mean KL(A_teacher ‖ A_student) of the last layer's
  self-attention distributions (heads matched one to one), padding excluded;
- ``feature_cosine``: mean cosine similarity of the [CLS] hidden state of the last layer (equal widths only).

``similarity_table`` puts them side by side, also for a student before training (the cut from the teacher), so
the change that distillation makes shows; ``attention_kl_reading`` says what each KL means against the KL of
attending uniformly (the table's ``reading`` column, 02's attention cell, the kit's R2.3 answer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.losses import attention_distribution_loss
from kdlab.errors import KDLabError
from kdlab.models.layers import layer_heads


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
def teacher_states(teacher, tokenizer, sentences: list[str], max_length: int = 128, batch_size: int = 64) -> list:
    """One forward pass of the teacher over ``sentences``, kept per batch for every comparison after it:
    ``[(batch, q, k, cls)]`` with ``q``/``k`` the last layer's ``[B, H, S, D]`` and ``cls`` its ``[B, hidden]``
    [CLS] state (fp32)."""
    device = next(teacher.parameters()).device
    teacher.eval()
    states = []
    for batch in _batches(tokenizer, sentences, max_length, batch_size, device):
        with QKVCapture(teacher) as cap:
            cls = teacher(**batch, output_hidden_states=True).hidden_states[-1][:, 0].float()
            q, k, _ = cap.qkv()
        states.append((batch, q, k, cls))
    return states


@torch.inference_mode()
def compare_to_teacher(states: list, student, attention: bool = True, cosine: bool = True) -> dict:
    """One forward pass of ``student`` over the batches of ``teacher_states``. Returns ``predictions`` ``[N]``,
    ``attention_kl`` (mean over sentences of MiniLM's last-layer KL(A_teacher ‖ A_student), heads matched one to
    one, padding excluded) and ``cls_cosine`` (mean cosine of the [CLS] states); a measure not asked for, or not
    applicable (a non-Transformer student, other head counts, other widths), is NaN."""
    device = next(student.parameters()).device
    student.eval()
    is_transformer = hasattr(student.config, "num_attention_heads")
    attention = bool(attention and is_transformer and states and states[0][1].shape[1] == layer_heads(student))
    cosine = bool(cosine and is_transformer and states and states[0][3].shape[-1] == student.config.hidden_size)
    predictions, kl_sum, cos, count = [], 0.0, [], 0
    for batch, q_t, k_t, cls_t in states:
        batch = batch.to(device)
        n = batch["input_ids"].shape[0]
        kwargs = {"output_hidden_states": True} if cosine else {}
        if attention:
            with QKVCapture(student) as cap:
                out = student(**batch, **kwargs)
                q_s, k_s, _ = cap.qkv()
            kl_sum += float(attention_distribution_loss(q_s, k_s, q_t.to(device), k_t.to(device),
                                                        batch["attention_mask"])) * n
        else:
            out = student(**batch, **kwargs)
        if cosine:
            cos.append(torch.nn.functional.cosine_similarity(cls_t.to(device), out.hidden_states[-1][:, 0].float(),
                                                              dim=-1).cpu())
        predictions.append(out.logits.argmax(-1).cpu().numpy())
        count += n
    return {"predictions": np.concatenate(predictions) if predictions else np.zeros(0, dtype=int),
            "attention_kl": kl_sum / count if attention else float("nan"),
            "cls_cosine": float(torch.cat(cos).mean()) if cosine else float("nan")}


@torch.inference_mode()
def uniform_attention_kl(states: list) -> float:
    """The attention KL to the teacher of a "student" that attends uniformly to every real token:

        KL(A_t ‖ U) = Σ_j A_t,j log A_t,j + log n_real  =  log n_real − H(A_t)       (per head and real query)

    averaged like ``attention_distribution_loss`` (``states``: ``teacher_states``). It is the reference a measured
    attention KL needs: a flat student scores exactly it — KL is bounded for a uniform guess — so a KL is
    "teacher-like" only well below this value, not merely lower than another student's; a KL above it is not flat
    but confidently elsewhere (``attention_kl_reading``)."""
    total, count = 0.0, 0
    for batch, q_t, k_t, _ in states:
        mask = batch["attention_mask"].to(q_t.device)
        uniform = torch.zeros_like(q_t)  # q = 0: every score 0, softmax uniform over the real keys
        total += float(attention_distribution_loss(uniform, k_t, q_t, k_t, mask)) * mask.shape[0]
        count += mask.shape[0]
    return total / count if count else float("nan")


# A KL is read as its ratio to the uniform bound u = KL(A_t ‖ uniform): below LOW·u the student attends where the
# teacher does; between LOW·u and NEAR_LOW·u it is partly there; within [NEAR_LOW·u, NEAR_HIGH·u] it is no closer
# than attending to every token equally; above NEAR_HIGH·u it is *worse* than flat attention.
KL_LOW, KL_NEAR_LOW, KL_NEAR_HIGH = 0.5, 0.9, 1.1


def attention_kl_reading(kl: float, uniform: float) -> str:
    """What a last-layer attention KL to the teacher says, read against ``uniform`` (``uniform_attention_kl``).

    A flat (uniform) student scores exactly ``uniform``, so a KL *above* it cannot come from flat attention: the
    student puts its attention confidently on tokens the teacher does not attend to (e.g. all on [CLS] or [SEP]) —
    confident and wrong. Only a KL well below ``uniform`` means teacher-like attention."""
    if not (np.isfinite(kl) and np.isfinite(uniform) and uniform > 0):
        return "n/a"
    ratio = kl / uniform
    if ratio < KL_LOW:
        return f"well below uniform ({ratio:.2f}×): attends where the teacher attends"
    if ratio < KL_NEAR_LOW:
        return f"below uniform ({ratio:.2f}×): partly teacher-like"
    if ratio <= KL_NEAR_HIGH:
        return f"near uniform ({ratio:.2f}×): no closer to the teacher than attending to every token equally"
    return (f"above uniform ({ratio:.2f}×): not flat — confident and wrong, its attention sits on tokens the "
            "teacher does not attend to (worse than attending flat)")


def attention_kl_readings(kls: dict, uniform: float) -> dict[str, str]:
    """``{name: attention_kl_reading(kl, uniform)}`` for ``{name: KL}``."""
    return {name: attention_kl_reading(kl, uniform) for name, kl in kls.items()}


def attention_kl_to_teacher(teacher, student, tokenizer, sentences: list[str], max_length: int = 128,
                            batch_size: int = 64) -> float:
    """Mean over sentences of MiniLM's last-layer attention KL(teacher ‖ student) (``attention_distribution_loss``
    on hooked Q/K; needs equal head counts). Lower = closer to the teacher; 0 = the same attention."""
    _check_transformer(student, "attention_kl_to_teacher")
    if layer_heads(teacher) != layer_heads(student):
        raise KDLabError("attention_kl_to_teacher compares head h with head h: teacher and student need the same "
                         "number of heads.")
    states = teacher_states(teacher, tokenizer, sentences, max_length, batch_size)
    return compare_to_teacher(states, student, cosine=False)["attention_kl"]


def feature_cosine(teacher, student, tokenizer, sentences: list[str], max_length: int = 128,
                   batch_size: int = 64) -> float:
    """Mean cosine similarity between the teacher's and the student's last-layer [CLS] hidden states."""
    _check_transformer(student, "feature_cosine")
    if teacher.config.hidden_size != student.config.hidden_size:
        raise KDLabError("feature_cosine compares hidden states directly: the widths differ "
                         f"({teacher.config.hidden_size} vs {student.config.hidden_size}).")
    states = teacher_states(teacher, tokenizer, sentences, max_length, batch_size)
    return compare_to_teacher(states, student, attention=False)["cls_cosine"]


@torch.no_grad()
def predict(model, tokenizer, sentences: list[str], max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """Predicted labels ``[N]`` of ``model`` for ``sentences``."""
    device = next(model.parameters()).device
    model.eval()
    return np.concatenate([model(**batch).logits.argmax(-1).cpu().numpy()
                           for batch in _batches(tokenizer, sentences, max_length, batch_size, device)])


UNIFORM_ROW = "uniform attention (the bound, no model)"


def similarity_table(teacher, students: dict, tokenizer, sentences: list[str], teacher_predictions,
                     student_predictions: dict, max_length: int = 128):
    """One row per student: prediction agreement with the teacher, last-layer attention KL to the teacher, [CLS]
    cosine similarity (NaN where widths or head counts differ), and the ``reading`` of its KL
    (``attention_kl_reading``); and a last row, ``UNIFORM_ROW``: the attention KL of attending uniformly
    (``uniform_attention_kl``), the value a KL must be compared with. The teacher runs once
    over ``sentences`` and each student once; a student missing from ``student_predictions`` (e.g. the untrained cut, to compare before and
    after distillation) is scored on that same pass's predictions."""
    states = teacher_states(teacher, tokenizer, sentences, max_length)
    rows = []
    for name, model in students.items():
        measured = compare_to_teacher(states, model)
        predictions = student_predictions.get(name)
        if predictions is None:
            predictions = measured["predictions"]
        rows.append({"student": name, "agreement_%": 100 * prediction_agreement(predictions, teacher_predictions),
                     "attention_KL_to_teacher": measured["attention_kl"], "cls_cosine": measured["cls_cosine"]})
    uniform = uniform_attention_kl(states)
    rows.append({"student": UNIFORM_ROW, "agreement_%": float("nan"), "attention_KL_to_teacher": uniform,
                 "cls_cosine": float("nan")})
    table = pd.DataFrame(rows).round(4)
    table["reading"] = [attention_kl_reading(kl, uniform) if name != UNIFORM_ROW else "the bound: attending to "
                        "every real token equally" for name, kl in zip(table["student"], table["attention_KL_to_teacher"])]
    table.attrs["sentences"] = len(sentences)
    return table
