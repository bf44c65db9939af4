"""How much of a batch is padding: fixed padding to ``max_length`` vs dynamic padding, in random order or in
length-grouped batches (what ``kdlab.distillation.training`` trains with, ``group_by_length``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdlab.errors import KDLabError


def _batches_of(lengths: list[int], batch_size: int) -> list[list[int]]:
    return [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]


def length_grouped_order(lengths: list[int], batch_size: int, seed: int = 0) -> list[int]:
    """Lengths reordered as transformers' ``group_by_length`` sampler does: shuffle, cut into mega-batches of
    50 batches, sort each mega-batch by length (longest first)."""
    rng = np.random.default_rng(seed)
    shuffled = [lengths[i] for i in rng.permutation(len(lengths))]
    mega = 50 * batch_size
    return [n for i in range(0, len(shuffled), mega) for n in sorted(shuffled[i:i + mega], reverse=True)]


def padding_table(lengths: list[int], batch_size: int, max_length: int = 128, seed: int = 0):
    """Token slots per batch when padding to ``max_length`` vs dynamic padding → DataFrame.

    ``lengths``: token count of each sentence (with [CLS]/[SEP]); each is truncated to ``max_length``. Rows:
    fixed padding to ``max_length``; dynamic padding (to the longest in the batch) in random order; dynamic
    padding with length-grouped batches (``group_by_length``, what ``kdlab.distillation.training`` trains with).
    Columns:
    strategy, batches, real_per_batch, padded_per_batch (token slots computed), pad_fraction (share of slots
    that are padding), slots_vs_real (padded / real).
    """
    if batch_size < 1 or max_length < 1 or not lengths:
        raise KDLabError("padding_table needs sentences, batch_size >= 1 and max_length >= 1.")
    lengths = [min(int(n), max_length) for n in lengths]
    rng = np.random.default_rng(seed)
    random_order = [lengths[i] for i in rng.permutation(len(lengths))]
    strategies = {
        f"fixed to {max_length}": (_batches_of(random_order, batch_size), True),
        "dynamic, random order": (_batches_of(random_order, batch_size), False),
        "dynamic, length-grouped": (_batches_of(length_grouped_order(lengths, batch_size, seed), batch_size), False),
    }
    rows = []
    real = sum(lengths)
    for name, (batches, fixed) in strategies.items():
        slots = sum(len(b) * (max_length if fixed else max(b)) for b in batches)
        rows.append({"strategy": name, "batches": len(batches), "real_per_batch": real / len(batches),
                     "padded_per_batch": slots / len(batches), "pad_fraction": 1 - real / slots,
                     "slots_vs_real": slots / real})
    return pd.DataFrame(rows)
