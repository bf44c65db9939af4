"""Exercises (練習) with immediate feedback: ``check_<name>(your_function)`` in the notebooks.

Each check runs your function on random and edge-case inputs against kdlab's reference and says precisely what is
wrong ("the T² factor is missing", "padding keys are not masked", "the KL direction is reversed"). A wrong or
missing answer never stops the notebook: the lab trains with kdlab's own functions either way.

| exercise | notebook | your function |
|---|---|---|
| ``softmax_temperature`` | 01-Setup | ``softmax_with_temperature(z, T)`` |
| ``alternate_layer_map`` | 01-Setup | ``alternate_layer_map(teacher_layers, student_layers)`` |
| ``kd_loss`` | 02-Distill | ``kd_loss(student_logits, teacher_logits, T)`` |
| ``attention_kl`` | 02-Distill | ``attention_kl(q_s, k_s, q_t, k_t, mask)`` |
| ``value_relation`` | 02-Distill | ``value_relation_kl(v_s, v_t, mask)`` |
| ``mcnemar`` | 03-Inference | ``mcnemar_p(b, c)`` |
| ``deployment`` | 04-Benchmark | ``choose_deployment(rows, teacher_accuracy, max_latency_ms, min_retention)`` |
| ``masked_reverse_kl`` | advanced/07-LLM-Distillation (optional) | ``masked_reverse_kl(student_logits, teacher_logits, mask)`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kdlab.exercises.attention import check_attention_kl_cases, check_value_relation_cases
from kdlab.exercises.core import MIME, CheckResult, emit, run_cases
from kdlab.exercises.deploy import check_deployment_cases
from kdlab.exercises.layers import check_alternate_layer_map_cases
from kdlab.exercises.lm import check_masked_reverse_kl_cases
from kdlab.exercises.stats import check_mcnemar_cases
from kdlab.exercises.temperature import check_kd_loss_cases, check_softmax_temperature_cases


@dataclass(frozen=True)
class Exercise:
    id: str
    notebook: str
    function: str  # the name of the function the student writes
    cases: Callable[[int], list]  # seed -> [(case name, case(fn))]; seed 0: the notebook's fixed inputs

    def run(self, fn: Callable, seed: int = 0) -> CheckResult:
        return run_cases(self.id, fn, self.cases(seed))


EXERCISES = {e.id: e for e in (
    Exercise("softmax_temperature", "01-Setup.ipynb", "softmax_with_temperature", check_softmax_temperature_cases),
    Exercise("alternate_layer_map", "01-Setup.ipynb", "alternate_layer_map", check_alternate_layer_map_cases),
    Exercise("kd_loss", "02-Distill.ipynb", "kd_loss", check_kd_loss_cases),
    Exercise("attention_kl", "02-Distill.ipynb", "attention_kl", check_attention_kl_cases),
    Exercise("value_relation", "02-Distill.ipynb", "value_relation_kl", check_value_relation_cases),
    Exercise("mcnemar", "03-Inference.ipynb", "mcnemar_p", check_mcnemar_cases),
    Exercise("deployment", "04-Benchmark.ipynb", "choose_deployment", check_deployment_cases),
    Exercise("masked_reverse_kl", "advanced/07-LLM-Distillation.ipynb", "masked_reverse_kl",
             check_masked_reverse_kl_cases),
)}


def run_check(exercise: str, fn: Callable, seed: int = 0) -> CheckResult:
    """The result of checking ``fn`` for ``exercise`` in this process (nothing shown). ``kdlab grade`` runs the same
    cases on a fresh ``seed``, with the function evaluated in a contained child (``kdlab_grader.checks``)."""
    return EXERCISES[exercise].run(fn, seed)


def _checker(exercise: str):
    def check(fn: Callable) -> None:
        emit(run_check(exercise, fn))

    check.__name__ = f"check_{exercise}"
    check.__doc__ = f"Check your ``{EXERCISES[exercise].function}`` and show specific feedback (never raises)."
    return check


check_softmax_temperature = _checker("softmax_temperature")
check_alternate_layer_map = _checker("alternate_layer_map")
check_kd_loss = _checker("kd_loss")
check_attention_kl = _checker("attention_kl")
check_value_relation = _checker("value_relation")
check_mcnemar = _checker("mcnemar")
check_deployment = _checker("deployment")
check_masked_reverse_kl = _checker("masked_reverse_kl")

__all__ = ["EXERCISES", "MIME", "CheckResult", "run_check", *[f"check_{k}" for k in EXERCISES]]
