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
TEACHER_FIELDS = ("teacher", "teacher_finetune", "data", "max_length", "teacher_learning_rate", "teacher_epochs",
                  "batch_size", "warmup_steps", "weight_decay", "seed", "max_eval_samples")


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
            # a T4 (sm_75) "supports" bf16 only by emulation: slow, so count native support alone
            bf16=torch.cuda.is_bf16_supported(including_emulation=False),
        )
    else:
        info.update(fp16=False, bf16=False, note="no CUDA GPU: training and inference run in fp32 on the CPU")
    return info


def load_data(cfg: KDConfig, for_teacher: bool = False):
    """SST-2 for the students (``max_train_samples``) or for fine-tuning the teacher (``teacher_train_samples``).

    Both subsets come from the same seeded shuffle, so the students' sentences are a subset of the teacher's.
    With ``labelled_train_samples`` the students' sentences beyond that many lose their labels (an unlabelled
    transfer set, ``kdlab.data.hide_labels``); the teacher's never do.
    """
    from datasets import DatasetDict

    from kdlab.data import hide_labels

    n = (cfg.teacher_train_samples or cfg.max_train_samples) if for_teacher else cfg.max_train_samples
    data = load_sst2(cfg.data, n, cfg.max_eval_samples, cfg.seed)
    if for_teacher or cfg.labelled_train_samples is None or cfg.labelled_train_samples >= len(data["train"]):
        return data
    return DatasetDict(train=hide_labels(data["train"], cfg.labelled_train_samples), validation=data["validation"])


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
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model, tokenizer, read_json(folder / RESULT_FILE)


def trained_variants(cfg: KDConfig) -> list[str]:
    """Variants with a saved student, in the lab's order."""
    from kdlab.config import VARIANTS

    return [v for v in VARIANTS if (student_dir(cfg, v) / RESULT_FILE).is_file()]


def config_table(cfg: KDConfig):
    """The config as a two-column table (field, value) for display."""
    import pandas as pd

    return pd.DataFrame(list(cfg.to_dict().items()), columns=["field", "value"]).set_index("field")


def data_summary(data) -> "object":
    """Rows per split with label balance."""
    import pandas as pd

    from kdlab.data import label_balance

    return pd.DataFrame([{"split": name, "rows": len(split), **label_balance(split)} for name, split in data.items()])


def evaluate(cfg: KDConfig, model, tokenizer, data, key: str | None = None, device: str | None = None,
             **extra) -> dict:
    """Accuracy/F1 with 95% interval on the dev split; stored under ``key`` in results.json when given.

    Returns the metrics plus ``probs``/``predictions`` arrays (those are not stored).
    """
    from kdlab.capture import encoder_layers
    from kdlab.metrics import evaluate_model
    from kdlab.student import count_parameters

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    m = evaluate_model(model, tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size, device)
    m.update(layers=len(encoder_layers(model)), params=count_parameters(model), **extra)
    if key:
        stored = _storable(m)
        stored["predictions"] = [int(p) for p in m["predictions"]]
        record(cfg, **{key: stored})
    return m


def _storable(metrics: dict) -> dict:
    """The JSON-friendly part of an ``evaluate`` result (without the ``probs``/``predictions`` arrays)."""
    return {k: v for k, v in metrics.items() if k not in ("probs", "predictions")}


def layer_map_table(student):
    """Which teacher layer each student layer was copied from."""
    import pandas as pd

    mapping = getattr(student.config, "kdlab_layer_map", None) or []
    return pd.DataFrame({"student layer": range(len(mapping)), "teacher layer": mapping})


def train_variant(cfg: KDConfig, teacher: Teacher, data, variant: str):
    """Distil one variant (``ce``/``hinton``/``minilm``), save it, store its dev metrics in results.json."""
    from kdlab.distill import distill

    result = distill(cfg, teacher.model, teacher.tokenizer, data, variant)
    students = results(cfg).get("students") or {}
    students[variant] = {**result.metrics, "train_seconds": result.train_seconds, "layers": cfg.student_layers,
                         "predictions": [int(p) for p in result.predictions], "resumed_from": result.resumed_from}
    record(cfg, students=students)
    return result


def loss_sanity_checks(temperature: float = 4.0):
    """Toy-tensor checks shown in 02-Distill: KD is 0 for equal logits, scales with T², relations vanish for
    identical inputs and ignore padding."""
    import pandas as pd

    from kdlab.losses import attention_distribution_loss, kd_loss, value_relation_loss

    g = torch.Generator().manual_seed(0)
    z_s, z_t = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    q_pad = q.clone()
    q_pad[0, :, 4:] = 100.0  # garbage in padded positions
    plain_kl = kd_loss(z_s, z_t, temperature) / temperature**2
    rows = [
        ("KD(z, z) for equal logits", kd_loss(z_t, z_t, temperature).item(), "0"),
        ("KD(z_s, z_t) / T²", plain_kl.item(), "KL at temperature T"),
        ("KD(z_s, z_t)", kd_loss(z_s, z_t, temperature).item(), f"T² = {temperature**2:g} times the line above"),
        ("attention loss, identical Q/K", attention_distribution_loss(q, k, q, k, mask).item(), "0"),
        ("value-relation loss, identical V", value_relation_loss(v, v, mask).item(), "0"),
        ("attention loss, different Q/K", attention_distribution_loss(q, k, q.flip(0), k, mask).item(), "> 0"),
        ("... same with garbage in padding", attention_distribution_loss(q_pad, k, q.flip(0), k, mask).item(),
         "equal to the line above"),
        *_extra_loss_checks(g, mask),
    ]
    return pd.DataFrame(rows, columns=["check", "value", "expected"])


def _extra_loss_checks(g: torch.Generator, mask: torch.Tensor) -> list[tuple]:
    """Rows for the optional cross-architecture terms (MiniLMv2 relation heads, hidden-state MSE): a 64-wide
    teacher against a 32-wide student, so the head counts and widths differ."""
    from kdlab.hidden import HiddenStateDistiller
    from kdlab.losses import value_relation_loss
    from kdlab.relations import relation_heads_loss, split_relation_heads

    t_states = tuple(torch.randn(2, 6, 64, generator=g) for _ in range(3))  # teacher Q, K, V  [B, S, 64]
    s_states = tuple(torch.randn(2, 6, 32, generator=g) for _ in range(3))  # student Q, K, V  [B, S, 32]
    s_pad = tuple(x.clone() for x in s_states)
    for x in s_pad:
        x[0, 4:] = 100.0  # garbage in padded positions
    v_t = t_states[2]
    with torch.random.fork_rng(devices=[]):  # a fixed projection, without touching the caller's random state
        torch.manual_seed(0)
        distiller = HiddenStateDistiller(32, 64, [[1, 1]])
    h_s, h_t = torch.randn(2, 6, 32, generator=g), torch.randn(2, 6, 64, generator=g)
    hidden = distiller((h_s, h_s), (h_t, h_t), mask).item()
    return [
        ("(optional) relation heads, teacher 64 wide vs student 32 wide, 4 relation heads",
         relation_heads_loss(s_states, t_states, mask, 4).item(), "> 0"),
        ("... same with garbage in padding", relation_heads_loss(s_pad, t_states, mask, 4).item(),
         "equal to the line above"),
        ("(optional) relation heads V-V only, identical V, 4 heads = 4 relation heads",
         relation_heads_loss(t_states, t_states, mask, 4, ("vv",)).item(), "0"),
        ("(optional) |MiniLM value relation − relation heads V-V|, V vs flipped V, 4 heads each",
         abs(value_relation_loss(split_relation_heads(v_t, 4), split_relation_heads(v_t.flip(0), 4), mask).item()
             - relation_heads_loss(t_states, tuple(x.flip(0) for x in t_states), mask, 4, ("vv",)).item()),
         "0: with equal heads they are the same loss"),
        ("(optional) hidden-state MSE through a 32→64 projection", hidden, "> 0"),
    ]


def compare_models(cfg: KDConfig, teacher_metrics: dict, student_metrics: dict[str, dict], labels) -> "object":
    """Accuracy table with 95% intervals, retention and McNemar p-value of each student against ``ce``.

    ``*_metrics`` are dicts from ``evaluate`` (with ``predictions``); the table is stored as ``comparison``.
    """
    from kdlab.metrics import mcnemar
    from kdlab.report import accuracy_table

    res = results(cfg)
    students = res.get("students") or {}
    for variant, m in student_metrics.items():
        entry = students.get(variant, {})
        entry.update(_storable(m))
        if "ce" in student_metrics and variant != "ce":
            test = mcnemar(labels, m["predictions"], student_metrics["ce"]["predictions"])
            entry.update(mcnemar_vs_ce_p=test["p_value"], right_only_vs_ce=test["a_only"],
                         wrong_only_vs_ce=test["b_only"])
        students[variant] = entry
    res.update(students=students, teacher={**(res.get("teacher") or {}), **_storable(teacher_metrics)})
    table = accuracy_table(res)
    record(cfg, students=res["students"], teacher=res["teacher"], comparison=table.to_dict(orient="records"))
    return table


def side_by_side(models: dict, sentences: list[str], max_length: int = 128):
    """Each model's predicted label and P(positive) for the given sentences."""
    import pandas as pd

    from kdlab.data import LABEL_NAMES
    from kdlab.metrics import predict_proba

    table = pd.DataFrame({"sentence": sentences})
    for name, (model, tokenizer) in models.items():
        probs = predict_proba(model, tokenizer, sentences, max_length)
        table[f"{name}"] = [LABEL_NAMES[i] for i in probs.argmax(-1)]
        table[f"{name} P(pos)"] = probs[:, 1].round(3)
    return table


def disagreements(sentences, labels, teacher_pred, student_pred, limit: int = 10):
    """Where teacher and student disagree: counts of who is right, and the first ``limit`` examples."""
    import numpy as np
    import pandas as pd

    from kdlab.data import LABEL_NAMES

    labels, teacher_pred, student_pred = map(np.asarray, (labels, teacher_pred, student_pred))
    differ = np.flatnonzero(teacher_pred != student_pred)
    counts = {
        "disagreements": int(differ.size),
        "teacher right": int((teacher_pred[differ] == labels[differ]).sum()),
        "student right": int((student_pred[differ] == labels[differ]).sum()),
    }
    examples = pd.DataFrame({
        "sentence": [sentences[i] for i in differ[:limit]],
        "gold": [LABEL_NAMES[labels[i]] for i in differ[:limit]],
        "teacher": [LABEL_NAMES[teacher_pred[i]] for i in differ[:limit]],
        "student": [LABEL_NAMES[student_pred[i]] for i in differ[:limit]],
    })
    return counts, examples


def benchmark_lineup(cfg: KDConfig, teacher: Teacher, student) -> dict:
    """Models 04-Benchmark times: the teacher, the distilled student, and students of ``extra_student_layers``
    cut from the teacher (untrained: speed does not depend on the weights)."""
    from kdlab.capture import encoder_layers
    from kdlab.student import init_student_from_teacher

    models = {"teacher": teacher.model, f"student-{len(encoder_layers(student))}L": student}  # benchmark copies them
    for layers in cfg.extra_student_layers:
        models[f"student-{layers}L"] = init_student_from_teacher(teacher.model, layers)
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
