"""Q/K/V capture with forward hooks, checked against the model's own eager attention probabilities."""

import math

import pytest
import torch

from kdlab.distillation.capture import QKVCapture
from kdlab.errors import KDLabError
from kdlab.models.layers import encoder_layers, self_attention
from kdlab.models.tiny import build_tiny_bert

SENTENCES = ["the film is good", "a very very boring and tedious movie , really flat"]


@pytest.fixture
def batch(tiny_tokenizer):
    enc = tiny_tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert enc["attention_mask"].min() == 0  # the batch has padding
    return enc


@pytest.fixture
def eager_model(tiny_tokenizer):
    model = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, seed=1)
    model.set_attn_implementation("eager")
    return model.eval()


def _projections(model, batch, layer=-1):
    """Q, K, V of ``layer`` recomputed from the layer's input hidden states, each [B, H, S, D]."""
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    x = hidden[layer - 1 if layer < 0 else layer]  # input of the layer: the previous layer's output
    attn = encoder_layers(model)[layer].attention.self
    heads = model.config.num_attention_heads
    b, s, w = x.shape
    return [getattr(attn, n)(x).detach().reshape(b, s, heads, w // heads).permute(0, 2, 1, 3)
            for n in ("query", "key", "value")]


def test_qkv_shapes_and_values(tiny_teacher, batch):
    with QKVCapture(tiny_teacher) as cap:
        with torch.no_grad():
            tiny_teacher(**batch)
        q, k, v = cap.qkv()
    b, s = batch["input_ids"].shape
    for captured, expected in zip((q, k, v), _projections(tiny_teacher, batch)):
        assert captured.shape == (b, 4, s, 8)
        torch.testing.assert_close(captured, expected, rtol=1e-5, atol=1e-6)


def test_captured_relations_match_eager_attention(eager_model, batch):
    with QKVCapture(eager_model) as cap:
        with torch.no_grad():
            out = eager_model(**batch, output_attentions=True)
        q, k, _ = cap.qkv()
    assert len(out.attentions) == 2
    eager = out.attentions[-1]  # [B, H, S, S]
    mask = batch["attention_mask"]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores + (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    probs = scores.softmax(-1)
    torch.testing.assert_close(probs, eager, rtol=0, atol=1e-5)
    # padding keys get no attention
    assert eager[0, :, :, mask[0] == 0].abs().max() < 1e-6


def test_capture_of_a_middle_layer(tiny_teacher, batch):
    with QKVCapture(tiny_teacher, layer=1) as cap:
        with torch.no_grad():
            tiny_teacher(**batch)
        q, _, v = cap.qkv()
    q_ref, _, v_ref = _projections(tiny_teacher, batch, layer=1)
    torch.testing.assert_close(q, q_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v, v_ref, rtol=1e-5, atol=1e-6)


def test_hooks_removed_after_with(tiny_teacher, batch):
    attn = encoder_layers(tiny_teacher)[-1].attention.self
    with QKVCapture(tiny_teacher):
        assert all(len(getattr(attn, n)._forward_hooks) == 1 for n in ("query", "key", "value"))
    for n in ("query", "key", "value"):
        assert len(getattr(attn, n)._forward_hooks) == 0
    # also when the body raises
    with pytest.raises(ZeroDivisionError):
        with QKVCapture(tiny_teacher):
            1 / 0
    assert all(len(getattr(attn, n)._forward_hooks) == 0 for n in ("query", "key", "value"))
    assert all(len(layer.attention.self.query._forward_hooks) == 0 for layer in encoder_layers(tiny_teacher))


def test_capture_ignores_other_models(tiny_teacher, tiny_tokenizer, batch):
    other = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, seed=5)
    with QKVCapture(tiny_teacher) as cap:
        with torch.no_grad():
            other(**batch)
        with pytest.raises(RuntimeError):
            cap.qkv()  # the other model's forward was not recorded
        with torch.no_grad():
            tiny_teacher(**batch)
            other(**batch)  # must not overwrite the teacher's tensors
        q, _, _ = cap.qkv()
    torch.testing.assert_close(q, _projections(tiny_teacher, batch)[0], rtol=1e-5, atol=1e-6)
    assert all(len(layer.attention.self.key._forward_hooks) == 0 for layer in encoder_layers(other))


def test_capture_outside_with_records_nothing(tiny_teacher, batch):
    cap = QKVCapture(tiny_teacher)
    with torch.no_grad():
        tiny_teacher(**batch)
    with pytest.raises(RuntimeError):
        cap.qkv()


def test_gradients_flow_to_student_parameters(tiny_teacher, batch):
    tiny_teacher.train()
    with QKVCapture(tiny_teacher) as cap:
        tiny_teacher(**batch)
        q, k, v = cap.qkv()
    (q.square().mean() + k.square().mean() + v.square().mean()).backward()
    attn = encoder_layers(tiny_teacher)[-1].attention.self
    for name in ("query", "key", "value"):
        assert getattr(attn, name).weight.grad.abs().sum() > 0
    assert tiny_teacher.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert encoder_layers(tiny_teacher)[0].attention.self.query.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("layer", [4, 7, -5])
def test_bad_layer_index_raises(tiny_teacher, layer):
    with pytest.raises(KDLabError, match="out of range"):
        QKVCapture(tiny_teacher, layer=layer)


def test_valid_negative_layer_index(tiny_teacher):
    assert self_attention(tiny_teacher, -4) is encoder_layers(tiny_teacher)[0].attention.self


def test_non_bert_model_raises():
    with pytest.raises(KDLabError, match="encoder.layer"):
        QKVCapture(torch.nn.Linear(3, 3))


def test_capture_of_a_pruned_layer_uses_its_own_head_count(tiny_tokenizer, batch):
    """Issue 24: a tiny BERT pruned from 4 heads to 2 in its last layer: its Q/K/V are [B, 2, S, 16] (not the
    config's 4 heads of 8), and q·kᵀ of those heads reproduces the pruned model's own eager attention."""
    from kdlab.compression.pruning import prune_model

    model = build_tiny_bert(len(tiny_tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, seed=2)
    model.set_attn_implementation("eager")
    prune_model(model, {"heads": [[0, 1, 2, 3], [1, 3]], "neurons": [list(range(64)), list(range(64))]})
    model.eval()
    assert model.config.num_attention_heads == 4  # the config still says 4: capture must not trust it
    with QKVCapture(model) as cap:
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
        q, k, v = cap.qkv()
    b, s = batch["input_ids"].shape
    assert q.shape == k.shape == v.shape == (b, 2, s, 16)
    mask = batch["attention_mask"]
    scores = q @ k.transpose(-1, -2) / math.sqrt(16)
    scores = scores + (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    torch.testing.assert_close(scores.softmax(-1), out.attentions[-1], rtol=0, atol=1e-5)
