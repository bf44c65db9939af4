"""Cross-architecture distillation: students loaded on their own, tokenizer checks, config of the extra terms,
validation before training, and smoke distillations between models of different depth, width and head count."""

import json

import pytest
import torch
from datasets import DatasetDict
from transformers import AutoModelForSequenceClassification, BertTokenizerFast

from kdlab import lab
from kdlab.config import KDConfig, load_config
from kdlab.distillation.losses import DistillationLoss
from kdlab.distillation.trainer import PROJECTIONS_FILE, DistillationTrainer, training_arguments
from kdlab.distillation.training import distill, last_complete_checkpoint
from kdlab.errors import KDLabError
from kdlab.models.student import build_student, load_student_model
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer
from kdlab.models.vocabulary import check_same_vocabulary, vocabulary_differences
from kdlab.validation import parse_tiny_student

X_STUDENT = "tiny-random:layers=2,hidden=16,heads=2"  # against the 4-layer, 32-wide, 4-head session teacher
EXTRAS = dict(student=X_STUDENT, student_layers=2, alpha=0.5, beta=0.5, gamma=0.0, delta=0.0)


def _small(data, n_train=64, n_eval=32):
    return DatasetDict(train=data["train"].select(range(n_train)), validation=data["validation"].select(range(n_eval)))


def _train_logs(history):
    return [h for h in history if "loss" in h and "eval_loss" not in h]


# --- config and profiles ------------------------------------------------------------------------------------
def test_cross_architecture_profiles():
    large = load_config("large2base")
    assert (large.teacher, large.student, large.teacher_finetune) == ("bert-large-uncased", "bert-base-uncased", "auto")
    assert (large.gamma, large.delta, large.fp16) == (0.0, 0.0, True)
    assert 1024 % large.relation_heads == 0 and 768 % large.relation_heads == 0
    hinton = DistillationLoss.from_config(large, "hinton")
    assert (hinton.alpha, hinton.beta, hinton.gamma, hinton.delta, hinton.relation_weight) == (0.5, 0.5, 0, 0, 0)
    smoke = load_config("smoke-x")
    assert smoke.teacher == "tiny-random" and smoke.data == "synthetic"
    assert parse_tiny_student(smoke.student) == dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                     intermediate_size=64)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(relation_weight=1.0), "needs relation_heads"),
        (dict(relation_weight=1.0, relation_heads=0), "relation_heads"),
        (dict(relation_weight=-1.0, relation_heads=4), "must be >= 0"),
        (dict(relation_kinds=["qz"]), "relation_kinds"),
        (dict(relation_kinds=[]), "relation_kinds"),
        (dict(relation_teacher_layer="last"), "relation_teacher_layer"),
        (dict(hidden_weight=1.0, hidden_layer_map=[[1]]), "hidden_layer_map"),
        (dict(hidden_weight=-0.5), "must be >= 0"),
        (dict(student="tiny-random:layers=two"), "tiny-random:layers=2"),
        (dict(student="tiny-random:hidden=30,heads=4"), "do not divide"),
        (dict(alpha=0.0, beta=0.0, gamma=0.0, delta=0.0), "relation_weight/hidden_weight"),
    ],
)
def test_bad_extra_settings_raise(overrides, message):
    with pytest.raises(KDLabError, match=message):
        load_config("smoke", **overrides)


def test_extra_terms_alone_are_a_valid_loss_and_round_trip(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), alpha=0.0, beta=0.0, gamma=0.0, delta=0.0,
                      relation_weight=1.0, relation_heads=4, hidden_weight=0.5, hidden_layer_map=[[0, 0], [2, 4]],
                      student=X_STUDENT)
    path = cfg.save(tmp_path / "config.json")
    assert KDConfig.load(path) == cfg
    loss = DistillationLoss.for_variant("minilm", alpha=0.0, beta=0.0, gamma=0.0, delta=0.0, relation_weight=1.0,
                                        relation_heads=4, relation_kinds=("vv", "qq"), hidden_weight=0.5)
    assert loss.needs_teacher and loss.needs_relation_states and loss.needs_hidden_states and not loss.needs_qkv
    assert json.loads(json.dumps(vars(loss))) == vars(loss)  # the checkpoint stamp survives a JSON round trip
    with pytest.raises(KDLabError, match="all loss weights are zero"):
        DistillationLoss.for_variant("hinton", alpha=0.0, beta=0.0, relation_weight=1.0, relation_heads=4)


# --- students loaded on their own and the tokenizer check -------------------------------------------------------
def test_tiny_student_spec_and_offline_hub_error(monkeypatch):
    model, tokenizer = load_student_model("tiny-random:layers=3,hidden=24,heads=3", num_labels=2)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (3, 24, 3, 48)
    assert c.vocab_size == len(tokenizer)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(KDLabError) as info:
        load_student_model("kdlab-test-no-such-org/no-such-student")
    for hint in ("student", "local folder", "smoke-x"):
        assert hint in str(info.value)


def test_build_student_cut_or_loaded(tiny_teacher, tiny_tokenizer, tmp_path):
    cut = build_student(load_config("smoke", runs_dir=str(tmp_path)), tiny_teacher, tiny_tokenizer)
    assert cut.config.kdlab_layer_map == [0, 2]
    loaded = build_student(load_config("smoke", runs_dir=str(tmp_path), **EXTRAS), tiny_teacher, tiny_tokenizer)
    assert (loaded.config.hidden_size, loaded.config.num_attention_heads) == (16, 2)
    assert not hasattr(loaded.config, "kdlab_layer_map")


def _tokenizer(tokens, **kwargs):
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True, **kwargs)


def test_vocabulary_differences_say_what_differs(tiny_tokenizer):
    vocab = tiny_tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    assert vocabulary_differences(tiny_tokenizer, build_tiny_tokenizer()) == []
    bigger = vocabulary_differences(tiny_tokenizer, _tokenizer(tokens + ["zebra", "yak"]))
    assert any(f"teacher {len(tokens)} tokens, student {len(tokens) + 2}" in d for d in bigger)
    assert any("2 tokens only in the student's vocabulary ('yak', 'zebra')" in d for d in bigger)
    swapped = tokens[:5] + tokens[5:][::-1]
    assert any(d.startswith(f"{len(tokens) - 5 - (len(tokens) - 5) % 2} shared tokens have different ids")
               for d in vocabulary_differences(tiny_tokenizer, _tokenizer(swapped)))
    other_pad = tokens.copy()
    other_pad[0] = "<pad>"
    diffs = vocabulary_differences(tiny_tokenizer, _tokenizer(other_pad, pad_token="<pad>"))
    assert any(d.startswith("special token pad_token: teacher '[PAD]' (id 0), student '<pad>' (id 0)") for d in diffs)
    cased = BertTokenizerFast(vocab=vocab, do_lower_case=False)
    assert any("lower-casing" in d for d in vocabulary_differences(tiny_tokenizer, cased))
    model = build_tiny_bert(len(tokens), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=16)
    with pytest.raises(KDLabError, match=r"tokenizers differ.*special token pad_token"):
        check_same_vocabulary(model, model, tiny_tokenizer, _tokenizer(other_pad, pad_token="<pad>"))


# --- validation before training ------------------------------------------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    calls = []
    monkeypatch.setattr(DistillationTrainer, "train", lambda self, *a, **k: calls.append(1))
    return calls


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(relation_weight=1.0, relation_heads=4, relation_teacher_layer=4), "relation_teacher_layer=4 is beyond"),
        (dict(relation_weight=1.0, relation_heads=4, relation_student_layer=2), "relation_student_layer=2 is beyond"),
        (dict(relation_weight=1.0, relation_heads=3), r"does not divide both .*\(32\) .*\(16\).*1, 2, 4, 8, 16"),
        (dict(hidden_weight=1.0, hidden_layer_map=[[1, 5]]), "teacher index 5 is beyond the teacher's 4 layers"),
        (dict(hidden_weight=1.0, hidden_layer_map=[[3, 4]]), "student index 3 is beyond the student's 2 layers"),
        (dict(gamma=0.3), "equal head counts"),
    ],
)
def test_bad_model_settings_raise_before_training(tmp_path, no_training, finetuned_teacher, tiny_tokenizer,
                                                  synthetic_data, overrides, message):
    cfg = load_config("smoke", runs_dir=str(tmp_path), **{**EXTRAS, **overrides})
    with pytest.raises(KDLabError, match=message):
        distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "minilm")
    assert no_training == []
    assert not (cfg.run_dir() / "students").exists()


def test_extras_join_only_the_minilm_variant(tmp_path, no_training, finetuned_teacher, tiny_tokenizer,
                                             synthetic_data):
    # The hinton baseline ignores a bad relation setting, because it has no relation term.
    cfg = load_config("smoke", runs_dir=str(tmp_path), **EXTRAS, relation_weight=1.0, relation_heads=3)
    distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data), "hinton")
    assert no_training == [1]


# --- smoke distillations between different architectures ----------------------------------------------------------
@pytest.fixture(scope="module")
def cross_run(tmp_path_factory, finetuned_teacher, tiny_tokenizer, synthetic_data):
    cfg = load_config("smoke", runs_dir=str(tmp_path_factory.mktemp("x-runs")), **EXTRAS, relation_weight=1.0,
                      relation_heads=8, hidden_weight=1.0, learning_rate=2e-3, num_epochs=3.0, logging_steps=2,
                      warmup_steps=2)
    before = {k: v.detach().clone() for k, v in finetuned_teacher.state_dict().items()}
    torch.manual_seed(0)
    result = distill(cfg, finetuned_teacher, tiny_tokenizer, _small(synthetic_data, 128), "minilm")
    return cfg, result, before


def test_mismatched_heads_distillation_lowers_its_loss(cross_run):
    _, result, _ = cross_run
    logs = _train_logs(result.history)
    assert len(logs) >= 5
    for entry in logs:
        assert {"loss_ce", "loss_kd", "loss_relation", "loss_hidden"} <= set(entry)
        weighted = 0.5 * entry["loss_ce"] + 0.5 * entry["loss_kd"] + entry["loss_relation"] + entry["loss_hidden"]
        assert entry["loss"] == pytest.approx(weighted, rel=1e-3, abs=1e-5)
    for key in ("loss", "loss_hidden"):  # the relation term's own descent: test_relations (it is tiny here)
        first, last = sum(h[key] for h in logs[:2]) / 2, sum(h[key] for h in logs[-2:]) / 2
        assert last < first, key
    assert result.model.config.num_attention_heads == 2 and result.model.config.hidden_size == 16


def test_saved_student_holds_only_the_student(cross_run, finetuned_teacher):
    cfg, result, before = cross_run
    folder = cfg.run_dir() / "students" / "minilm"
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(folder))
    assert set(reloaded.state_dict()) == set(result.model.state_dict())
    assert not any("projection" in f.name for f in folder.iterdir())
    record = json.loads((folder / "kdlab.json").read_text())
    assert record["config"]["student"] == X_STUDENT and record["loss"]["relation_heads"] == 8
    for key, value in finetuned_teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # the teacher is never trained


def test_projections_are_optimized_checkpointed_and_restored(tmp_path, finetuned_teacher, tiny_tokenizer,
                                                             synthetic_data):
    from kdlab.data.tokens import tokenize

    cfg = load_config("smoke", runs_dir=str(tmp_path), **EXTRAS, hidden_weight=1.0, save_steps=2, logging_steps=1)
    loss_fn = DistillationLoss.for_variant("minilm", alpha=0.5, beta=0.5, gamma=0.0, delta=0.0, hidden_weight=1.0)
    student, _ = load_student_model(X_STUDENT)
    data = tokenize(_small(synthetic_data), tiny_tokenizer, cfg.max_length)

    def trainer(output):
        args = training_arguments(cfg, output, learning_rate=2e-3, num_train_epochs=1.0, warmup_steps=0)
        return DistillationTrainer(model=student, args=args, loss_fn=loss_fn,
                                   teacher=finetuned_teacher, train_dataset=data["train"],
                                   eval_dataset=data["validation"], processing_class=tiny_tokenizer)

    first = trainer(tmp_path / "ckpt")
    initial = {k: v.clone() for k, v in first.hidden_distiller.state_dict().items()}
    optimizer = first.create_optimizer()
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_optimizer for p in first.hidden_distiller.parameters())
    first.train()
    trained = first.hidden_distiller.state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)  # the projections learned
    ckpt = last_complete_checkpoint(tmp_path / "ckpt")
    saved = torch.load(f"{ckpt}/{PROJECTIONS_FILE}")
    assert all(torch.equal(saved[k], trained[k]) for k in trained)
    second = trainer(tmp_path / "ckpt2")
    assert not all(torch.equal(second.hidden_distiller.state_dict()[k], saved[k]) for k in saved)
    second._load_from_checkpoint(ckpt)
    assert all(torch.equal(second.hidden_distiller.state_dict()[k], saved[k]) for k in saved)


def test_smoke_x_profile_runs_end_to_end(tmp_path):
    """The bert-large → bert-base setup at smoke size: tiny teacher fine-tuned first, a student of another width
    and head count, the lab's own steps; hinton (the course's system) and minilm (+ relation heads)."""
    cfg = lab.setup("smoke-x", runs_dir=str(tmp_path), max_train_samples=96, max_eval_samples=32,
                    teacher_epochs=1.0, teacher_train_samples=None, num_epochs=1.0,
                    logging_steps=1, num_threads=1)
    teacher = lab.prepare_teacher(cfg)
    assert (teacher.model.config.hidden_size, teacher.model.config.num_attention_heads) == (64, 4)
    data = lab.load_data(cfg)
    for variant in ("hinton", "minilm"):
        result = lab.train_variant(cfg, teacher, data, variant)
        assert (result.model.config.hidden_size, result.model.config.num_attention_heads) == (32, 2)
        assert ("loss_relation" in _train_logs(result.history)[0]) == (variant == "minilm")
    assert set(lab.results(cfg)["students"]) == {"hinton", "minilm"}
