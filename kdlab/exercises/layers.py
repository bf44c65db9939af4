"""Check for the alternate-layer map of a student cut from its teacher (01-Setup)."""

from __future__ import annotations

import random

from kdlab.exercises.core import CheckResult, Mismatch, run_cases


def _map_case(teacher_layers: int, student_layers: int):
    def case(fn):
        expected = [i * teacher_layers // student_layers for i in range(student_layers)]
        got = fn(teacher_layers, student_layers)
        what = f"{teacher_layers} → {student_layers} layers"
        try:
            got = list(got)
        except TypeError:
            raise Mismatch(f"{what}: return a list of teacher layer indices, got {type(got).__name__}.") from None
        if got == expected:
            return
        if any(not isinstance(i, int) for i in got):
            raise Mismatch(f"{what}: indices must be integers ({got}); use integer division //.")
        if len(got) != student_layers:
            raise Mismatch(f"{what}: one teacher layer per student layer: {student_layers} entries, got {len(got)}.")
        top = [(i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)]
        if got == top:
            raise Mismatch(f"{what}: got {got}, which keeps the top layer. A fair map too (DistilBERT-like), but "
                           f"this exercise asks for the lab's map i·L_t // L_s = {expected}, starting at layer 0.")
        if any(not 0 <= i < teacher_layers for i in got):
            raise Mismatch(f"{what}: {got} has indices outside the teacher's layers 0..{teacher_layers - 1} "
                           "(layers are counted from 0).")
        raise Mismatch(f"{what}: got {got}, expected {expected} (student layer i ← teacher layer i·L_t // L_s).")

    return case


def check_alternate_layer_map_cases(seed: int = 0) -> list:
    """The fixed sizes, plus three drawn from ``seed`` when it is not 0 (the grader's fresh inputs)."""
    sizes = [(12, 6), (12, 4), (6, 3), (12, 12), (12, 1), (24, 6), (12, 5)]
    if seed:
        rng = random.Random(seed)
        sizes += [(t, rng.randint(1, t)) for t in (rng.randint(2, 48) for _ in range(3))]
    return [(f"{t} → {s}", _map_case(t, s)) for t, s in sizes]


def check_alternate_layer_map(fn) -> CheckResult:
    return run_cases("alternate_layer_map", fn, check_alternate_layer_map_cases())
