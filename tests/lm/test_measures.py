"""The response-level measures (kdlab.lm.measures) against hand computations, and the WordNet corpus loader."""

import math

import pytest

from kdlab.errors import KDLabError
from kdlab.lm import evaluation, generation, measures, wordnet


def test_ngram_baselines_by_hand():
    train = [[0, 1, 2, 0], [0, 1, 1, 0]]  # bigrams: 0→1 ×2, 1→2, 2→0, 1→1, 1→0; unigram targets 1:3, 2:1, 0:2
    held = [[0, 1, 0]]
    got = measures.ngram_perplexities(train, held, vocab_size=4)
    p1 = {b: (c + 1) / (6 + 4) for b, c in {0: 2, 1: 3, 2: 1, 3: 0}.items()}
    # Witten–Bell: after 0 one distinct follower (1) seen twice; after 1 three distinct followers, 3 times
    p_1_after_0 = (2 + 1 * p1[1]) / (2 + 1)
    p_0_after_1 = (1 + 3 * p1[0]) / (3 + 3)
    assert got["tokens"] == 2
    assert got["unigram"] == pytest.approx(math.exp(-(math.log(p1[1]) + math.log(p1[0])) / 2))
    assert got["bigram"] == pytest.approx(math.exp(-(math.log(p_1_after_0) + math.log(p_0_after_1)) / 2))
    with pytest.raises(KDLabError, match="held-out"):
        measures.ngram_perplexities(train, [[5]], 4)


def test_rouge_l_and_sense_scores():
    pytest.importorskip("rouge_score", reason="rouge-score is in the llm extra; CI installs it")
    assert measures.rouge_l(["a b c d"], [["a b c d"]]) == pytest.approx(1.0)
    # LCS of "a x c" and "a b c" is 2 words: P = R = 2/3
    assert measures.rouge_l(["a x c"], [["a b c", "z z z"]]) == pytest.approx(2 / 3)
    senses = {"bank (n):": ["sloping land beside a body of water", "a financial institution that accepts deposits"]}
    samples = {"bank (n):": ["a financial institution that accepts deposits", "sloping land beside the water",
                             "a kind of small bird"]}
    got = measures.sense_scores(samples, senses, threshold=0.5)
    assert got["coverage"] == 1.0 and got["precision"] == pytest.approx(2 / 3) and got["samples"] == 3
    one_mode = {"bank (n):": ["a financial institution that accepts deposits"] * 3}
    assert measures.sense_scores(one_mode, senses)["coverage"] == 0.5  # precise, but one sense of two
    with pytest.raises(KDLabError, match="no known senses"):
        measures.sense_scores({"river (n):": ["x"]}, senses)


def test_sense_spread_by_hand():
    # q = (0.5, 0.5): exp(H) = 2 of K = 2 senses → spread 1; teacher p = (0.8, 0.2): KL(p ‖ q) by hand
    half = [math.log(0.5), math.log(0.5)]
    teacher = [math.log(0.8), math.log(0.2)]
    got = measures.sense_spread([half], [teacher])
    assert got["spread"] == pytest.approx(1.0)
    assert got["kl_to_teacher"] == pytest.approx(0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5))
    # one sense takes (almost) all the mass: spread → 1/K; equal to the teacher: KL 0; unnormalised log p are fine
    peaked = measures.sense_spread([[0.0, -40.0, -40.0]], [[-1.0, -41.0, -41.0]])
    assert peaked["spread"] == pytest.approx(1 / 3, rel=1e-6) and peaked["kl_to_teacher"] == pytest.approx(0.0, abs=1e-9)
    # prompts with one definition carry no spread and are left out; none left: a clear error
    assert measures.sense_spread([[-3.0], half], [[-2.0], half])["prompts"] == 1
    with pytest.raises(KDLabError, match="two or more definitions"):
        measures.sense_spread([[-3.0]], [[-2.0]])


def test_sequence_logprobs_sum_the_targets_after_the_prompt(lm_ctx):
    tok = lm_ctx.tokenizer
    rows = lm_ctx.heldout.select(range(5))
    seqs = [r["input_ids"] for r in rows]
    got = evaluation.sequence_logprobs(lm_ctx.teacher, seqs, [1] * len(seqs), lm_ctx.rows, tok.pad_token_id,
                                       batch_size=2)
    sums, _ = evaluation.per_example_nll(lm_ctx.teacher, rows, lm_ctx.collator, lm_ctx.rows)
    assert [-g for g in got] == pytest.approx(sums, rel=1e-5)  # every target after the first token, per sequence
    later = evaluation.sequence_logprobs(lm_ctx.teacher, seqs[:1], [3], lm_ctx.rows, tok.pad_token_id)
    assert later[0] > got[0]  # fewer targets: a larger (less negative) sum
    assert evaluation.teacher_nll(lm_ctx.teacher, seqs, 1, lm_ctx.rows, tok.pad_token_id) == pytest.approx(
        sum(sums) / sum(len(s) - 1 for s in seqs), rel=1e-5)


def test_the_exposure_curve_averages_to_the_teachers_nll_of_the_same_tokens(lm_ctx):
    tok = lm_ctx.tokenizer
    prompts = [lm_ctx.heldout[i]["input_ids"][:3] for i in range(6)]
    seqs = generation.sample(lm_ctx.teacher, prompts, 6, tok.eos_token_id, tok.pad_token_id, seed=2)
    curve = measures.exposure_curve(lm_ctx.teacher, seqs, [3] * len(seqs), lm_ctx.rows, tok.pad_token_id, 6)
    assert [c["position"] for c in curve] == list(range(1, 7)) and curve[0]["n"] == len(seqs)
    total = sum(c["teacher_nll"] * c["n"] for c in curve if c["n"])
    assert total / sum(c["n"] for c in curve) == pytest.approx(
        evaluation.teacher_nll(lm_ctx.teacher, seqs, 3, lm_ctx.rows, tok.pad_token_id), rel=1e-5)


def test_wordnet_entries_prompts_and_a_clear_error_when_missing(tmp_path, monkeypatch):
    (tmp_path / "data.noun").write_text(
        "  1 licence header line\n"
        "00000001 05 n 02 bank 0 depository_financial_institution 0 000 | a financial institution that accepts "
        'deposits; "he cashed a check at the bank"\n'
        "00000002 17 n 01 bank 0 000 | sloping land (especially the slope beside a body of water)\n"
        "00000003 17 n 01 river 0 000 | a large natural stream of water\n")
    (tmp_path / "index.noun").write_text("  1 licence\nbank n 2 1 @ 2 2 00000001 00000002\n"
                                         "river n 1 1 @ 1 1 00000003\ndepository_financial_institution n 1 1 @ 1 0 "
                                         "00000001\n")
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("")
        (tmp_path / f"index.{pos}").write_text("")
    monkeypatch.setenv("KDLAB_WORDNET_DIR", str(tmp_path))
    assert wordnet.wordnet_dir() == tmp_path
    found = wordnet.entries()
    assert [e.text for e in found] == ["bank (n): a financial institution that accepts deposits",
                                       "bank (n): sloping land (especially the slope beside a body of water)"]
    assert len(wordnet.entries(polysemous_only=False, single_words=False)) == 3  # + river; the untagged sense: no
    assert len(wordnet.entries(polysemous_only=False, single_words=False, familiar_only=False)) == 4
    assert wordnet.senses_by_prompt(found)["bank (n):"][1].startswith("sloping land")
    parts = wordnet.split(found)
    assert sum(len(v) for v in parts.values()) == 2 and any(len(v) == 2 for v in parts.values())  # a lemma stays whole
    monkeypatch.setenv("KDLAB_WORDNET_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(KDLabError, match="apt-get install wordnet-base"):
        wordnet.wordnet_dir()


def test_prompt_response_examples_train_and_score_the_response_only(lm_ctx):
    from kdlab.lm import corpus

    tok = lm_ctx.tokenizer
    rows, lengths = corpus.prompt_response(["good (adj): having desirable qualities", "no colon here"], tok, 64)
    assert len(rows) == 1  # a text without "prompt: response" is left out
    prompt = [tok.eos_token_id, *tok("good (adj):", add_special_tokens=False)["input_ids"]]
    assert rows[0][: lengths[0]] == prompt and rows[0][-1] == tok.eos_token_id
    batch = lm_ctx.collator([{"input_ids": rows[0], "prompt_length": lengths[0], "index": 0}])
    assert (batch["labels"][0, : lengths[0]] == -100).all() and (batch["labels"][0, lengths[0]:] >= 0).all()
    assert int(batch["prompt_length"][0]) == lengths[0]


def test_ngram_baselines_count_only_the_targets_the_model_is_scored_on():
    train = [[0, 1, 2, 0], [0, 1, 1, 0]]
    whole = measures.ngram_perplexities(train, [[0, 1, 0]], 4)
    response = measures.ngram_perplexities(train, [[0, 1, 0]], 4, heldout_starts=[2])
    assert whole["tokens"] == 2 and response["tokens"] == 1
    p1 = (2 + 1) / (6 + 4)
    assert response["bigram"] == pytest.approx(1 / ((1 + 3 * p1) / (3 + 3)))
