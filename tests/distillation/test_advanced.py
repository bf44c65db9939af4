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
    mutual_loss,
    mutual_peers,
    teacher_assistant,
)
from kdlab.errors import KDLabError
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
    x, y = torch.randn(5, 3), torch.tensor([0, 1, -100, 0, 1])  # one unlabelled transfer-set row
    z_a, z_b = a(x), b(x)
    part = mutual_loss(z_a, [z_b], y)
    part["loss"].backward()
    assert a.weight.grad is not None and b.weight.grad is None
    assert part["kl"] >= 0 and part["loss"] >= part["ce"]
    # T = 1 (the paper's plain softmax): the KL term is KL(p_b ‖ p_a) over every row, labelled or not
    p_a, p_b = torch.softmax(z_a, -1), torch.softmax(z_b, -1)
    expected = (p_b * (p_b.log() - p_a.log())).sum(-1).mean()
    assert float(part["kl"]) == pytest.approx(float(expected), rel=1e-5)


def test_mutual_peers_start_from_distinct_heads(finetuned_teacher):
    peers = mutual_peers(finetuned_teacher, 2, count=2, seed=7)
    heads = [p.classifier.weight for p in peers]
    assert not torch.equal(heads[0], heads[1])  # different initial conditions (Zhang et al. 2018)
    assert torch.equal(peers[0].bert.encoder.layer[0].attention.self.query.weight,
                       peers[1].bert.encoder.layer[0].attention.self.query.weight)
    again = mutual_peers(finetuned_teacher, 2, count=2, seed=7)
    assert torch.equal(again[1].classifier.weight, heads[1])  # reproducible per seed


def test_the_second_peer_learns_from_the_first_peers_updated_predictions(tmp_path, finetuned_teacher):
    """Zhang et al.'s Algorithm 1: peer 1 steps, its predictions are recomputed, then peer 2 steps against them."""
    from kdlab.models.tiny import build_tiny_tokenizer

    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1)
    peers = mutual_peers(finetuned_teacher, 2, seed=cfg.seed)
    calls = []
    forward = peers[0].forward

    def spy(*args, **kwargs):
        calls.append((torch.is_grad_enabled(), float(peers[0].classifier.weight.detach().sum())))
        return forward(*args, **kwargs)

    peers[0].forward = spy
    deep_mutual_learning(cfg, peers, build_tiny_tokenizer(), _small(), log=lambda m: None)
    # per step: peer 0's own forward (with gradients), then its prediction for peer 1 (without), after its update
    pairs = list(zip(calls[::2], calls[1::2]))
    assert pairs and all(trained[0] and not recomputed[0] for trained, recomputed in pairs)
    assert any(trained[1] != recomputed[1] for trained, recomputed in pairs[1:])  # step 1's warmup LR is 0


def test_deep_mutual_learning_trains_two_peers(tmp_path, finetuned_teacher):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1)
    from kdlab.models.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    peers = mutual_peers(finetuned_teacher, 2, seed=cfg.seed)
    result = deep_mutual_learning(cfg, peers, tokenizer, _small(), log=lambda m: None)
    assert len(result.metrics) == 2 and len(result.predictions) == 2
    assert result.history and {"peer0_kl", "peer1_ce"} <= set(result.history[0])
    with pytest.raises(KDLabError, match="two peers"):
        deep_mutual_learning(cfg, peers[:1], tokenizer, _small())


@pytest.mark.parametrize("setting", [{"temperature_schedule": "anneal"}, {"kd_style": "mse"}])
def test_ensemble_refuses_settings_it_would_compute_wrongly(setting, tmp_path):
    """Issue 24 §3: the ensemble's soft label is built at one T; an annealed T or the logits MSE would be wrong."""
    from kdlab import lab
    from kdlab.distillation.advanced import ensemble_distill

    cfg = lab.setup("smoke", runs_dir=str(tmp_path), **setting)
    with pytest.raises(KDLabError, match="temperature_schedule='constant' and kd_style='kl'"):
        ensemble_distill(cfg, [], None, None)  # refused before any teacher or data is touched
