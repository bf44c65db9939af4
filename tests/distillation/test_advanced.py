"""The course's advanced methods on tiny models: ensemble (multi-teacher), born-again, teacher assistant, deep
mutual learning."""

import copy

import pytest
import torch

from kdlab.config import load_config
from kdlab.data.synthetic import synthetic_sst2
from kdlab.distillation.advanced import (
    EnsembleTeacher,
    born_again,
    deep_mutual_learning,
    ensemble_distill,
    mutual_step_losses,
    teacher_assistant,
)
from kdlab.errors import KDLabError
from kdlab.models.student import init_student_from_teacher
from kdlab.models.tiny import build_tiny_bert


def _small():
    from datasets import DatasetDict

    d = synthetic_sst2(64, 32, seed=2, negation=0.0)
    return DatasetDict(train=d["train"], validation=d["validation"])


def _batch(tokenizer):
    return tokenizer(["the film is good", "a dull movie , really"], padding=True, return_tensors="pt")


def test_ensemble_logits_carry_the_mean_soft_label(tiny_tokenizer):
    teachers = [build_tiny_bert(len(tiny_tokenizer), seed=s, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64) for s in (0, 1, 2)]
    batch = _batch(tiny_tokenizer)
    for t in (1.0, 4.0):
        ens = EnsembleTeacher(teachers, t).eval()
        with torch.no_grad():
            got = torch.softmax(ens(**batch).logits / t, -1)
            want = torch.stack([torch.softmax(m(**batch).logits / t, -1) for m in teachers]).mean(0)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_ensemble_refuses_teachers_of_other_vocabularies(tiny_tokenizer):
    a = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64)
    b = build_tiny_bert(len(tiny_tokenizer) + 3, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64)
    with pytest.raises(KDLabError, match="vocabulary"):
        EnsembleTeacher([a, b], 4.0)


def test_ensemble_distillation_trains_a_student(tmp_path, finetuned_teacher, tiny_tokenizer):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    other = copy.deepcopy(finetuned_teacher)
    result = ensemble_distill(cfg, [finetuned_teacher, other], tiny_tokenizer, _small())
    assert result.model.config.num_hidden_layers == cfg.student_layers
    assert "ensemble" in str(result.output_dir) and 0 <= result.metrics["accuracy"] <= 1


def test_born_again_generations_have_the_teachers_size(tmp_path, finetuned_teacher, tiny_tokenizer):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    results = born_again(cfg, finetuned_teacher, tiny_tokenizer, _small(),
                         base="tiny-random:layers=4,hidden=32,heads=4,intermediate=64", generations=2)
    assert len(results) == 2
    for r in results:
        assert r.model.config.num_hidden_layers == finetuned_teacher.config.num_hidden_layers
    assert results[1].output_dir.name == "generation-2"
    with pytest.raises(KDLabError):
        born_again(cfg, finetuned_teacher, tiny_tokenizer, _small(), base="tiny-random", generations=0)


def test_teacher_assistant_chain_and_direct_student(tmp_path, finetuned_teacher, tiny_tokenizer):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    out = teacher_assistant(cfg, finetuned_teacher, tiny_tokenizer, _small(), assistant_layers=2, final_layers=1)
    assert out["assistant"].model.config.num_hidden_layers == 2
    assert out["via_assistant"].model.config.num_hidden_layers == 1
    assert out["direct"].model.config.num_hidden_layers == 1
    with pytest.raises(KDLabError, match="between the teacher and the student"):
        teacher_assistant(cfg, finetuned_teacher, tiny_tokenizer, _small(), assistant_layers=1, final_layers=2)


def test_each_mutual_loss_reaches_only_its_own_peer():
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    parts = mutual_step_losses([a(x), b(x)], y, temperature=2.0)
    parts[0]["loss"].backward()
    assert a.weight.grad is not None and b.weight.grad is None
    assert all(p["kl"] >= 0 and p["loss"] >= p["ce"] for p in parts)


def test_deep_mutual_learning_trains_two_peers(tmp_path, finetuned_teacher):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1)
    from kdlab.models.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    peers = [init_student_from_teacher(finetuned_teacher, 2), init_student_from_teacher(finetuned_teacher, 2)]
    result = deep_mutual_learning(cfg, peers, tokenizer, _small(), log=lambda m: None)
    assert len(result.metrics) == 2 and len(result.predictions) == 2
    assert result.history and {"peer0_kl", "peer1_ce"} <= set(result.history[0])
    with pytest.raises(KDLabError, match="two peers"):
        deep_mutual_learning(cfg, peers[:1], tokenizer, _small())
