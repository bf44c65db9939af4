"""Losses against independent reference computations (explicit loops in float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlab.distillation.losses import (
    DistillationLoss,
    Outputs,
    attention_distribution_loss,
    attention_mse_loss,
    kd_loss,
    value_mse_loss,
    value_relation_loss,
)
from kdlab.errors import KDLabError


# --- reference implementations: per example, per head, per real query, over real keys -------------------
def _softmax_over_real_keys(a, b, bi, h, i, real):
    """softmax_j (a[bi,h,i]·b[bi,h,j] / √D) over the real key positions j, as a list of floats."""
    d = a.shape[-1]
    scores = [float((a[bi, h, i].double() * b[bi, h, j].double()).sum()) / math.sqrt(d) for j in real]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _real_positions(mask, bi):
    return [j for j in range(mask.shape[1]) if int(mask[bi, j]) == 1]


def ref_relation_kl(s_a, s_b, t_a, t_b, mask):
    per_example = []
    for bi in range(mask.shape[0]):
        real = _real_positions(mask, bi)
        values = []
        for h in range(s_a.shape[1]):
            for i in real:
                p_s = _softmax_over_real_keys(s_a, s_b, bi, h, i, real)
                p_t = _softmax_over_real_keys(t_a, t_b, bi, h, i, real)
                values.append(sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s)))
        per_example.append(sum(values) / len(values))
    return sum(per_example) / len(per_example)


def ref_attention_mse(q_s, k_s, q_t, k_t, mask):
    per_example = []
    for bi in range(mask.shape[0]):
        real = _real_positions(mask, bi)
        values = []
        for h in range(q_s.shape[1]):
            for i in real:
                a_s = _softmax_over_real_keys(q_s, k_s, bi, h, i, real)
                a_t = _softmax_over_real_keys(q_t, k_t, bi, h, i, real)
                values.extend((x - y) ** 2 for x, y in zip(a_s, a_t))
        per_example.append(sum(values) / len(values))
    return sum(per_example) / len(per_example)


def ref_value_mse(q_s, k_s, v_s, q_t, k_t, v_t, mask):
    per_example = []
    for bi in range(mask.shape[0]):
        real = _real_positions(mask, bi)
        values = []
        for h in range(q_s.shape[1]):
            for i in real:
                a_s = _softmax_over_real_keys(q_s, k_s, bi, h, i, real)
                a_t = _softmax_over_real_keys(q_t, k_t, bi, h, i, real)
                for f in range(v_s.shape[-1]):
                    o_s = sum(w * float(v_s[bi, h, j, f]) for w, j in zip(a_s, real))
                    o_t = sum(w * float(v_t[bi, h, j, f]) for w, j in zip(a_t, real))
                    values.append((o_s - o_t) ** 2)
        per_example.append(sum(values) / len(values))
    return sum(per_example) / len(per_example)


def _mask(lengths, seq):
    return torch.tensor([[1] * n + [0] * (seq - n) for n in lengths])


@pytest.fixture
def qkv_pair():
    """Student (D=6) and teacher (D=10) Q/K/V with 3 heads, batch 3, sequence 7, with padding."""
    g = torch.Generator().manual_seed(7)
    b, h, s = 3, 3, 7
    student = [torch.randn(b, h, s, 6, generator=g) for _ in range(3)]
    teacher = [torch.randn(b, h, s, 10, generator=g) * 2 for _ in range(3)]
    return student, teacher, _mask([7, 4, 1], s)


# --- Hinton KD -------------------------------------------------------------------------------------------
def test_kd_loss_zero_for_equal_logits():
    z = torch.randn(5, 3)
    assert kd_loss(z, z.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_equals_hand_computed_kl():
    s = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    t = torch.tensor([[2.0, 0.0, -1.0], [-0.5, 1.0, 2.5]])
    temp = 2.0
    total = 0.0
    for row_s, row_t in zip(s.tolist(), t.tolist()):
        zs = sum(math.exp(x / temp) for x in row_s)
        zt = sum(math.exp(x / temp) for x in row_t)
        for xs, xt in zip(row_s, row_t):
            p_s, p_t = math.exp(xs / temp) / zs, math.exp(xt / temp) / zt
            total += p_t * (math.log(p_t) - math.log(p_s))
    expected = temp**2 * total / 2
    assert kd_loss(s, t, temp).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0, 10.0])
def test_kd_loss_matches_torch_kl_div(temp):
    s, t = torch.randn(8, 2) * 3, torch.randn(8, 2) * 3
    expected = temp**2 * F.kl_div(F.log_softmax(s / temp, -1), F.softmax(t / temp, -1), reduction="batchmean")
    assert kd_loss(s, t, temp).item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)


def test_kd_loss_temperature_squared_scaling():
    # softmax(2z / 2) = softmax(z / 1): the only difference between these two calls is the T² factor.
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    assert kd_loss(2 * s, 2 * t, 2.0).item() == pytest.approx(4 * kd_loss(s, t, 1.0).item(), rel=1e-5)
    # Hinton §2: at high T the T²-scaled gradient is (z_s - z_t) / (C·B) for zero-mean logits, independent of T.
    s, t = s - s.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    s.requires_grad_(True)
    kd_loss(s, t, 200.0).backward()
    assert torch.allclose(s.grad, (s.detach() - t) / (4 * 6), rtol=2e-2, atol=1e-5)


def test_kd_loss_gradient_reaches_student_only():
    s = torch.randn(4, 2, requires_grad=True)
    t = torch.randn(4, 2, requires_grad=True)
    kd_loss(s, t, 4.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("temp", [0.0, -1.0])
def test_kd_loss_rejects_bad_temperature(temp):
    with pytest.raises(KDLabError):
        kd_loss(torch.zeros(2, 2), torch.zeros(2, 2), temp)


def test_kd_loss_rejects_different_label_counts():
    with pytest.raises(KDLabError):
        kd_loss(torch.zeros(2, 2), torch.zeros(2, 3), 1.0)


# --- MiniLM relations ------------------------------------------------------------------------------------
def test_attention_distribution_loss_matches_loop(qkv_pair):
    (q_s, k_s, _), (q_t, k_t, _), mask = qkv_pair
    expected = ref_relation_kl(q_s, k_s, q_t, k_t, mask)
    assert attention_distribution_loss(q_s, k_s, q_t, k_t, mask).item() == pytest.approx(expected, rel=1e-5)


def test_value_relation_loss_matches_loop(qkv_pair):
    (_, _, v_s), (_, _, v_t), mask = qkv_pair
    expected = ref_relation_kl(v_s, v_s, v_t, v_t, mask)
    assert value_relation_loss(v_s, v_t, mask).item() == pytest.approx(expected, rel=1e-5)


def test_relation_losses_zero_for_identical_inputs(qkv_pair):
    (q_s, k_s, v_s), _, mask = qkv_pair
    assert attention_distribution_loss(q_s, k_s, q_s.clone(), k_s.clone(), mask).item() == pytest.approx(0, abs=1e-6)
    assert value_relation_loss(v_s, v_s.clone(), mask).item() == pytest.approx(0, abs=1e-6)


def _padded(real: torch.Tensor, lengths, seq: int, g: torch.Generator) -> torch.Tensor:
    """Copy the real positions of ``real`` [B,H,S0,D] into a [B,H,seq,D] tensor of random garbage."""
    b, h, _, d = real.shape
    out = torch.randn(b, h, seq, d, generator=g) * 50
    for bi, n in enumerate(lengths):
        out[bi, :, :n] = real[bi, :, :n]
    return out


def test_relation_losses_padding_invariant():
    g = torch.Generator().manual_seed(3)
    lengths = [5, 9, 2]
    real = [torch.randn(3, 2, 9, d, generator=g) for d in (8, 8, 8, 12, 12, 12)]
    values = []
    for seq in (16, 128):
        q_s, k_s, v_s, q_t, k_t, v_t = (_padded(x, lengths, seq, g) for x in real)
        mask = _mask(lengths, seq)
        values.append((attention_distribution_loss(q_s, k_s, q_t, k_t, mask).item(),
                       value_relation_loss(v_s, v_t, mask).item()))
    (att16, val16), (att128, val128) = values
    assert att16 > 0.01 and val16 > 0.01
    assert att128 == pytest.approx(att16, abs=1e-5, rel=1e-5)
    assert val128 == pytest.approx(val16, abs=1e-5, rel=1e-5)


def test_relation_losses_gradients_reach_student_only(qkv_pair):
    (q_s, k_s, v_s), (q_t, k_t, v_t), mask = qkv_pair
    for x in (q_s, k_s, v_s, q_t, k_t, v_t):
        x.requires_grad_(True)
    (attention_distribution_loss(q_s, k_s, q_t, k_t, mask) + value_relation_loss(v_s, v_t, mask)).backward()
    for x in (q_s, k_s, v_s):
        assert x.grad is not None and x.grad.abs().sum() > 0
        # padded positions (example 1 after 4 tokens, example 2 after 1) take no part in the loss
        assert x.grad[1, :, 4:].abs().sum() == 0
        assert x.grad[2, :, 1:].abs().sum() == 0
    for x in (q_t, k_t, v_t):
        assert x.grad is None


@pytest.mark.parametrize("fn", ["attention", "value"])
def test_relation_losses_float32_for_bfloat16_inputs(qkv_pair, fn):
    (q_s, k_s, v_s), (q_t, k_t, v_t), mask = qkv_pair
    low = [x.bfloat16() for x in (q_s, k_s, v_s, q_t, k_t, v_t)]
    if fn == "attention":
        out = attention_distribution_loss(low[0], low[1], low[3], low[4], mask)
        expected = ref_relation_kl(low[0].float(), low[1].float(), low[3].float(), low[4].float(), mask)
    else:
        out = value_relation_loss(low[2], low[5], mask)
        expected = ref_relation_kl(low[2].float(), low[2].float(), low[5].float(), low[5].float(), mask)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_relation_losses_float32_under_autocast(qkv_pair):
    (q_s, k_s, v_s), (q_t, k_t, v_t), mask = qkv_pair
    with torch.autocast("cpu", dtype=torch.bfloat16):
        att = attention_distribution_loss(q_s, k_s, q_t, k_t, mask)
        val = value_relation_loss(v_s, v_t, mask)
        kd = kd_loss(q_s[:, 0, 0], q_t[:, 0, 0, :6], 4.0)
    assert att.dtype == val.dtype == kd.dtype == torch.float32
    # autocast is switched off inside: the values are the fp32 ones, not bf16 approximations
    assert att.item() == pytest.approx(ref_relation_kl(q_s, k_s, q_t, k_t, mask), rel=1e-5)
    assert val.item() == pytest.approx(ref_relation_kl(v_s, v_s, v_t, v_t, mask), rel=1e-5)


def test_relation_losses_reject_head_count_mismatch():
    mask = torch.ones(2, 5, dtype=torch.long)
    s = torch.randn(2, 4, 5, 8)
    t = torch.randn(2, 6, 5, 8)
    with pytest.raises(KDLabError, match="heads"):
        attention_distribution_loss(s, s, t, t, mask)
    with pytest.raises(KDLabError, match="heads"):
        value_relation_loss(s, t, mask)


def test_relation_losses_reject_bad_shapes():
    x = torch.randn(2, 4, 5, 8)
    with pytest.raises(KDLabError):
        value_relation_loss(x, torch.randn(2, 4, 6, 8), torch.ones(2, 5))
    with pytest.raises(KDLabError):
        value_relation_loss(x, x, torch.ones(2, 6))
    with pytest.raises(KDLabError):
        value_relation_loss(x[0], x[0], torch.ones(4, 5))


def _golden_inputs():
    """Deterministic without any RNG: smooth functions of the index (same on every torch version)."""
    b, h, s = 2, 2, 5
    n = torch.arange(b * h * s * 4, dtype=torch.float32)
    q_s = torch.sin(0.37 * n).reshape(b, h, s, 4) * 2
    k_s = torch.cos(0.23 * n).reshape(b, h, s, 4) * 2
    m = torch.arange(b * h * s * 6, dtype=torch.float32)
    q_t = torch.sin(0.11 * m + 1).reshape(b, h, s, 6) * 3
    k_t = torch.cos(0.29 * m + 2).reshape(b, h, s, 6) * 3
    mask = _mask([5, 3], s)
    return q_s, k_s, q_t, k_t, mask


# Computed once with ref_relation_kl / ref_attention_mse above (float64 loops) and stored.
GOLDEN_ATTENTION_KL = 3.2881120353602835
GOLDEN_VALUE_KL = 2.6250807487347227
GOLDEN_ATTENTION_MSE = 0.22824047448265494


def test_golden_values():
    q_s, k_s, q_t, k_t, mask = _golden_inputs()
    assert attention_distribution_loss(q_s, k_s, q_t, k_t, mask).item() == pytest.approx(GOLDEN_ATTENTION_KL, rel=1e-5)
    assert value_relation_loss(q_s, q_t, mask).item() == pytest.approx(GOLDEN_VALUE_KL, rel=1e-5)
    assert attention_mse_loss(q_s, k_s, q_t, k_t, mask).item() == pytest.approx(GOLDEN_ATTENTION_MSE, rel=1e-5)


# --- the seed's MSE variants -----------------------------------------------------------------------------
def test_attention_mse_loss_matches_loop(qkv_pair):
    (q_s, k_s, _), (q_t, k_t, _), mask = qkv_pair
    expected = ref_attention_mse(q_s, k_s, q_t, k_t, mask)
    assert attention_mse_loss(q_s, k_s, q_t, k_t, mask).item() == pytest.approx(expected, rel=1e-5)


def test_value_mse_loss_matches_loop(qkv_pair):
    (q_s, k_s, v_s), (q_t, k_t, _), mask = qkv_pair
    v_t = torch.randn_like(v_s) * 2  # equal head width required for A·V
    expected = ref_value_mse(q_s, k_s, v_s, q_t, k_t, v_t, mask)
    assert value_mse_loss(q_s, k_s, v_s, q_t, k_t, v_t, mask).item() == pytest.approx(expected, rel=1e-5)


def test_mse_losses_padding_invariant():
    g = torch.Generator().manual_seed(5)
    lengths = [3, 6]
    real = [torch.randn(2, 2, 6, 4, generator=g) for _ in range(6)]
    values = []
    for seq in (16, 128):
        padded = [_padded(x, lengths, seq, g) for x in real]
        mask = _mask(lengths, seq)
        values.append((attention_mse_loss(*padded[:2], *padded[3:5], mask).item(),
                       value_mse_loss(*padded, mask).item()))
    assert values[1] == pytest.approx(values[0], rel=1e-5, abs=1e-6)


def test_value_mse_loss_rejects_different_head_widths(qkv_pair):
    (q_s, k_s, v_s), (q_t, k_t, v_t), mask = qkv_pair
    with pytest.raises(KDLabError, match="head widths"):
        value_mse_loss(q_s, k_s, v_s, q_t, k_t, v_t, mask)


# --- DistillationLoss ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant, weights, terms",
    [
        ("ce", (1.0, 0.0, 0.0, 0.0), {"ce"}),
        ("hinton", (0.1, 0.4, 0.0, 0.0), {"ce", "kd"}),
        ("minilm", (0.1, 0.4, 0.3, 0.2), {"ce", "kd", "attention", "value"}),
    ],
)
def test_for_variant_terms_and_weights(qkv_pair, variant, weights, terms):
    (q_s, k_s, v_s), (q_t, k_t, v_t), mask = qkv_pair
    loss_fn = DistillationLoss.for_variant(variant)
    assert (loss_fn.alpha, loss_fn.beta, loss_fn.gamma, loss_fn.delta) == weights
    assert loss_fn.temperature == 4.0
    assert loss_fn.needs_teacher == (variant != "ce")
    assert loss_fn.needs_qkv == (variant == "minilm")
    logits_s = torch.randn(3, 2, requires_grad=True)
    logits_t = torch.randn(3, 2)
    labels = torch.tensor([0, 1, 1])
    parts = loss_fn(Outputs(logits_s, (q_s, k_s, v_s)), labels, Outputs(logits_t, (q_t, k_t, v_t)), mask)
    assert set(parts) == terms | {"loss"}
    named = dict(zip(("ce", "kd", "attention", "value"), weights))
    assert parts["loss"].item() == pytest.approx(sum(named[k] * parts[k].item() for k in terms), rel=1e-6)
    # CE against an independent -log softmax
    log_p = logits_s.detach() - torch.logsumexp(logits_s.detach(), -1, keepdim=True)
    assert parts["ce"].item() == pytest.approx(-log_p[torch.arange(3), labels].mean().item(), rel=1e-6)
    if "attention" in terms:
        assert parts["attention"].item() == pytest.approx(ref_relation_kl(q_s, k_s, q_t, k_t, mask), rel=1e-5)
        assert parts["value"].item() == pytest.approx(ref_relation_kl(v_s, v_s, v_t, v_t, mask), rel=1e-5)
    parts["loss"].backward()
    assert logits_s.grad is not None


def test_mse_relation_style_uses_mse_terms(qkv_pair):
    (q_s, k_s, v_s), (q_t, k_t, _), mask = qkv_pair
    v_t = torch.randn_like(v_s)
    loss_fn = DistillationLoss.for_variant("minilm", relation_style="mse")
    parts = loss_fn(Outputs(torch.randn(3, 2), (q_s, k_s, v_s)), torch.tensor([0, 1, 0]),
                    Outputs(torch.randn(3, 2), (q_t, k_t, v_t)), mask)
    assert parts["attention"].item() == pytest.approx(ref_attention_mse(q_s, k_s, q_t, k_t, mask), rel=1e-5)
    assert parts["value"].item() == pytest.approx(ref_value_mse(q_s, k_s, v_s, q_t, k_t, v_t, mask), rel=1e-5)


def test_custom_weights_pass_through_for_variant():
    loss_fn = DistillationLoss.for_variant("hinton", temperature=2.0, alpha=0.5, beta=0.5, gamma=0.7, delta=0.7)
    assert (loss_fn.temperature, loss_fn.alpha, loss_fn.beta, loss_fn.gamma, loss_fn.delta) == (2.0, 0.5, 0.5, 0, 0)


def test_unknown_variant_raises():
    with pytest.raises(KDLabError, match="unknown variant"):
        DistillationLoss.for_variant("tinybert")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(alpha=0, beta=0, gamma=0, delta=0),
        dict(alpha=-0.1),
        dict(delta=-1.0),
        dict(temperature=0.0),
        dict(temperature=-2.0),
        dict(relation_style="cosine"),
    ],
)
def test_bad_loss_settings_raise(kwargs):
    with pytest.raises(KDLabError):
        DistillationLoss(**kwargs)


def test_missing_teacher_inputs_raise():
    logits, labels = torch.randn(2, 2), torch.tensor([0, 1])
    with pytest.raises(KDLabError, match="teacher_logits"):
        DistillationLoss.for_variant("hinton")(logits, labels)
    with pytest.raises(KDLabError, match="qkv"):
        DistillationLoss.for_variant("minilm")(logits, labels, torch.randn(2, 2))
