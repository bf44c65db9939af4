"""MiniLMv2 relation heads (kdlab.distillation.relations) against explicit float64 loops, and Q/K/V capture of
any layer."""

import math

import pytest
import torch

from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.losses import attention_distribution_loss, value_relation_loss
from kdlab.distillation.relations import (
    check_relation_setup,
    common_relation_heads,
    relation_heads_loss,
    relation_heads_terms,
    split_relation_heads,
)
from kdlab.errors import KDLabError
from kdlab.models.layers import encoder_layers
from kdlab.models.tiny import build_tiny_bert

KIND_INDEX = {"q": 0, "k": 1, "v": 2}


# --- an independent reference: loops over examples, relation heads, real queries and real keys ------------------
def _relation_row(x, y, b, a, d_r, i, real):
    """softmax_j (x[b,i,a-th slice] · y[b,j,a-th slice] / √d_r) over real keys j, as floats."""
    lo, hi = a * d_r, (a + 1) * d_r
    scores = [sum(float(x[b, i, f]) * float(y[b, j, f]) for f in range(lo, hi)) / math.sqrt(d_r) for j in real]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def ref_relation_heads(student, teacher, mask, heads, kinds):
    total = 0.0
    for kind in kinds:
        xs, ys = student[KIND_INDEX[kind[0]]], student[KIND_INDEX[kind[1]]]
        xt, yt = teacher[KIND_INDEX[kind[0]]], teacher[KIND_INDEX[kind[1]]]
        d_s, d_t = xs.shape[-1] // heads, xt.shape[-1] // heads
        per_example = []
        for b in range(mask.shape[0]):
            real = [j for j in range(mask.shape[1]) if int(mask[b, j]) == 1]
            values = []
            for a in range(heads):
                for i in real:
                    p_s = _relation_row(xs, ys, b, a, d_s, i, real)
                    p_t = _relation_row(xt, yt, b, a, d_t, i, real)
                    values.append(sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s)))
            per_example.append(sum(values) / len(values))
        total += sum(per_example) / len(per_example)
    return total


def _states(batch, seq, width, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, seq, width, generator=g) for _ in range(3))


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])


def test_split_relation_heads_matches_slices():
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).reshape(2, 3, 12)
    out = split_relation_heads(x, 4)
    assert out.shape == (2, 4, 3, 3)
    for b in range(2):
        for a in range(4):
            for s in range(3):
                assert out[b, a, s].tolist() == x[b, s, 3 * a:3 * a + 3].tolist()
    with pytest.raises(KDLabError, match="divide"):
        split_relation_heads(x, 5)


@pytest.mark.parametrize("heads, kinds", [(4, ("qq", "kk", "vv")), (8, ("vv",)), (2, ("qk", "vv"))])
def test_relation_heads_loss_matches_loops_across_widths(heads, kinds):
    student = _states(3, 5, 32, seed=1)  # 32 wide (e.g. 2 heads of 16)
    teacher = _states(3, 5, 64, seed=2)  # 64 wide (e.g. 4 heads of 16)
    expected = ref_relation_heads(student, teacher, MASK, heads, kinds)
    got = relation_heads_loss(student, teacher, MASK, heads, kinds)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    terms = relation_heads_terms(student, teacher, MASK, heads, kinds)
    assert list(terms) == list(kinds)
    assert sum(t.item() for t in terms.values()) == pytest.approx(got.item(), rel=1e-6)


def test_equal_heads_reduce_to_minilm_value_and_attention_losses():
    heads = 4
    student, teacher = _states(3, 5, 32, seed=3), _states(3, 5, 32, seed=4)
    split = lambda states: [split_relation_heads(x, heads) for x in states]  # noqa: E731
    (q_s, k_s, v_s), (q_t, k_t, v_t) = split(student), split(teacher)
    vv = relation_heads_loss(student, teacher, MASK, heads, ("vv",))
    torch.testing.assert_close(vv, value_relation_loss(v_s, v_t, MASK))
    qk = relation_heads_loss(student, teacher, MASK, heads, ("qk",))
    torch.testing.assert_close(qk, attention_distribution_loss(q_s, k_s, q_t, k_t, MASK))


def test_padding_content_does_not_matter():
    student, teacher = _states(3, 5, 32, seed=5), _states(3, 5, 64, seed=6)
    base = relation_heads_loss(student, teacher, MASK, 4)
    pad = (MASK == 0)[:, :, None]
    noisy_s = tuple(x.masked_fill(pad, 1e3) for x in student)
    noisy_t = tuple(x.masked_fill(pad, -7.0) for x in teacher)
    torch.testing.assert_close(relation_heads_loss(noisy_s, noisy_t, MASK, 4), base)
    # extra padded positions appended to every example change nothing either
    longer_mask = torch.cat([MASK, torch.zeros(3, 2, dtype=MASK.dtype)], dim=1)
    extend = lambda states, w: tuple(torch.cat([x, torch.randn(3, 2, w)], dim=1) for x in states)  # noqa: E731
    torch.testing.assert_close(relation_heads_loss(extend(student, 32), extend(teacher, 64), longer_mask, 4), base)


def test_identical_relations_give_zero_and_different_ones_do_not():
    states = _states(2, 5, 32, seed=7)
    mask = MASK[:2]
    assert relation_heads_loss(states, states, mask, 4).item() == pytest.approx(0.0, abs=1e-6)
    assert relation_heads_loss(states, _states(2, 5, 32, seed=8), mask, 4).item() > 1e-3


def test_gradients_reach_the_student_states_only():
    student = tuple(x.requires_grad_() for x in _states(3, 5, 32, seed=9))
    teacher = tuple(x.requires_grad_() for x in _states(3, 5, 64, seed=10))
    relation_heads_loss(student, teacher, MASK, 4).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in student)
    assert all(x.grad is None for x in teacher)
    # the value relation of padded positions gets no gradient
    assert student[2].grad[2, 2:].abs().sum() == 0


def test_relation_heads_that_do_not_divide_both_widths_are_rejected():
    student, teacher = _states(2, 5, 48, seed=11), _states(2, 5, 64, seed=12)
    with pytest.raises(KDLabError, match=r"relation_heads=3 .*1, 2, 4, 8, 16"):
        relation_heads_loss(student, teacher, MASK[:2], 3)
    assert common_relation_heads(768, 1024) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    with pytest.raises(KDLabError, match="relation_kinds"):
        relation_heads_loss(student, teacher, MASK[:2], 4, ("qx",))


@pytest.fixture
def models(tiny_tokenizer):
    teacher = build_tiny_bert(len(tiny_tokenizer), hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=128, seed=1)
    student = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, seed=2)
    return teacher, student


def test_check_relation_setup_names_layers_and_widths(models):
    teacher, student = models
    assert check_relation_setup(teacher, student, 4) == (3, 1)
    assert check_relation_setup(teacher, student, 8, teacher_layer=2, student_layer=0) == (2, 0)
    with pytest.raises(KDLabError, match=r"relation_teacher_layer=4 is beyond the model's 4 encoder layers"):
        check_relation_setup(teacher, student, 4, teacher_layer=4)
    with pytest.raises(KDLabError, match=r"relation_student_layer=-3 is beyond the model's 2"):
        check_relation_setup(teacher, student, 4, student_layer=-3)
    with pytest.raises(KDLabError, match=r"does not divide both .*\(64\) .*\(32\)"):
        check_relation_setup(teacher, student, 3)
    with pytest.raises(KDLabError, match="needs relation_heads"):
        check_relation_setup(teacher, student, None)


def test_raw_capture_of_any_layer_matches_recomputed_projections(models, tiny_tokenizer):
    teacher, _ = models
    batch = tiny_tokenizer(["the film is good", "a dull , boring movie"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = teacher(**batch, output_hidden_states=True).hidden_states  # works under sdpa
        with QKVCapture(teacher, layer=1) as cap:
            teacher(**batch)
            raw, split = cap.raw(), cap.qkv()
    attn = encoder_layers(teacher)[1].attention.self
    for captured, heads, name in zip(raw, split, ("query", "key", "value")):
        expected = getattr(attn, name)(hidden[1])  # layer 1's input is hidden state 1
        assert captured.shape == (2, batch["input_ids"].shape[1], 64)
        torch.testing.assert_close(captured, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(heads, split_relation_heads(captured, 4))  # model heads = relation heads


def test_optimizing_relation_heads_between_mismatched_models_lowers_the_loss(models, tiny_tokenizer):
    """Teacher 4 heads × 16 → student 2 heads × 16 (widths 64 and 32), 4 relation heads, last layers: a few Adam
    steps on the relation loss alone bring the student's relations towards the teacher's."""
    teacher, student = models
    student.train()
    batch = tiny_tokenizer(["the film is good , really good", "a dull movie", "the plot was not funny"],
                           padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    with torch.no_grad(), QKVCapture(teacher) as cap:
        teacher(**batch)
        t_states = cap.raw()
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        with QKVCapture(student) as cap:
            student(**batch)
            loss = relation_heads_loss(cap.raw(), t_states, mask, 4)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
