"""Accuracy as an `evaluate` metric module shipped with kdlab, loaded by path (no Hub needed):

    evaluate.load(kdlab.metrics.evaluate_modules.path("accuracy")).compute(predictions=[...], references=[...])

accuracy = (1/N) Σ 1[prediction_i = reference_i]; with ``normalize=False`` the count of correct ones.
Matches `evaluate.load("accuracy")` and the accuracy of `evaluate.load("glue", "sst2")` from the Hub.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the share of predictions equal to the references."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    normalize (bool): True (default) for the share of correct predictions, False for their count.
Returns:
    accuracy (float or int).
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, normalize=True):
        correct = int((np.asarray(predictions) == np.asarray(references)).sum())
        return {"accuracy": correct / len(references) if normalize else correct}
