"""A run folder, ``<runs_dir>/<profile>/``: where the teacher and the students are saved, ``results.json`` (every
number the report needs), and whether a saved teacher or student was trained under the current settings (so it is
reused, or the notebook that makes it is named)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import kdlab.models.bilstm  # noqa: F401  (registers the BiLSTM student with the Auto classes: saved ones load)
from kdlab.artifacts import read_json, update_json
from kdlab.config import VARIANTS, KDConfig
from kdlab.distillation.losses import DistillationLoss
from kdlab.distillation.training import RESULT_FILE, TrainResult
from kdlab.errors import KDLabError

RESULTS = "results.json"
# Config fields that decide what the fine-tuned teacher is: a saved teacher is reused only if they match.
TEACHER_FIELDS = ("teacher", "teacher_finetune", "data", "max_length", "teacher_learning_rate", "teacher_epochs",
                  "batch_size", "warmup_steps", "weight_decay", "seed", "max_eval_samples")
# Config fields that do not change what a trained student is (display, timing, bookkeeping).
NOT_TRAINING_FIELDS = ("runs_dir", "num_threads", "bench_repeats", "bench_warmup", "logging_steps", "eval_steps",
                       "save_steps", "compare_variants", "extra_student_layers", "eval_batch_size", "num_seeds",
                       "challenges", "race_sentences")


# --- the teacher ---------------------------------------------------------------------------------------------------
def teacher_dir(cfg: KDConfig) -> Path:
    return cfg.run_dir() / "teacher"


def saved_teacher_matches(cfg: KDConfig) -> bool:
    record = read_json(teacher_dir(cfg) / RESULT_FILE)
    if not record:
        return False
    saved = record.get("config", {})
    samples = saved.get("teacher_train_samples") or saved.get("max_train_samples")
    return samples == (cfg.teacher_train_samples or cfg.max_train_samples) and all(
        saved.get(k) == getattr(cfg, k) for k in TEACHER_FIELDS)


# --- results.json ------------------------------------------------------------------------------------------------
def results(cfg: KDConfig) -> dict:
    return read_json(cfg.run_dir() / RESULTS, default={}) or {}


def record(cfg: KDConfig, **entries) -> dict:
    """Merge ``entries`` into ``runs/<profile>/results.json`` (atomic write)."""
    return update_json(cfg.run_dir() / RESULTS, entries)


# --- students ------------------------------------------------------------------------------------------------------
def student_dir(cfg: KDConfig, name: str, tag: str | None = None) -> Path:
    """``students/<name>`` for the lab's students, ``experiments/<tag>/<name>`` for an experiment's."""
    return cfg.run_dir() / ("students" if tag is None else Path("experiments") / tag) / name


def config_differences(saved: dict, cfg: KDConfig) -> dict[str, tuple]:
    """``{field: (saved, now)}`` for the fields that change what a student is (``NOT_TRAINING_FIELDS`` aside); a
    field missing from ``saved`` (written before kdlab had it) counts as its default, not as a difference."""
    now, defaults = cfg.to_dict(), KDConfig().to_dict()
    return {k: (saved.get(k, defaults[k]), now[k]) for k in now
            if k not in NOT_TRAINING_FIELDS and saved.get(k, defaults[k]) != now[k]}


def load_student(cfg: KDConfig, variant: str, tag: str | None = None, allow_other_settings: bool = False):
    """A saved student (model, tokenizer, its kdlab.json record). Stops, naming the notebook to run, when 02-Distill
    has not saved it; stops, naming what differs, when it was trained under other settings than ``cfg`` (01-Setup
    re-run with new ones) unless ``allow_other_settings``."""
    folder = student_dir(cfg, variant, tag)
    record_ = read_json(folder / RESULT_FILE)
    if not record_:
        raise KDLabError(f"{folder} holds no trained student: run 02-Distill.ipynb first (same KDLAB_PROFILE).")
    entries = results(cfg).get("students") if tag is None else (results(cfg).get("experiments") or {}).get(tag)
    own = ((entries or {}).get(variant) or {}).get("settings") or {}  # e.g. ce-random's student_init="random"
    differ = config_differences(record_.get("config", {}),
                                (dataclasses.replace(cfg, **own) if own else cfg).for_students())
    if differ and not allow_other_settings:
        listed = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in sorted(differ.items()))
        raise KDLabError(f"the saved `{variant}` student was trained under other settings ({listed}). Run "
                         "02-Distill.ipynb again with the current settings, or pass allow_other_settings=True to "
                         "use it anyway.")
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model, tokenizer, record_


def trained_variants(cfg: KDConfig, tag: str | None = None) -> list[str]:
    """Names with a saved student: the lab's variants first, in order, then any others (e.g. ``ce-random``)."""
    root = student_dir(cfg, "x", tag).parent
    saved = sorted(p.parent.name for p in root.glob(f"*/{RESULT_FILE}")) if root.is_dir() else []
    return [v for v in VARIANTS if v in saved] + [v for v in saved if v not in VARIANTS]


def saved_result(folder: Path, cfg: KDConfig, variant: str, loss=None):
    """A TrainResult for a student saved in ``folder`` with exactly ``cfg`` and ``variant``'s loss (or ``loss``, a
    ``DistillationLoss`` such as one with a student's own terms), else None."""
    record_ = read_json(folder / RESULT_FILE)
    if not record_ or record_.get("config") != cfg.to_dict() or record_.get("predictions") is None:
        return None
    if record_.get("loss") != (loss or DistillationLoss.from_config(cfg, variant)).settings():
        return None
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    return TrainResult(model, record_["metrics"], record_["history"], folder, record_["train_seconds"],
                       record_.get("resumed_from"), np.asarray(record_["predictions"]), reused=True)


def histories(cfg: KDConfig, names=None, tag: str | None = None) -> dict[str, list[dict]]:
    """The training log of each saved student (from its kdlab.json): after a kernel restart too."""
    names = names or trained_variants(cfg, tag)
    out = {}
    for name in names:
        record_ = read_json(student_dir(cfg, name, tag) / RESULT_FILE)
        if record_:
            out[name] = record_.get("history", [])
    return out


def loss_weights(cfg: KDConfig, names=None, tag: str | None = None) -> dict[str, dict]:
    """Each saved student's loss settings (``vars(DistillationLoss)``: alpha, beta, gamma, delta, temperature...)."""
    names = names or trained_variants(cfg, tag)
    return {n: (read_json(student_dir(cfg, n, tag) / RESULT_FILE) or {}).get("loss", {}) for n in names}
