"""Training runs: ``distill(...)`` trains one variant (``ce``, ``hinton``, ``minilm``) and saves the student, its
tokenizer and a ``kdlab.json`` (metrics, config, history); ``finetune_teacher(...)`` gives a plain encoder its
SST-2 head with the same machinery (CE only). Interrupted runs resume from their last complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import DatasetDict
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from kdlab.artifacts import atomic_dir, atomic_write_json, read_json
from kdlab.config import KDConfig
from kdlab.data.sources import UNLABELLED, check_labels
from kdlab.data.tokens import tokenize
from kdlab.data.transfer import labelled_only
from kdlab.distillation.losses import DistillationLoss
from kdlab.distillation.progress import text_progress_wanted, use_text_progress
from kdlab.distillation.trainer import DistillationTrainer, check_distillation_setup, training_arguments
from kdlab.metrics.classification import classification_metrics, trainer_metrics
from kdlab.models.student import build_student

RUN_STAMP = "kdlab_run.json"  # in a checkpoint folder: which config/variant the checkpoints belong to
RESULT_FILE = "kdlab.json"  # in a saved model folder: metrics, config, history
ELAPSED_FILE = "kdlab_elapsed.json"  # in a checkpoint folder: training seconds spent up to that checkpoint
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def checkpoint_problem(folder: Path) -> str | None:
    """Why a ``checkpoint-N`` folder cannot be resumed from (None when it is complete): trainer state missing or
    not JSON, weights or optimizer state missing."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is truncated or not JSON"
    if not any((folder / name).is_file() for name in _WEIGHTS):
        return "no model weights"
    if not (folder / "optimizer.pt").is_file():
        return "no optimizer state"
    return None


def last_complete_checkpoint(folder: str | Path, log=print) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that can be resumed from: transformers' ``get_last_checkpoint``
    (the highest N) plus the check it lacks. A checkpoint that an interrupted save left incomplete
    (``checkpoint_problem``: truncated state, missing weights) would make ``Trainer.train`` fail on resume, so it is
    renamed ``damaged-checkpoint-N`` (kept, out of the way of the resume and of the Trainer's own rotation and
    saves) and the next newest is tried; ``log`` says so."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    damaged = False
    while (last := get_last_checkpoint(str(folder))) is not None:
        problem = checkpoint_problem(Path(last))
        if problem is None:
            if damaged:
                log(f"kdlab: resuming from {Path(last).name} instead.")
            return last
        aside = Path(last).with_name(f"damaged-{Path(last).name}")
        shutil.rmtree(aside, ignore_errors=True)
        Path(last).rename(aside)
        log(f"kdlab: {Path(last).name} cannot be resumed from ({problem}); kept as {aside.name}.")
        damaged = True
    if damaged:
        log("kdlab: no earlier complete checkpoint: training starts afresh.")
    return None


def _elapsed_before(checkpoint: str | None) -> float:
    """Training seconds already spent when ``checkpoint`` was saved (0 for a fresh run)."""
    record = read_json(Path(checkpoint) / ELAPSED_FILE) if checkpoint else None
    return float((record or {}).get("seconds", 0.0))


class _ElapsedCallback(TrainerCallback):
    """Writes the training seconds so far into each checkpoint, so a resumed run reports its total time."""

    def __init__(self, before: float):
        self.before, self.start = before, time.perf_counter()

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.start

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            atomic_write_json(folder / ELAPSED_FILE, {"seconds": self.elapsed()})


def _checkpoint_to_resume(ckpt_dir: Path, stamp: dict) -> str | None:
    """Resume only checkpoints of the same config and variant; otherwise clear stale ones and start fresh."""
    if read_json(ckpt_dir / RUN_STAMP) == stamp:
        return last_complete_checkpoint(ckpt_dir)
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    return None


@dataclass
class TrainResult:
    model: torch.nn.Module
    metrics: dict  # accuracy, acc_low, acc_high, f1, f1_macro, n on the dev split
    history: list[dict]  # Trainer log history: loss components per logging step, dev accuracy per evaluation
    output_dir: Path
    train_seconds: float
    resumed_from: str | None = None
    predictions: np.ndarray = field(default=None, repr=False)
    reused: bool = False  # loaded from a saved run of the same settings instead of trained


def train_and_save(
    model: torch.nn.Module,
    tokenizer,
    data: DatasetDict,
    cfg: KDConfig,
    loss_fn: DistillationLoss,
    output_dir: str | Path,
    checkpoint_dir: str | Path,
    *,
    teacher: torch.nn.Module | None = None,
    name: str,
    resume: bool = True,
    **trainer_overrides,
) -> TrainResult:
    """Train ``model`` with ``loss_fn``, evaluate on ``data["validation"]``, save it whole to ``output_dir``.
    ``trainer_overrides``: TrainingArguments that replace the config's (the teacher's learning rate and epochs)."""
    check_labels(data["train"], model.config.num_labels, where="train split", allow_unlabelled=loss_fn.needs_teacher)
    check_labels(data["validation"], model.config.num_labels, where="validation split")
    tokenized = tokenize(data, tokenizer, cfg.max_length)
    checkpoint_dir = Path(checkpoint_dir)
    stamp = {"name": name, "config": cfg.to_dict(), "loss": loss_fn.settings()}
    resume_from = _checkpoint_to_resume(checkpoint_dir, stamp) if resume else None
    if not resume and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    atomic_write_json(checkpoint_dir / RUN_STAMP, stamp)
    trainer = DistillationTrainer(
        model=model,
        args=training_arguments(cfg, checkpoint_dir, **trainer_overrides),
        loss_fn=loss_fn,
        teacher=teacher,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        compute_metrics=trainer_metrics,
    )
    if text_progress_wanted():  # headless (kdlab run, CI): a few plain lines instead of a bar
        use_text_progress(trainer, name)
    clock = _ElapsedCallback(_elapsed_before(resume_from))
    trainer.add_callback(clock)
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = clock.elapsed()  # with a resumed run: the seconds before the interruption too
    prediction = trainer.predict(tokenized["validation"])
    predictions = np.argmax(prediction.predictions, axis=-1)
    metrics = classification_metrics(prediction.label_ids, predictions, model.config.num_labels)
    model = trainer.model.float().eval()
    record = {
        "name": name,
        "metrics": metrics,
        "train_seconds": seconds,
        "resumed_from": resume_from,
        "train_samples": len(data["train"]),
        "labelled_samples": sum(1 for y in data["train"]["label"] if y != UNLABELLED),
        "predictions": [int(p) for p in predictions],  # dev predictions, in dataset order (paired tests, reuse)
        "loss": loss_fn.settings(),
        "config": cfg.to_dict(),
        "history": trainer.state.log_history,
        "device": str(trainer.args.device),
        "fp16": trainer.args.fp16,
    }
    with atomic_dir(output_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(Path(tmp) / RESULT_FILE, record)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the finished model is saved whole; drop the checkpoints
    return TrainResult(model, metrics, trainer.state.log_history, Path(output_dir), seconds, resume_from, predictions)




CHECKPOINTS_ENV = "KDLAB_CHECKPOINTS_DIR"  # where checkpoints go when the runs folder must not hold them (Colab)


def checkpoint_root(cfg: KDConfig) -> Path:
    """Where a run's checkpoints go: ``$KDLAB_CHECKPOINTS_DIR/<profile>`` when set (on Colab the runtime's own disk,
    set by ``kdlab.course.colab.prepare``: a BERT-base checkpoint with its optimizer state is ~1.3 GB, too much for
    a free Drive), else ``<run_dir>/checkpoints``. Only the finished model is saved in the runs folder."""
    local = os.environ.get(CHECKPOINTS_ENV)
    return Path(local) / cfg.profile if local else cfg.run_dir() / "checkpoints"


def distill(
    cfg: KDConfig,
    teacher: torch.nn.Module,
    tokenizer,
    data: DatasetDict,
    variant: str = "minilm",
    student: torch.nn.Module | None = None,
    output_dir: str | Path | None = None,
    resume: bool = True,
    checkpoint_name: str | None = None,
    loss_fn: DistillationLoss | None = None,
) -> TrainResult:
    """Train the ``variant`` student (``ce``, ``hinton`` or ``minilm``) and save it to ``output_dir``
    (default ``<run_dir>/students/<variant>``). The student defaults to ``cfg.student_layers`` layers cut from
    the teacher (``cfg.layer_map`` or alternate layers), or, when ``cfg.student`` names one, a student loaded on
    its own that shares the teacher's tokenizer (any depth, width and head count). The ``minilm`` variant adds
    the config's optional relation-head / hidden-state terms. With ``resume`` an interrupted run of the same
    config continues from its last complete checkpoint (kept in ``checkpoint_root(cfg)/<checkpoint_name or variant>``).
    ``loss_fn`` replaces the variant's loss (e.g. one with a student's own terms: ``kdlab.distillation.custom``).
    """
    cfg = cfg.for_students()  # a student id's own training seed, when there is one
    loss_fn = loss_fn or DistillationLoss.from_config(cfg, variant)
    if student is None:
        student = build_student(cfg, teacher, tokenizer)  # cut from the teacher, or cfg.student loaded on its own
    if loss_fn.needs_teacher:
        check_distillation_setup(loss_fn, teacher, student)  # before tokenising: layer ranges, relation heads
    else:  # a CE student has nothing to learn from the unlabelled transfer set: it trains on the labelled rows
        data = DatasetDict(train=labelled_only(data["train"]), validation=data["validation"])
    run_dir = cfg.run_dir()
    return train_and_save(
        student, tokenizer, data, cfg, loss_fn,
        output_dir or run_dir / "students" / variant,
        checkpoint_root(cfg) / (checkpoint_name or variant),
        teacher=teacher if loss_fn.needs_teacher else None,
        name=checkpoint_name or variant, resume=resume,  # the progress lines and the record name the run
    )


def finetune_teacher(cfg: KDConfig, model: torch.nn.Module, tokenizer, data: DatasetDict,
                     output_dir: str | Path | None = None, resume: bool = True) -> TrainResult:
    """Fine-tune a teacher's classification head and encoder on SST-2 with CE (``teacher_learning_rate``,
    ``teacher_epochs``) and save it to ``output_dir`` (default ``<run_dir>/teacher``). The teacher is evaluated
    once per epoch (``eval_steps`` is for the students' curves; on the full training set it would cost minutes)."""
    run_dir = cfg.run_dir()
    cfg = dataclasses.replace(cfg, eval_steps=None)
    return train_and_save(
        model, tokenizer, data, cfg, DistillationLoss.for_variant("ce"),
        output_dir or run_dir / "teacher",
        checkpoint_root(cfg) / "teacher",
        name="teacher", resume=resume,
        learning_rate=cfg.teacher_learning_rate, num_train_epochs=cfg.teacher_epochs,
    )


def history_frame(history: list[dict]):
    """Trainer log history → (train DataFrame of loss components per step, eval DataFrame per evaluation)."""
    train = pd.DataFrame([h for h in history if "loss" in h and "eval_loss" not in h])
    evals = pd.DataFrame([h for h in history if "eval_loss" in h])
    return train, evals
