"""07's multi-seed reference: predictions judged by the numbers (held / failed / not shown), never by the text."""

import pytest

from kdlab import lm_tables
from kdlab.errors import KDLabError


def _reference(teacher=50.0, d_prec=(0.02, 0.01, 0.03), d_slope=(-0.1, 0.2, -0.05), fwd_low=0.01,
               d_spread=(-0.05, -0.02, -0.04), d_kl=(0.1, 0.2, 0.05)):
    row = {"rouge_l": 0.3, "rouge_l_sd": 0.01, "sense_coverage": 0.2, "sense_coverage_sd": 0.01,
           "sense_precision": 0.3, "sense_precision_sd": 0.02, "exposure_1_4": 4.0, "exposure_1_4_sd": 0.1,
           "exposure_slope": 0.1, "exposure_slope_sd": 0.05, "seeds": 3, "parameters": 1e6}
    return {"teacher": {"heldout_ppl": teacher, "rouge_l": 0.4, "sense_coverage": 0.3, "sense_precision": 0.5},
            "ngrams": {"unigram": 500.0, "bigram": 73.0},
            "rows": [{**row, "student": "random-1x64", "regime": "kd-forward", "heldout_ppl": 90.0, "heldout_ppl_sd": 1},
                     {**row, "student": "random-2x128", "regime": "kd-forward", "heldout_ppl": 70.0,
                      "heldout_ppl_sd": 1}],
            "pairs": [{"student": "random-2x128", "a": "kd-forward", "b": "ce", "seeds": 3, "d_nll": -0.3,
                       "low": -0.35, "high": -0.25, "a_wins": 3},
                      {"student": "random-2x128", "a": "kd-reverse", "b": "kd-forward", "seeds": 3, "d_nll": 0.02,
                       "low": fwd_low, "high": 0.03, "a_wins": 0, "d_sense_precision": list(d_prec),
                       "d_sense_coverage": [-0.01, -0.02, -0.01], "d_sense_spread": list(d_spread),
                       "d_sense_kl": list(d_kl)},
                      {"student": "random-2x128", "a": "onpolicy@lmbda=1", "b": "onpolicy@lmbda=0", "seeds": 3,
                       "d_nll": 0.0, "low": -0.01, "high": 0.01, "a_wins": 1, "d_slope": list(d_slope)}]}


def test_each_prediction_gets_the_verdict_its_numbers_give():
    table = lm_tables.predictions_table(_reference()).set_index("prediction")["verdict"]
    assert table["the teacher beats the n-gram baselines clearly"] == "held"
    assert table["students stay above their teacher, the smaller more so (KD, from nothing)"] == "held"
    assert table["KD beats CE at equal steps (random-2x128)"] == "held"
    assert table["forward KL wins held-out perplexity (reverse − forward > 0)"] == "held"
    assert table["reverse KL writes more precise responses (sense precision, reverse − forward > 0)"] == "held"
    assert table["on-policy training flattens the exposure curve (slope, λ = 1 − λ = 0 < 0)"] == "not shown"
    spread = "reverse KL puts its mass on fewer senses (sense spread by likelihood, reverse − forward < 0)"
    kl = "forward KL's mix of senses is nearer the teacher's (sense KL to the teacher, reverse − forward > 0)"
    assert table[spread] == "held" and table[kl] == "held"
    worse = lm_tables.predictions_table(_reference(teacher=80.0, d_prec=(-0.01, -0.02, -0.01), fwd_low=-0.01,
                                                   d_slope=(-0.1, -0.2, -0.05), d_spread=(0.01, 0.02, 0.03),
                                                   d_kl=(0.1, -0.1, 0.2))).set_index("prediction")["verdict"]
    assert worse[spread] == "failed" and worse[kl] == "not shown"
    assert worse["the teacher beats the n-gram baselines clearly"] == "failed"
    assert worse["students stay above their teacher, the smaller more so (KD, from nothing)"] == "failed"
    assert worse["reverse KL writes more precise responses (sense precision, reverse − forward > 0)"] == "failed"
    assert worse["forward KL wins held-out perplexity (reverse − forward > 0)"] == "not shown"
    assert worse["on-policy training flattens the exposure curve (slope, λ = 1 − λ = 0 < 0)"] == "held"


def test_one_seed_is_too_few_for_a_verdict():
    ref = _reference()
    for pair in ref["pairs"]:
        pair["seeds"] = 1
        for key in ("d_sense_precision", "d_sense_coverage", "d_slope"):
            if key in pair:
                pair[key] = pair[key][:1]
    verdicts = lm_tables.predictions_table(ref).set_index("prediction")["verdict"]
    assert verdicts["KD beats CE at equal steps (random-2x128)"] == "too few seeds (1)"
    assert verdicts["reverse KL writes more precise responses (sense precision, reverse − forward > 0)"] == (
        "too few seeds (1)")


def test_the_reference_table_and_a_clear_error_without_one(tmp_path):
    table = lm_tables.reference_table(_reference())
    assert list(table["student"][:3]) == ["unigram (add-one)", "bigram (Witten–Bell)", "teacher"]
    assert table.iloc[3]["perplexity"] == "90.0 ± 1.0"
    with pytest.raises(KDLabError, match="benchmarks/lm_wordnet.py"):
        lm_tables.load_reference(tmp_path / "none.json")


def test_the_shipped_reference_is_the_multi_seed_wordnet_run():
    """07 renders kdlab/lm/reference_wordnet.json: it must be the real run of benchmarks/lm_wordnet.py on the `cpu`
    teacher (all 15,824 training entries, every row over >= 3 seeds), never a smoke placeholder."""
    from kdlab import lm_tables

    ref = lm_tables.load_reference()
    assert ref["teacher_examples"] > 10_000 and ref["student_examples"] == 4000
    assert all(row["seeds"] >= lm_tables.MIN_SEEDS for row in ref["rows"])
    assert {row["student"] for row in ref["rows"]} >= {"random-1x64", "random-2x128", "cut-2"}
    verdicts = set(lm_tables.predictions_table(ref)["verdict"])
    assert not any(v.startswith("too few seeds") for v in verdicts)
