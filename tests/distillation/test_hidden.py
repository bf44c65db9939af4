"""Hidden-state distillation (kdlab.distillation.hidden) against explicit loops; projections, layer maps, gradients."""

import pytest
import torch
from torch import nn

from kdlab.distillation.hidden import (
    HiddenStateDistiller,
    hidden_mse_loss,
    resolve_hidden_layer_map,
    uniform_hidden_layer_map,
)
from kdlab.errors import KDLabError
from kdlab.models.tiny import build_tiny_bert

MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])


def ref_hidden_mse(h_s, h_t, mask):
    per_example = []
    for b in range(mask.shape[0]):
        values = [(float(h_s[b, i, f]) - float(h_t[b, i, f])) ** 2
                  for i in range(mask.shape[1]) if int(mask[b, i]) == 1 for f in range(h_s.shape[-1])]
        per_example.append(sum(values) / len(values))
    return sum(per_example) / len(per_example)


def test_hidden_mse_matches_loop_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    h_s, h_t = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    got = hidden_mse_loss(h_s, h_t, MASK)
    assert got.item() == pytest.approx(ref_hidden_mse(h_s, h_t, MASK), rel=1e-6)
    pad = (MASK == 0)[:, :, None]
    torch.testing.assert_close(hidden_mse_loss(h_s.masked_fill(pad, 50.0), h_t.masked_fill(pad, -3.0), MASK), got)
    assert hidden_mse_loss(h_t, h_t, MASK).item() == 0.0
    with pytest.raises(KDLabError, match="project"):
        hidden_mse_loss(torch.randn(3, 4, 5), h_t, MASK)


def test_layer_maps():
    assert uniform_hidden_layer_map(2, 4) == [[1, 2], [2, 4]]
    assert uniform_hidden_layer_map(12, 24)[-1] == [12, 24]
    assert resolve_hidden_layer_map(None, 3, 6) == [[1, 2], [2, 4], [3, 6]]
    assert resolve_hidden_layer_map([[0, 0], [-1, -1]], 2, 4) == [[0, 0], [2, 4]]
    with pytest.raises(KDLabError, match=r"teacher index 5 is beyond the teacher's 4 layers.*0\.\.4"):
        resolve_hidden_layer_map([[1, 5]], 2, 4)
    with pytest.raises(KDLabError, match=r"student index 3 is beyond the student's 2 layers"):
        resolve_hidden_layer_map([[3, 4]], 2, 4)
    with pytest.raises(KDLabError, match="pairs"):
        resolve_hidden_layer_map([[1, 2, 3]], 2, 4)


def test_distiller_projects_when_widths_differ_and_matches_a_direct_computation():
    distiller = HiddenStateDistiller(4, 6, [[1, 2], [2, 4]])
    assert all(isinstance(p, nn.Linear) for p in distiller.projections)
    assert all(isinstance(p, nn.Identity) for p in HiddenStateDistiller(6, 6, [[1, 2]]).projections)
    g = torch.Generator().manual_seed(1)
    student = [torch.randn(3, 4, 4, generator=g) for _ in range(3)]  # embeddings + 2 layers
    teacher = [torch.randn(3, 4, 6, generator=g) for _ in range(5)]  # embeddings + 4 layers
    expected = []
    for (s, t), proj in zip([[1, 2], [2, 4]], distiller.projections):
        mapped = student[s] @ proj.weight.detach().T + proj.bias.detach()
        expected.append(ref_hidden_mse(mapped, teacher[t], MASK))
    got = distiller(tuple(student), tuple(teacher), MASK)
    assert got.item() == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_gradients_reach_student_and_projection_only(tiny_tokenizer):
    teacher = build_tiny_bert(len(tiny_tokenizer), hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=128, seed=1)
    student = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, seed=2).train()
    distiller = HiddenStateDistiller.for_models(student, teacher)
    assert distiller.layer_map == [[1, 2], [2, 4]]
    assert [tuple(p.weight.shape) for p in distiller.projections] == [(64, 32), (64, 32)]
    batch = tiny_tokenizer(["the film is good", "a dull movie"], padding=True, return_tensors="pt")
    with torch.no_grad():
        t_hidden = teacher(**batch, output_hidden_states=True).hidden_states
    s_hidden = student(**batch, output_hidden_states=True).hidden_states
    distiller(s_hidden, t_hidden, batch["attention_mask"]).backward()
    assert all(p.grad is not None for p in distiller.parameters())
    assert student.bert.encoder.layer[1].output.dense.weight.grad.abs().sum() > 0
    assert student.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    # the projections are not part of the student: its state dict has none of them
    assert not any("projection" in k for k in student.state_dict())
