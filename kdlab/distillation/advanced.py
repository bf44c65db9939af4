"""Distillation beyond one teacher and one smaller student (the course's advanced methods):

- **Born-again self-distillation** (Furlanello et al. 2018): a student of the teacher's own size, started from the
  same pretrained encoder, distilled from the teacher; then the next generation from it. Can it beat its teacher?
- **Multi-teacher (ensemble) distillation**: the student learns the average of several teachers' soft labels.
- **Deep mutual learning** (Zhang et al. 2018): two students trained together, each distilling from the other;
  no pre-trained teacher.
- **Teacher assistant** (Mirzadeh et al. 2020): 6L → 4L → 2L against 6L → 2L directly.

Each is a function of the lab's config and saves its students under ``runs/<profile>/advanced/<method>/``. The
KD term is Hinton's (logits only): MiniLM's relations compare one teacher's heads with one student's.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup, set_seed
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.trainer_pt_utils import LengthGroupedSampler

from kdlab.artifacts import read_json
from kdlab.config import KDConfig
from kdlab.data.loading import class_names, load_data
from kdlab.data.tokens import tokenize
from kdlab.distillation.losses import kd_loss, masked_cross_entropy
from kdlab.distillation.training import RESULT_FILE, distill, finetune_teacher
from kdlab.errors import KDLabError
from kdlab.metrics.classification import evaluate_model
from kdlab.models.student import build_student, init_student_from_teacher
from kdlab.models.teacher import MINILM_L6, TINY_RANDOM, load_lab_teacher


def advanced_dir(cfg: KDConfig, method: str) -> Path:
    return cfg.run_dir() / "advanced" / method


def base_encoder(cfg: KDConfig) -> str:
    """The pretrained encoder the profile's teacher was fine-tuned from (born-again students and mutual-learning
    peers start from it): the packaged MiniLM, the tiny random BERT, or ``bert-base-uncased`` for `full` and `class`."""
    if cfg.teacher in (MINILM_L6, TINY_RANDOM):
        return cfg.teacher
    return "bert-base-uncased" if cfg.profile in ("full", "class") else cfg.teacher


def assistant_sizes(teacher_layers: int) -> tuple[int, int]:
    """(assistant, final) layer counts about 2/3 and 1/3 of the teacher's: 6 → (4, 2), 12 → (8, 4), 4 → (3, 1)."""
    assistant = max(2, round(2 * teacher_layers / 3))
    return min(assistant, teacher_layers - 1), max(1, round(teacher_layers / 3))


def extra_teachers(cfg: KDConfig, seeds, tokenizer=None) -> list[nn.Module]:
    """Teachers fine-tuned like the lab's but with other seeds (data order, dropout, the new head), for an
    ensemble; saved under ``advanced/teachers/seed-S`` and reused."""
    names = class_names(cfg)
    out = []
    for seed in seeds:
        cfg_s = dataclasses.replace(cfg, seed=seed)
        folder = advanced_dir(cfg, "teachers") / f"seed-{seed}"
        record = read_json(folder / RESULT_FILE)
        if record and record.get("config") == cfg_s.to_dict():
            out.append(load_lab_teacher(str(folder), cfg_s, names).model)
            continue
        base = load_lab_teacher(cfg.teacher, cfg_s, names)
        result = finetune_teacher(cfg_s, base.model, base.tokenizer, load_data(cfg_s, for_teacher=True), folder,
                                  resume=False)
        out.append(result.model)
    return out


# --- several teachers as one -------------------------------------------------------------------------------------
class EnsembleTeacher(nn.Module):
    """Several teachers behind one forward: logits whose tempered softmax is the teachers' mean soft label,

        z = T · log( (1/K) Σ_k softmax(z_k / T) )      ⇒      softmax(z / T) = (1/K) Σ_k softmax(z_k / T),

    so Hinton's ``kd_loss(z_s, z, T)`` distils the average of the teachers' soft labels. All teachers must read the
    same tokens; ``config`` is the first teacher's (vocabulary and label checks)."""

    def __init__(self, teachers: list[nn.Module], temperature: float):
        super().__init__()
        if not teachers:
            raise KDLabError("an ensemble needs at least one teacher.")
        vocab = {int(t.config.vocab_size) for t in teachers}
        labels = {int(t.config.num_labels) for t in teachers}
        if len(vocab) > 1 or len(labels) > 1:
            raise KDLabError(f"ensemble teachers must share the vocabulary and the classes (vocab {sorted(vocab)}, "
                             f"classes {sorted(labels)}).")
        self.teachers = nn.ModuleList(teachers)
        self.temperature = float(temperature)
        self.config = teachers[0].config

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        t = self.temperature
        probs = torch.stack([torch.softmax(m(input_ids=input_ids, attention_mask=attention_mask,
                                             token_type_ids=token_type_ids).logits.float() / t, dim=-1)
                             for m in self.teachers]).mean(0)
        return SequenceClassifierOutput(logits=t * torch.log(probs.clamp_min(1e-12)))


def ensemble_distill(cfg: KDConfig, teachers: list[nn.Module], tokenizer, data, name: str = "ensemble"):
    """A ``hinton`` student (cut from the first teacher) distilled from the mean soft label of ``teachers``."""
    if cfg.temperature_schedule != "constant" or cfg.kd_style != "kl":
        raise KDLabError(
            f"ensemble distillation averages the teachers' soft labels at one temperature (T = {cfg.temperature:g}), "
            f"so it needs temperature_schedule='constant' and kd_style='kl' (got {cfg.temperature_schedule!r}, "
            f"{cfg.kd_style!r}): an annealed T would distil a sharpened mean, and the logits MSE would compare scaled "
            "log-probabilities, not logits.")
    ensemble = EnsembleTeacher(teachers, cfg.temperature)
    student = build_student(cfg, teachers[0], tokenizer)
    return distill(cfg, ensemble, tokenizer, data, "hinton", student=student,
                   output_dir=advanced_dir(cfg, "ensemble") / name, checkpoint_name=f"ensemble-{name}")


# --- born again --------------------------------------------------------------------------------------------------
def born_again(cfg: KDConfig, teacher: nn.Module, tokenizer, data, base: str, generations: int = 2):
    """Generation g (1..``generations``): a student of the teacher's depth and width, loaded from the pretrained
    encoder ``base`` (a new head), distilled (``hinton``) from generation g−1 (generation 0 = the teacher).
    Returns the TrainResults, one per generation."""
    if generations < 1:
        raise KDLabError(f"generations={generations}: train at least one born-again generation.")
    layers = int(teacher.config.num_hidden_layers)
    cfg_ba = dataclasses.replace(cfg, student=base, student_layers=layers, gamma=0.0, delta=0.0).validate()
    previous, results = teacher, []
    for generation in range(1, generations + 1):
        result = distill(cfg_ba, previous, tokenizer, data, "hinton",
                         output_dir=advanced_dir(cfg, "born-again") / f"generation-{generation}",
                         checkpoint_name=f"born-again-{generation}")
        results.append(result)
        previous = result.model
    return results


# --- teacher assistant -------------------------------------------------------------------------------------------
def teacher_assistant(cfg: KDConfig, teacher: nn.Module, tokenizer, data, assistant_layers: int,
                      final_layers: int, variant: str = "minilm"):
    """``{"assistant", "via_assistant", "direct"}`` TrainResults: the teacher → an ``assistant_layers`` student;
    that assistant → a ``final_layers`` student cut from the assistant's layers; and the teacher → a
    ``final_layers`` student directly (cut from the teacher), all with ``variant``'s loss."""
    teacher_layers = int(teacher.config.num_hidden_layers)
    if not final_layers < assistant_layers < teacher_layers:
        raise KDLabError(f"a teacher assistant sits between the teacher and the student: need final_layers < "
                         f"assistant_layers < teacher layers, got {final_layers} < {assistant_layers} < "
                         f"{teacher_layers}.")
    folder = advanced_dir(cfg, "assistant")
    cfg_a = dataclasses.replace(cfg, student_layers=assistant_layers, layer_map=None)
    cfg_f = dataclasses.replace(cfg, student_layers=final_layers, layer_map=None)
    assistant = distill(cfg_a, teacher, tokenizer, data, variant, output_dir=folder / "assistant",
                        checkpoint_name="assistant")
    via = distill(cfg_f, assistant.model, tokenizer, data, variant,
                  student=init_student_from_teacher(assistant.model, final_layers),
                  output_dir=folder / "via-assistant", checkpoint_name="via-assistant")
    direct = distill(cfg_f, teacher, tokenizer, data, variant, output_dir=folder / "direct",
                     checkpoint_name="direct")
    return {"assistant": assistant, "via_assistant": via, "direct": direct}


# --- deep mutual learning ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MutualResult:
    models: list[nn.Module]
    metrics: list[dict]  # each peer's dev metrics
    history: list[dict]  # per logging step: step, each peer's CE and KL
    train_seconds: float
    predictions: list[np.ndarray] = dataclasses.field(default_factory=list)


def mutual_peers(base: nn.Module, layers: int, count: int = 2, seed: int = 0) -> list[nn.Module]:
    """``count`` peers cut from ``base`` (``layers`` alternate layers), each with its own classification head drawn
    from seed ``seed + k``: the distinct initial conditions deep mutual learning starts from (Zhang et al. 2018);
    identical peers that see the same batches would differ only by dropout."""
    peers = []
    for k in range(count):
        peer = init_student_from_teacher(base, layers)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + k)
            for module in peer.classifier.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        peers.append(peer)
    return peers


def mutual_loss(z_k: torch.Tensor, others: list[torch.Tensor], labels: torch.Tensor, temperature: float = 1.0,
                weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Deep mutual learning's loss of one peer (Zhang et al. 2018, eq. 3/5):

        L_k = CE(y, z_k) + weight · mean_{j≠k} T²·KL(p_j^T ‖ p_k^T)

    ``z_k`` ``[B, C]`` the peer's logits; ``others``: the other peers' logits, constants (each peer is the others'
    teacher). T = 1 is the paper's plain softmax. CE skips unlabelled transfer-set rows (``masked_cross_entropy``);
    the KL uses every row."""
    kl = torch.stack([kd_loss(z_k, z_j.detach(), temperature) for z_j in others]).mean()
    ce = masked_cross_entropy(z_k, labels)
    return {"ce": ce, "kl": kl, "loss": ce + weight * kl}


def deep_mutual_learning(cfg: KDConfig, peers: list[nn.Module], tokenizer, data, temperature: float = 1.0,
                         weight: float = 1.0, log=print) -> MutualResult:
    """Train ``peers`` with deep mutual learning, in the paper's order (Zhang et al. 2018, Algorithm 1): on each
    batch, peer 1 takes a step on ``mutual_loss`` against the others' current predictions, then the predictions are
    recomputed and peer 2 takes its step against them (peer 1's already updated), and so on. AdamW per peer, linear
    warmup and decay, gradients clipped to 1, FP16 autocast on CUDA, length-grouped batches; no pre-trained teacher.
    Data order and dropout follow ``cfg.seed``; ``temperature=1`` (plain softmax) as in the paper.
    ``weight=0`` trains the same peers in the same loop with CE alone: the baseline to compare with."""
    if len(peers) < 2:
        raise KDLabError("deep mutual learning needs at least two peers.")
    set_seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fp16 = bool(cfg.fp16 and device.type == "cuda")
    train = tokenize(data, tokenizer, cfg.max_length)["train"].remove_columns(["sentence"])
    # Batches of similar lengths, shuffled (as the lab's Trainer runs use): short SST-2 phrases padded to a random
    # batch's longest sentence would cost several times the compute.
    sampler = LengthGroupedSampler(cfg.batch_size, lengths=[len(ids) for ids in train["input_ids"]],
                                   generator=torch.Generator().manual_seed(cfg.seed))
    loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler,
                        collate_fn=DataCollatorWithPadding(tokenizer))
    steps = int(len(loader) * cfg.num_epochs)
    peers = [p.to(device).train() for p in peers]
    optimizers = [torch.optim.AdamW(p.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
                  for p in peers]
    schedules = [get_linear_schedule_with_warmup(o, min(cfg.warmup_steps, steps), steps) for o in optimizers]
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    history, step, start = [], 0, time.perf_counter()

    def logits_of(peer, batch):
        with torch.autocast(device.type, dtype=torch.float16, enabled=fp16):
            return peer(**batch).logits

    while step < steps:
        for batch in loader:
            if step >= steps:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            parts = []
            for k, (peer, opt, sched) in enumerate(zip(peers, optimizers, schedules)):
                if weight:
                    with torch.no_grad():  # the others' predictions now (peers before k already stepped)
                        others = [logits_of(p, batch) for j, p in enumerate(peers) if j != k]
                else:
                    others = []
                z_k = logits_of(peer, batch)
                if others:
                    part = mutual_loss(z_k, others, labels, temperature, weight)
                else:
                    ce = masked_cross_entropy(z_k, labels)
                    part = {"ce": ce, "loss": ce}
                opt.zero_grad(set_to_none=True)
                scaler.scale(part["loss"]).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(peer.parameters(), 1.0)
                scaler.step(opt)
                sched.step()
                parts.append(part)
            scaler.update()
            step += 1
            if step % cfg.logging_steps == 0 or step == steps:
                history.append({"step": step, **{f"peer{k}_{n}": float(v.detach()) for k, part in enumerate(parts)
                                                  for n, v in part.items()}})
    seconds = time.perf_counter() - start
    metrics, predictions = [], []
    for peer in peers:
        m = evaluate_model(peer.eval(), tokenizer, data["validation"], cfg.max_length, cfg.eval_batch_size, device)
        predictions.append(m.pop("predictions"))
        m.pop("probs")
        metrics.append(m)
    log(f"mutual learning: {steps} steps in {seconds:.0f} s; dev accuracy "
        + ", ".join(f"{100 * m['accuracy']:.2f}%" for m in metrics))
    return MutualResult([p.float().eval() for p in peers], metrics, history, seconds, predictions)
