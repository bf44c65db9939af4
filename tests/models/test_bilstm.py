"""The BiLSTM student (kdlab.models.bilstm): shapes, padding, the teacher's embeddings, distillation and save/load."""

import dataclasses

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from kdlab.config import load_config
from kdlab.errors import KDLabError
from kdlab.models.bilstm import bilstm_from_teacher, teacher_word_embeddings
from kdlab.validation import parse_bilstm_spec


def test_logits_shape_and_padding_does_not_change_them(finetuned_teacher):
    student = bilstm_from_teacher(finetuned_teacher, hidden_size=16, seed=0)
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    mask = (ids != 0).long()
    logits = student(input_ids=ids, attention_mask=mask).logits
    assert logits.shape == (2, finetuned_teacher.config.num_labels)
    alone = student(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).logits
    torch.testing.assert_close(alone, logits[1:])  # right padding is packed away, not read


def test_embeddings_come_from_the_teacher(finetuned_teacher):
    width = finetuned_teacher.config.hidden_size
    same = bilstm_from_teacher(finetuned_teacher, hidden_size=8)
    torch.testing.assert_close(same.embeddings.weight, finetuned_teacher.get_input_embeddings().weight)
    smaller = teacher_word_embeddings(finetuned_teacher, width // 2)
    assert smaller.shape == (finetuned_teacher.config.vocab_size, width // 2)
    # principal directions keep more of the embeddings' variance than a random orthonormal projection does
    full = teacher_word_embeddings(finetuned_teacher, width)
    random_basis, _ = torch.linalg.qr(torch.randn(width, width // 2, generator=torch.Generator().manual_seed(0)))
    assert smaller.var(dim=0).sum() > (full @ random_basis).var(dim=0).sum()
    with pytest.raises(KDLabError, match="embedding_size"):
        teacher_word_embeddings(finetuned_teacher, width + 1)


def test_spec_parsing():
    assert parse_bilstm_spec("bilstm") == {}
    assert parse_bilstm_spec("bilstm:hidden=64,embedding=32") == {"hidden_size": 64, "embedding_size": 32}
    assert parse_bilstm_spec("bert-base-uncased") is None and parse_bilstm_spec(None) is None
    with pytest.raises(KDLabError, match="bilstm:hidden=H"):
        parse_bilstm_spec("bilstm:layers=2")


def test_bilstm_student_distils_saves_and_loads(tmp_path, finetuned_teacher, tiny_tokenizer):
    from kdlab.data.synthetic import synthetic_sst2
    from kdlab.distillation.training import distill

    cfg = load_config("smoke", runs_dir=str(tmp_path), student="bilstm:hidden=32", student_layers=1,
                      num_epochs=8.0, learning_rate=1e-2, warmup_steps=0)
    data = synthetic_sst2(256, 64, seed=3)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, data, "hinton", output_dir=tmp_path / "bilstm")
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert losses[-1] < losses[0]
    assert result.metrics["accuracy"] > 0.6  # the synthetic task is learnable from the words alone
    loaded = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "bilstm")).eval()
    batch = tiny_tokenizer(["a great movie .", "a dull mess ."], padding=True, return_tensors="pt")
    batch = {k: v for k, v in batch.items() if k != "token_type_ids"}
    torch.testing.assert_close(loaded(**batch).logits, result.model.eval()(**batch).logits)
    with pytest.raises(KDLabError):  # MiniLM's terms need attention to match: refused before training
        distill(dataclasses.replace(cfg), finetuned_teacher, tiny_tokenizer, data, "minilm",
                output_dir=tmp_path / "no")
