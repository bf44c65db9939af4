"""The cost of one optimization step, five ways: CE alone, the teacher's forward, Hinton, MiniLM through Q/K/V
hooks (what ``kdlab.distillation.training`` trains with), and MiniLM computed naively from returned attention maps.

Steps run as the trainer runs them. In fp32 (the CPU): forward, loss, backward, gradient clipping to 1.0, AdamW.
In fp16 (CUDA by default, as ``TrainingArguments(fp16=True)``): the teacher is a float16 copy, the student keeps
fp32 master weights and runs under ``torch.autocast(float16)``, the loss is scaled by a ``GradScaler``, gradients
are unscaled before clipping, and the scaler steps the optimizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from kdlab.distillation.capture import QKVCapture
from kdlab.distillation.losses import DistillationLoss, Outputs, kd_loss, value_relation_loss
from kdlab.errors import KDLabError
from kdlab.measurement.timing import (
    NUM_INPUT_BATCHES,
    device_name,
    latency_stats,
    resolve_device,
    rotating,
    round_robin,
    sync_for,
    torch_threads,
)
from kdlab.models.layers import layer_heads

TRAIN_STEPS = {
    "a": "student CE step",
    "b": "teacher forward (no grad)",
    "c": "Hinton step (CE + KD)",
    "d": "MiniLM step (hooked Q/K/V, sdpa)",
    "e": "MiniLM step, naive (eager, output_attentions)",
}
MAX_GRAD_NORM = 1.0  # TrainingArguments' default, which kdlab keeps


def training_batches(batch_size: int, seq_len: int, vocab_size: int, num_labels: int, device="cpu",
                     count: int = NUM_INPUT_BATCHES, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Random ``{"input_ids" [B, S], "attention_mask" [B, S], "labels" [B]}`` batches with padding: each row has
    a random real length in ``[S/2, S]`` (the first row is full), like a dynamically padded batch."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=gen)
        lengths = torch.randint(max(1, seq_len // 2), seq_len + 1, (batch_size,), generator=gen)
        lengths[0] = seq_len
        mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
        labels = torch.randint(0, num_labels, (batch_size,), generator=gen)
        batches.append({k: v.to(device) for k, v in
                        {"input_ids": ids * mask, "attention_mask": mask, "labels": labels}.items()})
    return batches


def attention_kl_from_probs(a_s: torch.Tensor, a_t: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM attention transfer from attention *probabilities* (as returned with ``output_attentions=True``).

        L = mean_batch mean_{heads, real queries} Σ_{real keys} A_t (log A_t − log A_s)

    a_s, a_t: ``[B, H, S, S]``; attention_mask ``[B, S]``. Equals ``losses.attention_distribution_loss`` on the
    Q/K that produced the maps (without dropout), computed the naive way.
    """
    mask = attention_mask.bool()
    key_mask = mask[:, None, None, :]
    a_s, a_t = a_s.float(), a_t.detach().float()
    kl = (a_t * (a_t.clamp_min(1e-30).log() - a_s.clamp_min(1e-30).log())).masked_fill(~key_mask, 0.0).sum(-1)
    q = mask[:, None, :].float()  # [B, 1, S]
    per_example = (kl * q).sum(dim=(1, 2)) / (q.sum(dim=(1, 2)) * kl.shape[1]).clamp(min=1.0)
    return per_example.mean()


class Updater:
    """One optimizer update as the Trainer does it: backward, clip to ``MAX_GRAD_NORM``, step; with fp16, through
    a ``GradScaler`` (scale the loss, unscale before clipping, let the scaler step and update)."""

    def __init__(self, model: nn.Module, device: torch.device, fp16: bool, learning_rate: float):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=learning_rate)
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None

    def __call__(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()


@dataclass
class TrainSteps:
    """The five step functions ``step(batch)`` (keys of ``TRAIN_STEPS``) and what they run on."""

    steps: dict[str, Callable[[dict], object]]
    device: torch.device
    fp16: bool


def make_train_steps(teacher: nn.Module, student: nn.Module, device: str | torch.device = "cpu",
                     fp16: bool | None = None, loss: DistillationLoss | None = None,
                     learning_rate: float = 1e-5, naive: bool = True) -> TrainSteps:
    """Copies of ``teacher`` and ``student`` set up as ``kdlab.distillation.training`` trains them, and the steps of
    ``TRAIN_STEPS`` over them (the caller's models are neither trained nor moved).

    ``fp16=None``: fp16 on CUDA, fp32 elsewhere (as the trainer). With fp16 the teacher copies are float16 and
    every student forward and loss runs under ``torch.autocast(float16)``; updates go through ``Updater``.
    ``naive=False`` leaves out step (e) and its two eager-attention copies (less memory).
    """
    dev = resolve_device(device)
    fp16 = dev.type == "cuda" if fp16 is None else bool(fp16)
    loss = loss or DistillationLoss.for_variant("minilm")
    hinton = DistillationLoss.for_variant("hinton", temperature=loss.temperature, alpha=loss.alpha, beta=loss.beta)
    ce_only = DistillationLoss.for_variant("ce")
    t_dtype = torch.float16 if fp16 else torch.float32
    t = copy.deepcopy(teacher).to(dev, t_dtype).eval().requires_grad_(False)
    s = copy.deepcopy(student).to(dev, torch.float32).train()
    update = Updater(s, dev, fp16, learning_rate)
    if naive:
        t_eager, s_eager = copy.deepcopy(t), copy.deepcopy(s)
        t_eager.set_attn_implementation("eager")
        s_eager.set_attn_implementation("eager")
        update_eager = Updater(s_eager, dev, fp16, learning_rate)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.float16, enabled=fp16)

    def features(batch):
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def ce_step(batch):
        with autocast():
            value = ce_only(s(**features(batch)).logits, batch["labels"])["loss"]
        update(value)

    def teacher_forward(batch):
        with torch.no_grad(), autocast():
            return t(**features(batch)).logits

    def hinton_step(batch):
        with autocast():
            logits = s(**features(batch)).logits
            value = hinton(logits, batch["labels"], teacher_forward(batch))["loss"]
        update(value)

    def minilm_step(batch):
        with autocast():
            with QKVCapture(s) as cap:
                logits = s(**features(batch)).logits
                s_qkv = cap.qkv()
            with torch.no_grad(), QKVCapture(t) as cap:
                t_logits = t(**features(batch)).logits
                t_qkv = cap.qkv()
            value = loss(Outputs(logits, s_qkv), batch["labels"], Outputs(t_logits, t_qkv),
                         batch["attention_mask"])["loss"]
        update(value)

    def naive_step(batch):
        mask = batch["attention_mask"]
        with autocast():
            with QKVCapture(s_eager) as cap:
                out = s_eager(**features(batch), output_attentions=True)
                v_s = cap.qkv()[2]
            with torch.no_grad(), QKVCapture(t_eager) as cap:
                t_out = t_eager(**features(batch), output_attentions=True)
                v_t = cap.qkv()[2]
            value = (loss.alpha * F.cross_entropy(out.logits.float(), batch["labels"])
                     + loss.beta * kd_loss(out.logits, t_out.logits, loss.temperature)
                     + loss.gamma * attention_kl_from_probs(out.attentions[-1], t_out.attentions[-1], mask)
                     + loss.delta * value_relation_loss(v_s, v_t, mask))
        update_eager(value)

    steps = {"a": ce_step, "b": teacher_forward, "c": hinton_step, "d": minilm_step}
    if naive:
        steps["e"] = naive_step
    return TrainSteps(steps, dev, fp16)


def step_peak_memory(run: TrainSteps, step: str, batch: dict, calls: int = 2) -> dict:
    """Peak CUDA memory while ``run.steps[step]`` runs ``calls`` times on ``batch`` (the first call creates the
    optimizer's state): ``{"allocated_MiB", "reserved_MiB"}``, absolute (everything on the device counts: weights,
    gradients, AdamW moments, activations, the caching allocator's reserve). CUDA only."""
    if run.device.type != "cuda":
        raise KDLabError("step_peak_memory measures CUDA memory: run the steps on a CUDA device.")
    torch.cuda.synchronize(run.device)
    torch.cuda.reset_peak_memory_stats(run.device)
    for _ in range(calls):
        run.steps[step](batch)
    torch.cuda.synchronize(run.device)
    return {"allocated_MiB": torch.cuda.max_memory_allocated(run.device) / 2**20,
            "reserved_MiB": torch.cuda.max_memory_reserved(run.device) / 2**20}


@dataclass
class TrainStepResult:
    table: object  # DataFrame: step, what, p50_ms, p95_ms, p99_ms, mean_ms (one row per step a..e)
    ratios: dict  # name -> ratio of P50s
    settings: dict  # batch, seq, threads, device, precision, layers, repeats, warmup


def train_step_benchmark(teacher: nn.Module, student: nn.Module, batch_size: int = 8, seq_len: int = 128,
                         warmup: int = 2, repeats: int = 10, device: str = "cpu", num_threads: int | None = None,
                         loss: DistillationLoss | None = None, learning_rate: float = 1e-5,
                         fp16: bool | None = None) -> TrainStepResult:
    """Time per optimization step of five ways to train (or feed) the student, side by side, round-robin:

    (a) student CE step; (b) teacher forward under ``no_grad``; (c) Hinton step: student forward, teacher
    forward, α·CE + β·KD, backward, clipping, AdamW step; (d) MiniLM step (the real path, as in
    ``kdlab.distillation.training``):
    as (c) plus Q/K/V of the last layer of both models captured by ``QKVCapture`` hooks under sdpa attention, and
    ``DistillationLoss`` (α·CE + β·KD + γ·attention + δ·value relations); (e) MiniLM step computed naively:
    both models run with eager attention and ``output_attentions=True`` (every layer's ``[B, H, S, S]``
    attention probabilities are materialised and returned), the attention term is computed from the last
    layer's returned maps (``attention_kl_from_probs``), the value relation from hooked V. Same loss weights as (d).

    ``fp16=None`` times the precision the trainer would use (fp16 autocast + GradScaler on CUDA, fp32 elsewhere;
    see ``make_train_steps``). Each step works on copies; batches are random with padding (``training_batches``).
    ``ratios``: d/(a+b), d/e, c/(a+b), d/c of the P50s.
    """
    if batch_size < 1 or seq_len < 1 or warmup < 0 or repeats < 1:
        raise KDLabError(f"batch_size={batch_size}, seq_len={seq_len}, warmup={warmup}, repeats={repeats}: need "
                         "batch_size, seq_len, repeats >= 1 and warmup >= 0.")
    if num_threads is not None and num_threads < 1:
        raise KDLabError(f"num_threads={num_threads} must be >= 1 (or None for torch's default).")
    if teacher.config.vocab_size != student.config.vocab_size:
        raise KDLabError("teacher and student vocabularies differ: they must read the same token ids.")
    if layer_heads(teacher) != layer_heads(student):
        raise KDLabError(f"MiniLM steps need equal head counts (teacher {layer_heads(teacher)}, student "
                         f"{layer_heads(student)}).")
    with torch_threads(num_threads) as threads:
        run = make_train_steps(teacher, student, device, fp16, loss, learning_rate)
        batches = training_batches(batch_size, seq_len, teacher.config.vocab_size, teacher.config.num_labels,
                                   run.device)
        times = round_robin([rotating(fn, batches) for fn in run.steps.values()], warmup, repeats,
                            sync=sync_for(run.device))
    rows = [{"step": key, "what": TRAIN_STEPS[key], **latency_stats(ms, batch_size)}
            for key, ms in zip(run.steps, times)]
    table = pd.DataFrame(rows)
    p50 = dict(zip(table["step"], table["p50_ms"]))
    ratios = {
        "minilm / (ce + teacher)": p50["d"] / (p50["a"] + p50["b"]),
        "minilm / naive minilm": p50["d"] / p50["e"],
        "hinton / (ce + teacher)": p50["c"] / (p50["a"] + p50["b"]),
        "minilm / hinton": p50["d"] / p50["c"],
    }
    settings = {"batch": batch_size, "seq": seq_len, "threads": threads, "device": device_name(run.device),
                "precision": "fp16 (autocast + GradScaler, fp16 teacher)" if run.fp16 else "fp32",
                "teacher_layers": _layers(teacher), "student_layers": _layers(student), "warmup": warmup,
                "repeats": repeats}
    return TrainStepResult(table, ratios, settings)


def _layers(model: nn.Module) -> int | None:
    return getattr(getattr(model, "config", None), "num_hidden_layers", None)
