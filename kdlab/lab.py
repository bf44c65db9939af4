"""The lab's steps, shared by the notebooks and ``python -m kdlab run``: the notebook-facing layer.

Each notebook calls these (the run folder's helpers — ``results``, ``record``, ``load_student``, ``student_dir``,
``histories`` … — live in ``kdlab.distillation.runs`` and the data's in ``kdlab.data.loading``; they are named here
too, so a notebook needs only ``lab``); they read and write ``runs/<profile>/``: ``config.json``, ``teacher/`` (when the
teacher was fine-tuned here), ``students/<name>/`` (``experiments/<tag>/<name>/`` for experiments),
``results.json`` (every number the report needs) and ``report.md``. Tables and comparisons for display are in
``kdlab.tables``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import torch

from kdlab import display
from kdlab.artifacts import atomic_write_json, read_json
from kdlab.config import KDConfig, load_config
from kdlab.data.loading import class_names, load_data  # noqa: F401 (the notebooks' steps)
from kdlab.distillation.runs import (  # noqa: F401 (the notebooks')
    histories,
    load_student,
    loss_weights,
    record,
    results,
    saved_result,
    saved_teacher_matches,
    student_dir,
    teacher_dir,
    trained_variants,
)
from kdlab.distillation.training import RESULT_FILE, finetune_teacher
from kdlab.course.runtimes import (  # noqa: F401 (kdlab run, the notebooks)
    GPU_PROFILES,
    PROFILE_FILE,
    chosen_profile,
    describe_estimate,
    gpu_missing_message,
    time_estimate,
)
from kdlab.errors import KDLabError
from kdlab.models.teacher import Teacher, load_lab_teacher


def reference_note(key: str):
    """A named multi-seed result the notebooks quote (``kdlab.course.reference.note``), rendered as Markdown."""
    from IPython.display import Markdown

    from kdlab.course.reference import note

    return Markdown(note(key))


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
    ``config.json``. A ``student_id`` (or ``KDLAB_STUDENT_ID``) gives the students this student's own training seed;
    given once, in 01, it is read back from the run's config.json by the later notebooks."""
    from transformers import set_seed

    if overrides.get("student_id") is None:  # the notebooks pass STUDENT_ID = None: KDLAB_STUDENT_ID still counts
        overrides.pop("student_id", None)
    profile, chosen_in = chosen_profile(profile, overrides.get("runs_dir"))
    cfg = load_config(profile, **overrides)
    if cfg.profile in GPU_PROFILES and not torch.cuda.is_available():
        raise KDLabError(gpu_missing_message(cfg.profile, chosen_in))
    if cfg.student_id is None:  # set once (in 01, or KDLAB_STUDENT_ID): the later notebooks read it from config.json
        saved = read_json(cfg.run_dir() / "config.json") or {}
        if saved.get("student_id"):
            cfg = load_config(profile, **{**overrides, "student_id": saved["student_id"]})
    display.install()  # results tables carry their provenance in the saved notebook (kdlab grade checks it)
    set_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    quiet()
    cfg.run_dir().mkdir(parents=True, exist_ok=True)
    cfg.save(cfg.run_dir() / "config.json")
    if chosen_in != PROFILE_FILE:  # chosen here (or by KDLAB_PROFILE): the later notebooks follow it
        atomic_write_json(cfg.run_dir().parent / PROFILE_FILE, {"profile": cfg.profile})
    return cfg


def machine_info() -> dict:
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
            # autocast FP16 runs on any CUDA GPU, but it is faster than fp32 only with fast half math: the P100
            # (sm_60; the other Pascal chips, sm_61/62, run FP16 at a fraction of fp32's rate) and tensor cores from
            # Volta (sm_70) on; a Colab T4 is Turing, sm_75, with tensor cores
            fp16=props.major >= 7 or (props.major, props.minor) == (6, 0),
            tensor_cores=props.major >= 7,
            # a T4 (sm_75) "supports" bf16 only by emulation: slow, so count native support alone
            bf16=torch.cuda.is_bf16_supported(including_emulation=False),
        )
    else:
        info.update(fp16=False, bf16=False, note="no CUDA GPU: training and inference run in fp32 on the CPU")
    return info


def prepare_teacher(cfg: KDConfig, force: bool = False) -> Teacher:
    """The lab's teacher, fine-tuned first when it has no trained head (or ``teacher_finetune='yes'``).

    A teacher fine-tuned earlier with the same settings is reused from ``runs/<profile>/teacher``. Its number of
    classes comes from the data.
    """
    from kdlab.distillation.preflight import preflight

    saved = not force and saved_teacher_matches(cfg)
    preflight(cfg, str(teacher_dir(cfg)) if saved else None)  # before anything long: the student, the Hub
    names = class_names(cfg)
    if saved:
        return load_lab_teacher(str(teacher_dir(cfg)), cfg, names)
    teacher = load_lab_teacher(cfg.teacher, cfg, names)
    if cfg.teacher_finetune == "yes" or (cfg.teacher_finetune == "auto" and teacher.needs_finetune):
        result = finetune_teacher(cfg, teacher.model, teacher.tokenizer, load_data(cfg, for_teacher=True),
                                  teacher_dir(cfg))
        record(cfg, teacher_finetune={"train_seconds": result.train_seconds, "metrics": result.metrics,
                                      "train_samples": cfg.teacher_train_samples or cfg.max_train_samples})
        return Teacher(result.model, teacher.tokenizer, False, str(teacher_dir(cfg)))
    return teacher


def lab_teacher(cfg: KDConfig) -> Teacher:
    """The teacher that 01-Setup prepared (for notebooks 02–04); stops if 01-Setup has not run."""
    names = class_names(cfg)
    if saved_teacher_matches(cfg):
        return load_lab_teacher(str(teacher_dir(cfg)), cfg, names)
    teacher = load_lab_teacher(cfg.teacher, cfg, names)
    if teacher.needs_finetune and cfg.teacher_finetune != "no":
        raise KDLabError(
            f"{teacher_dir(cfg)} holds no fine-tuned teacher for these settings: run 01-Setup.ipynb first "
            f"(KDLAB_PROFILE={cfg.profile})."
        )
    return teacher


def initial_student(cfg: KDConfig, teacher: Teacher):
    """The student the config asks for, before any training (cut from the teacher or loaded on its own)."""
    from kdlab.models.student import build_student

    return build_student(cfg, teacher.model, teacher.tokenizer)


def evaluate(cfg: KDConfig, model, tokenizer, data, key: str | None = None, device: str | None = None,
             **extra) -> dict:
    """Accuracy/F1 with 95% interval on the dev split; stored under ``key`` in results.json when given.

    Returns the metrics plus ``probs``/``predictions`` arrays (the predictions are stored too, for paired tests).
    """
    from kdlab.metrics.classification import evaluate_model
    from kdlab.models.layers import encoder_layers
    from kdlab.models.student import count_parameters

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    m = evaluate_model(model, tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size, device)
    m.update(layers=len(encoder_layers(model)), params=count_parameters(model), **extra)
    if key:
        stored = storable(m)
        stored["predictions"] = [int(p) for p in m["predictions"]]
        extra_entries = {} if "dev_labels" in results(cfg) else {  # for paired tests over a class's runs
            "dev_labels": [int(y) for y in data["validation"]["label"]]}
        record(cfg, **{key: stored}, **extra_entries)
    return m


def storable(metrics: dict) -> dict:
    """The JSON-friendly part of an ``evaluate`` result (without the ``probs``/``predictions`` arrays)."""
    return {k: v for k, v in metrics.items() if k not in ("probs", "predictions")}


def train_variant(cfg: KDConfig, teacher: Teacher, data, variant: str, name: str | None = None,
                  tag: str | None = None, retrain: bool = False, **overrides):
    """Train one student and save it; store its dev metrics in results.json. ``variant``: the loss (``ce``,
    ``hinton``, ``minilm``). ``name``: what the student is called (default the variant; e.g. ``ce-random`` with
    ``student_init="random"``). ``overrides``: config fields for this student only (``temperature=8``,
    ``student_layers=4``...). ``tag``: an experiment, saved under ``experiments/<tag>/<name>`` and recorded under
    ``results["experiments"][tag]``, so it never replaces the lab's students. A student already saved with the same
    settings is reused instead of trained again (``retrain=True`` forces it); its history comes from its record."""
    from kdlab.distillation.training import distill

    cfg_v = (dataclasses.replace(cfg, **overrides).validate() if overrides else cfg).for_students()
    name = name or variant
    folder = student_dir(cfg, name, tag)
    result = None if retrain else saved_result(folder, cfg_v, variant)
    if result is None:
        result = distill(cfg_v, teacher.model, teacher.tokenizer, data, variant, output_dir=folder,
                         checkpoint_name=name if tag is None else f"{tag}-{name}")
    entry = {**result.metrics, "train_seconds": result.train_seconds, "layers": cfg_v.student_layers, "seed": cfg_v.seed,
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
    """Rows for ``kdlab.distillation.seeds`` over ``cfg.num_seeds`` seeds of the lab's students: the first seed is the
    lab's
    own student (``students/<name>``), the others are trained (``train``) or loaded from ``runs/<profile>/seeds/``."""
    from kdlab.distillation.seeds import run_folder, saved_run, seed_list, train_seeds

    cfg = cfg.for_students()  # the seeds are the students' (a student id's own first)
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


# --- the student's own loss, trained -------------------------------------------------------------------------------
RACE_TAG = "loss-race"


def race_data(cfg: KDConfig, data):
    """A quarter labelled, three quarters transfer set (as the lab's), ``cfg.race_sentences`` rows in all (fewer
    when the data has fewer), the same dev split."""
    from datasets import DatasetDict, concatenate_datasets

    from kdlab.data.sources import UNLABELLED

    labels = data["train"]["label"]
    labelled = [i for i, y in enumerate(labels) if y != UNLABELLED]
    unlabelled = [i for i, y in enumerate(labels) if y == UNLABELLED]
    n = cfg.race_sentences
    take_l = labelled[:max(1, n // 4) if unlabelled else n]
    take_u = unlabelled[:n - len(take_l)]
    train = data["train"].select(take_l)
    if take_u:
        train = concatenate_datasets([train, data["train"].select(take_u)])
    return DatasetDict(train=train, validation=data["validation"])


def loss_race(cfg: KDConfig, teacher: Teacher, data, variant: str = "minilm", retrain: bool = False,
              **functions):
    """Train the ``variant`` student twice on ``race_data`` with the same seed, batches and start — once with
    kdlab's loss, once with the terms in ``functions`` (``kd_loss=``, ``attention_kl=``, ``value_relation_kl=``: the
    student's exercise answers) swapped in — and return ``{"kdlab": TrainResult, "yours": TrainResult}`` (``"yours"``
    missing when none of the functions was attempted: it would be kdlab's run again). Saved as experiment
    ``loss-race``; a run is reused when it was saved with the same settings and the same function sources (a
    reconnected Colab runtime redoes nothing), retrained when one of your functions changed or ``retrain``."""
    import dataclasses as dc

    from kdlab.distillation.custom import with_functions
    from kdlab.distillation.losses import DistillationLoss
    from kdlab.distillation.trainer import length_group_steps
    from kdlab.distillation.training import distill

    attempted = {}
    for name, fn in functions.items():
        try:  # a stub still raising NotImplementedError is left out (kdlab's function runs instead)
            if name == "kd_loss":
                fn(torch.zeros(2, 2), torch.zeros(2, 2), 2.0)
            else:
                args = [torch.zeros(1, 1, 2, 2)] * (4 if name == "attention_kl" else 2)
                fn(*args, torch.ones(1, 2, dtype=torch.long))
        except NotImplementedError:
            continue
        except Exception:  # noqa: BLE001 - a buggy answer still races: what it does to training is the lesson
            pass
        attempted[name] = fn
    small = race_data(cfg, data)
    # One logged window per length group (the batches are grouped by length): no sawtooth in the race's curves.
    group = length_group_steps(len(small["train"]), cfg.batch_size, cfg.gradient_accumulation_steps)
    cfg_r = dc.replace(cfg, eval_steps=None, logging_steps=group)
    base = DistillationLoss.from_config(cfg_r, variant)
    runs = {"kdlab": base}
    if attempted:
        runs["yours"] = with_functions(base, **attempted)
    out = {}
    for name, loss in runs.items():
        folder = student_dir(cfg, name, RACE_TAG)
        stamp = {"functions": {f: function_fingerprint(fn) for f, fn in attempted.items()} if name == "yours" else {}}
        if not retrain and read_json(folder / RACE_STAMP) == stamp:
            out[name] = saved_result(folder, cfg_r.for_students(), variant, loss=loss)
            if out[name] is not None:
                continue
        out[name] = distill(cfg_r, teacher.model, teacher.tokenizer, small, variant, loss_fn=loss, resume=False,
                            output_dir=folder, checkpoint_name=f"{RACE_TAG}-{name}")
        atomic_write_json(folder / RACE_STAMP, stamp)
    return out


RACE_STAMP = "race.json"  # in a loss-race student's folder: the fingerprints of the functions it was trained with


def function_fingerprint(fn) -> str:
    """A short hash of ``fn``'s source (of its compiled code where no source is kept): a changed answer retrains."""
    import hashlib
    import inspect

    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = fn.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- benchmark inputs ----------------------------------------------------------------------------------------------
def benchmark_lineup(cfg: KDConfig, teacher: Teacher, student) -> dict:
    """Models 04-Benchmark times: the teacher, the distilled student, and students of ``extra_student_layers``
    cut from the teacher. The extra sizes are untrained — named ``student-<L>L (untrained)``: their speed is real
    (it does not depend on the weights), they have no accuracy, and no recommendation picks them."""
    from kdlab.models.layers import encoder_layers
    from kdlab.models.student import init_student_from_teacher

    models = {"teacher": teacher.model, f"student-{len(encoder_layers(student))}L": student}  # benchmark copies them
    for layers in cfg.extra_student_layers:
        models[f"student-{layers}L (untrained)"] = init_student_from_teacher(teacher.model, layers)
    return models


def int8_accuracies(cfg: KDConfig, teacher: Teacher, data) -> dict:
    """Dev accuracy of an INT8 copy (``kdlab.measurement.quantize``, CPU) of the teacher and of every trained
    student, each measured (a quantized model's predictions can flip); recorded as ``int8_teacher``,
    ``int8_students`` and — for the MiniLM student, as 04 reports it — ``int8``. Returns ``{name: metrics}``."""
    from kdlab.measurement.quantize import quantize_int8

    out = {"teacher": evaluate(cfg, quantize_int8(teacher.model), teacher.tokenizer, data, device="cpu")}
    for name in trained_variants(cfg):
        model, tokenizer, _ = load_student(cfg, name)
        out[name] = evaluate(cfg, quantize_int8(model), tokenizer, data, key="int8" if name == "minilm" else None,
                             device="cpu", precision="int8")
    def kept(m):  # with its predictions: the deployment verdict's paired tests compare INT8 rows too
        return {**storable(m), "predictions": [int(p) for p in m["predictions"]]}

    record(cfg, int8_teacher=kept(out["teacher"]), int8_students={n: kept(m) for n, m in out.items() if n != "teacher"})
    return out
