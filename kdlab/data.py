"""SST-2 from the Hub, a local GLUE TSV folder, a ``save_to_disk`` folder, or synthetic sentences.

Every loader returns a ``DatasetDict`` with ``train`` and ``validation`` splits and columns ``sentence`` (str)
and ``label`` (a ClassLabel: 0 = negative, 1 = positive for SST-2, the GLUE convention). Local data may have any
number of classes, as integers 0..K-1 or as text labels; their order is recorded in the ClassLabel.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_from_disk

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
    if all(v.isdigit() for v in values):
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
    from datasets import load_dataset

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


# --- synthetic sentiment for smoke runs ------------------------------------------------------------------
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


# --- one entry point -------------------------------------------------------------------------------------
def load_sst2(
    source: str = "hub",
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> DatasetDict:
    """Load SST-2 from ``source``: ``"hub"``, ``"synthetic"``, or a local folder (GLUE TSVs or save_to_disk).

    ``max_train_samples`` takes the first N training sentences after a shuffle with ``seed`` (so a subset is a
    fair sample, not the first phrases of the file); ``max_eval_samples`` the first N dev sentences.
    """
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and value < 1:
            raise KDLabError(f"{name}={value}: an empty subset cannot train or evaluate anything; use None for all.")
    if source == "hub":
        ds = load_hub()
    elif source == "synthetic":
        ds = synthetic_sst2(max_train_samples or 512, max_eval_samples or 128, seed)
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise KDLabError(
                f"data source {source!r} is neither 'hub', 'synthetic' nor an existing folder "
                "(KDLAB_DATA_DIR must point at a folder with train.tsv and dev.tsv)."
            )
        if (folder / "dataset_dict.json").is_file():
            ds = load_from_disk(str(folder))
            missing = {"train", "validation"} - set(ds)
            if missing:
                raise KDLabError(f"{folder}: save_to_disk folder lacks split(s) {sorted(missing)}.")
            ds = DatasetDict(train=ds["train"], validation=ds["validation"])
            for name, split in ds.items():
                if "label" in split.column_names and split.features["label"].dtype == "string":
                    raise KDLabError(
                        f"{folder}: the {name} split has text labels; kdlab needs integer class ids. Convert them "
                        "first (ds = ds.class_encode_column('label'); ds.save_to_disk(...)), or save the data as "
                        "train.tsv/dev.tsv, where text labels are mapped for you.")
            feature = ds["train"].features.get("label")
            names = list(getattr(feature, "names", None) or integer_class_names(
                [*ds["train"]["label"], *ds["validation"]["label"]], str(folder)))
            for split in ds.values():
                check_labels(split, num_labels=len(names), where=str(folder))
            ds = DatasetDict({k: v.cast_column("label", ClassLabel(names=names)) for k, v in ds.items()})
        else:
            ds = load_tsv_folder(folder)
    train, dev = ds["train"], ds["validation"]
    if max_train_samples is not None:
        train = train.shuffle(seed=seed).select(range(min(max_train_samples, len(train))))
    if max_eval_samples is not None:
        dev = dev.select(range(min(max_eval_samples, len(dev))))
    return DatasetDict(train=train, validation=dev)


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


def label_balance(dataset: Dataset, names: list[str] | None = None) -> dict[str, int]:
    """Rows per class (``{"negative": n0, "positive": n1}`` for SST-2), plus ``"unlabelled"`` for a transfer set."""
    labels = dataset["label"]
    counts = {name: sum(1 for x in labels if x == i) for i, name in enumerate(names or label_names(dataset))}
    unlabelled = sum(1 for x in labels if x == UNLABELLED)
    return {**counts, "unlabelled": unlabelled} if unlabelled else counts


def tokenize(ds: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Tokenise ``sentence`` with truncation to ``max_length`` and no padding (batches pad dynamically)."""

    def encode(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=max_length)

    return ds.map(encode, batched=True, desc="tokenize")


def token_lengths(dataset: Dataset, tokenizer) -> list[int]:
    """Untruncated token count of each sentence (with [CLS]/[SEP])."""
    return [len(ids) for ids in tokenizer(list(dataset["sentence"]))["input_ids"]]
