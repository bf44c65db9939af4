"""The augmented transfer set (kdlab.data.augment): Tang et al.'s [MASK] replacement and n-gram sampling."""

import random

import pytest

from kdlab import lab
from kdlab.config import load_config
from kdlab.data.augment import MASK_TOKEN, add_augmented, augment_words, augmented_sentences
from kdlab.data.sources import UNLABELLED
from kdlab.data.synthetic import synthetic_sst2
from kdlab.errors import KDLabError

SENTENCES = ["a gorgeous , witty , seductive movie .", "the plot is a mess and the acting is worse .",
             "not bad at all , actually quite charming ."]


def test_same_seed_same_sentences_other_seed_others():
    first = augmented_sentences(SENTENCES, copies=5, seed=3)
    assert first == augmented_sentences(SENTENCES, copies=5, seed=3)
    assert first != augmented_sentences(SENTENCES, copies=5, seed=4)


def test_augmented_sentences_are_new_masked_words_or_ngrams_of_the_original():
    extra = augmented_sentences(SENTENCES, copies=20, seed=0)
    assert extra and len(extra) == len(set(extra)) and not set(extra) & set(SENTENCES)
    originals = [s.split() for s in SENTENCES]
    for sentence in extra:
        words = sentence.split()
        # every augmented sentence is a contiguous run of some original's words, some of them masked
        assert any(any(all(w in (o[i + k], MASK_TOKEN) for k, w in enumerate(words))
                       for i in range(len(o) - len(words) + 1)) for o in originals), sentence


def test_probabilities_do_what_they_say():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(10)]
    assert augment_words(words, rng, p_mask=0.0, p_ngram=0.0) == words
    assert augment_words(words, rng, p_mask=1.0, p_ngram=0.0) == [MASK_TOKEN] * 10
    cut = [augment_words(words, rng, p_mask=0.0, p_ngram=1.0, max_n=3) for _ in range(50)]
    assert all(1 <= len(c) <= 3 and " ".join(c) in " ".join(words) for c in cut)
    masked = sum(w == MASK_TOKEN for _ in range(200) for w in augment_words(words, rng, p_mask=0.1, p_ngram=0.0))
    assert 120 <= masked <= 280  # ~10% of 2,000 words


def test_augmented_rows_are_unlabelled_and_follow_the_original_rows():
    train = synthetic_sst2(12, 4, seed=1)["train"]
    out = add_augmented(train, copies=3, seed=7)
    assert list(out["sentence"][:12]) == list(train["sentence"]) and list(out["label"][:12]) == list(train["label"])
    assert len(out) > 12 and set(out["label"][12:]) == {UNLABELLED}
    assert add_augmented(train, copies=0, seed=7) is train


def test_lab_students_get_the_augmented_transfer_set_the_teacher_does_not(tmp_path):
    cfg = load_config("smoke", runs_dir=str(tmp_path), max_train_samples=64, labelled_train_samples=16,
                      augment_copies=2)
    students = lab.load_data(cfg)["train"]
    labels = list(students["label"])
    assert len(students) > 64 and labels[:16].count(UNLABELLED) == 0 and set(labels[16:]) == {UNLABELLED}
    assert UNLABELLED not in set(lab.load_data(cfg, for_teacher=True)["train"]["label"])
    with pytest.raises(KDLabError, match="augment_copies"):
        load_config("smoke", augment_copies=-1)
