"""End-to-end distillation on the tiny fine-tuned teacher and synthetic sentences (a few seconds each)."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdlab.config import load_config
from kdlab.distillation import training as distill_module
from kdlab.distillation.trainer import DistillationTrainer
from kdlab.distillation.training import (
    RESULT_FILE,
    RUN_STAMP,
    _checkpoint_to_resume,
    distill,
    history_frame,
    last_complete_checkpoint,
)
from kdlab.errors import KDLabError
from kdlab.models.tiny import build_tiny_bert

WEIGHTS = {"ce": 0.1, "kd": 0.4, "attention": 0.3, "value": 0.2}


def _train_logs(history):
    return [h for h in history if "loss" in h and "eval_loss" not in h]


def _small(data, n_train=64, n_eval=32):
    from datasets import DatasetDict

    return DatasetDict(train=data["train"].select(range(n_train)), validation=data["validation"].select(range(n_eval)))


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path_factory.mktemp("minilm-runs")))
    before = {k: v.detach().clone() for k, v in finetuned_teacher.state_dict().items()}
    torch.manual_seed(0)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, synthetic_data, "minilm")
    return cfg, result, before


def test_minilm_logs_every_term(minilm_run):
    _, result, _ = minilm_run
    logs = _train_logs(result.history)
    assert len(logs) >= 5
    for entry in logs:
        assert {"loss_ce", "loss_kd", "loss_attention", "loss_value"} <= set(entry)
        weighted = sum(w * entry[f"loss_{name}"] for name, w in WEIGHTS.items())
        assert entry["loss"] == pytest.approx(weighted, rel=1e-3, abs=1e-5)
        assert entry["loss_attention"] > 0 and entry["loss_value"] > 0


def test_minilm_training_loss_goes_down(minilm_run):
    _, result, _ = minilm_run
    logs = _train_logs(result.history)
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert logs[-1]["loss_ce"] < logs[0]["loss_ce"]
    train, evals = history_frame(result.history)
    assert len(train) == len(logs) and len(evals) == 2  # one evaluation per epoch


def test_minilm_beats_chance(minilm_run, synthetic_data):
    _, result, _ = minilm_run
    labels = np.array(synthetic_data["validation"]["label"])
    assert result.predictions.shape == labels.shape
    accuracy = float(np.mean(result.predictions == labels))
    assert result.metrics["accuracy"] == pytest.approx(accuracy)
    assert result.metrics["n"] == len(labels)
    assert accuracy > 0.6


def test_minilm_student_shape(minilm_run, finetuned_teacher):
    _, result, _ = minilm_run
    assert result.model.config.num_hidden_layers == 2
    assert result.model.config.kdlab_layer_map == [0, 2]
    assert result.model.config.num_attention_heads == finetuned_teacher.config.num_attention_heads
    assert result.resumed_from is None


def test_saved_student_reloads_to_same_predictions(minilm_run, synthetic_data):
    cfg, result, _ = minilm_run
    folder = cfg.run_dir() / "students" / "minilm"
    assert result.output_dir == folder
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json", RESULT_FILE} <= names
    assert names & {"tokenizer.json", "vocab.txt"}
    assert not (cfg.run_dir() / "checkpoints" / "minilm").exists()  # dropped once the model is saved whole
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    sentences = list(synthetic_data["validation"]["sentence"])
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=cfg.max_length, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
        torch.testing.assert_close(logits, result.model(**batch).logits, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), result.predictions)
    record = json.loads((folder / RESULT_FILE).read_text())
    assert record["name"] == "minilm"
    assert record["metrics"]["accuracy"] == pytest.approx(result.metrics["accuracy"])
    expected_loss = {"temperature": 4.0, "alpha": 0.1, "beta": 0.4, "gamma": 0.3, "delta": 0.2, "relation_style": "kl"}
    assert {k: record["loss"][k] for k in expected_loss} == expected_loss
    assert record["config"]["profile"] == "smoke"
    assert record["train_samples"] == len(synthetic_data["train"])


def test_teacher_unchanged_by_distillation(minilm_run, finetuned_teacher):
    _, _, before = minilm_run
    after = finetuned_teacher.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_ce_variant_logs_only_ce_and_never_calls_teacher(tmp_path, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1)
    calls = []
    handle = finetuned_teacher.register_forward_hook(lambda *_: calls.append(1))
    try:
        result = distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "ce")
    finally:
        handle.remove()
    assert calls == []
    logs = _train_logs(result.history)
    assert len(logs) == 2  # 64 sentences, batch 32, one epoch
    for entry in logs:
        assert {k for k in entry if k.startswith("loss_")} == {"loss_ce"}
        assert entry["loss"] == pytest.approx(entry["loss_ce"], rel=1e-4)
    assert (tmp_path / "smoke" / "students" / "ce" / RESULT_FILE).is_file()


def test_hinton_variant_logs_ce_and_kd(tmp_path, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "hinton")
    for entry in _train_logs(result.history):
        assert {k for k in entry if k.startswith("loss_")} == {"loss_ce", "loss_kd"}
        assert entry["loss"] == pytest.approx(0.1 * entry["loss_ce"] + 0.4 * entry["loss_kd"], rel=1e-3, abs=1e-6)


def test_gradient_accumulation_loss_not_doubled(tmp_path, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0, logging_steps=1, batch_size=16,
                      gradient_accumulation_steps=2)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data, 128), "ce")
    logs = _train_logs(result.history)
    assert [h["step"] for h in logs] == [1, 2, 3, 4]  # 8 batches of 16, 2 per optimizer step
    for entry in logs:
        assert entry["loss"] == pytest.approx(entry["loss_ce"], rel=1e-3)


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_from_checkpoint(tmp_path, monkeypatch, finetuned_teacher, tiny_tokenizer,
                                                 synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), save_steps=2, logging_steps=1)
    data = _small(synthetic_data, 128)  # 4 steps per epoch, 8 in all
    original = DistillationTrainer.compute_loss

    def interrupting(self, model, inputs, *args, **kwargs):
        if model.training and self.state.global_step >= 5:
            raise _Interrupt("power cut")
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(DistillationTrainer, "compute_loss", interrupting)
    with pytest.raises(_Interrupt):
        distill(cfg, finetuned_teacher, tiny_tokenizer, data, "hinton")
    monkeypatch.undo()
    ckpt_dir = cfg.run_dir() / "checkpoints" / "hinton"
    assert last_complete_checkpoint(ckpt_dir).endswith("checkpoint-4")
    assert not (cfg.run_dir() / "students" / "hinton").exists()  # nothing half-saved

    training_batches = []

    def counting(self, model, inputs, *args, **kwargs):
        if model.training:
            training_batches.append(self.state.global_step)
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(DistillationTrainer, "compute_loss", counting)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, data, "hinton", resume=True)
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-4")
    assert training_batches == [4, 5, 6, 7]  # only the steps after the checkpoint were trained again
    assert max(h["step"] for h in _train_logs(result.history)) == 8
    assert (cfg.run_dir() / "students" / "hinton" / RESULT_FILE).is_file()
    record = json.loads((cfg.run_dir() / "students" / "hinton" / RESULT_FILE).read_text())
    assert record["resumed_from"] == result.resumed_from
    assert not ckpt_dir.exists()


def test_checkpoints_of_another_config_are_not_resumed(tmp_path):
    ckpt_dir = tmp_path / "checkpoints" / "minilm"
    for step, complete in ((3, True), (7, False), (5, True)):
        folder = ckpt_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
            (folder / "model.safetensors").write_bytes(b"w")
            (folder / "optimizer.pt").write_bytes(b"o")
    stamp = {"name": "minilm", "config": {"alpha": 0.1}}
    (ckpt_dir / RUN_STAMP).write_text(json.dumps(stamp))
    assert last_complete_checkpoint(ckpt_dir) == str(ckpt_dir / "checkpoint-5")  # 7 was cut off mid-write
    assert _checkpoint_to_resume(ckpt_dir, stamp) == str(ckpt_dir / "checkpoint-5")
    assert _checkpoint_to_resume(ckpt_dir, {**stamp, "config": {"alpha": 0.2}}) is None
    assert not ckpt_dir.exists()  # stale checkpoints cleared
    assert last_complete_checkpoint(tmp_path / "nowhere") is None


@pytest.fixture
def no_training(monkeypatch):
    calls = []
    monkeypatch.setattr(DistillationTrainer, "train", lambda self, *a, **k: calls.append(1))
    return calls


def test_head_count_mismatch_raises_before_training(tmp_path, no_training, finetuned_teacher, tiny_tokenizer,
                                                    synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    student = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64)
    with pytest.raises(KDLabError, match="head"):
        distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "minilm", student=student)
    assert no_training == []
    assert not (cfg.run_dir() / "students" / "minilm").exists()


def test_head_count_mismatch_is_fine_for_hinton(tmp_path, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    torch.manual_seed(0)
    student = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "hinton", student=student)
    assert result.model.config.num_attention_heads == 2
    assert "loss_kd" in _train_logs(result.history)[0]


def test_different_vocabulary_raises(tmp_path, no_training, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    student = build_tiny_bert(len(tiny_tokenizer) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64)
    with pytest.raises(KDLabError, match="vocabulary"):
        distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "hinton", student=student)
    assert no_training == []


def test_unknown_variant_raises(tmp_path, no_training, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    with pytest.raises(KDLabError, match="unknown variant"):
        distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "tinybert")
    assert no_training == []


def test_bad_labels_raise_before_training(tmp_path, no_training, finetuned_teacher, tiny_tokenizer, synthetic_data):
    from datasets import Dataset, DatasetDict

    cfg = load_config("smoke", runs_dir=str(tmp_path))
    data = DatasetDict(train=Dataset.from_dict({"sentence": ["good", "bad"], "label": [1, 2]}),
                       validation=_small(synthetic_data)["validation"])
    with pytest.raises(KDLabError, match="labels"):
        distill(cfg, finetuned_teacher, tiny_tokenizer, data, "ce")
    assert no_training == []


def test_distillation_trainer_needs_teacher_for_kd(tmp_path, tiny_teacher):
    from kdlab.distillation.losses import DistillationLoss
    from kdlab.distillation.trainer import training_arguments

    cfg = load_config("smoke", runs_dir=str(tmp_path))
    with pytest.raises(KDLabError, match="no teacher"):
        args = training_arguments(cfg, tmp_path / "out", learning_rate=1e-3, num_train_epochs=1.0, warmup_steps=0)
        DistillationTrainer(model=tiny_teacher, args=args,
                            loss_fn=DistillationLoss.for_variant("hinton"), teacher=None,
                            train_dataset=[{"input_ids": [2, 3], "labels": 0}],
                            eval_dataset=[{"input_ids": [2, 3], "labels": 0}])


def test_training_arguments_on_cpu(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), eval_steps=5, save_steps=10)
    args = distill_module.training_arguments(cfg, tmp_path, learning_rate=1e-3, num_train_epochs=2.0, warmup_steps=3)
    cuda = torch.cuda.is_available()
    assert (args.fp16, args.use_cpu) == ((True, False) if cuda else (False, True))  # smoke asks for fp16
    assert (args.learning_rate, args.num_train_epochs, args.warmup_steps) == (1e-3, 2.0, 3)
    assert (args.eval_steps, args.save_steps, args.per_device_train_batch_size) == (5, 10, 32)
    assert args.report_to in ([], "none", ["none"])
