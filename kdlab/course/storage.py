"""What a lab run keeps in its runs folder (on Colab: Google Drive, 15 GB free, deleted files counted until the Trash
is emptied), computed from the models' parameter counts before anything is written.

What lands there: each finished model as fp32 safetensors (4 bytes a parameter) with its tokenizer and its record
(``kdlab.json``: metrics, dev predictions, history), the run's ``config.json``/``results.json``/``report.md``. What
does not: checkpoints and optimizer state (the runtime's local disk, ``KDLAB_CHECKPOINTS_DIR``), a Hub teacher that
needed no fine-tuning (it comes back from the Hub).
"""

from __future__ import annotations

from dataclasses import dataclass

from kdlab.config import KDConfig

BYTES_PER_PARAMETER = 4  # fp32 safetensors
# Per saved model besides its weights: tokenizer files (BERT's uncased WordPiece: vocab.txt 232 KB + tokenizer.json
# 712 KB), config files and the kdlab.json record (dev predictions, a few hundred history rows). An allowance.
PER_MODEL_BYTES = 2 * 2**20
PER_RUN_BYTES = 1 * 2**20  # config.json, results.json (predictions of every model), report.md, profile.json
FREE_DRIVE_BYTES = 15 * 10**9
BUDGET_BYTES = 2 * 2**30  # what a whole run may keep on a student's Drive


@dataclass(frozen=True)
class Saved:
    name: str  # where it is saved, e.g. students/minilm
    layers: int  # encoder layers (the teacher's for the teacher)


def smaller_student_layers(cfg: KDConfig, teacher_layers: int) -> int:
    """The challenges' smaller student: 4 layers under a deep teacher (``class``/``full``), else one layer fewer."""
    return 4 if teacher_layers >= 8 else max(1, cfg.student_layers - 1)


def saved_models(cfg: KDConfig, teacher_layers: int, teacher_saved: bool, race_yours: bool = True,
                 challenges: bool | None = None) -> list[Saved]:
    """Every model a run of 01–04 with ``cfg`` saves in the runs folder. ``teacher_saved``: 01 fine-tuned the
    teacher here (a Hub teacher with its head is not copied); ``race_yours``: the loss race also trains your loss
    (it does once one of your functions is written); ``challenges``: default ``cfg.challenges``."""
    models = [Saved("teacher", teacher_layers)] if teacher_saved else []
    names = ["minilm", *(("ce", "ce-random", "hinton") if cfg.compare_variants else ())]
    models += [Saved(f"students/{n}", cfg.student_layers) for n in names]
    models += [Saved(f"experiments/loss-race/{n}", cfg.student_layers) for n in ("kdlab", "yours")[:1 + race_yours]]
    if cfg.challenges if challenges is None else challenges:
        smaller = smaller_student_layers(cfg, teacher_layers)
        models += [Saved(f"experiments/temperature/T={t}", cfg.student_layers) for t in (1, 2, 4, 8, 16)]
        models += [Saved(f"experiments/alpha-beta/{i}", cfg.student_layers) for i in range(3)]
        models += [Saved(f"experiments/smaller/{smaller}L", smaller)]
    return models


def drive_bytes(models: list[Saved], params_by_layers: dict[int, int]) -> int:
    """The bytes ``models`` take in the runs folder: weights at ``BYTES_PER_PARAMETER`` plus ``PER_MODEL_BYTES``
    each, plus ``PER_RUN_BYTES``. ``params_by_layers``: parameter count of a model with that many encoder layers."""
    return PER_RUN_BYTES + sum(BYTES_PER_PARAMETER * params_by_layers[m.layers] + PER_MODEL_BYTES for m in models)


def bert_params_by_layers(layers: list[int], **config) -> dict[int, int]:
    """Parameter counts of BERT sequence classifiers (``transformers.BertConfig(**config)``, two labels) with each
    number of layers, counted on the meta device: no weights are made or downloaded."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    counts = {}
    for n in layers:
        with torch.device("meta"):
            model = BertForSequenceClassification(BertConfig(num_hidden_layers=n, num_labels=2, **config))
        counts[n] = sum(p.numel() for p in model.parameters())
    return counts


def budget_line(cfg: KDConfig, total: int) -> str:
    return (f"the `{cfg.profile}` profile keeps about {total / 2**30:.2f} GiB in its runs folder "
            f"(budget {BUDGET_BYTES / 2**30:.0f} GiB; a free Drive holds {FREE_DRIVE_BYTES / 1e9:.0f} GB)")
