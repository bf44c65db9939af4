"""The students' transfer set: which sentences keep their gold label and which are taught by the teacher's soft
labels alone (label ``UNLABELLED``), and the label balance of a split."""

from __future__ import annotations

from datasets import Dataset, Value

from kdlab.data.sources import UNLABELLED, label_names
from kdlab.errors import KDLabError


def hide_labels(train: Dataset, labelled: int) -> Dataset:
    """Keep the gold label of the first ``labelled`` rows; the others become an unlabelled transfer set
    (label ``UNLABELLED`` = -100): distilled students learn from them through the teacher's soft labels only, a CE
    student cannot use them. Rows come from a seeded shuffle (``load_sst2``), so the labelled part is a fair sample.
    """
    if not 1 <= labelled <= len(train):
        raise KDLabError(f"labelled_train_samples={labelled}: must be between 1 and the {len(train)} training "
                         "sentences (use None for all labelled).")
    train = train.cast_column("label", Value("int64"))  # a ClassLabel cannot hold -100
    return train.map(lambda row, i: {"label": row["label"] if i < labelled else UNLABELLED}, with_indices=True,
                     desc="hide labels")


def labelled_only(dataset: Dataset) -> Dataset:
    """The rows that have a gold label (drops the unlabelled transfer set)."""
    if UNLABELLED not in set(dataset["label"]):
        return dataset
    return dataset.filter(lambda row: row["label"] != UNLABELLED, desc="labelled rows")


def label_balance(dataset: Dataset, names: list[str] | None = None) -> dict[str, int]:
    """Rows per class (``{"negative": n0, "positive": n1}`` for SST-2), plus ``"unlabelled"`` for a transfer set."""
    labels = dataset["label"]
    counts = {name: sum(1 for x in labels if x == i) for i, name in enumerate(names or label_names(dataset))}
    unlabelled = sum(1 for x in labels if x == UNLABELLED)
    return {**counts, "unlabelled": unlabelled} if unlabelled else counts
