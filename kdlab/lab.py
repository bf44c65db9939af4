"""The lab's steps, shared by the notebooks and ``python -m kdlab run``.

Each notebook calls these; they read and write ``runs/<profile>/``:
``config.json``, ``teacher/`` (when the teacher was fine-tuned here), ``students/<variant>/``,
``results.json`` (every number the report needs) and ``report.md``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from kdlab.artifacts import read_json, require, update_json
from kdlab.config import KDConfig, load_config
from kdlab.data import load_sst2
from kdlab.distill import RESULT_FILE, finetune_teacher
from kdlab.errors import KDLabError
from kdlab.teacher import Teacher, load_teacher

RESULTS = "results.json"
# Config fields that decide what the fine-tuned teacher is: a saved teacher is reused only if they match.
TEACHER_FIELDS = ("teacher", "teacher_finetune", "data", "max_length", "teacher_train_samples", "max_train_samples",
                  "teacher_learning_rate", "teacher_epochs", "batch_size", "warmup_steps", "weight_decay", "seed",
                  "max_eval_samples")


def setup(profile: str | None = None, **overrides) -> KDConfig:
    """Load and validate the config, seed everything, pin CPU threads if asked, save ``config.json``."""
    from transformers import set_seed

    cfg = load_config(profile, **overrides)
    set_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    cfg.run_dir().mkdir(parents=True, exist_ok=True)
    cfg.save(cfg.run_dir() / "config.json")
    return cfg


def environment() -> dict:
    """torch/transformers versions, CUDA availability, GPU name and memory, FP16 support, CPU threads."""
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.is_available(),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=torch.cuda.get_device_name(0),
            gpu_memory_GiB=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
            fp16=props.major >= 6,  # fast fp16 tensor math from Pascal (sm_60) on; T4 is 7.5
            bf16=torch.cuda.is_bf16_supported(),
        )
    else:
        info.update(fp16=False, note="no CUDA GPU: training and inference run in fp32 on the CPU")
    return info


def load_data(cfg: KDConfig, for_teacher: bool = False):
    """SST-2 for the students (``max_train_samples``) or for fine-tuning the teacher (``teacher_train_samples``).

    Both subsets come from the same seeded shuffle, so the students' sentences are a subset of the teacher's.
    """
    n = (cfg.teacher_train_samples or cfg.max_train_samples) if for_teacher else cfg.max_train_samples
    return load_sst2(cfg.data, n, cfg.max_eval_samples, cfg.seed)


def teacher_dir(cfg: KDConfig) -> Path:
    return cfg.run_dir() / "teacher"


def _saved_teacher_matches(cfg: KDConfig) -> bool:
    record = read_json(teacher_dir(cfg) / RESULT_FILE)
    if not record:
        return False
    saved = record.get("config", {})
    return all(saved.get(k) == getattr(cfg, k) for k in TEACHER_FIELDS)


def prepare_teacher(cfg: KDConfig, force: bool = False) -> Teacher:
    """The lab's teacher, fine-tuned first when it has no trained head (or ``teacher_finetune='yes'``).

    A teacher fine-tuned earlier with the same settings is reused from ``runs/<profile>/teacher``.
    """
    if not force and _saved_teacher_matches(cfg):
        return load_teacher(str(teacher_dir(cfg)), seed=cfg.seed)
    teacher = load_teacher(cfg.teacher, seed=cfg.seed)
    if cfg.teacher_finetune == "yes" or (cfg.teacher_finetune == "auto" and teacher.needs_finetune):
        result = finetune_teacher(cfg, teacher.model, teacher.tokenizer, load_data(cfg, for_teacher=True),
                                  teacher_dir(cfg))
        update_json(cfg.run_dir() / RESULTS, {"teacher_finetune": {
            "train_seconds": result.train_seconds, "metrics": result.metrics,
            "train_samples": cfg.teacher_train_samples or cfg.max_train_samples}})
        return Teacher(result.model, teacher.tokenizer, False, str(teacher_dir(cfg)))
    return teacher


def lab_teacher(cfg: KDConfig) -> Teacher:
    """The teacher that 01-Setup prepared (for notebooks 02–04); stops if 01-Setup has not run."""
    if _saved_teacher_matches(cfg):
        return load_teacher(str(teacher_dir(cfg)), seed=cfg.seed)
    teacher = load_teacher(cfg.teacher, seed=cfg.seed)
    if teacher.needs_finetune and cfg.teacher_finetune != "no":
        raise KDLabError(
            f"{teacher_dir(cfg)} holds no fine-tuned teacher for these settings: run 01-Setup.ipynb first "
            f"(KDLAB_PROFILE={cfg.profile})."
        )
    return teacher


def results(cfg: KDConfig) -> dict:
    return read_json(cfg.run_dir() / RESULTS, default={}) or {}


def record(cfg: KDConfig, **entries) -> dict:
    """Merge ``entries`` into ``runs/<profile>/results.json`` (atomic write)."""
    return update_json(cfg.run_dir() / RESULTS, entries)


def student_dir(cfg: KDConfig, variant: str) -> Path:
    return cfg.run_dir() / "students" / variant


def load_student(cfg: KDConfig, variant: str):
    """A saved student (model, tokenizer, its kdlab.json record); stops if 02-Distill has not saved it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = require(student_dir(cfg, variant) / RESULT_FILE, "02-Distill.ipynb").parent
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model, tokenizer, read_json(folder / RESULT_FILE)


def trained_variants(cfg: KDConfig) -> list[str]:
    """Variants with a saved student, in the lab's order."""
    from kdlab.config import VARIANTS

    return [v for v in VARIANTS if (student_dir(cfg, v) / RESULT_FILE).is_file()]
