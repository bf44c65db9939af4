"""The code findings of issue 35, each pinned by a test that failed on the code before its fix: stale metrics of a
reused student, CE on the student's own samples, the cache's temperature, and the loss's normalisation."""

import dataclasses

import pytest
import torch
from transformers import Trainer

from kdlab import lm_lab
from kdlab.errors import KDLabError
from kdlab.lm import evaluation, losses, models, runs
from kdlab.lm.trainer import LMDistillationTrainer, train, training_arguments


def _with_heldout(ctx, n, **changes):
    """The context prepare() would give with ``eval_texts=n`` (and other settings changed)."""
    cfg = dataclasses.replace(ctx.cfg, eval_texts=n, **changes)
    return dataclasses.replace(ctx, cfg=cfg, heldout=ctx.heldout.select(range(n)))


def test_a_reused_student_never_returns_metrics_measured_with_other_settings(lm_ctx, monkeypatch):
    first = lm_lab.train_student(lm_ctx, "ce", seed=11)
    assert first["metrics"]["heldout_tokens"] == sum(len(r) - 1 for r in lm_ctx.heldout["input_ids"])
    fewer = _with_heldout(lm_ctx, 16)
    again = lm_lab.train_student(fewer, "ce", seed=11)
    assert again["reused"]  # the same student (training settings unchanged) ...
    assert again["metrics"]["heldout_tokens"] == sum(len(r) - 1 for r in fewer.heldout["input_ids"])  # ... measured anew
    assert torch.equal(next(again["model"].parameters()), next(first["model"].parameters()))
    longer = _with_heldout(lm_ctx, 16, max_new_tokens=lm_ctx.cfg.max_new_tokens + 4, num_samples=4)
    third = lm_lab.train_student(longer, "ce", seed=11)
    assert third["reused"] and third["metric_settings"]["max_new_tokens"] == longer.cfg.max_new_tokens
    assert third["metric_settings"]["num_samples"] == 4
    monkeypatch.setattr(runs, "CODE_VERSION", "a later version")  # new code: nothing saved before is reused
    assert not lm_lab.train_student(longer, "ce", seed=11)["reused"]


def _trainer(ctx, tmp_path, regime, **changes):
    cfg = dataclasses.replace(ctx.cfg, **changes)
    student = models.cut_student(ctx.teacher, 1).train()
    args = training_arguments(cfg, tmp_path, learning_rate=1e-3, max_steps=1)
    return LMDistillationTrainer(model=student, args=args, train_dataset=ctx.train, data_collator=ctx.collator,
                                 regime=regime, cfg=cfg, rows=ctx.rows, teacher=ctx.teacher,
                                 eos_id=ctx.tokenizer.eos_token_id, pad_id=ctx.tokenizer.pad_token_id), student


def test_on_policy_batches_get_no_cross_entropy_on_the_students_own_samples(lm_ctx, tmp_path):
    trainer, student = _trainer(lm_ctx, tmp_path, "onpolicy", ce_weight=0.5, lmbda=1.0)
    batch = lm_ctx.collator([lm_ctx.train[i] for i in range(4)])
    generated = trainer._student_batch(student, batch)
    loss = trainer.compute_loss(student, dict(generated))
    assert "ce" not in trainer._sums  # no self-imitation
    kd_only, _ = _trainer(lm_ctx, tmp_path, "onpolicy", ce_weight=0.0, lmbda=1.0)
    assert float(loss.detach()) == pytest.approx(0.5 * float(kd_only.compute_loss(student, dict(generated)).detach()),
                                               rel=1e-5)
    trainer.compute_loss(student, dict(batch))  # a data batch does get the CE term
    assert "ce" in trainer._sums


def test_a_data_batch_mixes_kd_and_ce_as_lambda_kd_plus_one_minus_lambda_ce(lm_ctx, tmp_path):
    trainer, student = _trainer(lm_ctx, tmp_path, "kd-forward", ce_weight=0.3, temperature=2.0)
    batch = lm_ctx.collator([lm_ctx.train[i] for i in range(4)])
    got = trainer.compute_loss(student, dict(batch))
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1, : lm_ctx.rows]
        t = lm_ctx.teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1, : lm_ctx.rows]
    targets = batch["labels"][:, 1:]
    mask = targets != -100
    kd = losses.distillation_loss(s, t, mask, "forward", temperature=2.0)
    ce = losses.cross_entropy(s, targets, mask)
    assert float(got) == pytest.approx(float(0.7 * kd + 0.3 * ce), rel=1e-5)


def test_the_cached_teacher_refuses_a_temperature_it_cannot_honour(lm_ctx, tmp_path):
    from kdlab.lm import cache

    cache.cache_teacher(lm_ctx.teacher, lm_ctx.train, lm_ctx.collator, 4, tmp_path / "c", lm_ctx.rows)
    store = cache.TeacherCache(tmp_path / "c")
    cfg = dataclasses.replace(lm_ctx.cfg, temperature=2.0, student_steps=1)
    with pytest.raises(KDLabError, match="T = 1"):
        train(models.cut_student(lm_ctx.teacher, 1), cfg, "kd-cached", lm_ctx.train, lm_ctx.collator, lm_ctx.rows,
              tmp_path / "w", cache=store)


def _first_logged_loss(ctx, tmp_path, regime="ce"):
    cfg = dataclasses.replace(ctx.cfg, batch_size=2, gradient_accumulation_steps=2, warmup_steps=0,
                              logging_steps=1)
    four = ctx.train.select(range(4))
    student = models.cut_student(ctx.teacher, 1)
    before = evaluation.perplexity(student, four, ctx.collator, ctx.rows)["nll"]
    _, record = train(student, cfg, regime, four, ctx.collator, ctx.rows, tmp_path, teacher=ctx.teacher,
                      max_steps=1, learning_rate=1e-9)
    return [h["loss"] for h in record["history"] if "loss" in h][0], before


def test_the_loss_is_the_mean_over_real_targets_whatever_transformers_counts(lm_ctx, tmp_path, monkeypatch):
    """The logged CE of one step over 4 examples (2 × accumulation 2, rows of different lengths) is their mean
    NLL per real target — also when Trainer counts as it did before transformers PR 46204 (position 0 of every
    row counted too, a denominator of N + B)."""
    loss, nll = _first_logged_loss(lm_ctx, tmp_path / "now")
    assert loss == pytest.approx(nll, rel=1e-4)
    original = Trainer._get_num_items_in_batch

    def counted_before_46204(self, batch_samples, device):
        count = original(self, batch_samples, device)
        return count + sum(b["labels"].shape[0] for b in batch_samples)

    monkeypatch.setattr(Trainer, "_get_num_items_in_batch", counted_before_46204)
    old_loss, _ = _first_logged_loss(lm_ctx, tmp_path / "old")
    assert old_loss == pytest.approx(nll, rel=1e-4)


def test_sequence_level_kd_trains_on_the_teachers_greedy_continuations_only(lm_ctx):
    from kdlab.lm import generation

    cfg = dataclasses.replace(lm_ctx.cfg, seqkd_texts=6)
    ctx = dataclasses.replace(lm_ctx, cfg=cfg)
    data = lm_lab.seqkd_data(ctx, seed=3)
    row = data[0]
    greedy = generation.sample(lm_ctx.teacher, [row["input_ids"][: row["prompt_length"]]], cfg.max_new_tokens,
                               lm_ctx.tokenizer.eos_token_id, lm_ctx.tokenizer.pad_token_id, greedy=True)[0]
    assert row["input_ids"] == greedy[: cfg.context]  # Kim & Rush: the teacher's greedy output, not a sample
    assert lm_lab.seqkd_data(ctx, seed=4)["input_ids"] == data["input_ids"]  # greedy does not depend on the seed
    batch = lm_ctx.collator([data[i] for i in range(3)])
    for i in range(3):
        p, n = data[i]["prompt_length"], len(data[i]["input_ids"])
        assert (batch["labels"][i, :p] == -100).all()  # the prompt is never a target
        assert torch.equal(batch["labels"][i, p:n], batch["input_ids"][i, p:n])
    sampled = lm_lab.seqkd_data(dataclasses.replace(ctx, cfg=dataclasses.replace(cfg, seqkd_decoding="sample")), 3)
    assert len(sampled) == 6 and sampled["input_ids"] != data["input_ids"][:6]  # TRL's seq_kd: sampled at T = 1


def test_settings_saved_with_the_old_name_beta_still_load():
    from kdlab.lm.config import load_lm_config

    assert load_lm_config("smoke", beta=0.3).jsd_beta == 0.3
    with pytest.raises(KDLabError, match="temperature_convention"):
        load_lm_config("smoke", temperature_convention="T^2")
