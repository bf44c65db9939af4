"""TRL's ``GKDTrainer`` on the lab's own teacher, student and text: the reference run for kdlab's on-policy regime.

TRL's trainers take chat data; a training sentence becomes two "messages": its first ``prompt_tokens`` tokens
(decoded) as the prompt and the rest as the completion, with the one-line chat template of ``kdlab.lm.corpus``
(plain concatenation), so TRL sees the same text. What still differs from kdlab's ``onpolicy`` regime, by TRL's
design: its loss covers only the completion tokens (kdlab's off-policy batches score every position of the text);
it samples with ``temperature`` and ``top_k=0`` from ``generation_config``; batches are not grouped by length. Like
kdlab's, it replaces a batch by the student's own continuations with probability λ (GKD's ``lmbda``), not every
batch. The
student, teacher, steps, batch size, learning rate, schedule, β and λ are the same. ``benchmarks/lm.py`` trains both
and records the comparison in BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import time

from kdlab.errors import KDLabError


def chat_dataset(ctx, limit: int | None = None):
    """The training sentences as ``messages`` (prompt = the first ``prompt_tokens`` tokens, completion = the rest),
    dropping those with no completion."""
    from datasets import Dataset

    tok, k = ctx.tokenizer, ctx.cfg.prompt_tokens
    rows = []
    for ids in ctx.train["input_ids"][:limit]:
        body = ids[1:-1] if ids and ids[0] == tok.eos_token_id else ids  # without GPT-2's <|endoftext|> marks
        if len(body) <= k:
            continue
        rows.append([{"role": "user", "content": tok.decode(body[:k])},
                     {"role": "assistant", "content": tok.decode(body[k:])}])
    if not rows:
        raise KDLabError(f"no training sentence is longer than prompt_tokens={k}.")
    return Dataset.from_dict({"messages": rows})


def train_gkd(ctx, seed: int, output_dir, steps: int | None = None):
    """Cut the student as kdlab's regimes do and train it with TRL's ``GKDTrainer`` (λ = ``cfg.lmbda``, β =
    ``cfg.jsd_beta`` unless ``cfg.onpolicy_loss`` names an end: reverse → 1, forward → 0); returns ``(student, record)``.
    ImportError names the extra to install when TRL is missing."""
    try:
        from trl.experimental.gkd import GKDConfig, GKDTrainer
    except ImportError as exc:
        raise ImportError("TRL is not installed: pip install 'kdlab[llm]' (or trl>=1.11).") from exc
    import torch

    from kdlab.lm import models

    cfg = ctx.cfg
    beta = {"reverse": 1.0, "forward": 0.0}.get(cfg.onpolicy_loss, cfg.jsd_beta)
    student = models.cut_student(ctx.teacher, cfg.student_layers, cfg.layer_map)
    cuda = torch.cuda.is_available()
    args = GKDConfig(
        output_dir=str(output_dir), max_steps=steps or cfg.student_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=cfg.warmup_steps, weight_decay=0.0, lmbda=cfg.lmbda, beta=beta,
        temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, max_length=cfg.context, seed=seed,
        logging_steps=cfg.logging_steps, save_strategy="no", report_to=[], use_cpu=not cuda,
        fp16=bool(cfg.fp16 and cuda), disable_dropout=True, dataloader_num_workers=0,
    )
    import copy

    teacher = copy.deepcopy(ctx.teacher)  # TRL prepares (and changes) the teacher it is given: the caller's stays as it was
    trainer = GKDTrainer(model=student, teacher_model=teacher, args=args, train_dataset=chat_dataset(ctx),
                         processing_class=ctx.tokenizer)
    start = time.perf_counter()
    trainer.train()
    record = {"regime": "trl-gkd", "seed": seed, "train_seconds": time.perf_counter() - start,
              "steps": trainer.state.global_step, "history": [dict(h) for h in trainer.state.log_history],
              "trl_settings": {"lmbda": cfg.lmbda, "beta": beta, "temperature": cfg.temperature}}
    return trainer.model.eval(), record


def same_settings_as_kdlab(ctx) -> dict:
    """The settings the two on-policy runs share (for the benchmark's record)."""
    cfg = ctx.cfg
    return {k: getattr(cfg, k) for k in ("student_layers", "student_steps", "batch_size", "learning_rate",
                                         "warmup_steps", "lmbda", "jsd_beta", "onpolicy_loss", "temperature",
                                         "prompt_tokens", "max_new_tokens")} | {"profile": cfg.profile,
                                                                                "dataclass": dataclasses.is_dataclass(cfg)}
