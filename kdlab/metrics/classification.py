"""Metrics: accuracy and F1 through the `evaluate` package (metric modules shipped with kdlab, loaded by path:
``kdlab.metrics.evaluate_modules``), with a 95% Wilson interval (SciPy); McNemar's paired test; batched prediction
for any sequence classifier.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import binomtest, norm
from sklearn.metrics import confusion_matrix

from kdlab.metrics.evaluate_modules import accuracy_and_f1


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for an accuracy of ``correct / n`` (better than p ± z·√(p(1−p)/n) near 0/1):
    SciPy's ``binomtest(correct, n).proportion_ci(method="wilson")`` at the confidence level of ``z`` (1.96 → 95%).

        p ∈ [(p̂ + z²/2n ∓ z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)],  p̂ = correct / n
    """
    if n <= 0:
        raise ValueError("n must be > 0")
    ci = binomtest(correct, n).proportion_ci(confidence_level=2 * norm.cdf(z) - 1, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))  # rounding could give -3e-17 at 0 correct ("-0.0%")


def classification_metrics(labels, predictions, num_labels: int | None = None) -> dict[str, float]:
    """accuracy, its 95% interval (``acc_low``, ``acc_high``), ``f1`` (of the positive class with two classes,
    macro-averaged with more), ``f1_macro``, n. ``num_labels`` defaults to what the labels and predictions show."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    n = int(labels.size)
    correct = int((labels == predictions).sum())
    low, high = wilson_interval(correct, n)
    classes = num_labels or int(max(labels.max(initial=0), predictions.max(initial=0))) + 1
    scores = accuracy_and_f1(predictions, labels, classes)  # evaluate's accuracy and F1 modules
    return dict(accuracy=scores["accuracy"], acc_low=low, acc_high=high, f1=scores["f1"], f1_macro=scores["f1_macro"],
                n=n)


def mcnemar(labels, pred_a, pred_b) -> dict[str, float]:
    """Exact McNemar test of two classifiers on the same examples.

    b = examples A gets right and B wrong, c = the reverse; p = two-sided binomial test of b vs. c at 0.5.
    """
    labels, pred_a, pred_b = map(np.asarray, (labels, pred_a, pred_b))
    right_a, right_b = pred_a == labels, pred_b == labels
    b = int((right_a & ~right_b).sum())
    c = int((~right_a & right_b).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return dict(a_only=b, b_only=c, p_value=p)


def trainer_metrics(eval_pred) -> dict[str, float]:
    """``compute_metrics`` for ``transformers.Trainer``: accuracy and F1 from logits."""
    logits, labels = eval_pred
    logits = logits[0] if isinstance(logits, tuple) else logits
    m = classification_metrics(labels, np.argmax(logits, axis=-1), logits.shape[-1])
    return {"accuracy": m["accuracy"], "f1": m["f1"]}


PRECISIONS = ("auto", "fp32", "fp16-autocast", "fp16")


@torch.inference_mode()
def predict_proba(model, tokenizer, sentences: list[str], max_length: int = 128, batch_size: int = 64,
                  device: str | torch.device | None = None, precision: str = "auto") -> np.ndarray:
    """Class probabilities ``[N, C]`` for raw sentences (sorted by length into batches, dynamic padding).

    ``precision``: ``"auto"`` = fp16 autocast on CUDA, fp32 on the CPU (what the lab uses); ``"fp32"``;
    ``"fp16-autocast"`` (fp32 weights, matmuls in fp16); ``"fp16"`` (a float16 copy of the weights, as deployed).
    The model is moved to ``device`` (default: where it is); its dtype is never changed.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    if precision == "fp16":
        model = copy.deepcopy(model).half()
    autocast = precision == "fp16-autocast" or (precision == "auto" and device.type == "cuda")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    probs = np.zeros((len(sentences), model.config.num_labels), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer([sentences[i] for i in idx], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=autocast):
            logits = model(**batch).logits
        probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return probs


def evaluate_model(model, tokenizer, dataset, max_length: int = 128, batch_size: int = 64, device=None,
                   precision: str = "auto") -> dict:
    """Metrics of ``model`` on a dataset with ``sentence``/``label`` columns, plus ``probs`` and ``predictions``
    (``precision`` as in ``predict_proba``)."""
    probs = predict_proba(model, tokenizer, list(dataset["sentence"]), max_length, batch_size, device, precision)
    predictions = probs.argmax(-1)
    metrics = classification_metrics(dataset["label"], predictions, probs.shape[-1])
    return {**metrics, "probs": probs, "predictions": predictions}


def confusion(labels, predictions, num_labels: int = 2) -> np.ndarray:
    """K×K confusion matrix, rows = true label, columns = predicted."""
    return confusion_matrix(labels, predictions, labels=list(range(num_labels)))


def format_accuracy(m: dict) -> str:
    """``"91.2% [89.1, 93.0]"`` from a metrics dict."""
    return f"{m['accuracy']:.1%} [{m['acc_low']:.1%}, {m['acc_high']:.1%}]"


def majority_prediction(predictions) -> tuple[int, float]:
    """``(label, share)``: the class a model predicts most often and the share of sentences it predicts it for —
    next to F1, which a model that always says "positive" inflates (binary F1 ≈ 0.67 at 50% accuracy)."""
    predictions = np.asarray(predictions)
    if predictions.size == 0:
        raise ValueError("majority_prediction got no predictions.")
    values, counts = np.unique(predictions, return_counts=True)
    return int(values[counts.argmax()]), float(counts.max() / predictions.size)
