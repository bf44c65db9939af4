"""The token-level losses of kdlab.lm.losses against independent computations (plain Python/numpy sums written from
the formulas), TRL's generalized_jsd_loss, and gradient accumulation 1 vs 2."""

import math

import numpy as np
import pytest
import torch

from kdlab.lm import losses


def _batch(seed=0, b=2, s=5, v=7, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(b, s, v, generator=g) * scale
    teacher = torch.randn(b, s, v, generator=g) * scale
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[1, 3:] = False  # a shorter second row
    return student, teacher, mask


def _softmax(row):
    e = np.exp(row - row.max())
    return e / e.sum()


def _reference(student, teacher, mask, kind, beta=0.5, alpha=0.1, t=1.0):
    """Mean over real targets of the divergence, written out position by position."""
    total, count = 0.0, 0
    for i in range(student.shape[0]):
        for j in range(student.shape[1]):
            if not mask[i, j]:
                continue
            q = _softmax(student[i, j].double().numpy() / t)
            p = _softmax(teacher[i, j].double().numpy() / t)
            kl = lambda a, b: float(np.sum(a * np.log(a / b)))  # noqa: E731
            if kind == "forward":
                d = kl(p, q)
            elif kind == "reverse":
                d = kl(q, p)
            elif kind == "jsd":
                m = beta * p + (1 - beta) * q
                d = beta * kl(p, m) + (1 - beta) * kl(q, m)
            elif kind == "skew-forward":
                d = kl(p, alpha * p + (1 - alpha) * q)
            else:
                d = kl(q, alpha * q + (1 - alpha) * p)
            total, count = total + d, count + 1
    return total / count * (t * t if t != 1 else 1.0)


@pytest.mark.parametrize("kind", losses.KINDS)
@pytest.mark.parametrize("t", [1.0, 2.0])
def test_each_divergence_matches_its_formula(kind, t):
    student, teacher, mask = _batch()
    got = losses.distillation_loss(student, teacher, mask, kind, temperature=t, beta=0.3, alpha=0.2)
    assert float(got) == pytest.approx(_reference(student, teacher, mask, kind, beta=0.3, alpha=0.2, t=t), rel=1e-5)


def test_the_ends_of_the_jsd_are_forward_and_reverse_kl_as_trl_says():
    student, teacher, mask = _batch(1)
    forward = losses.distillation_loss(student, teacher, mask, "forward")
    reverse = losses.distillation_loss(student, teacher, mask, "reverse")
    assert float(losses.distillation_loss(student, teacher, mask, "jsd", beta=0.0)) == pytest.approx(float(forward))
    assert float(losses.distillation_loss(student, teacher, mask, "jsd", beta=1.0)) == pytest.approx(float(reverse))
    assert float(forward) != pytest.approx(float(reverse), rel=1e-3)  # the two directions differ on these logits


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_equal_to_trl_generalized_jsd_loss(beta):
    trl = pytest.importorskip("trl.experimental.gkd", reason="trl is in the dev extra; CI installs it")
    student, teacher, mask = _batch(2)
    labels = torch.where(mask, torch.zeros_like(mask, dtype=torch.long), torch.full_like(mask, -100, dtype=torch.long))
    theirs = trl.GKDTrainer.generalized_jsd_loss(student, teacher, labels=labels, beta=beta)
    ours = losses.distillation_loss(student, teacher, mask, "jsd", beta=beta)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5, abs=1e-7)
    n = int(mask.sum()) + 3  # a global count, as under gradient accumulation
    theirs = trl.GKDTrainer.generalized_jsd_loss(student, teacher, labels=labels, beta=beta, num_items_in_batch=n)
    assert float(losses.distillation_loss(student, teacher, mask, "jsd", beta=beta, num_items=n)) == pytest.approx(
        float(theirs), rel=1e-5, abs=1e-7)


def test_gradient_accumulation_gives_the_one_big_batch_gradient():
    """Two micro-batches with different numbers of real targets, each divided by the global count, sum to the
    gradient of the whole batch; dividing each by its own count (and averaging) does not."""
    student, teacher, mask = _batch(3, b=4, s=6)
    mask[0, 1:] = False  # micro-batch 1 (rows 0-1) has far fewer targets than micro-batch 2
    whole = student.clone().requires_grad_(True)
    losses.distillation_loss(whole, teacher, mask, "reverse").backward()
    n = int(mask.sum())
    parts = student.clone().requires_grad_(True)
    for rows in (slice(0, 2), slice(2, 4)):
        losses.distillation_loss(parts[rows], teacher[rows], mask[rows], "reverse", num_items=n).backward()
    assert torch.allclose(parts.grad, whole.grad, atol=1e-7)
    naive = student.clone().requires_grad_(True)
    for rows in (slice(0, 2), slice(2, 4)):
        (losses.distillation_loss(naive[rows], teacher[rows], mask[rows], "reverse") / 2).backward()
    assert not torch.allclose(naive.grad, whole.grad, atol=1e-4)


def test_half_precision_logits_and_masked_vocabulary_rows_stay_finite():
    student, teacher, mask = _batch(4)
    teacher[..., -1] = float("-inf")  # a vocabulary row the teacher never predicts
    student = student.half().requires_grad_(True)
    for kind in losses.KINDS:
        if kind in ("reverse", "skew-reverse"):
            continue  # KL(q ‖ p) is truly infinite when p = 0 where q > 0: not a numerical accident
        loss = losses.distillation_loss(student, teacher.half(), mask, kind)
        loss.backward()
        assert math.isfinite(float(loss)) and torch.isfinite(student.grad).all(), kind
        student.grad = None


def test_an_all_zero_mask_gives_zero_with_a_gradient_not_nan():
    student, teacher, mask = _batch(5)
    student.requires_grad_(True)
    loss = losses.distillation_loss(student, teacher, torch.zeros_like(mask), "jsd")
    loss.backward()
    assert float(loss) == 0.0 and torch.isfinite(student.grad).all()


def test_the_top_k_cache_loss_is_the_full_forward_kl_at_k_equal_v_and_a_lower_bound_below():
    student, teacher, mask = _batch(6, v=11)
    full = losses.distillation_loss(student, teacher, mask, "forward")
    log_p = torch.log_softmax(teacher, -1)
    for k, exact in ((11, True), (4, False)):
        top_lp, top_ids = log_p.topk(k, -1)
        sparse = losses.sparse_forward_kl(student, top_ids, top_lp, mask)
        if exact:
            assert float(sparse) == pytest.approx(float(full), rel=1e-5)
        else:
            assert 0 < float(sparse) < float(full)  # coarsening a distribution never increases a KL


def test_cross_entropy_is_the_mean_nll_of_the_targets():
    student, _, mask = _batch(7)
    targets = torch.randint(0, 7, mask.shape, generator=torch.Generator().manual_seed(0))
    expected = np.mean([-math.log(_softmax(student[i, j].double().numpy())[targets[i, j]])
                        for i in range(2) for j in range(5) if mask[i, j]])
    assert float(losses.cross_entropy(student, targets, mask)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
def test_the_three_temperature_conventions(kind):
    """Hinton/DistillKit: T² · D at T; TRL GKD: D at T = 1 whatever T; TRL DistillationTrainer: D at T, no T²."""
    student, teacher, mask = _batch(8)
    t = 3.0
    at_t = _reference(student, teacher, mask, kind, t=t) / t**2  # the reference multiplies by T² at T != 1
    at_1 = _reference(student, teacher, mask, kind)
    got = {c: float(losses.distillation_loss(student, teacher, mask, kind, temperature=t, convention=c))
           for c in losses.CONVENTIONS}
    assert got["hinton"] == pytest.approx(t**2 * at_t, rel=1e-5)
    assert got["trl-gkd"] == pytest.approx(at_1, rel=1e-5)
    assert got["trl-distillation"] == pytest.approx(at_t, rel=1e-5)
    assert len({round(v, 6) for v in got.values()}) == 3  # three different losses at T != 1 ...
    same = {c: float(losses.distillation_loss(student, teacher, mask, kind, convention=c)) for c in losses.CONVENTIONS}
    assert max(same.values()) - min(same.values()) < 1e-6  # ... and one at T = 1
    with pytest.raises(ValueError, match="convention"):
        losses.distillation_loss(student, teacher, mask, kind, temperature=t, convention="T^2")


def test_trl_at_a_temperature_is_the_no_t_squared_convention():
    trl = pytest.importorskip("trl.experimental.gkd", reason="trl is in the dev extra; CI installs it")
    student, teacher, mask = _batch(9)
    labels = torch.where(mask, torch.zeros_like(mask, dtype=torch.long), torch.full_like(mask, -100, dtype=torch.long))
    theirs = trl.GKDTrainer.generalized_jsd_loss(student, teacher, labels=labels, beta=0.5, temperature=2.0)
    ours = losses.distillation_loss(student, teacher, mask, "jsd", temperature=2.0, beta=0.5,
                                    convention="trl-distillation")
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_mix_is_lambda_kd_plus_one_minus_lambda_ce():
    kd, ce = torch.tensor(2.0), torch.tensor(5.0)
    assert float(losses.mix(kd, ce, 0.25)) == pytest.approx(0.75 * 2 + 0.25 * 5)
    assert float(losses.mix(kd, None, 0.0)) == 2.0


@pytest.mark.parametrize("kind", losses.KINDS)
@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_chunked_losses_equal_the_whole_loss_in_value_and_gradient(kind, chunk):
    """Real positions only, ``chunk`` at a time (a chunk size that divides nothing, one, and more than all): the
    value and the gradient of the student's logits are those of the loss computed whole."""
    student, teacher, mask = _batch(10, b=3, s=6, v=9)
    mask[2, 1:] = False
    whole = student.clone().requires_grad_(True)
    ref = losses.distillation_loss(whole, teacher, mask, kind, temperature=2.0, beta=0.3, num_items=20)
    ref.backward()
    part = student.clone().requires_grad_(True)
    got = losses.distillation_loss(part, teacher, mask, kind, temperature=2.0, beta=0.3, num_items=20,
                                   chunk_tokens=chunk)
    (got * 3).backward()  # an upstream factor reaches the chunked gradient too
    assert float(got) == pytest.approx(float(ref), rel=1e-6)
    assert torch.allclose(part.grad, 3 * whole.grad, atol=1e-7)
    assert (part.grad[~mask] == 0).all()  # padding positions are never computed


@pytest.mark.parametrize("chunk", [2, 5])
def test_chunked_cross_entropy_and_cached_loss_equal_the_whole_ones(chunk):
    student, teacher, mask = _batch(11, v=11)
    targets = torch.randint(0, 11, mask.shape, generator=torch.Generator().manual_seed(1))
    top_lp, top_ids = torch.log_softmax(teacher, -1).topk(4, -1)
    for fn, args in ((losses.cross_entropy, (targets, mask)), (losses.sparse_forward_kl, (top_ids, top_lp, mask))):
        a, b = student.clone().requires_grad_(True), student.clone().requires_grad_(True)
        ref = fn(a, *args)
        ref.backward()
        got = fn(b, *args, chunk_tokens=chunk)
        got.backward()
        assert float(got) == pytest.approx(float(ref), rel=1e-6) and torch.allclose(a.grad, b.grad, atol=1e-7)


def test_a_chunked_loss_with_no_target_is_zero_with_a_gradient():
    student, teacher, mask = _batch(12)
    student.requires_grad_(True)
    loss = losses.distillation_loss(student, teacher, torch.zeros_like(mask), "jsd", chunk_tokens=4)
    loss.backward()
    assert float(loss) == 0.0 and torch.isfinite(student.grad).all()
