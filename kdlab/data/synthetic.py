"""Synthetic sentiment sentences for smoke runs: balanced, deterministic, with negation (so a bag of words is not
enough: a model has to read "not")."""

from __future__ import annotations

import random

from datasets import Dataset, DatasetDict

from kdlab.data.sources import FEATURES

POSITIVE = ["good", "great", "charming", "wonderful", "moving", "funny", "brilliant", "touching", "smart", "fresh"]
NEGATIVE = ["bad", "dull", "boring", "awful", "tedious", "clumsy", "flat", "silly", "weak", "messy"]
NEUTRAL = ["the", "a", "film", "movie", "story", "cast", "plot", "script", "is", "was", "really", "quite",
           "and", "very", "this", "it", "director", "ending", "acting", "feels"]
TEMPLATES = [
    "the {n} is {a}",
    "a {a} {n}",
    "this {n} was really {a}",
    "{a} , {a} and quite {a}",
    "the {n} feels very {a} and the {n} is {a}",
]
NOUNS = ["film", "movie", "story", "cast", "plot", "script", "director", "ending", "acting"]


def synthetic_vocabulary() -> list[str]:
    """Every word the synthetic generator can produce (for building the smoke tokenizer)."""
    return sorted(set(POSITIVE + NEGATIVE + NEUTRAL + NOUNS + [",", "not"]))


NEGATED_TEMPLATES = ["the {n} is not {a}", "this {n} was not really {a}", "not {a} , the {n}"]


def synthetic_sst2(n_train: int = 512, n_eval: int = 128, seed: int = 0, negation: float = 0.3) -> DatasetDict:
    """Balanced, deterministic toy sentiment sentences.

    The label is the polarity of the adjectives, flipped by "not" in a ``negation`` share of the sentences
    (so a bag of words is not enough: a model has to read "not").
    """

    def make(n: int, rng: random.Random) -> Dataset:
        sentences, labels = [], []
        for i in range(n):
            label = i % 2
            negated = rng.random() < negation
            words = (NEGATIVE if label else POSITIVE) if negated else (POSITIVE if label else NEGATIVE)
            text = rng.choice(NEGATED_TEMPLATES if negated else TEMPLATES)
            while "{a}" in text or "{n}" in text:
                text = text.replace("{a}", rng.choice(words), 1).replace("{n}", rng.choice(NOUNS), 1)
            sentences.append(text)
            labels.append(label)
        order = list(range(n))
        rng.shuffle(order)
        return Dataset.from_dict(
            {"sentence": [sentences[i] for i in order], "label": [labels[i] for i in order]}, features=FEATURES
        )

    return DatasetDict(train=make(n_train, random.Random(seed)), validation=make(n_eval, random.Random(seed + 1)))
