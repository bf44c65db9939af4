"""Loading a run's data: SST-2 (or another sentence-classification set) from a source name, and the teacher's
and the students' splits of a config (the students': a labelled part, an unlabelled transfer set, augmented
copies), with the same dev split."""

from __future__ import annotations


from datasets import ClassLabel, DatasetDict, concatenate_datasets, load_from_disk

from kdlab.config import KDConfig
from kdlab.data.augment import add_augmented
from kdlab.data.locations import locate
from kdlab.data.sources import check_labels, integer_class_names, label_names, load_hub, load_tsv_folder
from kdlab.data.synthetic import synthetic_sst2
from kdlab.data.transfer import hide_labels
from kdlab.errors import KDLabError


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
        where = locate(source, "data", builtin=("hub", "synthetic"))
        folder = where.path
        if folder is None:
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


def load_data(cfg: KDConfig, for_teacher: bool = False):
    """SST-2 for the students (``max_train_samples``) or for fine-tuning the teacher (``teacher_train_samples``),
    from one seeded shuffle. The students' sentences beyond ``labelled_train_samples`` lose their labels
    (``kdlab.data.transfer.hide_labels``) and ``augment_copies`` adds augmented unlabelled ones
    (``kdlab.data.augment``): an unlabelled transfer set. The teacher's never change.

    ``transfer_sentences`` says where the unlabelled ones come from: ``"teacher"`` — the students' sentences are the
    first of the teacher's (the teacher trained on their gold labels: DistilBERT's practice, the teacher's own data
    as the transfer set); ``"unseen"`` — the labelled ones are still the teacher's first, but the unlabelled ones
    are the sentences after the teacher's, which it never trained on (labels the student does not have, from a
    teacher that does not know them either). SST-2's training rows are phrases of 8.5k sentences, so "unseen" rows
    can still share words and sub-phrases with the teacher's; no row is the same."""
    teacher_n = cfg.teacher_train_samples or cfg.max_train_samples
    unseen = not for_teacher and cfg.transfer_sentences == "unseen" and cfg.labelled_train_samples is not None
    if for_teacher:
        n = teacher_n
    elif unseen:
        if teacher_n is None or cfg.max_train_samples is None:
            raise KDLabError("transfer_sentences='unseen' needs teacher_train_samples and max_train_samples: the "
                             "unlabelled sentences are taken after the teacher's.")
        n = teacher_n + cfg.max_train_samples - cfg.labelled_train_samples
    else:
        n = cfg.max_train_samples
    data = load_sst2(cfg.data, n, cfg.max_eval_samples, cfg.seed)
    if for_teacher:
        return data
    train = data["train"]
    if unseen:
        if len(train) < n:
            raise KDLabError(f"transfer_sentences='unseen' needs {n:,} training sentences ({teacher_n:,} for the "
                             f"teacher, then {cfg.max_train_samples - cfg.labelled_train_samples:,} it never saw); "
                             f"the data has {len(train):,}. Lower teacher_train_samples or max_train_samples.")
        labelled = cfg.labelled_train_samples
        train = concatenate_datasets([train.select(range(labelled)), train.select(range(teacher_n, n))])
    if cfg.labelled_train_samples is not None and cfg.labelled_train_samples < len(train):
        train = hide_labels(train, cfg.labelled_train_samples)
    return DatasetDict(train=add_augmented(train, cfg.augment_copies, cfg.seed), validation=data["validation"])


def class_names(cfg: KDConfig) -> list[str]:
    """The classes of the configured data, in order (SST-2: negative, positive)."""
    return label_names(load_data(cfg, for_teacher=True)["validation"])
