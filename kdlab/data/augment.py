"""An augmented transfer set (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks", §3.3): new unlabelled sentences made from the students' own, which the teacher labels with its soft
labels during distillation (the unlabelled-transfer-set path: label ``UNLABELLED``, CE masked, KD on every row).

Per word, with probability ``p_mask`` the word becomes ``[MASK]``; then, with probability ``p_ngram``, the sentence
is cut to one random n-gram (n from 1 to ``max_n``). Tang et al. also replace words by others of the same part of
speech; that needs a POS tagger, which no package on this project's registry ships offline, so it is left out.
Everything is drawn from one ``random.Random(seed)``: the same seed gives the same sentences.
"""

from __future__ import annotations

import random

from datasets import Dataset, Value, concatenate_datasets

from kdlab.data.sources import UNLABELLED
from kdlab.errors import KDLabError

MASK_TOKEN = "[MASK]"  # BERT-family WordPiece vocabularies (the lab's teachers) have it


def augment_words(words: list[str], rng: random.Random, p_mask: float = 0.1, p_ngram: float = 0.25,
                  max_n: int = 5, mask_token: str = MASK_TOKEN) -> list[str]:
    """One augmented copy of ``words``: each word masked with probability ``p_mask``, then with probability
    ``p_ngram`` only a random n-gram kept (1 <= n <= min(max_n, len(words)))."""
    out = [mask_token if rng.random() < p_mask else w for w in words]
    if len(out) > 1 and rng.random() < p_ngram:
        n = rng.randint(1, min(max_n, len(out)))
        start = rng.randint(0, len(out) - n)
        out = out[start:start + n]
    return out


def augmented_sentences(sentences: list[str], copies: int, seed: int, **kwargs) -> list[str]:
    """Up to ``copies`` augmented sentences per sentence (SST-2 is tokenised with spaces: words are split on
    whitespace), without duplicates and without any of the original sentences, in a fixed order for ``seed``."""
    if copies < 0:
        raise KDLabError(f"augment_copies={copies}: use 0 (no augmentation) or a positive number of copies.")
    rng = random.Random(seed)
    seen, out = set(sentences), []
    for sentence in sentences:
        for _ in range(copies):
            new = " ".join(augment_words(sentence.split(), rng, **kwargs))
            if new and new not in seen:
                seen.add(new)
                out.append(new)
    return out


def add_augmented(train: Dataset, copies: int, seed: int, **kwargs) -> Dataset:
    """``train`` followed by its augmented sentences as unlabelled rows (label ``UNLABELLED``)."""
    if copies == 0:
        return train
    extra = augmented_sentences(list(train["sentence"]), copies, seed, **kwargs)
    train = train.cast_column("label", Value("int64"))  # a ClassLabel cannot hold -100
    rows = Dataset.from_dict({"sentence": extra, "label": [UNLABELLED] * len(extra)},
                             features=train.select_columns(["sentence", "label"]).features)
    return concatenate_datasets([train.select_columns(["sentence", "label"]), rows])
