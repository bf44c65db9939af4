"""Offline metrics against hand-computed values."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdlab.metrics.classification import (
    classification_metrics,
    confusion,
    evaluate_model,
    format_accuracy,
    mcnemar,
    predict_proba,
    trainer_metrics,
    wilson_interval,
)


def _wilson_by_quadratic(k, n, z=1.96):
    """The Wilson interval as the two roots p of (k/n - p)² = z² p (1 - p) / n."""
    phat = k / n
    a = 1 + z**2 / n
    b = -(2 * phat + z**2 / n)
    c = phat**2
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("k, n", [(800, 872), (0, 10), (10, 10), (436, 872), (1, 3)])
def test_wilson_interval_matches_quadratic_roots(k, n):
    low, high = wilson_interval(k, n)
    exp_low, exp_high = _wilson_by_quadratic(k, n)
    assert low == pytest.approx(exp_low, abs=1e-12)
    assert high == pytest.approx(exp_high, abs=1e-12)
    assert low <= k / n <= high


def _wilson_closed_form(k, n, z=1.96):
    """The hand-written interval kdlab used before SciPy's (centre ± half-width)."""
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_gives_the_values_of_the_earlier_closed_form(kn):
    k, n = kn
    low, high = wilson_interval(k, n)
    exp_low, exp_high = _wilson_closed_form(k, n)
    assert low == pytest.approx(max(0.0, exp_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, exp_high), abs=1e-12)


def test_wilson_interval_hand_values():
    low, high = wilson_interval(800, 872)
    assert (low, high) == (pytest.approx(0.8973, abs=1e-4), pytest.approx(0.9339, abs=1e-4))
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(1.96**2 / (10 + 1.96**2), abs=1e-12)  # = 0.2775
    assert high == pytest.approx(0.2775, abs=1e-4)


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (0, 1), (872, 872), (0, 872)])
def test_wilson_interval_stays_inside_0_1(k, n):
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= high <= 1.0
    m = classification_metrics([1] * n, [1] * k + [0] * (n - k))
    assert "-" not in format_accuracy(m)  # no "-0.0%" from rounding


def test_wilson_interval_rejects_empty():
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_classification_metrics():
    labels = [1, 1, 0, 0, 1]
    preds = [1, 0, 0, 1, 1]
    m = classification_metrics(labels, preds)
    assert m["n"] == 5
    assert m["accuracy"] == pytest.approx(0.6)
    # positive class: tp 2, fp 1, fn 1 -> F1 2/3; negative class: tp 1, fp 1, fn 1 -> F1 1/2
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert (m["acc_low"], m["acc_high"]) == pytest.approx(_wilson_by_quadratic(3, 5))
    assert format_accuracy(m) == f"60.0% [{m['acc_low']:.1%}, {m['acc_high']:.1%}]"


def test_confusion_matrix():
    assert confusion([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]).tolist() == [[1, 1], [1, 2]]


def test_mcnemar_counts_and_exact_p_value():
    # A right / B wrong on 7 examples, the reverse on 2, both right on 5, both wrong on 3.
    labels = np.ones(17, dtype=int)
    pred_a = np.array([1] * 7 + [0] * 2 + [1] * 5 + [0] * 3)
    pred_b = np.array([0] * 7 + [1] * 2 + [1] * 5 + [0] * 3)
    result = mcnemar(labels, pred_a, pred_b)
    assert (result["a_only"], result["b_only"]) == (7, 2)
    # two-sided exact binomial test of 7 vs 2 at 0.5: 2 · P(X <= 2 | n = 9) = 2 · (1 + 9 + 36) / 512
    assert result["p_value"] == pytest.approx(92 / 512, rel=1e-9)


def test_mcnemar_symmetric_and_degenerate():
    labels = np.array([0, 1, 0, 1, 1, 0])
    pred = np.array([0, 1, 1, 1, 0, 0])
    same = mcnemar(labels, pred, pred)
    assert same == {"a_only": 0, "b_only": 0, "p_value": 1.0}
    other = np.array([1, 1, 0, 0, 0, 0])
    ab, ba = mcnemar(labels, pred, other), mcnemar(labels, other, pred)
    assert (ab["a_only"], ab["b_only"]) == (ba["b_only"], ba["a_only"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])


def test_trainer_metrics_from_logits():
    logits = np.array([[2.0, -1.0], [0.0, 1.0], [0.3, 0.1], [-1.0, 4.0]])
    labels = np.array([0, 1, 1, 1])
    out = trainer_metrics((logits, labels))
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["f1"] == pytest.approx(0.8)  # tp 2, fn 1, fp 0
    assert trainer_metrics(((logits, None), labels)) == out  # tuple predictions: the logits come first


SENTENCES = [
    "the film feels very good and the ending is great",
    "bad",
    "a dull movie",
    "this story was really charming",
    "weak , weak and quite weak",
    "fresh",
    "the plot is clumsy",
]


def test_predict_proba_rows_and_order(tiny_teacher, tiny_tokenizer):
    with torch.no_grad():
        tiny_teacher.classifier.weight.mul_(300)  # spread the random model's outputs so rows are told apart
    probs = predict_proba(tiny_teacher, tiny_tokenizer, SENTENCES, max_length=32, batch_size=3)
    assert probs.shape == (len(SENTENCES), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # one sentence at a time, no padding: the i-th row belongs to the i-th sentence
    with torch.no_grad():
        for i, sentence in enumerate(SENTENCES):
            logits = tiny_teacher(**tiny_tokenizer([sentence], return_tensors="pt")).logits
            np.testing.assert_allclose(probs[i], torch.softmax(logits, -1)[0].numpy(), atol=1e-5)


class _IdSumClassifier(torch.nn.Module):
    """Logits [0, Σ real token ids / 20]: every sentence gets its own, easily predicted probabilities."""

    config = SimpleNamespace(num_labels=2)

    def __init__(self):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask, **_):
        score = (input_ids * attention_mask).sum(-1).float() / 20 + self.offset
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(score), score], -1))


def test_predict_proba_keeps_input_order(tiny_tokenizer):
    probs = predict_proba(_IdSumClassifier(), tiny_tokenizer, SENTENCES, max_length=32, batch_size=2)
    expected = []
    for sentence in SENTENCES:
        score = sum(tiny_tokenizer(sentence)["input_ids"]) / 20
        expected.append([1 / (1 + math.exp(score)), 1 / (1 + math.exp(-score))])
    assert len({round(p, 4) for _, p in expected}) == len(SENTENCES)  # all different, so order matters
    np.testing.assert_allclose(probs, np.array(expected), rtol=1e-5, atol=1e-6)


def test_evaluate_model(tiny_teacher, tiny_tokenizer):
    from datasets import Dataset

    labels = [1, 0, 0, 1, 0, 1, 0]
    out = evaluate_model(tiny_teacher, tiny_tokenizer, Dataset.from_dict({"sentence": SENTENCES, "label": labels}),
                         max_length=32, batch_size=4)
    predictions = out["probs"].argmax(-1)
    np.testing.assert_array_equal(out["predictions"], predictions)
    assert out["accuracy"] == pytest.approx(np.mean(predictions == np.array(labels)))
    assert out["n"] == 7
