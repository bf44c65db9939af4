"""F1 as an `evaluate` metric module shipped with kdlab, loaded by path (no Hub needed).

F1 = 2·P·R / (P + R) per class. ``average="binary"`` (two classes): the F1 of ``pos_label`` (1 = positive in
SST-2); ``"macro"``: the unweighted mean of the per-class F1 (the lab uses it for more than two classes);
``"micro"``, ``"weighted"``, or ``None`` (one F1 per class) as in scikit-learn, which computes it. A class with no
prediction and no reference has F1 0 (``zero_division=0``). Matches `evaluate.load("f1")` from the Hub.
"""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1: the harmonic mean of precision and recall."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int), references (list of int): class ids.
    labels (list of int, optional): the classes to count (default: those present).
    pos_label (int): the positive class for average="binary" (default 1).
    average (str or None): "binary" (default), "macro", "micro", "weighted" or None.
Returns:
    f1 (float, or a list of floats with average=None).
"""


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary"):
        score = f1_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         zero_division=0)
        return {"f1": float(score) if getattr(score, "size", 1) == 1 else score.tolist()}
