"""A distillation loss whose KD and MiniLM terms are computed by functions a student wrote (02-Distill's loss race).

``with_functions(loss, kd_loss=..., attention_kl=..., value_relation_kl=...)`` is the same ``DistillationLoss`` —
same weights, temperature, masking, logging — with the given terms swapped for the student's functions (same
signatures as the exercises: ``kd_loss(student_logits [B, C], teacher_logits [B, C], T)``,
``attention_kl(q_s, k_s, q_t, k_t, mask)``, ``value_relation_kl(v_s, v_t, mask)``; Q/K/V ``[B, H, S, D]``, mask
``[B, S]``). Trained through the lab's own trainer, the run shows what the student's loss does to learning: a missing
T² or a reversed KL shows in the curve and the accuracy, beside kdlab's run with the same seed and batches.

``race_verdict(race, labels)`` says what one race can show: each student's dev accuracy with its Wilson 95%
interval, and McNemar's exact paired test on the sentences only one of the two gets right; a winner is named only
when that test separates them (p < 0.05), otherwise the verdict is "no measurable difference".
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from kdlab.distillation.losses import DistillationLoss
from kdlab.errors import KDLabError
from kdlab.metrics.classification import mcnemar, wilson_interval

TERMS = {"kd_loss": "_kd", "attention_kl": "_attention", "value_relation_kl": "_value"}


def with_functions(loss: DistillationLoss, **functions: Callable | None) -> DistillationLoss:
    """A copy of ``loss`` computing the named terms (``kd_loss``, ``attention_kl``, ``value_relation_kl``) with
    the given functions; ``None`` keeps kdlab's. Its ``settings()`` name the swapped terms, so a saved run says so."""
    unknown = sorted(set(functions) - set(TERMS))
    if unknown:
        raise KDLabError(f"unknown loss term(s) {unknown}: use {', '.join(TERMS)}.")
    out = copy.copy(loss)
    swapped = []
    for name, fn in functions.items():
        if fn is None:
            continue
        if not callable(fn):
            raise KDLabError(f"{name} must be a function, got {type(fn).__name__}.")
        setattr(out, TERMS[name], fn)
        swapped.append(name)
    if swapped:
        out.__dict__["_swapped"] = swapped
    return out


def swapped_terms(loss: DistillationLoss) -> list[str]:
    """The terms of ``loss`` that a student's functions compute (empty for kdlab's own loss)."""
    return list(loss.__dict__.get("_swapped", []))


RACE_ALPHA = 0.05  # the race names a winner only when McNemar's paired test gives p below this
RACE_LABELS = {"kdlab": "kdlab's loss", "yours": "your loss"}  # how the figure, table and verdict name the runs


def race_verdict(race: dict, labels) -> dict:
    """What the race shows, from the predictions. ``race``: ``{"kdlab": result, "yours": result}`` (``"yours"``
    may be missing), each result with ``predictions`` ``[N]`` on the dev split whose labels are ``labels`` ``[N]``.

    Returns ``{"runs": {name: {"accuracy", "low", "high", "n"}}}`` (fractions; Wilson 95% interval of correct/N)
    and, with both runs: ``yours_only`` / ``kdlab_only`` (sentences only that student gets right), ``p_value``
    (McNemar: two-sided binomial test of yours_only vs kdlab_only at ½), ``difference`` (yours − kdlab, points),
    ``overlap`` (the two intervals overlap), ``winner`` (``"yours"``/``"kdlab"`` when p < ``RACE_ALPHA``, else
    None) and ``text``: the verdict in one sentence."""
    labels = np.asarray(labels)
    runs = {}
    for name, result in race.items():
        predictions = np.asarray(result.predictions)
        correct, n = int((predictions == labels).sum()), len(labels)
        low, high = wilson_interval(correct, n)
        runs[name] = {"accuracy": correct / n, "low": low, "high": high, "n": n}
    out = {"runs": runs}
    if not {"kdlab", "yours"} <= set(race):
        return out
    test = mcnemar(labels, race["yours"].predictions, race["kdlab"].predictions)
    y, k = runs["yours"], runs["kdlab"]
    difference = 100 * (y["accuracy"] - k["accuracy"])
    winner = None if test["p_value"] >= RACE_ALPHA or difference == 0 else ("yours" if difference > 0 else "kdlab")
    out.update(yours_only=test["a_only"], kdlab_only=test["b_only"], p_value=test["p_value"], difference=difference,
               overlap=y["low"] <= k["high"] and k["low"] <= y["high"], winner=winner)
    out["text"] = _verdict_text(out)
    return out


def _verdict_text(v: dict) -> str:
    y, k = v["runs"]["yours"], v["runs"]["kdlab"]

    def acc(r):
        return f"{100 * r['accuracy']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"

    paired = (f"McNemar's paired test on the {v['yours_only'] + v['kdlab_only']} dev sentences only one of them gets "
              f"right ({v['yours_only']} yours, {v['kdlab_only']} kdlab's) gives p = {v['p_value']:.2g}")
    if v["winner"] is None:
        return (f"no measurable difference: your loss {acc(y)} vs kdlab's {acc(k)} (95% intervals), and {paired} "
                f"(≥ {RACE_ALPHA}); one seed, so a gap this size names no winner.")
    intervals = "the intervals overlap, but " if v["overlap"] else ""
    return (f"{RACE_LABELS[v['winner']]} trains the better student: your loss {acc(y)} vs kdlab's {acc(k)} "
            f"({v['difference']:+.1f} points); {intervals}{paired} (< {RACE_ALPHA}), on one seed.")


def reversed_kl_note(num_classes: int) -> str:
    """What a race with a reversed ``kd_loss`` (``CheckResult.kl_reversed``) can show with ``num_classes`` classes."""
    seven = ("advanced/07-LLM-Distillation (\"Forward KL、reverse KL、JSD\") shows it on next-token distributions, "
             "where the teacher spreads its probability over several plausible words.")
    if num_classes <= 2:
        return ("Your kd_loss is the reversed KL, KL(p_student ‖ p_teacher). With two classes this race cannot show "
                "what that changes: a two-class distribution is one number p, both directions are smallest at the "
                "teacher's p and the student can reach it, so both losses pull the same way. Reverse KL's "
                "mode-seeking needs a teacher distribution with several modes that the student cannot cover all of: "
                + seven)
    return (f"Your kd_loss is the reversed KL, KL(p_student ‖ p_teacher). Its mode-seeking shows only where the "
            f"teacher spreads probability over several of the {num_classes} classes and the student cannot cover "
            "them all: " + seven)
