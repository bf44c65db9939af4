"""Check for the masked per-token reverse KL (advanced/07-LLM-Distillation).

``masked_reverse_kl(student_logits, teacher_logits, mask)``: logits ``[B, S, V]``, mask ``[B, S]`` (1 = a real
target); the mean over real positions of KL(q ‖ p) = Σ_v q_v (log q_v − log p_v), q = softmax(student), p =
softmax(teacher), at T = 1. The reference is written here from the formula, independently of ``kdlab.lm.losses``.
"""

from __future__ import annotations

import torch

from kdlab.exercises.core import CheckResult, Mismatch, as_float, close, diagnose, run_cases


def _per_position(z_s: torch.Tensor, z_t: torch.Tensor, reverse: bool = True) -> torch.Tensor:
    """KL at each position, ``[B, S]``, in float64."""
    log_q = torch.log_softmax(z_s.double(), -1)
    log_p = torch.log_softmax(z_t.double(), -1)
    a, b = (log_q, log_p) if reverse else (log_p, log_q)
    return (a.exp() * (a - b)).sum(-1)


def reference_reverse_kl(z_s, z_t, mask) -> float:
    values = _per_position(z_s, z_t)
    mask = mask.double()
    return float((values * mask).sum() / mask.sum().clamp_min(1))


def _alternatives(z_s, z_t, mask) -> dict[str, float]:
    m = mask.double()
    rev, fwd = _per_position(z_s, z_t), _per_position(z_s, z_t, reverse=False)
    count = m.sum().clamp_min(1)
    per_row = (rev * m).sum(1) / m.sum(1).clamp_min(1)
    return {
        "the direction is forward KL(p ‖ q) = Σ p (log p − log q); reverse KL weights by the STUDENT's "
        "probabilities: Σ_v q_v (log q_v − log p_v).": float((fwd * m).sum() / count),
        "padding positions are counted: average over the real targets only (Σ mask·KL / Σ mask).":
            float(rev.mean()),
        "you divided by all B·S positions: divide the masked sum by the number of real targets (mask.sum()).":
            float((rev * m).sum() / m.numel()),
        "you averaged each row, then the rows: a long sequence must weigh more than a short one — sum over every "
        "real token of the batch, then divide once by their number.": float(per_row.mean()),
        "you summed over the tokens: divide by the number of real targets.": float((rev * m).sum()),
        "the KL was also averaged over the vocabulary: sum over v, average over positions.":
            float((rev * m).sum() / count / z_s.shape[-1]),
    }


def _case(b: int, s: int, v: int, seed: int, what: str, pad_from: int | None = None, scale: float = 2.0,
          equal: bool = False, half: bool = False):
    def case(fn):
        g = torch.Generator().manual_seed(seed)
        z_t = torch.randn(b, s, v, generator=g) * scale
        z_s = z_t.clone() if equal else torch.randn(b, s, v, generator=g) * scale
        mask = torch.ones(b, s)
        if pad_from is not None:
            mask[-1, pad_from:] = 0  # the last sequence is shorter: right padding
        student = (z_s.half() if half else z_s).clone().requires_grad_(True)
        teacher = z_t.half() if half else z_t.clone()
        out = fn(student, teacher, mask.clone())
        got = as_float(out, "masked_reverse_kl")
        expected = reference_reverse_kl(student.detach().float(), teacher.float(), mask)
        if not close(got, expected, rel=2e-3 if half else 1e-4, abs_=1e-6):
            diagnose(got, expected, {} if equal else _alternatives(z_s, z_t, mask), what)
        if equal:
            return
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise Mismatch(f"{what}: the result carries no gradient: build it from the student's logits with torch "
                           "operations (no .item(), .numpy() or .detach()) so the student can be trained by it.")
        out.backward()
        if student.grad is None or not torch.isfinite(student.grad).all():
            raise Mismatch(f"{what}: the gradient on the student's logits is missing or not finite; compute the "
                           "log-probabilities with log_softmax (in float32) rather than log(softmax(...)).")

    return case


def check_masked_reverse_kl_cases(seed: int = 0) -> list:
    return [
        ("one sequence, every position real", _case(1, 4, 5, seed, "B=1, S=4, V=5")),
        ("a batch with a padded sequence", _case(3, 6, 7, seed + 1, "B=3, S=6 (last row: 2 real)", pad_from=2)),
        ("sequences of very different lengths", _case(2, 9, 4, seed + 2, "B=2, S=9 (last row: 1 real)", pad_from=1)),
        ("equal logits give 0", _case(2, 3, 5, seed + 3, "equal logits", equal=True)),
        ("large logits stay finite", _case(2, 4, 6, seed + 4, "logits around ±200", pad_from=3, scale=80.0)),
        ("fp16 logits (autocast) stay finite", _case(2, 5, 6, seed + 5, "float16 logits", pad_from=4, half=True)),
    ]


def check_masked_reverse_kl(fn) -> CheckResult:
    return run_cases("masked_reverse_kl", fn, check_masked_reverse_kl_cases())
