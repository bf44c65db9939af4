"""Checks for MiniLM's self-attention distribution transfer and value relation (02-Distill)."""

from __future__ import annotations

import math

import torch

from kdlab.distillation.losses import attention_distribution_loss, value_relation_loss
from kdlab.exercises.core import REVERSED_KL, CheckResult, Mismatch, as_float, close, diagnose, run_cases


def _qkv(b: int, h: int, s: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(b, h, s, d, generator=torch.Generator().manual_seed(seed))


def _mask(lengths: list[int], s: int) -> torch.Tensor:
    return (torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]).long()


def _kl_variant(a_s, b_s, a_t, b_t, mask, *, mask_keys=True, mask_queries=True, scale=True, reverse=False,
                heads="mean") -> float:
    """MiniLM's relation KL, or one of its usual mistakes (for the hints)."""
    real = mask.bool()
    keys = real[:, None, None, :] if mask_keys else torch.ones_like(real)[:, None, None, :].bool()

    def log_rel(a, b):
        scores = a @ b.transpose(-1, -2)
        if scale:
            scores = scores / math.sqrt(a.shape[-1])
        return torch.log_softmax(scores.masked_fill(~keys, -1e9), -1)

    ls, lt = log_rel(a_s, b_s), log_rel(a_t, b_t)
    if reverse:
        ls, lt = lt, ls
    kl = (lt.exp() * (lt - ls)).masked_fill(~keys, 0.0).sum(-1)  # [B, H, S]
    q = real[:, None, :].float() if mask_queries else torch.ones_like(real)[:, None, :].float()
    per_head = (kl * q).sum(-1) / q.sum(-1).clamp(min=1)  # [B, H]
    per_example = per_head.mean(1) if heads == "mean" else per_head.sum(1)
    return float(per_example.mean())


def _hints(a_s, b_s, a_t, b_t, mask) -> dict[str, float]:
    return {
        "padding keys are not masked: set the scores of padded keys to a very negative number (or -inf) before "
        "the softmax, so no attention goes to [PAD].": _kl_variant(a_s, b_s, a_t, b_t, mask, mask_keys=False),
        "padded query positions are averaged in: average the KL over the real (mask = 1) queries only.":
            _kl_variant(a_s, b_s, a_t, b_t, mask, mask_queries=False),
        "padding is ignored twice over: mask the keys and average over real queries.":
            _kl_variant(a_s, b_s, a_t, b_t, mask, mask_keys=False, mask_queries=False),
        "the scores are not scaled: divide QKᵀ (or VVᵀ) by √d, d = the head width.":
            _kl_variant(a_s, b_s, a_t, b_t, mask, scale=False),
        f"{REVERSED_KL}: MiniLM uses KL(teacher ‖ student) = Σ A_t (log A_t − log A_s).":
            _kl_variant(a_s, b_s, a_t, b_t, mask, reverse=True),
        "you summed over the heads: average over heads (and over real queries, then over the batch).":
            _kl_variant(a_s, b_s, a_t, b_t, mask, heads="sum"),
    }


def _relation_case(kind: str, what: str, lengths: list[int], s: int, heads: int, d_s: int, d_t: int, seed: int,
                   identical: bool = False, garbage: bool = False):
    """kind 'attention': fn(q_s, k_s, q_t, k_t, mask); kind 'value': fn(v_s, v_t, mask)."""

    def case(fn):
        b = len(lengths)
        mask = _mask(lengths, s)
        q_t, k_t, v_t = (_qkv(b, heads, s, d_t, seed + i) for i in range(3))
        if identical:
            q_s, k_s, v_s = q_t.clone(), k_t.clone(), v_t.clone()
        else:
            q_s, k_s, v_s = (_qkv(b, heads, s, d_s, seed + 10 + i) for i in range(3))
        if kind == "attention":
            expected = float(attention_distribution_loss(q_s, k_s, q_t, k_t, mask))
            args = [q_s, k_s, q_t, k_t]
            hint_args = (q_s, k_s, q_t, k_t, mask)
        else:
            expected = float(value_relation_loss(v_s, v_t, mask))
            args = [v_s, v_t]
            hint_args = (v_s, v_s, v_t, v_t, mask)
        if garbage:  # huge values where the mask says padding: a masked loss does not see them
            pad = ~mask.bool()
            for x in args:
                x.masked_fill_(pad[:, None, :, None], 50.0)
        got = as_float(fn(*[x.clone() for x in args], mask.clone()), f"{kind} loss")
        if close(got, expected, rel=1e-4, abs_=1e-6):
            return
        if garbage:
            raise Mismatch(f"{what}: changing the values at padded positions changed your loss ({got:.6g} instead "
                           f"of {expected:.6g}). Padded keys must get no attention (mask the scores before the "
                           "softmax) and padded queries must not be averaged in.")
        diagnose(got, expected, {} if identical else _hints(*hint_args), what)

    return case


def check_attention_kl_cases(seed: int = 0) -> list:
    case = _relation_case
    return [
        ("no padding", case("attention", "B=2, H=4, S=6, no padding", [6, 6], 6, 4, 8, 8, seed)),
        ("with padding", case("attention", "lengths 6 and 3 of S=6", [6, 3], 6, 4, 8, 8, seed + 1)),
        ("identical Q/K give 0", case("attention", "identical inputs", [5, 2], 5, 2, 4, 4, seed + 2, identical=True)),
        ("garbage in padded positions", case("attention", "garbage at padding", [6, 2], 6, 2, 8, 8, seed + 3,
                                             garbage=True)),
        ("student and teacher head widths differ", case("attention", "D_s=8, D_t=16", [4, 7], 7, 2, 8, 16, seed + 4)),
    ]


def check_value_relation_cases(seed: int = 0) -> list:
    case = _relation_case
    return [
        ("no padding", case("value", "B=2, H=4, S=6, no padding", [6, 6], 6, 4, 8, 8, seed + 5)),
        ("with padding", case("value", "lengths 6 and 2 of S=6", [6, 2], 6, 4, 8, 8, seed + 6)),
        ("identical V gives 0", case("value", "identical inputs", [3, 5], 5, 2, 4, 4, seed + 7, identical=True)),
        ("garbage in padded positions", case("value", "garbage at padding", [6, 3], 6, 2, 8, 8, seed + 8,
                                             garbage=True)),
        ("student and teacher head widths differ", case("value", "D_s=4, D_t=12", [5, 5], 5, 3, 4, 12, seed + 9)),
    ]


def check_attention_kl(fn) -> CheckResult:
    return run_cases("attention_kl", fn, check_attention_kl_cases())


def check_value_relation(fn) -> CheckResult:
    return run_cases("value_relation", fn, check_value_relation_cases())
