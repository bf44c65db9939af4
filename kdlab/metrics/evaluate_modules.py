"""The course's `evaluate` package for accuracy and F1, offline included.

``evaluate.load("accuracy")`` fetches its script from the Hugging Face Hub at run time, so kdlab ships the two
metric modules it needs (``kdlab/metrics/evaluate_metrics/``) and loads them by path: the same ``load`` / ``add_batch``
/
``compute`` / ``combine`` API the Hugging Face course teaches, with no network. Where the Hub is reachable,
``evaluate.load("glue", "sst2")`` gives the same accuracy and (binary) F1. Confidence intervals, McNemar and
retention stay in ``kdlab.metrics``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).with_name("evaluate_metrics")


def path(name: str) -> str:
    """The folder of a shipped metric module (``accuracy`` or ``f1``), for ``evaluate.load(path)``."""
    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        raise ValueError(f"kdlab ships the evaluate metrics {sorted(p.name for p in METRICS_DIR.iterdir())}, "
                         f"not {name!r}.")
    return str(folder)


@lru_cache(maxsize=None)
def load(name: str):
    """``evaluate.load`` of a shipped metric module (cached: loading takes ~0.2 s)."""
    return evaluate.load(path(name))


def accuracy_and_f1(predictions, references, num_labels: int = 2) -> dict[str, float]:
    """``{"accuracy", "f1", "f1_macro"}`` through the `evaluate` modules: ``f1`` is the positive class's F1 with
    two classes and the macro F1 with more; ``f1_macro`` is always macro (over ``num_labels`` classes)."""
    predictions, references = [int(p) for p in predictions], [int(r) for r in references]
    labels = list(range(num_labels))
    macro = load("f1").compute(predictions=predictions, references=references, labels=labels, average="macro")["f1"]
    binary = load("f1").compute(predictions=predictions, references=references, average="binary")["f1"] \
        if num_labels <= 2 else macro
    return {"accuracy": load("accuracy").compute(predictions=predictions, references=references)["accuracy"],
            "f1": binary, "f1_macro": macro}
