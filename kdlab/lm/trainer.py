"""One ``transformers.Trainer`` for every regime of causal-LM distillation, so regimes differ only in the thing
they are named for (same collator, masks, normalisation, optimizer, schedule, steps and seed).

Why not TRL's trainers for all of them: ``GKDTrainer`` covers on-policy and supervised JSD and
``DistillationTrainer`` on-policy KL, but neither trains plain CE, skew KL or from a cached top-k teacher, and a
comparison across two trainers would differ in more than the loss. TRL is used where it is the reference: its
``generalized_jsd_loss`` is the golden value of ``kdlab.lm.losses`` (tests/lm), and ``kdlab.lm.trl_check`` runs its
``GKDTrainer`` on the same models and data for the on-policy regime (BENCHMARKS.md).

Regimes (``kdlab.lm.config.REGIMES``): ``ce`` (and ``seqkd``: CE on the teacher's generations — the data differ,
the loss is CE), ``kd-forward`` / ``kd-reverse`` / ``kd-jsd`` / ``kd-skew`` (the teacher's distribution at every
position of the text), ``kd-cached`` (forward KL from the cached top-k, no teacher forward), ``onpolicy`` (GKD: with
probability λ a batch is replaced by the student's own continuations of the batch's prompts, scored token by token
by the teacher with ``onpolicy_loss``; the other batches use the same divergence on the text).

Normalisation: the loss is Σ over the targets of a micro-batch / the number of real targets (label ≠ −100 at
positions 1…, i.e. ``labels[:, 1:]``) of the whole accumulated batch, counted here (``get_batch_samples``) after
the on-policy micro-batches have replaced their data batches — not by ``Trainer``, whose count changed with
transformers PR 46204 (before it, position 0 of every row was counted too). So gradient accumulation gives the
loss and gradients of one big batch (``loss_is_scaled_for_ga = True``) and on-policy and data tokens weigh the same.

CE with KD (``ce_weight`` w > 0: (1 − w)·KD + w·CE) is trained on data batches only: on the student's own samples
CE would be self-imitation, so an on-policy batch gets the KD term alone.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from kdlab.errors import KDLabError
from kdlab.lm import losses
from kdlab.lm.config import LMConfig

DIVERGENCES = {"kd-forward": "forward", "kd-reverse": "reverse", "kd-jsd": "jsd", "kd-skew": "skew-forward"}


def teacher_needed(regime: str) -> bool:
    return regime.startswith("kd-") and regime != "kd-cached" or regime == "onpolicy"


class LMDistillationTrainer(Trainer):
    """``Trainer`` whose loss is the regime's (module docstring). ``teacher``: a causal LM sharing the student's
    tokenizer (frozen copy, eval mode, fp16 on CUDA when training in fp16); ``cache``: a ``TeacherCache`` for
    ``kd-cached``; ``rows``: the logit columns that mean tokens (``models.usable_rows``)."""

    loss_is_scaled_for_ga = True  # compute_loss divides by the accumulated batch's target count itself

    def __init__(self, *args, regime: str, cfg: LMConfig, rows: int, teacher=None, cache=None,
                 eos_id: int | None = None, pad_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.regime, self.cfg, self.rows, self.cache = regime, cfg, rows, cache
        self.eos_id, self.pad_id = eos_id, pad_id
        if teacher_needed(regime) and teacher is None:
            raise KDLabError(f"regime {regime!r} needs the teacher's distributions: pass teacher=.")
        if regime == "kd-cached" and cache is None:
            raise KDLabError("regime 'kd-cached' reads the teacher from its cache: pass cache= (kdlab.lm.cache).")
        self.teacher = None
        if teacher is not None and teacher_needed(regime):
            half = bool(self.args.fp16 and self.args.device.type == "cuda")
            self.teacher = copy.deepcopy(teacher).to(self.args.device, dtype=torch.float16 if half else None)
            self.teacher.eval().requires_grad_(False)
        if regime == "kd-cached" and losses.temperature_terms(cfg.temperature, cfg.temperature_convention)[0] != 1:
            raise KDLabError(f"regime 'kd-cached' at temperature={cfg.temperature} ({cfg.temperature_convention}): "
                             "the cache holds the teacher's top-k at T = 1, and softmax(z/T) needs all of its logits. "
                             "Use T = 1, the 'trl-gkd' convention, or a live-teacher regime (kd-forward).")
        self._policy_rng = torch.Generator().manual_seed(cfg.seed)
        self.onpolicy_batches = 0
        self._sums: dict[str, float] = {}
        self._count = 0

    # --- the loss -------------------------------------------------------------------------------------------
    def _teacher_logits(self, inputs) -> torch.Tensor:
        with torch.no_grad():
            out = self.teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return out.logits[:, :-1, : self.rows]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """(1 − w)·KD + w·CE over this micro-batch's targets / ``num_items_in_batch`` (set by ``get_batch_samples``:
        the accumulated batch's real targets; None outside training: this batch's own count)."""
        inputs = dict(inputs)
        generated = bool(inputs.pop("kdlab_generated", False))
        index = inputs.pop("index", None)
        inputs.pop("prompt_length", None)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits = outputs.logits[:, :-1, : self.rows]
        targets = inputs["labels"][:, 1:]
        mask = targets != -100
        cfg, terms = self.cfg, {}
        if self.regime in ("ce", "seqkd"):
            loss = terms["ce"] = losses.cross_entropy(logits, targets, mask, num_items_in_batch, cfg.chunk_tokens)
        else:
            if self.regime == "kd-cached":
                top_ids, top_lp = self.cache.batch(index.cpu(), logits.shape[1])
                kd = losses.sparse_forward_kl(logits, top_ids.to(logits.device), top_lp.to(logits.device), mask,
                                              num_items_in_batch, cfg.chunk_tokens)
            else:
                kind = DIVERGENCES[self.regime] if self.regime in DIVERGENCES else cfg.onpolicy_loss
                kd = losses.distillation_loss(logits, self._teacher_logits(inputs), mask, kind, cfg.temperature,
                                              cfg.jsd_beta, cfg.skew_alpha, num_items_in_batch,
                                              convention=cfg.temperature_convention, chunk_tokens=cfg.chunk_tokens)
            terms["kd"] = kd
            if cfg.ce_weight and not generated:  # never CE on the student's own samples
                terms["ce"] = losses.cross_entropy(logits, targets, mask, num_items_in_batch, cfg.chunk_tokens)
                loss = losses.mix(kd, terms["ce"], cfg.ce_weight)
            else:
                loss = kd if not cfg.ce_weight else (1 - cfg.ce_weight) * kd
        if model.training:
            for name, value in terms.items():
                self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())
            self._count += 1
        return (loss, outputs) if return_outputs else loss

    # --- the accumulated batch: on-policy replacement, then the target count ------------------------------
    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """``Trainer``'s micro-batches for one optimizer step, each replaced with probability λ by the student's own
        continuations (on-policy), and the count of their real targets (``labels[:, 1:] != −100``) — counted here,
        so the loss's scale does not depend on how a transformers version counts."""
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.regime == "onpolicy":
            for i, inputs in enumerate(batches):
                if float(torch.rand((), generator=self._policy_rng)) < self.cfg.lmbda:
                    batches[i] = self._student_batch(self.model, inputs)
                    self.onpolicy_batches += 1
        count = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
        return batches, torch.tensor(count, device=device)

    def _student_batch(self, model, inputs) -> dict:
        """The batch's prompts (each row's ``prompt_length`` when the data are prompt → response pairs, else its
        first ``prompt_tokens``) continued by the student itself; targets = the new tokens only (the prompt is the
        data's, not the student's)."""
        from kdlab.lm.generation import sample

        cfg = self.cfg
        lengths = inputs["attention_mask"].sum(1).tolist()
        given = inputs.get("prompt_length")
        prompts = [inputs["input_ids"][row, : min(int(given[row]) if given is not None else cfg.prompt_tokens,
                                                   n - 1)].tolist()
                   for row, n in enumerate(lengths)]
        sequences = sample(model, prompts, cfg.max_new_tokens, self.eos_id, self.pad_id,
                           seed=cfg.seed * 100_003 + self.state.global_step * 7 + self.onpolicy_batches,
                           batch_size=len(prompts))
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for row, (seq, prompt) in enumerate(zip(sequences, prompts)):
            ids[row, : len(seq)] = torch.as_tensor(seq)
            mask[row, : len(seq)] = 1
            labels[row, len(prompt): len(seq)] = ids[row, len(prompt): len(seq)]
        device = inputs["input_ids"].device
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device),
                "kdlab_generated": True}

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._count and "loss" in logs:
            for name, total in self._sums.items():
                logs[f"loss_{name}"] = round(total / self._count, 6)
            self._sums, self._count = {}, 0
        super().log(logs, *args, **kwargs)


def training_arguments(cfg: LMConfig, output_dir: str | Path, *, learning_rate: float, max_steps: int = -1,
                       epochs: float = 1.0, warmup_steps: int = 0, seed: int | None = None,
                       **extra) -> TrainingArguments:
    """The regimes' shared ``TrainingArguments`` (cosine schedule, random batches, no checkpoints); ``extra``: any
    other ``TrainingArguments`` field (e.g. ``optim="sgd"``). Random batches, not length-grouped ones: on short,
    length-homogeneous texts (WordNet's glosses) length grouping orders the batches by length within each
    mega-batch, and at equal steps that learned far slower (held-out perplexity 365.8 vs 225.9 after 200 steps:
    BENCHMARKS.md, "A better teacher recipe")."""
    cuda = torch.cuda.is_available()
    fields = dict(
        output_dir=str(output_dir), learning_rate=learning_rate, max_steps=max_steps, num_train_epochs=epochs,
        warmup_steps=warmup_steps, lr_scheduler_type="cosine", weight_decay=0.0,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, fp16=bool(cfg.fp16 and cuda), use_cpu=not cuda,
        eval_strategy="no", save_strategy="no", logging_strategy="steps", logging_steps=cfg.logging_steps,
        logging_first_step=True, train_sampling_strategy="random", remove_unused_columns=False,
        report_to="none", seed=cfg.seed if seed is None else seed, dataloader_num_workers=0, disable_tqdm=False,
    )
    return TrainingArguments(**{**fields, **extra})  # extra may replace a default (e.g. the sampling strategy)


def train(model, cfg: LMConfig, regime: str, dataset, collator, rows: int, output_dir: str | Path, *,
          teacher=None, cache=None, tokenizer=None, learning_rate: float | None = None, max_steps: int | None = None,
          epochs: float = 1.0, warmup_steps: int | None = None, seed: int | None = None, name: str | None = None,
          arguments: dict | None = None):
    """Train ``model`` in place with the regime's loss; returns ``(model, record)`` where ``record`` holds the
    history (``Trainer``'s log), train seconds, steps and the share of on-policy batches. ``arguments``: extra
    ``TrainingArguments`` fields."""
    from kdlab.distillation.progress import text_progress_wanted, use_text_progress
    from kdlab.lm.config import REGIMES

    if regime not in REGIMES:
        raise KDLabError(f"regime {regime!r}: choose from {', '.join(REGIMES)}.")
    args = training_arguments(cfg, output_dir, learning_rate=learning_rate or cfg.learning_rate,
                              max_steps=cfg.student_steps if max_steps is None else max_steps, epochs=epochs,
                              warmup_steps=cfg.warmup_steps if warmup_steps is None else warmup_steps, seed=seed,
                              **(arguments or {}))
    eos = tokenizer.eos_token_id if tokenizer is not None else None
    pad = tokenizer.pad_token_id if tokenizer is not None else None
    if regime == "onpolicy" and (eos is None or pad is None):
        raise KDLabError("the on-policy regime samples from the student: pass tokenizer= (its end-of-text and pad).")
    trainer = LMDistillationTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                                    regime=regime, cfg=cfg, rows=rows, teacher=teacher, cache=cache, eos_id=eos,
                                    pad_id=pad)
    if text_progress_wanted():
        use_text_progress(trainer, name or regime)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    history = [dict(h) for h in trainer.state.log_history]
    steps = trainer.state.global_step
    record = {"regime": regime, "train_seconds": seconds, "steps": steps, "history": history,
              "onpolicy_share": trainer.onpolicy_batches / (steps * cfg.gradient_accumulation_steps) if steps and regime == "onpolicy" else None}
    model.eval()
    return model, record


def nan_free(record: dict) -> bool:
    """Whether every logged loss of a training record is a finite number."""
    return all(math.isfinite(h["loss"]) for h in record["history"] if "loss" in h)
