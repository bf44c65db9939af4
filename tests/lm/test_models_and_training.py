"""Cutting a student from a causal teacher, the checks before distilling, the regimes' trainer (gradient
accumulation included), the teacher cache, generation and the evaluation measures."""

import dataclasses
import math

import pytest
import torch

from kdlab.errors import KDLabError
from kdlab.lm import cache, corpus, evaluation, generation, losses, models
from kdlab.lm.trainer import train


def test_the_student_is_the_teachers_alternate_blocks(lm_ctx):
    teacher = lm_ctx.teacher
    t = models.blocks(teacher)[2]
    student = models.cut_student(teacher, 1)
    s = models.blocks(student)[2]
    assert len(s) == 1 and student.config.n_layer == 1 and student.config.kdlab_layer_map == [0]
    assert torch.equal(s[0].attn.c_attn.weight, t[0].attn.c_attn.weight)
    assert s[0].attn.c_attn.weight.data_ptr() != t[0].attn.c_attn.weight.data_ptr()  # a copy, not shared
    assert torch.equal(student.transformer.wte.weight, teacher.transformer.wte.weight)
    two = models.cut_student(teacher, 2, layer_map=[1, 0])
    assert [b.attn.layer_idx for b in models.blocks(two)[2]] == [0, 1]  # renumbered for the generation cache
    assert torch.equal(models.blocks(two)[2][0].mlp.c_fc.weight, t[1].mlp.c_fc.weight)
    assert models.alternate_map(12, 6) == [0, 2, 4, 6, 8, 10]  # DistilGPT2's shape from GPT-2


def test_a_cut_student_generates_with_its_own_cache(lm_ctx):
    student = models.cut_student(lm_ctx.teacher, 1, layer_map=[1])  # block 1 alone: its layer_idx must become 0
    out = generation.sample(student, [[lm_ctx.tokenizer.eos_token_id]] * 3, 5, lm_ctx.tokenizer.eos_token_id,
                            lm_ctx.tokenizer.pad_token_id, seed=1)
    assert len(out) == 3 and all(1 <= len(s) - 1 <= 5 for s in out)
    again = generation.sample(student, [[lm_ctx.tokenizer.eos_token_id]] * 3, 5, lm_ctx.tokenizer.eos_token_id,
                              lm_ctx.tokenizer.pad_token_id, seed=1)
    assert out == again  # deterministic for a seed


def test_bad_pairs_and_inputs_are_refused_before_any_work(lm_ctx):
    teacher, tok = lm_ctx.teacher, lm_ctx.tokenizer
    with pytest.raises(KDLabError, match="deeper than the teacher"):
        models.cut_student(teacher, 3)
    with pytest.raises(KDLabError, match="layer_map"):
        models.cut_student(teacher, 1, layer_map=[5])
    other = corpus.train_tokenizer(["completely different words here"] * 20, 280)
    with pytest.raises(KDLabError, match="tokenize differently.*only the teacher's"):
        models.check_tokenizers(tok, other)
    small = dataclasses.replace(lm_ctx.cfg, vocab_size=270)
    shrunk = models.teacher_from_config(small, corpus.train_tokenizer(["a b c"] * 5, 270))
    with pytest.raises(KDLabError, match="output rows but the tokenizer has"):
        models.usable_rows(shrunk, tok, "teacher")
    with pytest.raises(KDLabError, match="exceeds the model's"):
        generation.sample(teacher, [[1] * 20], 10, tok.eos_token_id, tok.pad_token_id)
    with pytest.raises(KDLabError, match="non-empty prompts"):
        generation.sample(teacher, [[]], 3, tok.eos_token_id, tok.pad_token_id)
    with pytest.raises(KDLabError, match="no example"):
        corpus.examples(["", "   "], tok, lm_ctx.cfg)


def test_a_padded_vocabulary_is_sliced_out_of_every_softmax(lm_ctx):
    """A teacher with more output rows than tokens (Qwen2.5's 151,936 vs 152,064) only uses the first len(tok)."""
    teacher = lm_ctx.teacher
    tok = lm_ctx.tokenizer
    padded = models.teacher_from_config(lm_ctx.cfg, tok)
    padded.resize_token_embeddings(len(tok) + 16)
    assert models.output_rows(padded) == len(tok) + 16
    assert models.usable_rows(padded, tok) == len(tok)
    batch = lm_ctx.collator([lm_ctx.train[i] for i in range(4)])
    with torch.no_grad():
        padded.get_output_embeddings().weight[len(tok):] = 50.0  # padding rows that would win every softmax
        logits = padded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    rows = models.check_pair(padded, models.cut_student(teacher, 1), tok)
    kd = losses.distillation_loss(logits[:, :-1, :rows], logits[:, :-1, :rows], batch["labels"][:, 1:] != -100)
    assert float(kd) == pytest.approx(0.0, abs=1e-6)
    assert logits[:, :-1, :rows].argmax(-1).max() < len(tok)


@pytest.mark.parametrize("regime", ["ce", "kd-forward", "kd-reverse", "kd-jsd", "kd-skew", "onpolicy"])
def test_every_regime_trains_and_lowers_its_loss(lm_ctx, regime, tmp_path):
    cfg = dataclasses.replace(lm_ctx.cfg, student_steps=12, logging_steps=1, lmbda=0.5)
    student = models.cut_student(lm_ctx.teacher, 1)
    _, record = train(student, cfg, regime, lm_ctx.train, lm_ctx.collator, lm_ctx.rows, tmp_path, teacher=lm_ctx.teacher,
                      tokenizer=lm_ctx.tokenizer)
    logged = [h["loss"] for h in record["history"] if "loss" in h]
    assert record["steps"] == 12 and all(math.isfinite(v) for v in logged)
    if regime == "onpolicy":
        assert 0 < record["onpolicy_share"] < 1  # some batches sampled by the student, some from the text
    else:
        assert logged[-1] < logged[0]


def _one_step(ctx, batch_size, accumulation, tmp_path):
    cfg = dataclasses.replace(ctx.cfg, batch_size=batch_size, gradient_accumulation_steps=accumulation,
                              learning_rate=1e-2, warmup_steps=0, logging_steps=1)
    student = models.cut_student(ctx.teacher, 1)
    four = ctx.train.select(range(4))
    train(student, cfg, "kd-reverse", four, ctx.collator, ctx.rows, tmp_path, teacher=ctx.teacher, max_steps=1,
          arguments={"optim": "sgd", "max_grad_norm": 0})  # SGD: the update is the gradient (Adam's first step
    # is ±lr wherever a gradient is non-zero, float noise included)
    return torch.cat([p.detach().flatten() for p in student.parameters()])


def test_gradient_accumulation_two_by_two_is_one_batch_of_four(lm_ctx, tmp_path):
    """Four examples of different lengths in one step: batch 4 × 1 and batch 2 × accumulation 2 give the same
    update (the loss is divided once by the target count of all four, not per micro-batch)."""
    assert len({len(lm_ctx.train[i]["input_ids"]) for i in range(4)}) > 1  # the micro-batches differ in targets
    one = _one_step(lm_ctx, 4, 1, tmp_path / "a")
    two = _one_step(lm_ctx, 2, 2, tmp_path / "b")
    start = torch.cat([p.detach().flatten() for p in models.cut_student(lm_ctx.teacher, 1).parameters()])
    assert not torch.allclose(one, start)
    assert torch.allclose(one, two, atol=1e-6)


def test_the_cache_stores_top_k_and_trains_without_the_teacher(lm_ctx, tmp_path):
    info = cache.cache_teacher(lm_ctx.teacher, lm_ctx.train, lm_ctx.collator, 8, tmp_path / "c", lm_ctx.rows)
    store = cache.TeacherCache(tmp_path / "c")
    targets = sum(len(r) - 1 for r in lm_ctx.train["input_ids"])
    assert info["tokens"] == targets and info["bytes_per_token"] == pytest.approx(8 * (2 + 2), abs=1)
    batch = lm_ctx.collator([lm_ctx.train[i] for i in range(3)])
    ids, lp = store.batch(batch["index"], batch["input_ids"].shape[1] - 1)
    with torch.no_grad():
        logits = lm_ctx.teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    top = torch.log_softmax(logits.float(), -1).topk(8, -1)
    mask = batch["labels"][:, 1:] != -100
    assert torch.equal(ids[mask], top.indices[mask]) and torch.allclose(lp[mask], top.values[mask], atol=2e-3)
    cfg = dataclasses.replace(lm_ctx.cfg, student_steps=4)
    _, record = train(models.cut_student(lm_ctx.teacher, 1), cfg, "kd-cached", lm_ctx.train, lm_ctx.collator,
                      lm_ctx.rows, tmp_path / "w", cache=store)
    assert record["steps"] == 4
    with pytest.raises(KDLabError, match="not in the teacher cache"):
        store.batch(torch.tensor([10**6]), 4)


def test_the_measures(lm_ctx):
    assert evaluation.distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert evaluation.distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert evaluation.distinct_n([[5]], 2) == 0.0
    ppl = evaluation.perplexity(lm_ctx.teacher, lm_ctx.heldout, lm_ctx.collator, lm_ctx.rows)
    expected = sum(len(r) - 1 for r in lm_ctx.heldout["input_ids"])
    assert ppl["tokens"] == expected and ppl["perplexity"] == pytest.approx(math.exp(ppl["nll"]))
    uniform = math.log(lm_ctx.rows)  # a trained teacher beats guessing uniformly over the vocabulary
    assert ppl["nll"] < uniform
    seqs = [lm_ctx.heldout[i]["input_ids"] for i in range(4)]
    nll = evaluation.teacher_nll(lm_ctx.teacher, seqs, 1, lm_ctx.rows, lm_ctx.tokenizer.pad_token_id)
    again = evaluation.perplexity(lm_ctx.teacher, lm_ctx.heldout.select(range(4)), lm_ctx.collator, lm_ctx.rows)
    assert nll == pytest.approx(again["nll"], rel=1e-5)  # from position 1 on, it is the same NLL


def test_the_teachers_dropout_is_a_setting_of_its_model_and_of_its_saved_key(lm_ctx):
    from kdlab.lm import runs
    from kdlab.lm.config import load_lm_config

    tok = lm_ctx.tokenizer
    plain = models.teacher_from_config(dataclasses.replace(lm_ctx.cfg, teacher_dropout=0.0), tok)
    default = models.teacher_from_config(lm_ctx.cfg, tok)
    rates = {m.p for m in plain.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0} and {m.p for m in default.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    changed = dataclasses.replace(lm_ctx.cfg, teacher_dropout=0.0)
    assert runs.teacher_settings(changed) != runs.teacher_settings(lm_ctx.cfg)  # a saved teacher is not reused
    with pytest.raises(KDLabError, match="teacher_dropout"):
        load_lm_config("smoke", teacher_dropout=1.0)


def test_the_sst2_folder_is_part_of_a_teachers_key_only_when_its_text_is_sst2():
    """01–04 set KDLAB_DATA_DIR; 07's WordNet teacher must not be retrained because of it."""
    from kdlab.lm import runs
    from kdlab.lm.config import load_lm_config

    wordnet = [runs.teacher_settings(load_lm_config("cpu", data=d)) for d in ("hub", "/somewhere/sst2")]
    assert wordnet[0] == wordnet[1] and "data" not in wordnet[0]
    sst2 = [runs.teacher_settings(load_lm_config("cpu", corpus="sst2", data=d)) for d in ("hub", "/somewhere/sst2")]
    assert sst2[0] != sst2[1]
