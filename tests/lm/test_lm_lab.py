"""The notebook layer of the LM part (kdlab.lm_lab): saved runs reused by settings, the tables 07 shows, the checks
it demonstrates, and TRL's GKDTrainer on the same context."""

import dataclasses
import json

import pytest

from kdlab import lm_lab, lm_tables


def test_a_student_is_reused_only_with_the_same_settings(lm_ctx):
    first = lm_lab.train_student(lm_ctx, "kd-forward", seed=7)
    again = lm_lab.train_student(lm_ctx, "kd-forward", seed=7)
    assert not first["reused"] and again["reused"]
    assert again["metrics"]["perplexity"] == pytest.approx(first["metrics"]["perplexity"], rel=1e-9)
    other = lm_lab.train_student(lm_ctx, "kd-forward", seed=8)
    assert not other["reused"]


def test_the_tables_the_notebook_shows(lm_ctx):
    records = lm_lab.train_regimes(lm_ctx, ["ce", "kd-forward", "kd-cached"], seeds=[7, 8])
    teacher = lm_lab.teacher_metrics(lm_ctx)
    table = lm_tables.regimes_table(records, teacher)
    saved = json.loads(  # the kit's R7.1 reads the teacher's measures from the run folder
        (lm_ctx.cfg.run_dir() / "teacher-metrics.json").read_text())
    assert saved["metrics"]["perplexity"] == pytest.approx(teacher["perplexity"]) and "nll_sums" not in saved["metrics"]
    assert list(table["regime"]) == ["teacher", "ce", "kd-forward", "kd-cached"]
    assert list(table["seeds"]) == [1, 2, 2, 2]
    ce = [r["metrics"]["perplexity"] for r in records if r["regime"] == "ce"]
    assert table.loc[table["regime"] == "ce", "perplexity"].item() == pytest.approx(sum(ce) / 2, abs=0.01)
    seed7 = dataclasses.replace(lm_ctx, cfg=dataclasses.replace(lm_ctx.cfg, seed=7))  # the table reads cfg.seed's
    cache = lm_tables.cache_table(seed7, records)
    assert list(cache["regime"]) == ["kd-forward", "kd-cached"] and cache.attrs["cache"]["k"] == lm_ctx.cfg.top_k
    samples = lm_tables.samples_table(records, n=2)
    assert list(samples.columns) == ["prompt", "ce", "kd-forward", "kd-cached"] and len(samples) == 2
    settings = lm_tables.settings_table(lm_ctx.cfg)
    assert settings.loc["student blocks", "value"] == str(lm_ctx.cfg.student_layers)
    speed = lm_tables.speed_table(lm_ctx, lm_lab.load_student(lm_ctx, "ce", 7))
    assert speed["speedup"].iloc[0] == 1.0 and speed["parameters_M"].iloc[1] < speed["parameters_M"].iloc[0]


def test_the_vocabulary_checks_pass_handle_and_refuse(lm_ctx):
    checks = lm_tables.vocabulary_checks(lm_ctx)
    results = list(checks["result"])
    assert results[0].startswith("ok") and results[1].startswith("handled") and results[2].startswith("refused")


def test_trls_gkd_trainer_runs_offline_on_the_same_context(lm_ctx, tmp_path):
    pytest.importorskip("trl", reason="TRL is the optional reference (pip install 'kdlab[llm]'; CI installs it)")
    from kdlab.lm import evaluation, trl_check

    import torch

    steps = lm_ctx.cfg.logging_steps  # one logged loss
    ids = lm_ctx.collator([lm_ctx.heldout[i] for i in range(4)])
    with torch.no_grad():
        before = lm_ctx.teacher(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits
    student, record = trl_check.train_gkd(lm_ctx, seed=3, output_dir=tmp_path / "gkd", steps=steps)
    with torch.no_grad():
        after = lm_ctx.teacher(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits
    torch.testing.assert_close(after, before, rtol=0, atol=0)  # the caller's teacher is left as it was
    assert record["steps"] == steps and record["regime"] == "trl-gkd"
    losses = [h["loss"] for h in record["history"] if "loss" in h]
    assert losses and all(loss == loss for loss in losses)  # logged and not NaN
    ppl = evaluation.perplexity(student, lm_ctx.heldout, lm_ctx.collator, lm_ctx.rows)["perplexity"]
    assert 1 < ppl < 10 * len(lm_ctx.tokenizer)


def test_a_student_from_nothing_its_step_zero_row_and_its_own_run_key(lm_ctx):
    cfg = dataclasses.replace(lm_ctx.cfg, student_init="random", student_width=16, student_heads=2)
    ctx = dataclasses.replace(lm_ctx, cfg=cfg)
    start = lm_lab.step0_metrics(ctx, seed=5)
    trained = lm_lab.train_student(ctx, "ce", seed=5)
    assert not trained["reused"] and trained["model"].config.n_embd == 16
    assert trained["metrics"]["perplexity"] < start["perplexity"]  # training moved it away from its random start
    cut = lm_lab.train_student(lm_ctx, "ce", seed=5)
    assert not cut["reused"]  # the cut student with otherwise equal settings is another run
    assert lm_lab.step0_metrics(lm_ctx, seed=5)["perplexity"] < start["perplexity"]  # the cut one starts near the teacher


def test_the_settings_table_names_every_profiles_text():
    """07's first table for every profile (07's `cpu` run once stopped there: its corpus had no row)."""
    from kdlab import lm_tables
    from kdlab.lm.config import LM_PROFILES, load_lm_config

    for name in LM_PROFILES:
        table = lm_tables.settings_table(load_lm_config(name))
        assert table.loc["profile", "value"] == name and table.loc["text", "value"]
    cpu = lm_tables.settings_table(load_lm_config("cpu")).loc["teacher", "value"]
    assert "batch 32, lr 0.001, dropout 0" in cpu
