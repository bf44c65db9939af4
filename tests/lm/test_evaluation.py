"""Held-out perplexity per example, and the paired bootstrap the LM benchmark reports (kdlab.lm.evaluation)."""

import math

import numpy as np
import pytest

from kdlab.lm import evaluation


def test_perplexity_is_token_weighted_over_the_per_example_sums(lm_ctx):
    sums, counts = evaluation.per_example_nll(lm_ctx.teacher, lm_ctx.heldout, lm_ctx.collator, lm_ctx.rows,
                                              batch_size=5)
    assert len(sums) == len(counts) == len(lm_ctx.heldout) and min(counts) > 0
    ppl = evaluation.perplexity(lm_ctx.teacher, lm_ctx.heldout, lm_ctx.collator, lm_ctx.rows, batch_size=7)
    assert ppl["tokens"] == sum(counts)
    assert ppl["perplexity"] == pytest.approx(math.exp(sum(sums) / sum(counts)), rel=1e-5)
    assert ppl["perplexity"] != pytest.approx(math.exp(np.mean(np.array(sums) / np.array(counts))), rel=1e-6)


def test_the_paired_bootstrap_finds_a_real_difference_and_no_false_one():
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 30, 200)
    b = rng.gamma(2.0, 2.0, (3, 200)) * counts
    same = evaluation.paired_nll_bootstrap(b, b, counts, n_boot=500)
    assert same["mean_diff_nll"] == 0 and same["boot_low"] <= 0 <= same["boot_high"]
    better = evaluation.paired_nll_bootstrap(b - 0.1 * counts, b, counts, n_boot=500)  # 0.1 nats/token lower
    assert better["mean_diff_nll"] == pytest.approx(-0.1) and better["wins"] == 3
    assert better["boot_high"] < 0 and better["boot_p"] < 0.01
    noisy = evaluation.paired_nll_bootstrap(b + rng.normal(0, 3, b.shape), b, counts, n_boot=500)
    assert noisy["boot_low"] < 0 < noisy["boot_high"]
