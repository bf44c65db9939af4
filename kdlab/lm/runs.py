"""Where the language-model runs live, and when a saved one is reused.

``<runs_dir>/<profile>/lm/``:

- ``teacher/``: the teacher and its tokenizer, ``kdlab.json`` with the settings it was trained with;
- ``seqkd/<key>.json``: the teacher's generations for sequence-level KD;
- ``cache-k<k>/``: the teacher's top-k distributions (``kdlab.lm.cache``);
- ``students/<shape>/<regime>/seed-<s>-<key>/``: a student (model + ``kdlab.json``: its settings, training record,
  metrics); ``<shape>`` (``student_shape``) tells students of other sizes or starts apart (the capacity gap).

A saved teacher or student is reused only when every setting it depends on is the same (``teacher_settings``,
``student_settings``, both holding ``CODE_VERSION``); otherwise it is trained again and replaced whole
(``kdlab.artifacts.atomic_dir``). A reused student's metrics are reused only when every setting that changes a
metric is the same too (``metric_settings``: the held-out texts, sample counts, prompt and generation lengths, the
code version); otherwise they are measured again on the saved model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kdlab.lm.config import LMConfig

# Raise when a change to the code changes what a saved model or a saved metric means (a loss, a measure, the data).
CODE_VERSION = "lm-2026-12-06c"  # b: random batches, lemmas grouped, response measures; c: sense spread
TEACHER_FIELDS = ("teacher", "teacher_layers", "teacher_width", "teacher_heads", "teacher_epochs",
                  "teacher_learning_rate", "teacher_batch_size", "teacher_seed", "teacher_dropout", "corpus", "data",
                  "tokenizer", "vocab_size", "context", "batch_size")
STUDENT_FIELDS = ("student_init", "student_width", "student_heads", "student_layers", "layer_map", "student_steps", "batch_size", "gradient_accumulation_steps",
                  "learning_rate", "warmup_steps", "train_texts", "ce_weight")
_T = ("temperature", "temperature_convention")
REGIME_FIELDS = {
    "kd-forward": _T, "kd-reverse": _T, "kd-jsd": (*_T, "jsd_beta"),
    "kd-skew": (*_T, "skew_alpha"), "kd-cached": (*_T, "top_k"),
    "seqkd": ("prompt_tokens", "max_new_tokens", "seqkd_texts", "seqkd_decoding"),
    "onpolicy": (*_T, "jsd_beta", "lmbda", "onpolicy_loss", "prompt_tokens", "max_new_tokens"),
}
# Every setting that changes a student's metrics (kdlab.lm_lab.student_metrics) without changing the student.
METRIC_FIELDS = ("eval_texts", "num_samples", "prompt_tokens", "max_new_tokens", "response_prompts",
                 "samples_per_prompt")


def teacher_settings(cfg: LMConfig) -> dict:
    keys = TEACHER_FIELDS if cfg.teacher == "train" else ("teacher", "corpus", "data", "tokenizer", "context")
    if cfg.corpus != "sst2":  # `data` (KDLAB_DATA_DIR, 01–04's SST-2 folder) is read only by the sst2 corpus
        keys = tuple(k for k in keys if k != "data")
    return {"code": CODE_VERSION, **{k: getattr(cfg, k) for k in keys}}


def metric_settings(cfg: LMConfig, seed: int) -> dict:
    """What a student's metrics depend on beyond the student itself (``METRIC_FIELDS``, the teacher, the seed)."""
    return {"code": CODE_VERSION, "teacher": teacher_settings(cfg), "seed": seed,
            **{k: getattr(cfg, k) for k in METRIC_FIELDS}}


def student_settings(cfg: LMConfig, regime: str, seed: int) -> dict:
    out = {"code": CODE_VERSION, "teacher": teacher_settings(cfg), "regime": regime, "seed": seed,
           **{k: getattr(cfg, k) for k in STUDENT_FIELDS}}
    out.update({k: getattr(cfg, k) for k in REGIME_FIELDS.get(regime, ())})
    if regime == "ce":
        out.pop("ce_weight")
    return out


def teacher_dir(cfg: LMConfig) -> Path:
    return cfg.run_dir() / "teacher"


def student_shape(cfg: LMConfig) -> str:
    """``random-2x128`` (from nothing: blocks × width) or ``cut-2`` (blocks cut from the teacher)."""
    if cfg.student_init == "random":
        return f"random-{cfg.student_layers}x{cfg.student_width}"
    return f"cut-{cfg.student_layers}"


def student_dir(cfg: LMConfig, regime: str, seed: int) -> Path:
    """``students/<shape>/<regime>/seed-<s>-<key>``: the key of its settings (``student_settings``) keeps a sweep's
    students (another T, λ, w) beside the default one instead of replacing it."""
    tag = key(student_settings(cfg, regime, seed))[:8]
    return cfg.run_dir() / "students" / student_shape(cfg) / regime / f"seed-{seed}-{tag}"


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
