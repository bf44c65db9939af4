"""Data loaders: local GLUE TSVs, save_to_disk folders, synthetic sentences, tokenisation."""

from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from kdlab.data.loading import load_sst2
from kdlab.data.sources import check_labels, load_tsv_folder, read_glue_tsv
from kdlab.data.synthetic import NEGATIVE, POSITIVE, synthetic_sst2
from kdlab.data.tokens import tokenize
from kdlab.data.transfer import label_balance
from kdlab.errors import KDLabError

TRAIN_ROWS = [
    ('it \'s a "charming" and often affecting journey .', 1),
    ('"unflinchingly bleak and desperate', 0),
    ("the movie 's \"best\" moments \"are\" quotes", 1),
    ("a dull , dull film", 0),
    ("quite wonderful", 1),
    ("'single quotes' stay too", 0),
]
DEV_ROWS = [('he said "no" .', 0), ("very funny", 1), ("tedious", 0)]


def _write_tsv(path: Path, rows, header="sentence\tlabel"):
    path.write_text(header + "\n" + "".join(f"{s}\t{label}\n" for s, label in rows), encoding="utf-8")


@pytest.fixture
def tsv_folder(tmp_path):
    folder = tmp_path / "sst2"
    folder.mkdir()
    _write_tsv(folder / "train.tsv", TRAIN_ROWS)
    _write_tsv(folder / "dev.tsv", DEV_ROWS)
    return folder


def test_tsv_folder_keeps_quotes_verbatim(tsv_folder):
    ds = load_sst2(str(tsv_folder))
    assert set(ds) == {"train", "validation"}
    assert ds["train"]["sentence"] == [s for s, _ in TRAIN_ROWS]
    assert ds["train"]["label"] == [label for _, label in TRAIN_ROWS]
    assert ds["validation"]["sentence"] == [s for s, _ in DEV_ROWS]
    assert ds["train"].features["label"].names == ["negative", "positive"]


def test_tsv_folder_subsets(tsv_folder):
    ds = load_sst2(str(tsv_folder), max_train_samples=4, max_eval_samples=2, seed=3)
    assert len(ds["train"]) == 4 and len(ds["validation"]) == 2
    rows = set(TRAIN_ROWS)
    picked = list(zip(ds["train"]["sentence"], ds["train"]["label"]))
    assert len(set(picked)) == 4 and set(picked) <= rows  # a sample of distinct real rows, labels kept
    assert ds["validation"]["sentence"] == [s for s, _ in DEV_ROWS[:2]]  # dev: the first N, not shuffled
    again = load_sst2(str(tsv_folder), max_train_samples=4, seed=3)
    assert again["train"]["sentence"] == ds["train"]["sentence"]  # seeded
    assert len(load_sst2(str(tsv_folder), max_train_samples=100)["train"]) == len(TRAIN_ROWS)


@pytest.mark.parametrize("missing", ["train.tsv", "dev.tsv"])
def test_missing_tsv_raises(tsv_folder, missing):
    (tsv_folder / missing).unlink()
    with pytest.raises(KDLabError, match=missing.replace(".", r"\.")):
        load_sst2(str(tsv_folder))


def test_row_without_tab_names_file_and_line(tsv_folder):
    path = tsv_folder / "train.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nno tab on this line\nbad\t0\n", encoding="utf-8")
    with pytest.raises(KDLabError, match=r"train\.tsv:3\b"):
        load_sst2(str(tsv_folder))


def test_dev_label_unknown_to_the_training_data_raises(tsv_folder):
    path = tsv_folder / "dev.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nneutral film\t2\n", encoding="utf-8")
    with pytest.raises(KDLabError, match=r"dev\.tsv:3.*'2'"):
        load_sst2(str(tsv_folder))


def test_bad_header_and_empty_file_raise(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("text\tlabel\nfine\t1\n", encoding="utf-8")
    with pytest.raises(KDLabError, match="header"):
        read_glue_tsv(path)
    path.write_text("sentence\tlabel\n", encoding="utf-8")
    with pytest.raises(KDLabError, match="no rows"):
        read_glue_tsv(path)


def test_save_to_disk_folder(tmp_path):
    original = DatasetDict(
        train=Dataset.from_dict({"sentence": ["good", "bad", "fine"], "label": [1, 0, 1]}),
        validation=Dataset.from_dict({"sentence": ["awful"], "label": [0]}),
        test=Dataset.from_dict({"sentence": ["?"], "label": [-1]}),
    )
    original.save_to_disk(str(tmp_path / "disk"))
    ds = load_sst2(str(tmp_path / "disk"))
    assert set(ds) == {"train", "validation"}
    assert ds["train"]["sentence"] == ["good", "bad", "fine"]
    assert ds["validation"]["label"] == [0]


def test_save_to_disk_with_bad_labels_raises(tmp_path):
    DatasetDict(
        train=Dataset.from_dict({"sentence": ["good", "meh"], "label": [1, 5]}),
        validation=Dataset.from_dict({"sentence": ["awful"], "label": [0]}),
    ).save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(KDLabError, match=r"no examples of \[2, 3, 4\]"):  # labels 0, 1, 5
        load_sst2(str(tmp_path / "disk"))


def test_save_to_disk_without_validation_raises(tmp_path):
    DatasetDict(train=Dataset.from_dict({"sentence": ["good"], "label": [1]})).save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(KDLabError, match="validation"):
        load_sst2(str(tmp_path / "disk"))


def test_missing_folder_raises(tmp_path):
    with pytest.raises(KDLabError, match="neither"):
        load_sst2(str(tmp_path / "nowhere"))


def test_synthetic_is_balanced_and_labelled_by_polarity():
    ds = synthetic_sst2(100, 40, seed=0)
    assert (len(ds["train"]), len(ds["validation"])) == (100, 40)
    assert Counter(ds["train"]["label"]) == {0: 50, 1: 50}
    assert Counter(ds["validation"]["label"]) == {0: 20, 1: 20}
    assert label_balance(ds["validation"]) == {"negative": 20, "positive": 20}
    for sentence, label in zip(ds["train"]["sentence"], ds["train"]["label"]):
        words = set(sentence.split())
        polarity = label if "not" not in words else 1 - label  # "not" flips the adjectives' polarity
        own, other = (POSITIVE, NEGATIVE) if polarity == 1 else (NEGATIVE, POSITIVE)
        assert words & set(own) and not words & set(other), sentence
    assert ds["train"]["label"] != [i % 2 for i in range(100)]  # shuffled, not alternating
    negated = sum("not" in s.split() for s in ds["train"]["sentence"])
    assert 10 <= negated <= 50  # about 30% negated by default
    plain = synthetic_sst2(50, 10, seed=0, negation=0.0)
    assert not any("not" in s.split() for s in plain["train"]["sentence"])


def test_synthetic_is_deterministic():
    a, b = synthetic_sst2(64, 16, seed=1), synthetic_sst2(64, 16, seed=1)
    assert a["train"]["sentence"] == b["train"]["sentence"]
    assert a["validation"]["sentence"] == b["validation"]["sentence"]
    assert synthetic_sst2(64, 16, seed=2)["train"]["sentence"] != a["train"]["sentence"]


def test_load_sst2_synthetic_sizes():
    ds = load_sst2("synthetic", max_train_samples=30, max_eval_samples=10)
    assert (len(ds["train"]), len(ds["validation"])) == (30, 10)


@pytest.mark.parametrize("kwargs", [dict(max_train_samples=0), dict(max_eval_samples=0), dict(max_train_samples=-3)])
def test_empty_subset_raises(kwargs):
    with pytest.raises(KDLabError, match="empty subset"):
        load_sst2("synthetic", **kwargs)


def test_check_labels():
    check_labels(Dataset.from_dict({"sentence": ["a", "b"], "label": [0, 1]}), 2)
    with pytest.raises(KDLabError, match=r"\[-1, 2\]"):
        check_labels(Dataset.from_dict({"sentence": ["a", "b", "c"], "label": [0, 2, -1]}), 2)
    with pytest.raises(KDLabError, match="empty"):
        check_labels(Dataset.from_dict({"sentence": [], "label": []}), 2)
    with pytest.raises(KDLabError, match="columns"):
        check_labels(Dataset.from_dict({"text": ["a"], "label": [0]}), 2)


def test_tokenize_does_not_pad(tiny_tokenizer):
    ds = DatasetDict(train=Dataset.from_dict({
        "sentence": ["good", "the film is really good", " ".join(["very"] * 40)], "label": [1, 1, 0]}))
    out = tokenize(ds, tiny_tokenizer, max_length=16)["train"]
    lengths = [len(ids) for ids in out["input_ids"]]
    assert lengths == [3, 7, 16]  # [CLS] ... [SEP], truncated at max_length, no padding
    pad = tiny_tokenizer.pad_token_id
    assert all(pad not in ids for ids in out["input_ids"])
    assert all(set(m) == {1} for m in out["attention_mask"])
    assert out["label"] == [1, 1, 0]


REAL_SST2 = Path(__file__).resolve().parents[3] / "shared/data/sst2"


@pytest.mark.skipif(not (REAL_SST2 / "train.tsv").is_file(), reason=f"real SST-2 TSVs not found at {REAL_SST2}")
def test_real_sst2_counts():
    ds = load_tsv_folder(REAL_SST2)
    assert len(ds["train"]) == 67_349
    assert len(ds["validation"]) == 872
    assert label_balance(ds["validation"]) == {"negative": 428, "positive": 444}
    assert Counter(ds["validation"]["label"]) == {0: 428, 1: 444}
