"""Check for the exact McNemar test of two classifiers on the same sentences (03-Inference)."""

from __future__ import annotations

import math
import random

from scipy.stats import binomtest, chi2

from kdlab.exercises.core import CheckResult, Mismatch, as_float, close, run_cases


def reference_mcnemar(b: int, c: int) -> float:
    """Two-sided exact test: under H0 each of the b + c discordant sentences is B(0.5)."""
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


def _mcnemar_case(b: int, c: int):
    def case(fn):
        got = as_float(fn(b, c), "mcnemar_p")
        expected = reference_mcnemar(b, c)
        if close(got, expected, rel=1e-6, abs_=1e-9):
            return
        what = f"b={b}, c={c}"
        n = b + c
        alternatives = {
            "that is one tail: the test is two-sided, so double the smaller tail (and cap it at 1).": expected / 2,
        }
        if n:
            alternatives["that is the χ² approximation; with few discordant pairs use the exact binomial test "
                         "(scipy.stats.binomtest(b, b + c, 0.5))."] = float(chi2.sf((b - c) ** 2 / n, 1))
            alternatives["that is the χ² approximation with continuity correction; use the exact binomial test."] = \
                float(chi2.sf((abs(b - c) - 1) ** 2 / n, 1)) if abs(b - c) >= 1 else 1.0
        for hint, value in alternatives.items():
            if math.isfinite(value) and close(got, value, rel=1e-4, abs_=1e-9):
                raise Mismatch(f"{what}: got {got:.6g}, expected {expected:.6g} — {hint}")
        if b + c == 0:
            raise Mismatch(f"{what}: with no discordant sentences the two models cannot be told apart: p = 1.")
        raise Mismatch(f"{what}: got {got:.6g}, expected {expected:.6g}. Only the discordant sentences count "
                       "(n = b + c, not the 872 dev sentences).")

    return case


def check_mcnemar_cases(seed: int = 0) -> list:
    """The fixed counts, plus three drawn from ``seed`` when it is not 0 (the grader's fresh inputs)."""
    counts = [(10, 2), (26, 11), (5, 5), (0, 7), (0, 0), (100, 80), (1, 0)]
    if seed:
        rng = random.Random(seed)
        counts += [(rng.randint(0, 150), rng.randint(0, 150)) for _ in range(3)]
    return [(f"b={b}, c={c}", _mcnemar_case(b, c)) for b, c in counts]


def check_mcnemar(fn) -> CheckResult:
    return run_cases("mcnemar", fn, check_mcnemar_cases())
