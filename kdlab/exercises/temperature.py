"""Checks for softmax with temperature (01-Setup) and Hinton's KD loss (02-Distill)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlab.exercises.core import REVERSED_KL, CheckResult, Mismatch, as_float, close, diagnose, run_cases


def _logits(b: int, c: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(b, c, generator=torch.Generator().manual_seed(seed)) * scale


# --- softmax with temperature ------------------------------------------------------------------------------------
def _softmax_case(z: torch.Tensor, t: float, what: str):
    def case(fn):
        out = fn(z.clone(), t)
        if not isinstance(out, torch.Tensor) or out.shape != z.shape:
            raise Mismatch(f"{what}: return a tensor shaped like the logits {tuple(z.shape)}, got "
                           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}.")
        out = out.float()
        expected = torch.softmax(z / t, dim=-1)
        if torch.allclose(out, expected, atol=1e-5):
            return
        if not torch.isfinite(out).all():
            raise Mismatch(f"{what}: NaN or inf for large logits. exp(z/T) overflows: subtract the row's maximum "
                           "first, or call torch.softmax(z / T, dim=-1).")
        hints = {
            "you multiplied the logits by T; divide them: softmax(z / T).": torch.softmax(z * t, -1),
            "the temperature is not used: softmax(z / T).": torch.softmax(z, -1),
            "normalize over the classes (the last dimension), not over the batch.": torch.softmax(z / t, 0),
        }
        for hint, alt in hints.items():
            if alt.shape == out.shape and torch.allclose(out, alt, atol=1e-5):
                raise Mismatch(f"{what}: {hint}")
        if not torch.allclose(out.sum(-1), torch.ones(z.shape[0]), atol=1e-4):
            raise Mismatch(f"{what}: the probabilities of each row must sum to 1 (they sum to "
                           f"{[round(x, 3) for x in out.sum(-1).tolist()]}).")
        raise Mismatch(f"{what}: max difference {float((out - expected).abs().max()):.3g} from softmax(z / T).")

    return case


def check_softmax_temperature_cases(seed: int = 0) -> list:
    return [
        ("T = 1 is the ordinary softmax", _softmax_case(_logits(4, 3, seed), 1.0, "T = 1")),
        ("T = 4 softens", _softmax_case(_logits(4, 3, seed + 1), 4.0, "T = 4")),
        ("T = 0.5 sharpens", _softmax_case(_logits(4, 2, seed + 2), 0.5, "T = 0.5")),
        ("equal logits give a uniform distribution", _softmax_case(torch.zeros(2, 5), 3.0, "equal logits")),
        ("large logits stay finite", _softmax_case(torch.tensor([[1000.0, 0.0, -1000.0]]), 2.0, "large logits")),
    ]


def check_softmax_temperature(fn) -> CheckResult:
    return run_cases("softmax_temperature", fn, check_softmax_temperature_cases())


# --- Hinton's KD loss --------------------------------------------------------------------------------------------
def reference_kd(z_s: torch.Tensor, z_t: torch.Tensor, t: float) -> float:
    """T² · mean_b KL(softmax(z_t/T) ‖ softmax(z_s/T)), computed independently with F.kl_div(batchmean)."""
    return float(F.kl_div(F.log_softmax(z_s / t, -1), F.log_softmax(z_t / t, -1), reduction="batchmean",
                          log_target=True) * t * t)


def _kd_alternatives(z_s, z_t, t) -> dict[str, float]:
    ref = reference_kd(z_s, z_t, t)
    b, c = z_s.shape
    reversed_kl = float(F.kl_div(F.log_softmax(z_t / t, -1), F.log_softmax(z_s / t, -1), reduction="batchmean",
                                 log_target=True) * t * t)
    return {
        "the T² factor is missing: multiply the KL by T² (Hinton et al.: it keeps the soft targets' gradients "
        "from shrinking as 1/T²).": ref / (t * t),
        "T² is applied twice (wrong by a factor T²).": ref * t * t,
        f"{REVERSED_KL}: Hinton's loss is KL(p_teacher ‖ p_student) = Σ p_t (log p_t − log p_s).":
            reversed_kl,
        "you summed over the batch: average over the examples (F.kl_div(..., reduction='batchmean')).": ref * b,
        "reduction='mean' also averages over the classes: use reduction='batchmean' (sum over classes, mean over "
        "examples).": ref / c,
        "the logits are not divided by T before the softmax (both distributions must be softened).":
            reference_kd(z_s, z_t, 1.0) * t * t,
        "only the teacher is softened: divide the student's logits by T too.":
            float(F.kl_div(F.log_softmax(z_s, -1), F.log_softmax(z_t / t, -1), reduction="batchmean",
                           log_target=True) * t * t),
    }


def _kd_case(b: int, c: int, t: float, seed: int, what: str, equal: bool = False, scale: float = 3.0):
    def case(fn):
        z_t = _logits(b, c, seed, scale)
        z_s = z_t.clone() if equal else _logits(b, c, seed + 100, scale)
        student = z_s.clone().requires_grad_(True)
        teacher = z_t.clone().requires_grad_(True)
        out = fn(student, teacher, t)
        got = as_float(out, "kd_loss")
        expected = reference_kd(z_s, z_t, t)
        if not close(got, expected, rel=1e-4, abs_=1e-6):
            diagnose(got, expected, {} if equal else _kd_alternatives(z_s, z_t, t), what)
        if isinstance(out, torch.Tensor) and out.requires_grad and not equal:
            out.backward()
            if student.grad is None or not torch.isfinite(student.grad).all():
                raise Mismatch(f"{what}: no finite gradient reaches the student's logits; keep the computation "
                               "in torch (no .item(), .numpy() or .detach() on the student side).")
        elif not equal and not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise Mismatch(f"{what}: the result carries no gradient; build it from the student's logits with "
                           "torch operations so that loss.backward() can train the student.")

    return case


def check_kd_loss_cases(seed: int = 0) -> list:
    return [
        ("two classes, T = 4", _kd_case(8, 2, 4.0, seed, "B=8, C=2, T=4")),
        ("five classes, T = 2", _kd_case(6, 5, 2.0, seed + 1, "B=6, C=5, T=2")),
        ("T = 1 is plain KL", _kd_case(4, 3, 1.0, seed + 2, "T=1")),
        ("equal logits give 0", _kd_case(5, 4, 4.0, seed + 3, "equal logits", equal=True)),
        ("T = 10", _kd_case(3, 3, 10.0, seed + 4, "T=10")),
        ("a batch of one", _kd_case(1, 2, 4.0, seed + 5, "B=1")),
        ("large logits stay finite", _kd_case(4, 3, 2.0, seed + 6, "logits around ±300", scale=100.0)),
    ]


def check_kd_loss(fn) -> CheckResult:
    return run_cases("kd_loss", fn, check_kd_loss_cases())
