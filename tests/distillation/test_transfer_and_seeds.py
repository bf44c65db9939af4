"""The unlabelled transfer set (students see labels for part of their sentences; KD also runs on the rest) and
multi-seed measurement (spread, paired comparisons)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlab import lab
from kdlab.config import load_config
from kdlab.data.sources import UNLABELLED
from kdlab.data.synthetic import synthetic_sst2
from kdlab.data.transfer import hide_labels, label_balance, labelled_only
from kdlab.distillation.losses import DistillationLoss, masked_cross_entropy
from kdlab.distillation.runs import config_differences
from kdlab.distillation.seeds import comparison_table, paired_comparison, seed_list, seed_table, train_seeds
from kdlab.errors import KDLabError


# --- data ----------------------------------------------------------------------------------------------------------
def test_hide_labels_keeps_the_first_n():
    train = synthetic_sst2(20, 4, seed=0)["train"]
    hidden = hide_labels(train, 6)
    assert hidden["label"][:6] == train["label"][:6]
    assert hidden["label"][6:] == [UNLABELLED] * 14
    assert hidden["sentence"] == train["sentence"]
    assert label_balance(hidden)["unlabelled"] == 14 and "unlabelled" not in label_balance(train)
    assert len(labelled_only(hidden)) == 6 and labelled_only(train) is train


def test_hide_labels_rejects_impossible_counts():
    train = synthetic_sst2(10, 4, seed=0)["train"]
    for bad in (0, 11):
        with pytest.raises(KDLabError, match="labelled_train_samples"):
            hide_labels(train, bad)


def test_lab_data_hides_labels_for_students_only(tmp_path):
    cfg = lab.setup("smoke", runs_dir=str(tmp_path), max_train_samples=64, labelled_train_samples=16)
    students = lab.load_data(cfg)["train"]
    teacher = lab.load_data(cfg, for_teacher=True)["train"]
    assert sum(y != UNLABELLED for y in students["label"]) == 16 and len(students) == 64
    assert UNLABELLED not in teacher["label"]


def test_config_refuses_more_labelled_than_sentences(tmp_path):
    with pytest.raises(KDLabError, match="labelled_train_samples"):
        load_config("smoke", runs_dir=str(tmp_path), max_train_samples=10, labelled_train_samples=20)


# --- the loss ----------------------------------------------------------------------------------------------------
def test_masked_ce_is_plain_ce_when_every_row_is_labelled():
    logits, labels = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    assert masked_cross_entropy(logits, labels) == pytest.approx(F.cross_entropy(logits, labels).item())


def test_masked_ce_weighs_each_labelled_example_by_one_over_the_batch():
    logits, labels = torch.randn(4, 2), torch.tensor([0, UNLABELLED, 1, UNLABELLED])
    per_example = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")
    expected = (per_example[0] + per_example[2]) / 4
    assert masked_cross_entropy(logits, labels).item() == pytest.approx(expected.item())


def test_masked_ce_of_an_unlabelled_batch_is_zero_with_a_graph():
    logits = torch.randn(3, 2, requires_grad=True)
    value = masked_cross_entropy(logits, torch.full((3,), UNLABELLED))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_kd_terms_still_use_unlabelled_rows():
    loss = DistillationLoss.for_variant("hinton", alpha=0.5, beta=0.5)
    s, t = torch.randn(4, 2), torch.randn(4, 2)
    all_unlabelled = loss(s, torch.full((4,), UNLABELLED), t)
    assert all_unlabelled["ce"].item() == 0.0 and all_unlabelled["kd"].item() > 0
    assert math.isfinite(all_unlabelled["loss"].item())


# --- distillation with a transfer set ----------------------------------------------------------------------------
def test_ce_trains_on_the_labelled_rows_and_kd_on_all(tmp_path, finetuned_teacher, tiny_tokenizer):
    from datasets import DatasetDict

    from kdlab.distillation.training import distill

    data = synthetic_sst2(96, 32, seed=3, negation=0.0)
    data = DatasetDict(train=hide_labels(data["train"], 32), validation=data["validation"])
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    ce = distill(cfg, finetuned_teacher, tiny_tokenizer, data, "ce")
    hinton = distill(cfg, finetuned_teacher, tiny_tokenizer, data, "hinton")
    from kdlab.artifacts import read_json

    ce_rec = read_json(ce.output_dir / "kdlab.json")
    kd_rec = read_json(hinton.output_dir / "kdlab.json")
    assert (ce_rec["train_samples"], ce_rec["labelled_samples"]) == (32, 32)
    assert (kd_rec["train_samples"], kd_rec["labelled_samples"]) == (96, 32)
    assert all(math.isfinite(h["loss"]) for h in hinton.history if "loss" in h)
    assert len(kd_rec["predictions"]) == 32
    shares = [h["labelled_share"] for h in hinton.history if "labelled_share" in h]
    assert shares and 0.2 < sum(shares) / len(shares) < 0.5  # a third of the rows labelled, logged per window


def _tsv(folder, n):
    folder.mkdir()
    rows = [f"sentence number {i} is {'good' if i % 2 else 'bad'}\t{i % 2}" for i in range(n)]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[:20]) + "\n")
    return folder


def test_an_unseen_transfer_set_holds_no_sentence_the_teacher_trained_on(tmp_path):
    folder = _tsv(tmp_path / "data", 300)
    common = dict(runs_dir=str(tmp_path / "runs"), data=str(folder), teacher_train_samples=100,
                  max_train_samples=60, labelled_train_samples=20)
    teacher = set(lab.load_data(lab.setup("smoke", **common), for_teacher=True)["train"]["sentence"])
    seen = lab.load_data(lab.setup("smoke", **common))["train"]
    unseen = lab.load_data(lab.setup("smoke", transfer_sentences="unseen", **common))["train"]
    labelled = [s for s, y in zip(unseen["sentence"], unseen["label"]) if y != UNLABELLED]
    hidden = [s for s, y in zip(unseen["sentence"], unseen["label"]) if y == UNLABELLED]
    assert len(unseen) == 60 and len(labelled) == 20 and len(hidden) == 40
    assert set(labelled) <= teacher and not set(hidden) & teacher  # the labelled part is shared, the rest unseen
    assert set(seen["sentence"]) <= teacher  # the default: the teacher's own sentences
    assert labelled == [s for s, y in zip(seen["sentence"], seen["label"]) if y != UNLABELLED]  # same labels
    with pytest.raises(KDLabError, match="needs 310 training sentences"):
        lab.load_data(lab.setup("smoke", transfer_sentences="unseen", **{**common, "teacher_train_samples": 290,
                                                                            "max_train_samples": 40}))


# --- seeds ---------------------------------------------------------------------------------------------------------
def _rows(labels, accuracies_by_variant):
    """Fake runs whose predictions are right on the first k sentences of each seed."""
    rows = []
    n = len(labels)
    for variant, accs in accuracies_by_variant.items():
        for seed, acc in enumerate(accs):
            k = round(acc * n)
            pred = [y if i < k else 1 - y for i, y in enumerate(labels)]
            rows.append({"variant": variant, "seed": seed, "accuracy": k / n, "predictions": pred})
    return rows


def test_seed_table_and_paired_comparison():
    labels = [i % 2 for i in range(100)]
    rows = _rows(labels, {"ce": [0.80, 0.82, 0.81], "minilm": [0.85, 0.84, 0.86]})
    table = seed_table(rows).set_index("variant")
    assert table.loc["ce", "mean_%"] == pytest.approx(81.0)
    assert table.loc["minilm", "sd_%"] == pytest.approx(np.std([85, 84, 86], ddof=1))
    cmp = paired_comparison(rows, "minilm", "ce", labels)
    assert cmp["mean_diff"] == pytest.approx(4.0) and cmp["wins"] == 3 and cmp["seeds"] == 3
    assert cmp["boot_low"] <= cmp["mean_diff"] <= cmp["boot_high"]
    assert (cmp["a_only"], cmp["b_only"]) == (5 + 2 + 5, 0)  # right only for minilm, summed over seeds
    from scipy.stats import t as student_t

    d = np.array([5.0, 2.0, 5.0])  # per-seed differences in points
    t_stat = d.mean() / (d.std(ddof=1) / np.sqrt(3))
    assert cmp["t_p"] == pytest.approx(2 * student_t.sf(t_stat, df=2))
    same = paired_comparison(rows, "ce", "ce", labels)
    assert same["mean_diff"] == 0 and same["boot_p"] == 1.0
    assert list(comparison_table(rows, [("minilm", "ce"), ("hinton", "ce")], labels)["a"]) == ["minilm"]


def test_seed_list():
    assert seed_list(42, 3) == [42, 43, 44]
    with pytest.raises(KDLabError):
        seed_list(42, 0)


def test_train_seeds_saves_and_reuses_runs(tmp_path, monkeypatch, finetuned_teacher, tiny_tokenizer):
    from datasets import DatasetDict

    data = synthetic_sst2(32, 16, seed=1, negation=0.0)
    data = DatasetDict(train=data["train"], validation=data["validation"])
    cfg = load_config("smoke", runs_dir=str(tmp_path), num_epochs=1.0)
    first = train_seeds(cfg, finetuned_teacher, tiny_tokenizer, data, ["ce"], [1, 2], tmp_path / "q",
                        log=lambda m: None)
    assert [r["seed"] for r in first] == [1, 2] and all(len(r["predictions"]) == 16 for r in first)

    def no_training(*a, **k):
        raise AssertionError("a saved run should have been reused")

    monkeypatch.setattr("kdlab.distillation.seeds.distill", no_training)  # the name seeds.py trains with
    again = train_seeds(cfg, finetuned_teacher, tiny_tokenizer, data, ["ce"], [1, 2], tmp_path / "q",
                        log=lambda m: None)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in first]

    # A record written before kdlab had a field (here `num_seeds`, at its default) is still the same run ...
    record_path = tmp_path / "q" / "seed-1" / "ce" / "kdlab.json"
    record = json.loads(record_path.read_text())
    del record["config"]["num_seeds"], record["config"]["student_init"]
    record_path.write_text(json.dumps(record))
    assert train_seeds(cfg, finetuned_teacher, tiny_tokenizer, data, ["ce"], [1], tmp_path / "q",
                       log=lambda m: None)[0]["accuracy"] == first[0]["accuracy"]
    # ... but a run whose missing field now has a non-default value is not.
    random_init = dataclasses.replace(cfg, student_init="random")
    with pytest.raises(AssertionError, match="reused"):
        train_seeds(random_init, finetuned_teacher, tiny_tokenizer, data, ["ce"], [1], tmp_path / "q",
                    log=lambda m: None)


def test_config_differences_reads_missing_fields_as_defaults(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path))
    saved = cfg.to_dict()
    assert config_differences(saved, cfg) == {}
    del saved["student_init"]  # default "teacher": not a difference
    assert config_differences(saved, cfg) == {}
    saved["temperature"] = 2.0
    assert config_differences(saved, cfg) == {"temperature": (2.0, cfg.temperature)}
    del saved["max_length"]  # smoke's max_length (32) is not the default (128): a difference
    assert config_differences(saved, cfg)["max_length"] == (128, 32)
