"""Check for choosing a deployment from a measured table (04-Benchmark)."""

from __future__ import annotations

import random

from kdlab.exercises.core import CheckResult, Mismatch, run_cases


def reference_choice(rows: list[dict], teacher_accuracy: float, max_latency_ms: float,
                     min_retention: float) -> str | None:
    """Among trained rows within the latency budget that keep ``min_retention`` of the teacher's accuracy: the
    most accurate, ties broken by the lower latency. ``None`` when no row qualifies."""
    ok = [r for r in rows if r["trained"] and r["p50_ms"] <= max_latency_ms
          and r["accuracy"] >= min_retention * teacher_accuracy]
    if not ok:
        return None
    best = min(ok, key=lambda r: (-r["accuracy"], r["p50_ms"]))
    return best["name"]


def _table(seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = [{"name": "teacher fp32", "p50_ms": 30.0, "accuracy": 0.90, "trained": True}]
    for layers in (6, 4, 3, 2):
        for precision, speed in (("fp32", 1.0), ("int8", 0.6)):
            rows.append({"name": f"student-{layers}L {precision}", "p50_ms": round(30 * layers / 12 * speed
                                                                                   * rng.uniform(0.9, 1.1), 2),
                         "accuracy": round(0.90 - 0.01 * (12 - layers) * rng.uniform(0.3, 0.8)
                                           - (0.005 if precision == "int8" else 0), 4),
                         "trained": layers != 2})
    return rows


def _choice_case(rows: list[dict], max_latency_ms: float, min_retention: float, what: str):
    def case(fn):
        teacher = next(r["accuracy"] for r in rows if r["name"].startswith("teacher"))
        expected = reference_choice(rows, teacher, max_latency_ms, min_retention)
        got = fn([dict(r) for r in rows], teacher, max_latency_ms, min_retention)
        if got == expected:
            return
        picked = next((r for r in rows if r["name"] == got), None)
        if got is not None and picked is None:
            raise Mismatch(f"{what}: {got!r} is not a row name; return the chosen row's 'name' (or None).")
        if picked is not None and not picked["trained"]:
            raise Mismatch(f"{what}: {got!r} was never trained (timed only, its accuracy is not real): skip rows "
                           "whose 'trained' is False.")
        if picked is not None and picked["p50_ms"] > max_latency_ms:
            raise Mismatch(f"{what}: {got!r} takes {picked['p50_ms']} ms, over the {max_latency_ms} ms budget.")
        if picked is not None and picked["accuracy"] < min_retention * teacher:
            raise Mismatch(f"{what}: {got!r} keeps {picked['accuracy'] / teacher:.1%} of the teacher's accuracy, "
                           f"under the required {min_retention:.0%}.")
        if expected is None:
            raise Mismatch(f"{what}: no row meets both limits, so return None; got {got!r}.")
        raise Mismatch(f"{what}: got {got!r}, expected {expected!r}: among the rows that meet both limits take the "
                       "most accurate (the faster one on a tie).")

    return case


def check_deployment_cases(seed: int = 0) -> list:
    cases = [(f"random table {s}", _choice_case(_table(seed + s), 20.0, 0.95, f"table {s}, ≤ 20 ms, ≥ 95%"))
             for s in range(3)]
    cases.append(("nothing fits", _choice_case(_table(seed + 5), 1.0, 0.99, "≤ 1 ms, ≥ 99%")))
    tie = [{"name": "teacher fp32", "p50_ms": 30.0, "accuracy": 0.9, "trained": True},
           {"name": "a", "p50_ms": 9.0, "accuracy": 0.88, "trained": True},
           {"name": "b", "p50_ms": 7.0, "accuracy": 0.88, "trained": True},
           {"name": "untrained-fast", "p50_ms": 1.0, "accuracy": 0.95, "trained": False}]
    cases.append(("a tie and an untrained row", _choice_case(tie, 10.0, 0.9, "tie at 88%")))
    return cases


def check_deployment(fn) -> CheckResult:
    return run_cases("deployment", fn, check_deployment_cases())
