"""Where the language-model runs live, and when a saved one is reused.

``<runs_dir>/<profile>/lm/``:

- ``teacher/``: the teacher and its tokenizer, ``kdlab.json`` with the settings it was trained with;
- ``seqkd/<key>.json``: the teacher's generations for sequence-level KD;
- ``cache-k<k>/``: the teacher's top-k distributions (``kdlab.lm.cache``);
- ``students/<regime>/seed-<s>/``: a student (model + ``kdlab.json``: its settings, training record, metrics).

A saved teacher or student is reused only when every setting it depends on is the same (``teacher_settings``,
``student_settings``); otherwise it is trained again and replaced whole (``kdlab.artifacts.atomic_dir``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kdlab.lm.config import LMConfig

TEACHER_FIELDS = ("teacher", "teacher_layers", "teacher_width", "teacher_heads", "teacher_epochs",
                  "teacher_learning_rate", "teacher_seed", "corpus", "data", "tokenizer", "vocab_size", "context",
                  "batch_size")
STUDENT_FIELDS = ("student_layers", "layer_map", "student_steps", "batch_size", "gradient_accumulation_steps",
                  "learning_rate", "warmup_steps", "train_texts", "ce_weight")
REGIME_FIELDS = {
    "kd-forward": ("temperature",), "kd-reverse": ("temperature",), "kd-jsd": ("temperature", "beta"),
    "kd-skew": ("temperature", "skew_alpha"), "kd-cached": ("top_k",),
    "seqkd": ("prompt_tokens", "max_new_tokens", "seqkd_texts"),
    "onpolicy": ("temperature", "beta", "lmbda", "onpolicy_loss", "prompt_tokens", "max_new_tokens"),
}


def teacher_settings(cfg: LMConfig) -> dict:
    keys = TEACHER_FIELDS if cfg.teacher == "train" else ("teacher", "corpus", "data", "tokenizer", "context")
    return {k: getattr(cfg, k) for k in keys}


def student_settings(cfg: LMConfig, regime: str, seed: int) -> dict:
    out = {"teacher": teacher_settings(cfg), "regime": regime, "seed": seed,
           **{k: getattr(cfg, k) for k in STUDENT_FIELDS}}
    out.update({k: getattr(cfg, k) for k in REGIME_FIELDS.get(regime, ())})
    if regime == "ce":
        out.pop("ce_weight")
    return out


def teacher_dir(cfg: LMConfig) -> Path:
    return cfg.run_dir() / "teacher"


def student_dir(cfg: LMConfig, regime: str, seed: int) -> Path:
    return cfg.run_dir() / "students" / regime / f"seed-{seed}"


def saved(folder: Path, settings: dict) -> dict | None:
    """The folder's ``kdlab.json`` when it was made with exactly ``settings`` (JSON-compared), else None."""
    record_path = folder / "kdlab.json"
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = json.dumps(record.get("settings"), sort_keys=True) == json.dumps(settings, sort_keys=True, default=str)
    return record if same else None


def key(settings: dict) -> str:
    """A short stable name for a settings dict."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
