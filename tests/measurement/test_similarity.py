"""Knowledge-transfer metrics (kdlab.measurement.similarity): agreement, attention KL and [CLS] cosine, and the table
03 shows
(before and after distillation)."""

import math

import pytest

from kdlab.errors import KDLabError
from kdlab.measurement.similarity import (
    attention_kl_to_teacher,
    feature_cosine,
    predict,
    prediction_agreement,
    similarity_table,
)
from kdlab.models.bilstm import bilstm_from_teacher
from kdlab.models.student import init_student_from_teacher
from kdlab.models.tiny import build_tiny_bert

SENTENCES = ["a fine film", "dull and long", "the cast is great", "i hated every minute of it", "ok"]


def test_agreement_is_the_share_of_equal_labels():
    assert prediction_agreement([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


def test_a_model_matches_itself_and_differs_from_another(tiny_teacher, tiny_tokenizer):
    assert attention_kl_to_teacher(tiny_teacher, tiny_teacher, tiny_tokenizer, SENTENCES) == pytest.approx(0, abs=1e-6)
    assert feature_cosine(tiny_teacher, tiny_teacher, tiny_tokenizer, SENTENCES) == pytest.approx(1.0, abs=1e-5)
    other = build_tiny_bert(len(tiny_tokenizer), seed=11, **{k: tiny_teacher.config.to_dict()[k] for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")})
    assert attention_kl_to_teacher(tiny_teacher, other, tiny_tokenizer, SENTENCES) > 1e-4
    assert feature_cosine(tiny_teacher, other, tiny_tokenizer, SENTENCES) < 0.999


def test_the_table_runs_a_student_without_predictions_and_leaves_nan_where_a_metric_does_not_apply(
        tiny_teacher, tiny_tokenizer):
    cut = init_student_from_teacher(tiny_teacher, 2)
    lstm = bilstm_from_teacher(tiny_teacher, hidden_size=16)
    teacher_pred = predict(tiny_teacher, tiny_tokenizer, SENTENCES)
    table = similarity_table(tiny_teacher, {"before": cut, "same": tiny_teacher, "bilstm": lstm}, tiny_tokenizer,
                             SENTENCES, teacher_pred, {"same": teacher_pred}, 32).set_index("student")
    assert table.loc["same", "agreement_%"] == 100.0
    assert table.loc["before", "agreement_%"] == pytest.approx(
        100 * prediction_agreement(predict(cut, tiny_tokenizer, SENTENCES), teacher_pred))
    assert math.isnan(table.loc["bilstm", "attention_KL_to_teacher"]) and math.isnan(table.loc["bilstm", "cls_cosine"])
    with pytest.raises(KDLabError, match="only prediction agreement"):
        feature_cosine(tiny_teacher, lstm, tiny_tokenizer, SENTENCES)


def test_the_table_runs_the_teacher_once_and_agrees_with_the_single_measures(tiny_teacher, tiny_tokenizer):
    cut = init_student_from_teacher(tiny_teacher, 2)
    calls = []
    handle = tiny_teacher.register_forward_hook(lambda *_: calls.append(1))
    try:
        teacher_pred = predict(tiny_teacher, tiny_tokenizer, SENTENCES)
        calls.clear()
        table = similarity_table(tiny_teacher, {"a": cut, "b": init_student_from_teacher(tiny_teacher, 1)},
                                 tiny_tokenizer, SENTENCES, teacher_pred, {}, 32).set_index("student")
    finally:
        handle.remove()
    assert len(calls) == 1  # one batch of 5 sentences, shared by both students
    assert table.loc["a", "attention_KL_to_teacher"] == pytest.approx(
        attention_kl_to_teacher(tiny_teacher, cut, tiny_tokenizer, SENTENCES, 32), abs=1e-4)
    assert table.loc["a", "cls_cosine"] == pytest.approx(
        feature_cosine(tiny_teacher, cut, tiny_tokenizer, SENTENCES, 32), abs=1e-4)
    assert table.loc["a", "attention_KL_to_teacher"] > 0


def test_uniform_attention_is_the_bound_a_kl_is_read_against(tiny_teacher, tiny_tokenizer):
    """KL(A_t ‖ uniform) = log n − H(A_t) per head and real query, computed independently; the table's last row."""
    import torch

    from kdlab.measurement.similarity import UNIFORM_ROW, teacher_states, uniform_attention_kl

    with torch.no_grad():  # a random tiny teacher attends almost uniformly: sharpen it so the value means something
        tiny_teacher.bert.encoder.layer[-1].attention.self.query.weight.mul_(30)
    states = teacher_states(tiny_teacher, tiny_tokenizer, SENTENCES, 32)
    expected, count = 0.0, 0
    for batch, q, k, _ in states:
        mask = batch["attention_mask"].bool()
        a = torch.softmax((q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).masked_fill(~mask[:, None, None, :], -1e9), -1)
        entropy = -(a * a.clamp_min(1e-30).log()).sum(-1)  # [B, H, S]
        kl = mask.sum(-1).double()[:, None, None].log() - entropy.double()
        real = mask[:, None, :].double()
        expected += float(((kl * real).sum((1, 2)) / (real.sum((1, 2)) * kl.shape[1])).sum())
        count += mask.shape[0]
    assert uniform_attention_kl(states) == pytest.approx(expected / count, rel=1e-4)
    teacher_pred = predict(tiny_teacher, tiny_tokenizer, SENTENCES)
    table = similarity_table(tiny_teacher, {"same": tiny_teacher}, tiny_tokenizer, SENTENCES, teacher_pred, {}, 32)
    assert table.iloc[-1]["student"] == UNIFORM_ROW and table.iloc[-1]["attention_KL_to_teacher"] > 0
    assert table.set_index("student").loc["same", "attention_KL_to_teacher"] == pytest.approx(0, abs=1e-5)


def test_a_kl_above_uniform_reads_as_confident_and_wrong_not_flat():
    """Finding 4 of issue 33: a flat student scores exactly the uniform KL, so above it means attention confidently
    elsewhere; only well below it means teacher-like."""
    from kdlab.measurement.similarity import attention_kl_readings

    read = attention_kl_readings({"before": 1.3561, "after": 0.2469, "flat": 0.80, "half": 0.6}, 0.80)
    assert read["before"].startswith("above uniform") and "confident and wrong" in read["before"]
    assert "not flat" in read["before"]
    assert read["after"].startswith("well below uniform") and read["flat"].startswith("near uniform")
    assert read["half"].startswith("below uniform")
