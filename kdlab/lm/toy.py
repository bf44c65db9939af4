"""Mean-seeking vs mode-seeking on a picture: a one-mode student fitted to a two-mode teacher.

The teacher p is a mixture of two Gaussians over a grid of ``bins`` points; the student q is one discretised
Gaussian (mean μ, width σ). Fitting (μ, log σ) by gradient descent on the forward KL(p ‖ q) spreads q over both
modes (it must put mass wherever p has some: *mean-seeking*); on the reverse KL(q ‖ p) it settles on one mode (it is
punished for mass where p has little: *mode-seeking*). A language-model student that cannot represent every
continuation the teacher would write faces the same choice, token by token.
"""

from __future__ import annotations

import torch

from kdlab.lm.losses import per_token_divergence


def grid(bins: int = 121, low: float = -6.0, high: float = 6.0) -> torch.Tensor:
    return torch.linspace(low, high, bins)


def two_modes(x: torch.Tensor, centres=(-2.5, 2.5), width: float = 0.7, weights=(0.5, 0.5)) -> torch.Tensor:
    """log p over ``x``: a mixture of two Gaussians, normalised on the grid."""
    comps = [torch.log(torch.tensor(w)) - 0.5 * ((x - c) / width) ** 2 for c, w in zip(centres, weights)]
    logits = torch.logsumexp(torch.stack(comps), 0)
    return torch.log_softmax(logits, -1)


def one_mode_logits(x: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mu) / log_sigma.exp()) ** 2


def fit(kind: str, x: torch.Tensor | None = None, teacher_log_p: torch.Tensor | None = None, steps: int = 600,
        lr: float = 0.05, start=(1.0, -0.693)) -> dict:
    """``{"mu", "sigma", "log_q", "divergence"}`` of the one-mode student fitted by ``kind`` ("forward" or
    "reverse", ``kdlab.lm.losses``) from ``start`` (μ, log σ) — μ = 1, σ = 0.5: between the modes, nearer the
    right one — the same start for both, so only the loss differs. (From a start far from both modes the reverse
    KL can also stall on a broad q: a local optimum; mode-seeking is what its good optima look like.)"""
    x = grid() if x is None else x
    log_p = two_modes(x) if teacher_log_p is None else teacher_log_p
    mu = torch.tensor(float(start[0]), requires_grad=True)
    log_sigma = torch.tensor(float(start[1]), requires_grad=True)
    opt = torch.optim.Adam([mu, log_sigma], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = per_token_divergence(one_mode_logits(x, mu, log_sigma)[None, None], log_p[None, None], kind)[0, 0]
        loss.backward()
        opt.step()
    with torch.no_grad():
        log_q = torch.log_softmax(one_mode_logits(x, mu, log_sigma), -1)
        value = float(per_token_divergence(log_q[None, None], log_p[None, None], kind)[0, 0])
    return {"mu": mu.item(), "sigma": log_sigma.exp().item(), "log_q": log_q, "divergence": value}
