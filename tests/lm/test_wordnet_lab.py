"""07's `cpu` profile on WordNet's glosses: students see whole lemmas, the response measures reach the notebook's
records, and students of other shapes are other runs (the capacity gap). The second test needs WordNet's files
(`apt-get install wordnet-base`; .ci/run installs it) and skips, saying so, where they are missing."""

import dataclasses

import pytest

from kdlab.errors import KDLabError
from kdlab.lm import runs, wordnet
from kdlab.lm.config import load_lm_config

TEXTS = ["bank (n): a financial institution", "run (v): move fast", "bank (n): sloping land",
         "run (v): be in charge of", "cat (n): a small feline"]


def test_lemmas_stay_whole_in_a_seeded_order_and_whole_prompts_are_the_fully_seen_ones():
    entries = [wordnet.Entry(t.split(" (")[0], t.split("(")[1][0], t.partition(": ")[2], str(i))
               for i, t in enumerate(TEXTS)]
    ordered = wordnet.by_lemma(entries, seed=0)
    prompts = [e.prompt for e in ordered]
    for prompt in set(prompts):  # every lemma's senses next to each other
        first = prompts.index(prompt)
        assert prompts[first: first + prompts.count(prompt)] == [prompt] * prompts.count(prompt)
    assert {tuple(e.prompt for e in wordnet.by_lemma(entries, seed=s)) for s in range(6)} != {tuple(prompts)}
    texts = [e.text for e in ordered]
    heads = list(dict.fromkeys(prompts))
    cut = prompts.index(heads[1]) + 1  # the second lemma's first sense only
    whole = wordnet.whole_prompts(texts, cut)
    assert heads[0] in whole and (heads[1] in whole) == (prompts.count(heads[1]) == 1)
    assert wordnet.senses_of_texts(TEXTS)["bank (n):"] == ["a financial institution", "sloping land"]


def test_the_cpu_profile_is_wordnet_with_students_from_nothing():
    cfg = load_lm_config("cpu")
    assert (cfg.corpus, cfg.student_init, cfg.tokenizer, cfg.teacher) == ("wordnet", "random", "train", "train")
    folder = runs.student_dir(cfg, "ce", 42)
    assert folder.parts[-3:-1] == ("random-2x128", "ce") and folder.name.startswith("seed-42-")
    hotter = dataclasses.replace(cfg, temperature=2.0)  # a sweep's student sits beside the default one
    assert runs.student_dir(hotter, "kd-forward", 42) != runs.student_dir(cfg, "kd-forward", 42)
    cut = dataclasses.replace(cfg, student_init="cut")
    assert runs.student_dir(cut, "ce", 42) != runs.student_dir(cfg, "ce", 42)
    assert runs.student_settings(cut, "ce", 42) != runs.student_settings(cfg, "ce", 42)


def test_a_wordnet_context_measures_responses(tmp_path):
    try:
        wordnet.wordnet_dir()
    except KDLabError:
        pytest.skip("needs WordNet's data files: apt-get install wordnet-base (CI installs it)")
    from kdlab import lm_lab

    cfg = lm_lab.setup("cpu", runs_dir=str(tmp_path), teacher_layers=1, teacher_width=32, teacher_heads=2,
                       teacher_epochs=0.02, vocab_size=400, train_texts=200, eval_texts=40, student_layers=1,
                       student_width=16, student_heads=2, student_steps=3, response_prompts=4, samples_per_prompt=2,
                       max_new_tokens=4, num_samples=4, num_threads=1)
    ctx = lm_lab.prepare(cfg)
    assert 0 < len(ctx.prompts) <= 4
    seen = {t.partition(": ")[0] + ":" for t in lm_lab.corpus.load_texts(cfg)["train"][:200]}
    assert set(ctx.prompts) <= seen and all(len(ctx.senses[p]) >= 2 for p in ctx.prompts)  # polysemous, all seen
    record = lm_lab.train_student(ctx, "kd-forward", seed=1)
    metrics = record["metrics"]
    assert 0 <= metrics["rouge_l"] <= 1 and 0 <= metrics["sense_coverage"] <= 1
    assert 0 < metrics["sense_spread"] <= 1 and metrics["sense_kl"] >= 0
    assert lm_lab.teacher_metrics(ctx)["sense_kl"] == pytest.approx(0.0, abs=1e-9)  # the teacher against itself
    assert len(metrics["exposure"]) == 4 and metrics["prompts"][0] in ctx.prompts
    assert "random-1x16" in str(runs.student_dir(cfg, "kd-forward", 1))
    # sequence-level KD and the samples continue each entry's own prompt ("bank (n):"), not its first token
    seqkd = lm_lab.seqkd_data(ctx, seed=1)
    prompt = ctx.tokenizer.decode(seqkd[0]["input_ids"][: seqkd[0]["prompt_length"]], skip_special_tokens=True)
    assert prompt.strip().endswith(":") and seqkd[0]["prompt_length"] > 2
    assert len(seqkd) == len({tuple(r[: p]) for r, p in zip(seqkd["input_ids"], seqkd["prompt_length"])})  # greedy
    assert all(p.strip().endswith(":") for p in metrics["prompts"])
