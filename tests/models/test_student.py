"""Students cut from the teacher: layer maps, exact weight copies, parameter counts."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from kdlab.errors import KDLabError
from kdlab.models.student import (
    alternate_layer_map,
    check_layer_map,
    count_parameters,
    init_student_from_teacher,
    parameter_table,
)


@pytest.mark.parametrize(
    "teacher_layers, student_layers, expected",
    [(12, 6, [0, 2, 4, 6, 8, 10]), (12, 4, [0, 3, 6, 9]), (6, 3, [0, 2, 4]), (4, 2, [0, 2]), (4, 4, [0, 1, 2, 3]),
     (5, 1, [0])],
)
def test_alternate_layer_map(teacher_layers, student_layers, expected):
    assert alternate_layer_map(teacher_layers, student_layers) == expected


@pytest.mark.parametrize("student_layers", [0, -1, 13])
def test_alternate_layer_map_rejects_bad_sizes(student_layers):
    with pytest.raises(KDLabError):
        alternate_layer_map(12, student_layers)


def test_explicit_layer_map_accepted():
    assert check_layer_map((1, 3), 4, 2) == [1, 3]
    assert check_layer_map([3, 0], 4) == [3, 0]


@pytest.mark.parametrize(
    "layer_map, student_layers",
    [([1, 1], 2), ([0, 4], 2), ([-1, 2], 2), ([0, 1, 2], 2), ([], None), ([0, 1, 2, 3, 0], None), ([0.0, 1], 2)],
)
def test_bad_layer_maps_raise(layer_map, student_layers):
    with pytest.raises(KDLabError):
        check_layer_map(layer_map, 4, student_layers)


@pytest.mark.parametrize("num_layers", [0, 5])
def test_init_student_rejects_bad_layer_counts(tiny_teacher, num_layers):
    with pytest.raises(KDLabError):
        init_student_from_teacher(tiny_teacher, num_layers)


def test_init_student_rejects_bad_map(tiny_teacher):
    with pytest.raises(KDLabError):
        init_student_from_teacher(tiny_teacher, 2, [2, 2])
    with pytest.raises(KDLabError):
        init_student_from_teacher(tiny_teacher, 2, [0, 1, 2])


@pytest.mark.parametrize("layer_map", [None, [1, 3], [3, 0]])
def test_init_student_copies_weights_exactly(tiny_teacher, layer_map):
    student = init_student_from_teacher(tiny_teacher, 2, layer_map)
    mapping = layer_map or [0, 2]
    assert student.config.num_hidden_layers == 2
    assert student.config.kdlab_layer_map == mapping
    assert len(student.bert.encoder.layer) == 2
    teacher_state = tiny_teacher.state_dict()
    student_state = student.state_dict()
    # every non-layer teacher tensor (embeddings, pooler, classifier) appears unchanged in the student
    shared = [k for k in teacher_state if ".encoder.layer." not in k]
    assert any(k.startswith("bert.embeddings.") for k in shared)
    assert {"bert.pooler.dense.weight", "classifier.weight", "classifier.bias"} <= set(shared)
    for key in shared:
        assert torch.equal(student_state[key], teacher_state[key]), key
    # student layer i is teacher layer mapping[i], tensor by tensor
    for i, t in enumerate(mapping):
        prefix_s, prefix_t = f"bert.encoder.layer.{i}.", f"bert.encoder.layer.{t}."
        keys = [k for k in teacher_state if k.startswith(prefix_t)]
        assert len(keys) == 16
        for key in keys:
            assert torch.equal(student_state[prefix_s + key[len(prefix_t):]], teacher_state[key]), key
    assert len(student_state) == len(shared) + 2 * 16
    # copies, not shared storage
    student.classifier.weight.data.add_(1.0)
    assert not torch.equal(student.classifier.weight, tiny_teacher.classifier.weight)


def test_student_is_not_another_layer(tiny_teacher):
    student = init_student_from_teacher(tiny_teacher, 2, [0, 2])
    assert not torch.equal(student.bert.encoder.layer[1].attention.self.query.weight,
                           tiny_teacher.bert.encoder.layer[1].attention.self.query.weight)


def test_full_depth_student_reproduces_teacher(tiny_teacher, tiny_tokenizer):
    student = init_student_from_teacher(tiny_teacher, 4)
    assert student.config.kdlab_layer_map == [0, 1, 2, 3]
    batch = tiny_tokenizer(["the film is good", "a dull , dull and quite flat movie"], padding=True,
                           return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(student(**batch).logits, tiny_teacher(**batch).logits, rtol=0, atol=1e-6)
    assert not student.training


def test_student_config_saved_with_layer_map(tiny_teacher, tmp_path):
    student = init_student_from_teacher(tiny_teacher, 2, [1, 3])
    student.save_pretrained(tmp_path)
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path)
    assert reloaded.config.kdlab_layer_map == [1, 3]
    assert reloaded.config.num_hidden_layers == 2


def _bert_params(layers, vocab=30522, hidden=768, inter=3072, positions=512, types=2, labels=2):
    """Parameter count of BertForSequenceClassification, from the architecture."""
    embeddings = (vocab + positions + types) * hidden + 2 * hidden  # + LayerNorm
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden  # Q, K, V, output dense + LayerNorm
    ffn = (hidden * inter + inter) + (inter * hidden + hidden) + 2 * hidden  # + LayerNorm
    pooler = hidden * hidden + hidden
    classifier = hidden * labels + labels
    return embeddings + layers * (attention + ffn) + pooler + classifier


def test_count_formula_on_tiny_model(tiny_teacher):
    cfg = tiny_teacher.config
    assert count_parameters(tiny_teacher) == _bert_params(4, cfg.vocab_size, 32, 64, 128)


def test_parameter_table_bert_base():
    with torch.device("meta"):
        teacher = BertForSequenceClassification(BertConfig(num_labels=2))
    table = parameter_table(teacher, [6, 4])
    assert list(table["model"]) == ["teacher", "student-6L", "student-4L"]
    assert list(table["layers"]) == [12, 6, 4]
    params = list(table["params"])
    assert params == [_bert_params(12), _bert_params(6), _bert_params(4)]
    assert params == [109_483_778, 66_956_546, 52_780_802]
    assert list(table["params_M"]) == [109.5, 67.0, 52.8]
    assert table["compression"].iloc[1] == pytest.approx(109_483_778 / 66_956_546, abs=0.005)
    assert table["vs_teacher"].iloc[2] == pytest.approx(52_780_802 / 109_483_778, abs=0.0005)
    assert table["fp32_MB"].iloc[0] == pytest.approx(109_483_778 * 4 / 2**20, abs=0.05)
