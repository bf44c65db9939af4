"""Loss schedules over training: which terms count when, and the KD temperature, as functions of the training
progress p = step / total steps ∈ [0, 1].

Weight schedules (``weight_schedule``), from the loss's fixed weights α (CE), β (KD), γ (attention), δ (value):

- ``constant``: α, β, γ, δ throughout (the lab's default).
- ``staged``: relations first, then logits (MiniLM/TinyBERT's two stages in one run): for p < ``split`` only the
  inner terms count (0, 0, γ, δ; the relation-head and hidden-state terms with them); from ``split`` on only the
  logits terms (α, β, 0, 0). A loss without inner terms (``ce``, ``hinton``) has no first stage and keeps its
  weights.
- ``soft-to-hard``: soft labels first, hard labels later (the course text): the logits weight s = α + β moves
  linearly from the teacher to the gold labels, α(p) = s·p and β(p) = s·(1 − p); γ, δ unchanged.

Temperature schedules (``temperature_schedule``):

- ``constant``: T throughout.
- ``anneal``: T(p) = T₀ + (T_end − T₀)·p, linear from the configured T₀ to ``final_temperature`` (the course:
  lower the temperature during training). The KD term keeps its T(p)² factor.
"""

from __future__ import annotations

from kdlab.errors import KDLabError
from kdlab.validation import TEMPERATURE_SCHEDULES, WEIGHT_SCHEDULES

STAGE_SPLIT = 0.5  # `staged`: share of the training steps given to the inner (relation) terms


def _progress(progress: float | None) -> float:
    if progress is None:
        return 0.0
    return min(1.0, max(0.0, float(progress)))


def scheduled_weights(schedule: str, progress: float | None, weights: dict[str, float],
                      split: float = STAGE_SPLIT) -> dict[str, float]:
    """The loss weights at ``progress`` (None counts as 0: the start). ``weights``: term name → fixed weight, with
    ``ce`` and ``kd`` the logits terms and every other name an inner term (attention, value, relation, hidden).

        staged:        p < split → inner terms only;  p ≥ split → logits terms only
        soft-to-hard:  ce = (w_ce + w_kd)·p,  kd = (w_ce + w_kd)·(1 − p)
    """
    p = _progress(progress)
    out = dict(weights)
    if schedule == "constant":
        return out
    if schedule == "staged":
        inner = [k for k in out if k not in ("ce", "kd")]
        if not any(out[k] > 0 for k in inner):
            return out  # no relation stage to run first
        for k in (inner if p >= split else ("ce", "kd")):
            out[k] = 0.0
        return out
    if schedule == "soft-to-hard":
        s = out.get("ce", 0.0) + out.get("kd", 0.0)
        out["ce"], out["kd"] = s * p, s * (1.0 - p)
        return out
    raise KDLabError(f"weight_schedule={schedule!r}: use one of {', '.join(WEIGHT_SCHEDULES)}.")


def scheduled_temperature(schedule: str, progress: float | None, temperature: float, final: float = 1.0) -> float:
    """T at ``progress``: constant, or linear from ``temperature`` to ``final`` (``anneal``)."""
    if schedule == "constant":
        return float(temperature)
    if schedule == "anneal":
        return float(temperature + (final - temperature) * _progress(progress))
    raise KDLabError(f"temperature_schedule={schedule!r}: use one of {', '.join(TEMPERATURE_SCHEDULES)}.")
