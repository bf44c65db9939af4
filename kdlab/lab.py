"""The lab's steps, shared by the notebooks and ``python -m kdlab run``.

Each notebook calls these; they read and write ``runs/<profile>/``: ``config.json``, ``teacher/`` (when the
teacher was fine-tuned here), ``students/<name>/`` (``experiments/<tag>/<name>/`` for experiments),
``results.json`` (every number the report needs) and ``report.md``. Tables and comparisons for display are in
``kdlab.tables``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path

import torch

from kdlab.artifacts import read_json, update_json
from kdlab.config import VARIANTS, KDConfig, load_config
from kdlab.data import load_sst2
from kdlab.distill import RESULT_FILE, finetune_teacher
from kdlab.errors import KDLabError
from kdlab.teacher import Teacher, load_teacher

RESULTS = "results.json"
# Config fields that decide what the fine-tuned teacher is: a saved teacher is reused only if they match.
TEACHER_FIELDS = ("teacher", "teacher_finetune", "data", "max_length", "teacher_learning_rate", "teacher_epochs",
                  "batch_size", "warmup_steps", "weight_decay", "seed", "max_eval_samples")
# Config fields that do not change what a trained student is (display, timing, bookkeeping).
NOT_TRAINING_FIELDS = ("runs_dir", "num_threads", "bench_repeats", "bench_warmup", "logging_steps", "eval_steps",
                       "save_steps", "compare_variants", "extra_student_layers", "eval_batch_size", "num_seeds",
                       "challenges")


def quiet() -> None:
    """Fewer lines between the lab's own output: no per-file progress bars ("Loading weights", "Writing model
    shards", datasets' "tokenize"/"map") and no library warnings below errors. The trainer keeps its progress bar."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def setup(profile: str | None = None, **overrides) -> KDConfig:
    """Load and validate the config, seed everything, pin CPU threads if asked, quiet the libraries, save
    ``config.json``."""
    from transformers import set_seed

    cfg = load_config(profile, **overrides)
    set_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    quiet()
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
            # a T4 (sm_75) "supports" bf16 only by emulation: slow, so count native support alone
            bf16=torch.cuda.is_bf16_supported(including_emulation=False),
        )
    else:
        info.update(fp16=False, bf16=False, note="no CUDA GPU: training and inference run in fp32 on the CPU")
    return info


def load_data(cfg: KDConfig, for_teacher: bool = False):
    """SST-2 for the students (``max_train_samples``) or for fine-tuning the teacher (``teacher_train_samples``),
    from one seeded shuffle (the students' sentences are a subset of the teacher's). The students' sentences beyond
    ``labelled_train_samples`` lose their labels (``kdlab.data.hide_labels``) and ``augment_copies`` adds augmented
    unlabelled ones (``kdlab.augment``): an unlabelled transfer set. The teacher's never change."""
    from datasets import DatasetDict

    from kdlab.augment import add_augmented
    from kdlab.data import hide_labels

    n = (cfg.teacher_train_samples or cfg.max_train_samples) if for_teacher else cfg.max_train_samples
    data = load_sst2(cfg.data, n, cfg.max_eval_samples, cfg.seed)
    if for_teacher:
        return data
    train = data["train"]
    if cfg.labelled_train_samples is not None and cfg.labelled_train_samples < len(train):
        train = hide_labels(train, cfg.labelled_train_samples)
    return DatasetDict(train=add_augmented(train, cfg.augment_copies, cfg.seed), validation=data["validation"])


# --- the teacher ---------------------------------------------------------------------------------------------------
def teacher_dir(cfg: KDConfig) -> Path:
    return cfg.run_dir() / "teacher"


def _saved_teacher_matches(cfg: KDConfig) -> bool:
    record = read_json(teacher_dir(cfg) / RESULT_FILE)
    if not record:
        return False
    saved = record.get("config", {})
    samples = saved.get("teacher_train_samples") or saved.get("max_train_samples")
    return samples == (cfg.teacher_train_samples or cfg.max_train_samples) and all(
        saved.get(k) == getattr(cfg, k) for k in TEACHER_FIELDS)


def class_names(cfg: KDConfig) -> list[str]:
    """The classes of the configured data, in order (SST-2: negative, positive)."""
    from kdlab.data import label_names

    return label_names(load_data(cfg, for_teacher=True)["validation"])


def _load_lab_teacher(source: str, cfg: KDConfig, names: list[str]) -> Teacher:
    teacher = load_teacher(source, num_labels=len(names), seed=cfg.seed)
    if teacher.needs_finetune:  # a new head: give it the data's class names (saved with the teacher)
        teacher.model.config.id2label = dict(enumerate(names))
        teacher.model.config.label2id = {n: i for i, n in enumerate(names)}
    return teacher


def prepare_teacher(cfg: KDConfig, force: bool = False) -> Teacher:
    """The lab's teacher, fine-tuned first when it has no trained head (or ``teacher_finetune='yes'``).

    A teacher fine-tuned earlier with the same settings is reused from ``runs/<profile>/teacher``. Its number of
    classes comes from the data.
    """
    from kdlab.preflight import preflight

    saved = not force and _saved_teacher_matches(cfg)
    preflight(cfg, str(teacher_dir(cfg)) if saved else None)  # before anything long: the student, the Hub
    names = class_names(cfg)
    if saved:
        return _load_lab_teacher(str(teacher_dir(cfg)), cfg, names)
    teacher = _load_lab_teacher(cfg.teacher, cfg, names)
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
    names = class_names(cfg)
    if _saved_teacher_matches(cfg):
        return _load_lab_teacher(str(teacher_dir(cfg)), cfg, names)
    teacher = _load_lab_teacher(cfg.teacher, cfg, names)
    if teacher.needs_finetune and cfg.teacher_finetune != "no":
        raise KDLabError(
            f"{teacher_dir(cfg)} holds no fine-tuned teacher for these settings: run 01-Setup.ipynb first "
            f"(KDLAB_PROFILE={cfg.profile})."
        )
    return teacher


def initial_student(cfg: KDConfig, teacher: Teacher):
    """The student the config asks for, before any training (cut from the teacher or loaded on its own)."""
    from kdlab.student import build_student

    return build_student(cfg, teacher.model, teacher.tokenizer)


# --- results.json ------------------------------------------------------------------------------------------------
def results(cfg: KDConfig) -> dict:
    return read_json(cfg.run_dir() / RESULTS, default={}) or {}


def record(cfg: KDConfig, **entries) -> dict:
    """Merge ``entries`` into ``runs/<profile>/results.json`` (atomic write)."""
    return update_json(cfg.run_dir() / RESULTS, entries)


def evaluate(cfg: KDConfig, model, tokenizer, data, key: str | None = None, device: str | None = None,
             **extra) -> dict:
    """Accuracy/F1 with 95% interval on the dev split; stored under ``key`` in results.json when given.

    Returns the metrics plus ``probs``/``predictions`` arrays (the predictions are stored too, for paired tests).
    """
    from kdlab.capture import encoder_layers
    from kdlab.metrics import evaluate_model
    from kdlab.student import count_parameters

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    m = evaluate_model(model, tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size, device)
    m.update(layers=len(encoder_layers(model)), params=count_parameters(model), **extra)
    if key:
        stored = storable(m)
        stored["predictions"] = [int(p) for p in m["predictions"]]
        record(cfg, **{key: stored})
    return m


def storable(metrics: dict) -> dict:
    """The JSON-friendly part of an ``evaluate`` result (without the ``probs``/``predictions`` arrays)."""
    return {k: v for k, v in metrics.items() if k not in ("probs", "predictions")}


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
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import kdlab.bilstm  # noqa: F401  (registers the BiLSTM student with the Auto classes)

    folder = student_dir(cfg, variant, tag)
    record_ = read_json(folder / RESULT_FILE)
    if not record_:
        raise KDLabError(f"{folder} holds no trained student: run 02-Distill.ipynb first (same KDLAB_PROFILE).")
    entries = results(cfg).get("students") if tag is None else (results(cfg).get("experiments") or {}).get(tag)
    own = ((entries or {}).get(variant) or {}).get("settings") or {}  # e.g. ce-random's student_init="random"
    differ = config_differences(record_.get("config", {}), dataclasses.replace(cfg, **own) if own else cfg)
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


def _saved_result(folder: Path, cfg: KDConfig, variant: str):
    """A TrainResult for a student saved in ``folder`` with exactly ``cfg`` and ``variant``'s loss, else None."""
    import numpy as np

    from kdlab.distill import TrainResult, loss_for

    record_ = read_json(folder / RESULT_FILE)
    if not record_ or record_.get("config") != cfg.to_dict() or record_.get("predictions") is None:
        return None
    if record_.get("loss") != vars(loss_for(cfg, variant)):
        return None
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    return TrainResult(model, record_["metrics"], record_["history"], folder, record_["train_seconds"],
                       record_.get("resumed_from"), np.asarray(record_["predictions"]), reused=True)


def train_variant(cfg: KDConfig, teacher: Teacher, data, variant: str, name: str | None = None,
                  tag: str | None = None, retrain: bool = False, **overrides):
    """Train one student and save it; store its dev metrics in results.json. ``variant``: the loss (``ce``,
    ``hinton``, ``minilm``). ``name``: what the student is called (default the variant; e.g. ``ce-random`` with
    ``student_init="random"``). ``overrides``: config fields for this student only (``temperature=8``,
    ``student_layers=4``...). ``tag``: an experiment, saved under ``experiments/<tag>/<name>`` and recorded under
    ``results["experiments"][tag]``, so it never replaces the lab's students. A student already saved with the same
    settings is reused instead of trained again (``retrain=True`` forces it); its history comes from its record."""
    from kdlab.distill import distill

    cfg_v = dataclasses.replace(cfg, **overrides).validate() if overrides else cfg
    name = name or variant
    folder = student_dir(cfg, name, tag)
    result = None if retrain else _saved_result(folder, cfg_v, variant)
    if result is None:
        result = distill(cfg_v, teacher.model, teacher.tokenizer, data, variant, output_dir=folder,
                         checkpoint_name=name if tag is None else f"{tag}-{name}")
    entry = {**result.metrics, "train_seconds": result.train_seconds, "layers": cfg_v.student_layers,
             "predictions": [int(p) for p in result.predictions], "resumed_from": result.resumed_from,
             "variant": variant, "student_init": cfg_v.student_init, "reused": result.reused,
             "settings": {k: getattr(cfg_v, k) for k in overrides}}
    res = results(cfg)
    if tag is None:
        record(cfg, students={**(res.get("students") or {}), name: entry})
    else:
        experiments = res.get("experiments") or {}
        experiments[tag] = {**experiments.get(tag, {}), name: entry}
        record(cfg, experiments=experiments)
    return result


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


def sweep(cfg: KDConfig, teacher: Teacher, data, variant: str, settings: dict[str, dict], tag: str):
    """Train ``variant`` once per entry of ``settings`` (``{name: {field: value, ...}}``) as experiment ``tag``
    (saved under ``experiments/<tag>/``, reused when already trained with the same settings) → a DataFrame:
    name, the settings, accuracy, its 95% interval, train seconds."""
    import pandas as pd

    rows = []
    for name, overrides in settings.items():
        result = train_variant(cfg, teacher, data, variant, name=name, tag=tag, **overrides)
        m = result.metrics
        rows.append({"name": name, **overrides, "accuracy_%": 100 * m["accuracy"], "low_%": 100 * m["acc_low"],
                     "high_%": 100 * m["acc_high"], "train_s": result.train_seconds, "reused": result.reused})
    return pd.DataFrame(rows)


def seed_runs(cfg: KDConfig, teacher: Teacher, data, names=("ce", "hinton", "minilm"), train: bool = True):
    """Rows for ``kdlab.seeds`` over ``cfg.num_seeds`` seeds of the lab's students: the first seed is the lab's
    own student (``students/<name>``), the others are trained (``train``) or loaded from ``runs/<profile>/seeds/``."""
    from kdlab.seeds import run_folder, saved_run, seed_list, train_seeds

    students = results(cfg).get("students") or {}
    rows = [{"variant": n, "seed": cfg.seed, **{k: students[n][k] for k in ("accuracy", "acc_low", "acc_high", "f1")},
             "train_seconds": students[n].get("train_seconds"), "predictions": students[n]["predictions"]}
            for n in names if n in students and "predictions" in students[n]]
    extra = seed_list(cfg.seed, cfg.num_seeds)[1:]
    root = cfg.run_dir() / "seeds"
    if train and extra:
        rows += train_seeds(cfg, teacher.model, teacher.tokenizer, data, list(names), extra, root)
    else:
        for seed in extra:
            for n in names:
                row = saved_run(root, seed, n, dataclasses.replace(cfg, seed=seed))
                if row is None and (run_folder(root, seed, n) / RESULT_FILE).is_file():
                    continue  # trained under other settings: left out
                if row is not None:
                    rows.append(row)
    return rows


# --- benchmark inputs ----------------------------------------------------------------------------------------------
def benchmark_lineup(cfg: KDConfig, teacher: Teacher, student) -> dict:
    """Models 04-Benchmark times: the teacher, the distilled student, and students of ``extra_student_layers``
    cut from the teacher. The extra sizes are untrained — named ``student-<L>L (untrained)``: their speed is real
    (it does not depend on the weights), they have no accuracy, and no recommendation picks them."""
    from kdlab.capture import encoder_layers
    from kdlab.student import init_student_from_teacher

    models = {"teacher": teacher.model, f"student-{len(encoder_layers(student))}L": student}  # benchmark copies them
    for layers in cfg.extra_student_layers:
        models[f"student-{layers}L (untrained)"] = init_student_from_teacher(teacher.model, layers)
    return models


def tradeoff_points(cfg: KDConfig, bench, batch: int = 1) -> list[dict]:
    """(name, p50_ms, accuracy, interval) for models with both a dev accuracy and an fp32/fp16 latency row."""
    res = results(cfg)
    accuracy = {"teacher": res.get("teacher"), f"student-{cfg.student_layers}L": (res.get("students") or {}).get("minilm")}
    points = []
    rows = bench[(bench["status"] == "ok") & (bench["batch"] == batch)]
    for _, row in rows.iterrows():
        # the INT8 accuracy was measured for the distilled student only
        student = row["model"] == f"student-{cfg.student_layers}L"
        m = (res.get("int8") if student else None) if row["precision"] == "int8" else accuracy.get(row["model"])
        if m:
            points.append(dict(name=f"{row['model']} {row['precision']}", p50_ms=row["p50_ms"], accuracy=m["accuracy"],
                               acc_low=m["acc_low"], acc_high=m["acc_high"]))
    return points
