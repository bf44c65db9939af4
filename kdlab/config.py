"""Lab configuration: ``KDConfig``, the profiles (``class``, ``full``, ``cpu``, ``smoke``; cross-architecture ``large2base``
and its smoke-size analogue ``smoke-x``), and ``load_config``.

Each setting is declared once, as a field of one of five groups that ``KDConfig`` joins into one flat dataclass
(flat, so ``load_config(num_epochs=1)`` and every saved ``config.json`` keep working). ``LossSettings`` are also
the fields of ``kdlab.distillation.losses.DistillationLoss`` (``DistillationLoss.from_config(cfg, variant)`` takes
those whose ``metadata["variants"]`` names the variant); each ``TrainSettings`` field's ``metadata["trainer"]``
names the ``transformers.TrainingArguments`` argument it becomes (``training_arguments`` in
kdlab.distillation.trainer). Values are checked in one place, ``kdlab.validation`` (also ``LMConfig``'s loader).

``load_config()`` picks the profile from its argument, else ``KDLAB_PROFILE``, else ``class`` when CUDA is available
and ``cpu`` otherwise; environment variables and keyword overrides go on top, and the result is validated (unknown
names, wrong types, values no run can use: a KDLabError that says what to write) before anything long starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.artifacts import atomic_write_json
from kdlab.environment import env_fields, json_object
from kdlab.errors import KDLabError
from kdlab.profiles import PROFILES  # noqa: F401 (data only, in their own module; kdlab.config.PROFILES)
from kdlab.validation import (
    RELATION_KINDS,
    build_config,
    check_loss,
    check_types,
    parse_tiny_student,
    refuse_unknown,
)

NOTEBOOKS = ("01-Setup.ipynb", "02-Distill.ipynb", "03-Inference.ipynb", "04-Benchmark.ipynb")  # the graded lab
VARIANTS = ("ce", "hinton", "minilm")
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


def _loss(default, variants=VARIANTS):
    """A LossSettings field used by ``variants`` (the others leave it at its default, or at 0 for a weight)."""
    return field(default=default, metadata={"variants": variants})


def _train(default, trainer: str | None = None):
    """A TrainSettings field; ``trainer``: the TrainingArguments argument it becomes (None: read by kdlab)."""
    return field(default=default, metadata={"trainer": trainer})


LOGITS = ("hinton", "minilm")  # the variants with a teacher's logits term (`ce` is CE alone, weight 1)


@dataclass
class ModelSettings:
    """The teacher and the student: which models, and how the student is made."""

    profile: str = "full"  # name of the profile these values came from
    teacher: str = "textattack/bert-base-uncased-SST-2"  # Hub id, local folder, "minilm-l6" or "tiny-random"
    teacher_finetune: str = "auto"  # "auto": fine-tune when the teacher has no trained head; "yes"; "no"
    student_layers: int = 6  # encoder layers of the student cut from the teacher
    layer_map: list[int] | None = None  # teacher layer per student layer; None = alternate (i * L_t / L_s)
    # The student: None = cut from the teacher (student_layers, layer_map); otherwise loaded on its own from a Hub
    # id or local folder (it must share the teacher's tokenizer), or "tiny-random:layers=2,hidden=32,heads=2" (a
    # tiny random BERT over the smoke vocabulary; optional intermediate=N), or "bilstm[:hidden=H,embedding=E]" (a
    # BiLSTM over the teacher's vocabulary, kdlab.models.bilstm; logits losses only). Keep student_layers equal
    # to its depth.
    student: str | None = None
    extra_student_layers: list[int] = field(default_factory=lambda: [4])  # extra sizes shown in tables/benchmarks
    # "teacher": layers copied from the teacher; "random": same shape, all weights random; "random-encoder": the
    # teacher's embeddings, pooler and head, random encoder layers (what the layer copy alone is worth)
    student_init: str = "teacher"


@dataclass
class DataSettings:
    """Which sentences the teacher and the students train and are evaluated on."""

    data: str = "hub"  # "hub" (nyu-mll/glue sst2), "synthetic", or a local folder (GLUE TSVs or save_to_disk)
    max_length: int = 128  # tokens per sentence after truncation (batches are padded dynamically)
    max_train_samples: int | None = None  # first N training sentences after a seeded shuffle; None = all
    max_eval_samples: int | None = None  # first N dev sentences; None = the whole dev split
    teacher_train_samples: int | None = None  # sentences to fine-tune the teacher on; None = max_train_samples
    # Unlabelled transfer set: of the students' max_train_samples sentences, only the first N keep their gold
    # label; the rest are distilled from the teacher's soft labels alone (CE skips them; a `ce` student trains on
    # the N).
    labelled_train_samples: int | None = None  # None = every student sentence labelled
    # Where the unlabelled ones come from: "teacher" = the first of the teacher's own training sentences (it knows
    # their gold labels; DistilBERT's practice); "unseen" = sentences after the teacher's, never trained on.
    transfer_sentences: str = "teacher"
    # Augmented transfer set (kdlab.data.augment, Tang et al. 2019): per student sentence up to N copies with
    # [MASK]ed words / one n-gram kept, added unlabelled (teacher soft labels only). 0 = none.
    augment_copies: int = 0


@dataclass
class LossSettings:
    """L = α·CE + β·KD + γ·attention + δ·value [+ λ_r·relations + λ_h·hidden]: kdlab.distillation.losses.

    Each field says which variants use it (``metadata["variants"]``): ``ce`` is CE alone (weight 1), ``hinton``
    α·CE + β·KD with the schedules, ``minilm`` every term. ``kdlab.validation.check_loss`` is the one check of
    these values (run by ``KDConfig.validate`` and by every ``DistillationLoss``).
    """

    temperature: float = _loss(4.0)  # Hinton temperature T (KD term is multiplied by T²)
    alpha: float = _loss(0.1, LOGITS)  # weight of cross-entropy with the gold labels
    beta: float = _loss(0.4, LOGITS)  # weight of the KD term T² KL(p_t^T ‖ p_s^T)
    gamma: float = _loss(0.3, ("minilm",))  # weight of MiniLM self-attention distribution transfer (last layer)
    delta: float = _loss(0.2, ("minilm",))  # weight of MiniLM value-relation transfer (last layer)
    relation_style: str = _loss("kl")  # "kl": MiniLM (KL of relations); "mse": the course text's MSE on A and A·V
    # The KD term's form and the schedules over training (kdlab.distillation.schedules; `ce` stays plain):
    kd_style: str = _loss("kl", LOGITS)  # "kl": T²·KL of softened outputs (Hinton); "mse": logits MSE (Tang 2019)
    weight_schedule: str = _loss("constant", LOGITS)  # "staged": relations, then logits; "soft-to-hard": KD → CE
    temperature_schedule: str = _loss("constant", LOGITS)  # "anneal": T falls linearly to final_temperature
    final_temperature: float = _loss(1.0, LOGITS)
    # Optional extra terms of the `minilm` variant. MiniLMv2 relation heads (kdlab.distillation.relations): any
    # head counts; relation_heads must divide both Q/K/V widths.
    relation_weight: float = _loss(0.0, ("minilm",))  # weight of the summed relation KLs; 0 = off
    relation_heads: int | None = _loss(None, ("minilm",))  # A_r relation heads (needed when relation_weight > 0)
    relation_kinds: list[str] = field(default_factory=lambda: list(RELATION_KINDS), metadata={"variants": ("minilm",)})
    relation_teacher_layer: int = _loss(-1, ("minilm",))  # teacher encoder layer (0-based; -1 = last)
    relation_student_layer: int = _loss(-1, ("minilm",))  # student encoder layer (0-based; -1 = last)
    # Hidden-state MSE (kdlab.distillation.hidden, FitNets/TinyBERT): a learned Linear maps student width to
    # teacher width.
    hidden_weight: float = _loss(0.0, ("minilm",))  # weight of the hidden-state MSE; 0 = off
    # [[student_index, teacher_index], ...] over hidden_states (0 = embeddings, L = last layer);
    # None = uniform: student layer m -> teacher layer m * L_t // L_s for m = 1..L_s
    hidden_layer_map: list[list[int]] | None = _loss(None, ("minilm",))

    def loss_weights(self) -> dict[str, float]:
        """Each term's weight by the name its value is logged under (``loss_ce``, ``loss_kd``, …)."""
        return {"ce": self.alpha, "kd": self.beta, "attention": self.gamma, "value": self.delta,
                "relation": self.relation_weight, "hidden": self.hidden_weight}


@dataclass
class TrainSettings:
    """The optimisation of every run; ``metadata["trainer"]`` names the TrainingArguments argument."""

    learning_rate: float = _train(2e-5, "learning_rate")
    batch_size: int = _train(32, "per_device_train_batch_size")
    eval_batch_size: int = _train(64, "per_device_eval_batch_size")
    num_epochs: float = _train(3.0, "num_train_epochs")
    warmup_steps: int = _train(500, "warmup_steps")
    weight_decay: float = _train(0.01, "weight_decay")
    gradient_accumulation_steps: int = _train(1, "gradient_accumulation_steps")
    fp16: bool = _train(True, "fp16")  # mixed precision on CUDA (ignored, and reported, on CPU)
    # The data's shuffle and the teacher's fine-tune (shared by a class), and the students' unless a student id
    # (KDLAB_STUDENT_ID, or lab.setup(student_id=...)) gives each student a training seed (student_seed, derived
    # from the id by seed_for_student) for the students they train; data and teacher stay shared.
    seed: int = _train(42, "seed")
    student_id: str | None = _train(None)
    student_seed: int | None = _train(None)
    teacher_learning_rate: float = _train(2e-5)  # the teacher's learning_rate, when it is fine-tuned first
    teacher_epochs: float = _train(3.0)  # the teacher's num_train_epochs
    eval_steps: int | None = _train(None, "eval_steps")  # evaluate every N steps; None = once per epoch
    logging_steps: int = _train(50, "logging_steps")
    save_steps: int | None = _train(None, "save_steps")  # checkpoint every N steps; None = once per epoch

    def trainer_arguments(self) -> dict:
        """``{TrainingArguments argument: value}`` of every field that names one."""
        return {f.metadata["trainer"]: getattr(self, f.name) for f in dataclasses.fields(TrainSettings)
                if f.metadata.get("trainer")}


@dataclass
class LabSettings:
    """What the notebooks run and where they save it."""

    compare_variants: bool = True  # 02-Distill also trains the `ce` and `hinton` students
    num_seeds: int = 1  # 02-Distill trains each compared student with this many seeds (spread in 03)
    challenges: bool = False  # run the optional challenge cells at the end of 02 and 04
    race_sentences: int = 3200  # 02's loss race: students trained with your loss and kdlab's on this many sentences
    runs_dir: str = "runs"  # artifacts go to <runs_dir>/<profile>/
    bench_repeats: int = 50  # timed repetitions per benchmark row
    bench_warmup: int = 5  # untimed warm-up runs per benchmark row
    num_threads: int | None = None  # CPU threads for timing; None = all cores


@dataclass
class KDConfig(LabSettings, TrainSettings, LossSettings, DataSettings, ModelSettings):
    """Everything a lab run depends on: the five groups above as one flat dataclass (fields in the order models,
    data, loss, training, lab). Saved as ``config.json`` next to the run's artifacts."""

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
        return build_config(cls, json.loads(Path(path).read_text()), source=str(path))

    def validate(self) -> "KDConfig":
        """Raise KDLabError for values no run can use. Returns self."""
        check_types(self)
        check_loss(self)
        if self.student is not None:
            parse_tiny_student(self.student)  # checks the "tiny-random:..." syntax; other names load later
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





def seed_for_student(student_id: str) -> int:
    """A training seed that belongs to ``student_id`` (the same for the same id, spelling and case aside; 1000 to
    999,999, away from the reference's 42–46): what ``kdlab grade`` recomputes to tell a student's own run."""
    key = student_id.strip().lower().encode("utf-8")
    return 1000 + int(hashlib.sha256(key).hexdigest()[:12], 16) % 999_000


def default_profile() -> str:
    """``class`` (the GPU profile sized for a class period) when a CUDA GPU is visible, otherwise ``cpu``."""
    import torch  # lazy: the foundation modules load without torch (``kdlab --help``, the grader's host side)

    return "class" if torch.cuda.is_available() else "cpu"


def load_config(profile: str | None = None, **overrides) -> KDConfig:
    """Build and validate the config for ``profile`` (or ``$KDLAB_PROFILE``, or the default for this machine).

    Precedence, lowest to highest: dataclass defaults < profile < environment (``ENV_OVERRIDES``: a
    ``KDLAB_MAX_TRAIN_SAMPLES`` cap also caps the teacher's sentences unless ``KDLAB_TEACHER_TRAIN_SAMPLES`` is
    set, and scales the labelled ones with the profile's share; then any field from ``KDLAB_OVERRIDES``, a JSON
    object) < keyword overrides.
    """
    name = profile or os.environ.get("KDLAB_PROFILE") or default_profile()
    if name not in PROFILES:
        raise KDLabError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (KDLAB_PROFILE or profile=).")
    values: dict = {"profile": name, **PROFILES[name]}
    values.update(env_fields(KDConfig, ENV_OVERRIDES))
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
    from_json = json_object(OVERRIDES_ENV, '{"warmup_steps": 50}')
    refuse_unknown(KDConfig, from_json, OVERRIDES_ENV)
    values.update(from_json)
    values.update(overrides)
    if values.get("student_id") not in (None, "") and values.get("student_seed") is None:
        values["student_seed"] = seed_for_student(str(values["student_id"]))
    if isinstance(values.get("data"), (str, os.PathLike)) and values["data"] not in ("hub", "synthetic"):
        values["data"] = str(Path(values["data"]).expanduser().resolve())  # one spelling per folder
    return build_config(KDConfig, values, source=f"profile {name!r} with overrides {sorted(overrides)}")
