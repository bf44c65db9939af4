"""Lab configuration: one dataclass, profiles (``full``, ``cpu``, ``smoke``; cross-architecture ``large2base`` and
its smoke-size analogue ``smoke-x``), environment overrides.

``load_config()`` picks the profile from its argument, else ``KDLAB_PROFILE``, else ``full`` when CUDA is
available and ``cpu`` otherwise; keyword overrides and a few environment variables are applied on top, and
the result is validated before anything long starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.artifacts import atomic_write_json
from kdlab.environment import coerce, json_object
from kdlab.errors import KDLabError
from kdlab.validation import (
    RELATION_KINDS,
    check_schedules,
    check_types,
    parse_tiny_student,
    validate_extra_terms,
    validate_loss_settings,
)

NOTEBOOKS = ("01-Setup.ipynb", "02-Distill.ipynb", "03-Inference.ipynb", "04-Benchmark.ipynb")  # the graded lab
VARIANTS = ("ce", "hinton", "minilm")
RELATION_STYLES = ("kl", "mse")
STUDENT_INITS = ("teacher", "random", "random-encoder")
TRANSFER_SENTENCES = ("teacher", "unseen")

# Environment variables read by load_config (variable -> config field).
ENV_OVERRIDES = {
    "KDLAB_DATA_DIR": "data",
    "KDLAB_TEACHER": "teacher",
    "KDLAB_RUNS_DIR": "runs_dir",
    "KDLAB_MAX_TRAIN_SAMPLES": "max_train_samples",  # the students'; also caps the teacher's unless set below
    "KDLAB_TEACHER_TRAIN_SAMPLES": "teacher_train_samples",
    "KDLAB_MAX_EVAL_SAMPLES": "max_eval_samples",
    "KDLAB_EPOCHS": "num_epochs",
    "KDLAB_STUDENT_ID": "student_id",
}
# Any other field, from the environment: a JSON object, e.g. KDLAB_OVERRIDES='{"warmup_steps": 50, "seed": 7}'.
OVERRIDES_ENV = "KDLAB_OVERRIDES"


def lab_relative(path: Path) -> Path:
    """``path`` as seen from the lab's root (the folder holding 01-Setup.ipynb): unchanged when absolute or when
    the current folder is the root; ``../path`` when the current folder is a sub-folder of it (``advanced/``)."""
    if path.is_absolute() or (Path.cwd() / NOTEBOOKS[0]).is_file():
        return path
    if (Path.cwd().parent / NOTEBOOKS[0]).is_file():
        return Path("..") / path
    return path


@dataclass
class KDConfig:
    """Everything a lab run depends on. Saved as ``config.json`` next to the run's artifacts."""

    profile: str = "full"  # name of the profile these values came from
    # --- models -------------------------------------------------------------------------------------------
    teacher: str = "textattack/bert-base-uncased-SST-2"  # Hub id, local folder, "minilm-l6" or "tiny-random"
    teacher_finetune: str = "auto"  # "auto": fine-tune when the teacher has no trained head; "yes"; "no"
    student_layers: int = 6  # encoder layers of the student cut from the teacher
    layer_map: list[int] | None = None  # teacher layer per student layer; None = alternate (i * L_t / L_s)
    # The student: None = cut from the teacher (student_layers, layer_map); otherwise loaded on its own from a Hub
    # id or local folder (it must share the teacher's tokenizer), or "tiny-random:layers=2,hidden=32,heads=2" (a
    # tiny random BERT over the smoke vocabulary; optional intermediate=N), or "bilstm[:hidden=H,embedding=E]" (a
    # BiLSTM over the teacher's vocabulary, kdlab.models.bilstm; logits losses only). Keep student_layers equal to its
    # depth.
    student: str | None = None
    extra_student_layers: list[int] = field(default_factory=lambda: [4])  # extra sizes shown in tables/benchmarks
    # "teacher": layers copied from the teacher; "random": same shape, all weights random; "random-encoder": the
    # teacher's embeddings, pooler and head, random encoder layers (what the layer copy alone is worth)
    student_init: str = "teacher"
    # --- data ---------------------------------------------------------------------------------------------
    data: str = "hub"  # "hub" (nyu-mll/glue sst2), "synthetic", or a local folder (GLUE TSVs or save_to_disk)
    max_length: int = 128  # tokens per sentence after truncation (batches are padded dynamically)
    max_train_samples: int | None = None  # first N training sentences after a seeded shuffle; None = all
    max_eval_samples: int | None = None  # first N dev sentences; None = the whole dev split
    teacher_train_samples: int | None = None  # sentences to fine-tune the teacher on; None = max_train_samples
    # Unlabelled transfer set: of the students' max_train_samples sentences, only the first N keep their gold label;
    # the rest are distilled from the teacher's soft labels alone (CE skips them; a `ce` student trains on the N).
    labelled_train_samples: int | None = None  # None = every student sentence labelled
    # Where the unlabelled ones come from: "teacher" = the first of the teacher's own training sentences (it knows
    # their gold labels; DistilBERT's practice); "unseen" = sentences after the teacher's, never trained on.
    transfer_sentences: str = "teacher"
    # Augmented transfer set (kdlab.data.augment, Tang et al. 2019): per student sentence up to N copies with [MASK]ed
    # words / one n-gram kept, added unlabelled (teacher soft labels only). 0 = none.
    augment_copies: int = 0
    # --- loss: L = alpha*CE + beta*KD + gamma*attention + delta*value -------------------------------------
    temperature: float = 4.0  # Hinton temperature T (KD term is multiplied by T^2)
    alpha: float = 0.1  # weight of cross-entropy with the gold labels
    beta: float = 0.4  # weight of the KD term T^2 KL(p_t^T || p_s^T)
    gamma: float = 0.3  # weight of MiniLM self-attention distribution transfer (last layer)
    delta: float = 0.2  # weight of MiniLM value-relation transfer (last layer)
    relation_style: str = "kl"  # "kl": MiniLM (KL of relations); "mse": the course text's MSE on attention and A.V
    # --- the KD term's form and schedules over training (kdlab.distillation.schedules; `hinton` and `minilm`, never
    # `ce`) ----
    kd_style: str = "kl"  # "kl": T²·KL of softened outputs (Hinton); "mse": MSE of the logits (Tang et al. 2019)
    weight_schedule: str = "constant"  # "staged": relations first, then logits; "soft-to-hard": KD weight → CE
    temperature_schedule: str = "constant"  # "anneal": T falls linearly from `temperature` to `final_temperature`
    final_temperature: float = 1.0
    # --- optional extra terms of the `minilm` variant (`ce` and `hinton` stay the plain baselines) -----------
    # MiniLMv2 relation heads (kdlab.distillation.relations): any head counts; relation_heads must divide both Q/K/V
    # widths.
    relation_weight: float = 0.0  # weight of the summed relation KLs; 0 = off
    relation_heads: int | None = None  # A_r relation heads (needed when relation_weight > 0)
    relation_kinds: list[str] = field(default_factory=lambda: list(RELATION_KINDS))  # "qq", "kk", "vv" (or "qk")
    relation_teacher_layer: int = -1  # teacher encoder layer (0-based; -1 = last)
    relation_student_layer: int = -1  # student encoder layer (0-based; -1 = last)
    # Hidden-state MSE (kdlab.distillation.hidden, FitNets/TinyBERT): a learned Linear maps student width to teacher
    # width.
    hidden_weight: float = 0.0  # weight of the hidden-state MSE; 0 = off
    # [[student_index, teacher_index], ...] over hidden_states (0 = embeddings, L = last layer);
    # None = uniform: student layer m -> teacher layer m * L_t // L_s for m = 1..L_s
    hidden_layer_map: list[list[int]] | None = None
    # --- optimization ---------------------------------------------------------------------------------------
    learning_rate: float = 2e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    num_epochs: float = 3.0
    warmup_steps: int = 500
    weight_decay: float = 0.01
    gradient_accumulation_steps: int = 1
    fp16: bool = True  # mixed precision on CUDA (ignored, and reported, on CPU)
    seed: int = 42  # the data's shuffle and the teacher's fine-tune (shared by a class), and the students' unless:
    # A student id (KDLAB_STUDENT_ID, or lab.setup(student_id=...)) gives each student their own training seed for
    # the students they train (student_seed, derived from the id: seed_for_student); data and teacher stay shared.
    student_id: str | None = None
    student_seed: int | None = None
    teacher_learning_rate: float = 2e-5  # when the teacher is fine-tuned first
    teacher_epochs: float = 3.0
    eval_steps: int | None = None  # evaluate every N steps; None = once per epoch
    logging_steps: int = 50
    save_steps: int | None = None  # checkpoint every N steps; None = once per epoch
    # --- lab flow -------------------------------------------------------------------------------------------
    compare_variants: bool = True  # 02-Distill also trains the `ce` and `hinton` students
    num_seeds: int = 1  # 02-Distill trains each compared student with this many seeds (spread in 03)
    challenges: bool = False  # run the optional challenge cells at the end of 02 and 04
    race_sentences: int = 3200  # 02's loss race: students trained with your loss and kdlab's on this many sentences
    runs_dir: str = "runs"  # artifacts go to <runs_dir>/<profile>/
    bench_repeats: int = 50  # timed repetitions per benchmark row
    bench_warmup: int = 5  # untimed warm-up runs per benchmark row
    num_threads: int | None = None  # CPU threads for timing; None = all cores

    def __post_init__(self):
        # Tuples become lists (``layer_map=(0, 2)``), so a config equals its own JSON round trip and a resumed run
        # recognises its checkpoints.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) or (isinstance(value, list) and any(isinstance(v, tuple) for v in value)):
                setattr(self, f.name, [list(v) if isinstance(v, tuple) else v for v in value])

    def for_students(self) -> "KDConfig":
        """The settings the lab's students train with: ``seed`` replaced by ``student_seed`` when a student id gave
        one (data and teacher keep ``seed``)."""
        if self.student_seed is None:
            return self
        return dataclasses.replace(self, seed=self.student_seed, student_seed=None)

    def run_dir(self) -> Path:
        """``<runs_dir>/<profile>``: where this profile's notebooks read and write artifacts. A relative
        ``runs_dir`` is the lab's: from a notebook in ``advanced/`` it is ``../runs``, where 01–04 wrote."""
        return lab_relative(Path(self.runs_dir)) / self.profile

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON (atomically)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KDConfig":
        data = json.loads(Path(path).read_text())
        return _build(data, source=str(path))

    def validate(self) -> "KDConfig":
        """Raise KDLabError for values no run can use. Returns self."""
        check_types(self)
        validate_loss_settings(self.temperature, self.alpha, self.beta, self.gamma, self.delta,
                               relation_weight=self.relation_weight, hidden_weight=self.hidden_weight)
        validate_extra_terms(self.relation_weight, self.relation_heads, self.relation_kinds,
                             self.relation_teacher_layer, self.relation_student_layer, self.hidden_layer_map)
        check_schedules(self.weight_schedule, self.temperature_schedule, self.final_temperature, self.kd_style,
                        logits_weight=self.alpha + self.beta)
        if self.student is not None:
            parse_tiny_student(self.student)  # checks the "tiny-random:..." syntax; other names load later
        if self.relation_style not in RELATION_STYLES:
            raise KDLabError(
                f"relation_style={self.relation_style!r} is unknown: use one of {', '.join(RELATION_STYLES)}."
            )
        if self.student_init not in STUDENT_INITS:
            raise KDLabError(f"student_init={self.student_init!r}: use 'teacher' (copy alternate teacher layers), "
                             "'random' (same shape, random weights) or 'random-encoder' (the teacher's embeddings, "
                             "random encoder layers).")
        if self.transfer_sentences not in TRANSFER_SENTENCES:
            raise KDLabError(f"transfer_sentences={self.transfer_sentences!r}: use 'teacher' (the teacher's own "
                             "training sentences) or 'unseen' (sentences the teacher never trained on).")
        if self.num_seeds < 1:
            raise KDLabError(f"num_seeds={self.num_seeds}: train at least one seed.")
        if self.student_layers < 1:
            raise KDLabError(f"student_layers={self.student_layers}: a student needs at least 1 encoder layer.")
        if self.teacher_finetune not in ("auto", "yes", "no"):
            raise KDLabError(f"teacher_finetune={self.teacher_finetune!r}: use 'auto', 'yes' or 'no'.")
        for name in ("batch_size", "eval_batch_size", "max_length", "gradient_accumulation_steps", "race_sentences"):
            if getattr(self, name) < 1:
                raise KDLabError(f"{name}={getattr(self, name)} must be at least 1.")
        if (self.labelled_train_samples is not None and self.max_train_samples is not None
                and self.labelled_train_samples > self.max_train_samples):
            raise KDLabError(f"labelled_train_samples={self.labelled_train_samples} is more than max_train_samples="
                             f"{self.max_train_samples}: the labelled sentences are part of the students' sentences. "
                             "Lower labelled_train_samples too, or set it to None (every sentence labelled).")
        if self.augment_copies < 0:
            raise KDLabError(f"augment_copies={self.augment_copies}: use 0 (none) or a positive number of copies.")
        for name in ("max_train_samples", "max_eval_samples", "teacher_train_samples", "labelled_train_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise KDLabError(f"{name}={value}: an empty subset cannot train or evaluate anything; use None for all.")
        if self.learning_rate <= 0 or self.teacher_learning_rate <= 0:
            raise KDLabError("learning rates must be > 0.")
        if self.num_epochs <= 0 or self.teacher_epochs <= 0:
            raise KDLabError("num_epochs and teacher_epochs must be > 0.")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise KDLabError("warmup_steps and weight_decay must be >= 0.")
        return self


PROFILES: dict[str, dict] = {
    # The course's setup: BERT-base SST-2 teacher from the Hub, full SST-2, 6-layer student, FP16 on CUDA.
    "full": dict(),
    # A real run on a 2-core CPU (~25 min): all-MiniLM-L6-v2 (6L, 384 wide) fine-tuned on 32k SST-2 training
    # sentences as the teacher; 3-layer students see 16k of those sentences, of which only the first 4k keep
    # their label (an unlabelled transfer set: `ce` can use the 4k, the distilled students all 16k). With every
    # student sentence labelled, distillation did not beat `ce` over 5 seeds (BENCHMARKS.md, multi-seed sections).
    "cpu": dict(
        teacher="minilm-l6",
        student_layers=3,
        extra_student_layers=[2],
        max_length=64,
        max_train_samples=16000,
        labelled_train_samples=4000,  # the rest of the 16k are a transfer set: teacher soft labels only
        teacher_train_samples=32000,  # a teacher that has seen more labelled data than its students
        learning_rate=1e-4,
        teacher_learning_rate=1e-4,
        num_epochs=2.0,
        teacher_epochs=1.0,
        warmup_steps=25,
        fp16=True,
        logging_steps=50,  # one window = one length-grouped mega-batch of 50 batches: no sawtooth in the curves
        eval_steps=100,
        bench_repeats=20,
        bench_warmup=3,
    ),
    # Seconds: tiny random BERT, tokenizer built locally, synthetic sentences. What CI runs.
    "smoke": dict(
        teacher="tiny-random",
        data="synthetic",
        student_layers=2,
        extra_student_layers=[1],
        max_length=32,
        max_train_samples=512,
        teacher_train_samples=1024,
        max_eval_samples=128,
        learning_rate=5e-4,
        teacher_learning_rate=1e-3,
        batch_size=32,
        num_epochs=2.0,
        teacher_epochs=8.0,
        warmup_steps=5,
        logging_steps=4,
        bench_repeats=5,
        bench_warmup=1,
        num_threads=2,
        race_sentences=256,
    ),
}

# Cross-architecture distillation: the student is loaded on its own (same tokenizer), not cut from the teacher.
# `hinton` is the course's second system (0.5·CE + 0.5·KD); `minilm` adds MiniLMv2 relation heads (gamma =
# delta = 0: MiniLM's per-head terms need equal head counts, relation heads do not).
PROFILES["large2base"] = dict(
    # bert-large-uncased (24L, 1024 wide, 16 heads) fine-tuned on SST-2 here (it has no head) -> a pretrained
    # bert-base-uncased (12L, 768 wide, 12 heads). Both from the Hub; FP16 on CUDA; a GPU with >= 16 GB.
    teacher="bert-large-uncased",
    teacher_finetune="auto",
    student="bert-base-uncased",
    student_layers=12,  # the loaded student's depth (labels in tables; the student is not cut from the teacher)
    extra_student_layers=[6],
    alpha=0.5,
    beta=0.5,
    gamma=0.0,
    delta=0.0,
    relation_weight=0.5,  # the relations together weigh as much as KD (the lab's MiniLM: gamma + delta = 0.5)
    relation_heads=16,  # the teacher's own head count: 64-wide teacher, 48-wide student relation heads
    batch_size=16,
    gradient_accumulation_steps=2,  # effective batch 32; bert-large fine-tuning fits a 16 GB T4 in FP16
    teacher_epochs=3.0,
    num_epochs=3.0,
)
# The same setup at smoke size, offline, in seconds: tiny random teacher (4L, 64 wide, 4 heads) fine-tuned on the
# synthetic sentences -> tiny random student (2L, 32 wide, 2 heads) over the same tokenizer.
PROFILES["smoke-x"] = dict(
    PROFILES["smoke"],
    student="tiny-random:layers=2,hidden=32,heads=2,intermediate=64",
    student_layers=2,
    alpha=0.5,
    beta=0.5,
    gamma=0.0,
    delta=0.0,
    relation_weight=0.5,  # the relations together weigh as much as KD (the lab's MiniLM: gamma + delta = 0.5)
    relation_heads=4,  # divides 64 and 32: 16-wide teacher and 8-wide student relation heads
    learning_rate=2e-3,  # a random student learns from scratch: higher rate, more epochs than `smoke`
    num_epochs=6.0,
)


def seed_for_student(student_id: str) -> int:
    """A training seed that belongs to ``student_id`` (the same for the same id, spelling and case aside; 1000 to
    999,999, away from the reference's 42–46): what ``kdlab grade`` recomputes to tell a student's own run."""
    import hashlib

    key = student_id.strip().lower().encode("utf-8")
    return 1000 + int(hashlib.sha256(key).hexdigest()[:12], 16) % 999_000


def default_profile() -> str:
    """``full`` when a CUDA GPU is visible, otherwise ``cpu``."""
    import torch

    return "full" if torch.cuda.is_available() else "cpu"


def _build(values: dict, source: str) -> KDConfig:
    known = {f.name for f in dataclasses.fields(KDConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KDLabError(f"unknown config field(s) {unknown} in {source}; known fields: {sorted(known)}.")
    return KDConfig(**values).validate()


def _env_overrides() -> dict:
    """Fields from ``$KDLAB_OVERRIDES`` (a JSON object); KDLabError naming the variable when it is not one."""
    values = json_object(OVERRIDES_ENV, '{"warmup_steps": 50}')
    known = {f.name for f in dataclasses.fields(KDConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KDLabError(f"{OVERRIDES_ENV} names unknown config field(s) {unknown}; known fields: {sorted(known)}.")
    return values


def load_config(profile: str | None = None, **overrides) -> KDConfig:
    """Build and validate the config for ``profile`` (or ``$KDLAB_PROFILE``, or the default for this machine).

    Precedence, lowest to highest: dataclass defaults < profile < environment (``KDLAB_DATA_DIR``,
    ``KDLAB_TEACHER``, ``KDLAB_RUNS_DIR``, ``KDLAB_MAX_TRAIN_SAMPLES`` (students; it also caps the teacher's
    sentences unless ``KDLAB_TEACHER_TRAIN_SAMPLES`` is set, and scales the labelled ones with the profile's
    share), ``KDLAB_TEACHER_TRAIN_SAMPLES``,
    ``KDLAB_MAX_EVAL_SAMPLES``, ``KDLAB_EPOCHS``, then any field from ``KDLAB_OVERRIDES``, a JSON object) <
    keyword overrides.
    """
    name = profile or os.environ.get("KDLAB_PROFILE") or default_profile()
    if name not in PROFILES:
        raise KDLabError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (KDLAB_PROFILE or profile=).")
    values: dict = {"profile": name, **PROFILES[name]}
    defaults = KDConfig()
    for env, field_name in ENV_OVERRIDES.items():
        if os.environ.get(env) not in (None, ""):
            values[field_name] = coerce(field_name, os.environ[env], getattr(defaults, field_name), env)
    # A quick run with fewer student sentences should not fine-tune the teacher on all of them, and keeps the
    # profile's share of labelled student sentences (cpu: 4,000 of 16,000 -> a quarter of the cap).
    cap = values.get("max_train_samples") if os.environ.get("KDLAB_MAX_TRAIN_SAMPLES") else None
    if cap is not None and not os.environ.get("KDLAB_TEACHER_TRAIN_SAMPLES"):
        teacher_n = values.get("teacher_train_samples")
        if teacher_n is not None and teacher_n > cap:
            values["teacher_train_samples"] = cap
    profile_n, labelled = PROFILES[name].get("max_train_samples"), values.get("labelled_train_samples")
    if cap is not None and profile_n and labelled is not None and cap < profile_n:
        values["labelled_train_samples"] = max(1, round(labelled * cap / profile_n))
    values.update(_env_overrides())
    values.update(overrides)
    if values.get("student_id") not in (None, "") and values.get("student_seed") is None:
        values["student_seed"] = seed_for_student(str(values["student_id"]))
    if isinstance(values.get("data"), str) and values["data"] not in ("hub", "synthetic"):  # else: check_types says
        values["data"] = str(Path(values["data"]).expanduser().resolve())  # one spelling per folder
    return _build(values, source=f"profile {name!r} with overrides {sorted(overrides)}")
