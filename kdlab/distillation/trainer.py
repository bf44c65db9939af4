"""The trainer: a ``transformers.Trainer`` subclass that distils a frozen teacher into a student, and the
``TrainingArguments`` the lab uses (FP16 on CUDA, evaluation and checkpoints per epoch or every N steps).

``DistillationTrainer`` copies the teacher (never changing the caller's), captures Q/K/V with hooks when the loss
needs them, logs every loss term, trains on one GPU when several are visible (DDP through ``torchrun`` is the way
to use them all), and clips the hidden-state projections with the student's gradients.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import ExitStack
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from kdlab.config import KDConfig
from kdlab.data.sources import UNLABELLED
from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.hidden import HiddenStateDistiller, resolve_hidden_layer_map
from kdlab.distillation.losses import DistillationLoss, Outputs
from kdlab.distillation.relations import check_relation_setup
from kdlab.errors import KDLabError
from kdlab.models.layers import layer_heads
from kdlab.models.vocabulary import check_same_vocabulary

PROJECTIONS_FILE = "kdlab_hidden_projections.pt"  # in a checkpoint folder: the hidden-state projections


def check_distillation_setup(loss_fn: DistillationLoss, teacher: torch.nn.Module, student: torch.nn.Module) -> None:
    """Checks that need both models, run before training: relation layers inside both models and relation heads
    dividing both Q/K/V widths; hidden-state layer map inside both models (KDLabError naming the problem)."""
    if loss_fn.needs_inner_states and not hasattr(student.config, "num_attention_heads"):
        raise KDLabError(f"the {type(student).__name__} student has no self-attention or Transformer layers to "
                         "match: use a logits-only variant (`ce` or `hinton`), or gamma = delta = 0 and no "
                         "relation/hidden-state terms.")
    if loss_fn.needs_relation_states:
        check_relation_setup(teacher, student, loss_fn.relation_heads, loss_fn.relation_teacher_layer,
                             loss_fn.relation_student_layer)
    if loss_fn.needs_hidden_states:
        resolve_hidden_layer_map(loss_fn.hidden_layer_map, int(student.config.num_hidden_layers),
                                 int(teacher.config.num_hidden_layers))


def frozen_teacher(teacher: torch.nn.Module, device: torch.device, half: bool) -> torch.nn.Module:
    """A frozen copy of ``teacher`` for distillation: eval mode, no gradients, on ``device``, in float16 when
    ``half``. The caller's model is left exactly as it was (device, dtype, training flag, ``requires_grad``), so
    a teacher used for one student is the same fp32 model for the next one and for the notebooks' plots."""
    clone = copy.deepcopy(teacher)
    clone = clone.to(device=device, dtype=torch.float16 if half else None)
    return clone.eval().requires_grad_(False)


def use_one_gpu(args: TrainingArguments) -> TrainingArguments:
    """Train on one GPU when several are visible outside ``torchrun``/``accelerate launch``.

    Without this, ``Trainer`` wraps the student in ``nn.DataParallel``: its replicas share the Q/K/V hooks of
    ``kdlab.distillation.capture`` (captures collide, the MiniLM loss fails), and the batch silently grows to
    ``batch_size × n_gpu``. kdlab uses ``cuda:0`` instead and says how to use every GPU (DDP, one process per
    GPU, each with its own hooks). Returns ``args`` (changed in place)."""
    n_gpu = args.n_gpu  # also sets up the device
    if n_gpu > 1:
        warnings.warn(
            f"{n_gpu} GPUs are visible: kdlab trains on one (cuda:0) instead of nn.DataParallel, whose replicas "
            "would share the Q/K/V hooks and change the batch size. To use them all, run the training as a script "
            f"under DDP: `torchrun --nproc_per_node {n_gpu} your_script.py` (or `accelerate launch`); each process "
            "then has its own GPU, hooks and batch. To silence this, start Python with CUDA_VISIBLE_DEVICES=0.",
            stacklevel=3,
        )
        args._n_gpu = 1  # what transformers itself does for model-parallel models: no DataParallel wrapper
    return args


class DistillationTrainer(Trainer):
    """Trainer whose loss is ``DistillationLoss`` against a frozen teacher.

    The teacher is a frozen copy (``frozen_teacher``) of the model passed in: in eval mode with gradients off, on
    the training device, in float16 when training in fp16 on CUDA; the caller's teacher is never changed. The last
    layer's Q/K/V of both models are captured with hooks only when the loss has attention/value terms. Every
    active loss component is averaged between logging steps and logged as ``loss_ce``, ``loss_kd``,
    ``loss_attention``, ``loss_value`` (``loss_relation``, ``loss_hidden``). In evaluation the loss is the
    student's CE. With several visible GPUs it trains on one (``use_one_gpu``), never under ``nn.DataParallel``.

    Cross-architecture terms: MiniLMv2 relation heads hook Q/K/V of the chosen layer of each model; hidden-state
    distillation asks both models for ``output_hidden_states`` and trains a ``HiddenStateDistiller``
    (``self.hidden_distiller``) whose projections join the optimizer as an extra parameter group and are clipped
    together with the student's gradients. They are saved in checkpoints (``kdlab_hidden_projections.pt``, for
    resuming) but never with the student model.
    """

    # compute_loss returns a per-batch mean: let Trainer divide by the accumulation steps. transformers >= 5.19
    # reads `loss_is_scaled_for_ga`; 5.3-5.18 read `model_accepts_loss_kwargs` (set in __init__). Without both,
    # gradient accumulation doubles the loss and the gradients on one version or the other (measured on 5.17).
    loss_is_scaled_for_ga = False

    def __init__(self, *args, loss_fn: DistillationLoss, teacher: torch.nn.Module | None = None, **kwargs):
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if training_args is not None:
            use_one_gpu(training_args)
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # see loss_is_scaled_for_ga above
        self.loss_fn = loss_fn
        if loss_fn.needs_teacher and teacher is None:
            raise KDLabError("this loss has KD/attention/value terms (beta/gamma/delta > 0) but no teacher was given.")
        if teacher is not None:
            check_same_vocabulary(teacher, self.model)
            if teacher.config.num_labels != self.model.config.num_labels:
                raise KDLabError(
                    f"teacher has {teacher.config.num_labels} labels and the student {self.model.config.num_labels}."
                )
            if loss_fn.needs_qkv and layer_heads(teacher) != layer_heads(self.model):
                raise KDLabError(
                    f"attention/value transfer needs equal head counts: teacher {layer_heads(teacher)}, student "
                    f"{layer_heads(self.model)}. Set gamma=delta=0 (variant 'hinton') or give the student "
                    f"{layer_heads(teacher)} heads; MiniLMv2 relation heads (relation_weight, relation_heads) work "
                    "with any head counts."
                )
            check_distillation_setup(loss_fn, teacher, self.model)
        self.teacher = None
        if teacher is not None and loss_fn.needs_teacher:
            self.teacher = frozen_teacher(teacher, self.args.device,
                                          half=bool(self.args.fp16 and self.args.device.type == "cuda"))
        self.hidden_distiller: HiddenStateDistiller | None = None
        if self.teacher is not None and loss_fn.needs_hidden_states:
            self.hidden_distiller = HiddenStateDistiller.for_models(
                self.model, self.teacher, loss_fn.hidden_layer_map).to(self.args.device)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation: the student's own CE
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        labels = inputs["labels"]
        features = {k: v for k, v in inputs.items() if k != "labels"}
        loss_fn = self.loss_fn
        needs_qkv, needs_rel = loss_fn.needs_qkv, loss_fn.needs_relation_states
        needs_hidden = self.hidden_distiller is not None
        extra = dict(output_hidden_states=True) if needs_hidden else {}
        student = self.accelerator.unwrap_model(model)
        with ExitStack() as stack:
            cap = stack.enter_context(QKVCapture(student)) if needs_qkv else None
            rel = stack.enter_context(QKVCapture(student, loss_fn.relation_student_layer)) if needs_rel else None
            outputs = model(**features, **extra)
            student_out = Outputs(outputs.logits, cap.qkv() if cap else None, rel.raw() if rel else None,
                                  outputs.hidden_states if needs_hidden else None)
        teacher_out = None
        if self.teacher is not None:
            with torch.no_grad(), ExitStack() as stack:
                cap = stack.enter_context(QKVCapture(self.teacher)) if needs_qkv else None
                rel = stack.enter_context(QKVCapture(self.teacher, loss_fn.relation_teacher_layer)) if needs_rel else None
                t_out = self.teacher(**features, **extra)
                teacher_out = Outputs(t_out.logits, cap.qkv() if cap else None, rel.raw() if rel else None,
                                      t_out.hidden_states if needs_hidden else None)
        mask = features.get("attention_mask")
        if mask is None and loss_fn.needs_inner_states:
            mask = torch.ones_like(features["input_ids"])
        parts = loss_fn(student_out, labels, teacher_out, mask, hidden_distiller=self.hidden_distiller,
                        progress=self.state.global_step / max(1, self.state.max_steps))
        self._record(parts)
        if "ce" in parts:  # logged, not part of the loss: masked CE divides by the whole batch (see loss_terms_table)
            self._record({"labelled_share": (labels != UNLABELLED).float().mean()})
        return (parts["loss"], outputs) if return_outputs else parts["loss"]

    def create_optimizer(self, model=None):
        """The Trainer's optimizer for the student, plus the hidden-state projections as an extra parameter group
        (weight decay on their weights, none on their biases), so the LR schedule drives them too."""
        optimizer = super().create_optimizer(model)
        if self.hidden_distiller is not None:
            present = {id(p) for group in optimizer.param_groups for p in group["params"]}
            for decay, params in ((self.args.weight_decay, [p for n, p in self.hidden_distiller.named_parameters()
                                                            if not n.endswith("bias")]),
                                  (0.0, [p for n, p in self.hidden_distiller.named_parameters()
                                         if n.endswith("bias")])):
                params = [p for p in params if p.requires_grad and id(p) not in present]
                if params:
                    optimizer.add_param_group({"params": params, "weight_decay": decay})
        return optimizer

    def _clip_grad_norm(self, model):
        """Clip the student's gradients and the hidden-state projections' together, to ``max_grad_norm``
        (Trainer alone clips ``model.parameters()`` only). Returns the pre-clip norm over both."""
        if self.hidden_distiller is None:
            return super()._clip_grad_norm(model)
        params = [*model.parameters(), *self.hidden_distiller.parameters()]
        return self.accelerator.clip_grad_norm_(params, self.args.max_grad_norm)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        # Checkpoints (internal calls) also keep the projections, so a resumed run continues with them.
        if _internal_call and self.hidden_distiller is not None and self.args.should_save:
            folder = Path(output_dir or self.args.output_dir)
            torch.save(self.hidden_distiller.state_dict(), folder / PROJECTIONS_FILE)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / PROJECTIONS_FILE
        if self.hidden_distiller is not None and path.is_file():
            self.hidden_distiller.load_state_dict(torch.load(path, map_location=self.args.device))

    def _get_eval_sampler(self, eval_dataset):
        # transformers 5 applies train_sampling_strategy="group_by_length" to evaluation and predict() too,
        # which returns predictions in length-grouped order; keep the dataset's order so that predictions line
        # up with its rows (McNemar pairs them with other models' predictions).
        if eval_dataset is None or not hasattr(eval_dataset, "__len__") or self.args.world_size > 1:
            return super()._get_eval_sampler(eval_dataset)
        return torch.utils.data.SequentialSampler(eval_dataset)

    def _record(self, parts: dict[str, torch.Tensor]) -> None:
        """Sum each term over the steps it was computed in (a scheduled term may be off for some steps)."""
        for name, value in parts.items():
            if name != "loss":
                self._sums[name] = self._sums.get(name, 0.0) + value.detach().float()
                self._counts[name] = self._counts.get(name, 0) + 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._counts:
            for name, total in self._sums.items():  # `temperature` and `labelled_share` are logged as themselves
                key = name if name in ("temperature", "labelled_share") else f"loss_{name}"
                logs[key] = round(float(total) / self._counts[name], 6)
            self._sums, self._counts = {}, {}
        super().log(logs, start_time)


MEGA_BATCH_MAX = 50  # transformers' group_by_length sampler: at most this many batches per length group


def length_group_steps(rows: int, batch_size: int, gradient_accumulation_steps: int = 1) -> int:
    """Optimizer steps per length group under ``train_sampling_strategy="group_by_length"`` (one GPU).

    transformers' ``get_length_grouped_indices`` cuts the shuffled ``rows`` into mega-batches of
    m = min(rows // (4·b), ``MEGA_BATCH_MAX``) batches (at least 1), b = batch_size · gradient_accumulation_steps
    rows per optimizer step, and sorts each mega-batch from long to short sentences. A loss averaged over fewer
    than m steps alternates between long- and short-sentence windows (a sawtooth); logged every m steps, each point
    is the mean over one group. Returns m."""
    b = batch_size * gradient_accumulation_steps
    return max(1, min(rows // (4 * b), MEGA_BATCH_MAX))


# The lab's fixed choices for every run (the config's TrainSettings supply the rest: kdlab.config).
LAB_TRAINING_ARGUMENTS = dict(
    save_total_limit=2,
    logging_strategy="steps",
    logging_first_step=True,
    train_sampling_strategy="group_by_length",
    ddp_find_unused_parameters=False,  # under torchrun every student parameter takes part in the loss
    report_to="none",
    disable_tqdm=False,  # keep the progress bar even when the lab quiets transformers' logging to errors
    dataloader_num_workers=0,
)


def training_arguments(cfg: KDConfig, output_dir: str | Path, **overrides) -> TrainingArguments:
    """``TrainingArguments`` from the config's training settings (each ``TrainSettings`` field names its argument:
    ``TrainSettings.trainer_arguments``), the lab's fixed choices (``LAB_TRAINING_ARGUMENTS``) and ``overrides``
    (TrainingArguments names, e.g. the teacher's ``learning_rate=cfg.teacher_learning_rate``). FP16 only on CUDA;
    evaluation and checkpoints every ``eval_steps``/``save_steps`` steps, or once per epoch when those are None."""
    cuda = torch.cuda.is_available()
    values = {**cfg.trainer_arguments(), **LAB_TRAINING_ARGUMENTS, **overrides}
    values["fp16"] = bool(values["fp16"] and cuda)
    values.setdefault("eval_strategy", "steps" if values["eval_steps"] else "epoch")
    values.setdefault("save_strategy", "steps" if values["save_steps"] else "epoch")
    return TrainingArguments(output_dir=str(output_dir), use_cpu=not cuda, **values)
