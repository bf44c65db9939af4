"""The sources of sentence-classification data: SST-2 from the Hub, a local GLUE TSV folder (any number of classes),
and the label conventions they share (class names, ``UNLABELLED``, label checks). ``kdlab.data.loading.load_sst2``
picks a source by name; ``save_to_disk`` folders and synthetic sentences are read there.

Every loader returns a ``DatasetDict`` with ``train`` and ``validation`` splits and columns ``sentence`` (str)
and ``label`` (a ClassLabel: 0 = negative, 1 = positive for SST-2, the GLUE convention). Local data may have any
number of classes, as integers 0..K-1 or as text labels; their order is recorded in the ClassLabel.
"""

from __future__ import annotations

import csv
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset

from kdlab.errors import KDLabError

HUB_DATASET = ("nyu-mll/glue", "sst2")
UNLABELLED = -100  # label of a transfer-set sentence: no gold label; CE skips it, the KD terms still use it
LABEL_NAMES = ["negative", "positive"]  # SST-2's (and the default for labels 0/1)
FEATURES = Features({"sentence": Value("string"), "label": ClassLabel(names=LABEL_NAMES)})


def features_for(names: list[str]) -> Features:
    return Features({"sentence": Value("string"), "label": ClassLabel(names=list(names))})


def label_names_for(labels: list[str], where: str = "data") -> list[str]:
    """Class names for the raw labels of a TSV: integers 0..K-1 keep their order (0/1 are SST-2's ``negative`` /
    ``positive``), any other text labels are sorted (the order is recorded in the dataset's ClassLabel)."""
    values = sorted(set(labels))
    if all(v.isascii() and v.isdigit() for v in values):  # "²" and "١" are digits to isdigit, not to int()
        return integer_class_names([int(v) for v in values], where)
    return values


def integer_class_names(ids, where: str = "data") -> list[str]:
    """Names for integer class ids: they must be 0..K-1 with every class present (a gap is a data error)."""
    ids = sorted({int(i) for i in ids if int(i) != UNLABELLED})
    if not ids:
        return list(LABEL_NAMES)
    gaps = sorted(set(range(ids[-1] + 1)) - set(ids))
    if ids[0] < 0 or gaps or ids[-1] >= 1000:
        raise KDLabError(f"{where}: integer labels must be 0..K-1 with every class present; got {ids[:12]}"
                         f"{', …' if len(ids) > 12 else ''}" + (f" (no examples of {gaps[:12]})" if gaps else "")
                         + ". Renumber them, or use text labels.")
    return list(LABEL_NAMES) if ids[-1] <= 1 else [str(i) for i in range(ids[-1] + 1)]


def read_glue_tsv(path: str | Path, names: list[str] | None = None) -> Dataset:
    """Read a GLUE-style ``sentence<TAB>label`` file with a header row, quoting off (sentences keep quotes).

    Labels may be integers 0..K-1 or text (e.g. ``negative``/``neutral``/``positive``); ``names`` fixes the class
    order (the training file's, for the dev file), else it comes from ``label_names_for``. KDLabError names the
    file and line for a row without a tab or a label outside ``names``.
    """
    path = Path(path)
    sentences, labels, lines = [], [], []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: a byte-order mark (Excel, Notepad) is skipped
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["sentence", "label"]:
                raise KDLabError(f"{path}: the first line must be the header 'sentence<TAB>label', got {header!r}.")
            for lineno, row in enumerate(reader, start=2):
                if len(row) < 2:
                    raise KDLabError(f"{path}:{lineno}: row has no tab between sentence and label: {row!r}.")
                sentences.append(row[0].strip())
                labels.append(row[1].strip())
                lines.append(lineno)
    except UnicodeDecodeError as exc:
        raise KDLabError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}): save it as UTF-8 (in Excel: "
                         "'Unicode Text' or 'CSV UTF-8').") from exc
    if not sentences:
        raise KDLabError(f"{path} has a header but no rows.")
    names = list(names) if names is not None else label_names_for(labels, str(path))
    numeric = names == list(LABEL_NAMES) or names == [str(i) for i in range(len(names))]
    index = {str(i): i for i in range(len(names))} if numeric else {n: i for i, n in enumerate(names)}
    ids = []
    for label, lineno in zip(labels, lines):
        if label not in index:
            raise KDLabError(f"{path}:{lineno}: label {label!r} is not one of the labels of the training data "
                             f"({', '.join(index)}).")
        ids.append(index[label])
    return Dataset.from_dict({"sentence": sentences, "label": ids}, features=features_for(names))


def load_tsv_folder(folder: str | Path) -> DatasetDict:
    """``train.tsv`` + ``dev.tsv`` (GLUE layout) → DatasetDict(train, validation); the dev file uses the training
    file's classes."""
    folder = Path(folder)
    missing = [name for name in ("train.tsv", "dev.tsv") if not (folder / name).is_file()]
    if missing:
        raise KDLabError(
            f"{folder} lacks {', '.join(missing)}: a local data folder needs GLUE-style train.tsv and dev.tsv "
            "(header 'sentence<TAB>label'), or a datasets.save_to_disk folder."
        )
    train = read_glue_tsv(folder / "train.tsv")
    return DatasetDict(train=train, validation=read_glue_tsv(folder / "dev.tsv", train.features["label"].names))


def label_names(dataset) -> list[str]:
    """The class names of a split (its ClassLabel), SST-2's for a plain integer column."""
    feature = dataset.features.get("label")
    names = getattr(feature, "names", None)
    if names:
        return list(names)
    return integer_class_names(dataset["label"])


def load_hub() -> DatasetDict:
    """SST-2 from the Hugging Face Hub (``nyu-mll/glue``, config ``sst2``); test split dropped (no labels)."""
    try:
        ds = load_dataset(*HUB_DATASET)
    except Exception as exc:  # offline: ConnectionError, OSError, LocalEntryNotFoundError...
        raise KDLabError(
            f"could not load {'/'.join(HUB_DATASET)} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            "Offline options: set KDLAB_DATA_DIR to a folder with GLUE train.tsv/dev.tsv (or a save_to_disk "
            "folder), or use KDLAB_PROFILE=smoke (synthetic data)."
        ) from exc
    return DatasetDict(
        train=ds["train"].select_columns(["sentence", "label"]),
        validation=ds["validation"].select_columns(["sentence", "label"]),
    )


def check_labels(dataset: Dataset, num_labels: int, where: str = "dataset", allow_unlabelled: bool = False) -> None:
    """Every label must be an integer in ``0..num_labels-1`` (or ``UNLABELLED`` when ``allow_unlabelled``, for
    a transfer set); an empty dataset is an error too."""
    if len(dataset) == 0:
        raise KDLabError(f"{where}: the dataset is empty.")
    if "label" not in dataset.column_names or "sentence" not in dataset.column_names:
        raise KDLabError(f"{where}: needs columns 'sentence' and 'label', has {dataset.column_names}.")
    allowed = {UNLABELLED} if allow_unlabelled else set()
    bad = sorted({int(x) for x in dataset["label"] if not 0 <= int(x) < num_labels and int(x) not in allowed})
    if bad:
        raise KDLabError(
            f"{where}: labels {bad} do not fit a {num_labels}-label teacher (expected 0..{num_labels - 1})."
        )


