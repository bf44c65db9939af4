"""The grader's table check reads a displayed table as pandas showed it: a long text cell cut to
``display.max_colwidth`` ("…durin...") is the rebuilt row's text, not an edit; an edited text stays an edit."""
import pandas as pd
from kdlab_grader.outputs import table_problems

LONG = "weights + torch.profiler peak allocation during the forward pass (CPU)"


def _shown(frame):
    with pd.option_context("display.max_colwidth", 50):
        return frame._repr_html_(), repr(frame)  # what a notebook shows


def test_a_cut_long_text_cell_matches_its_row():
    expected = pd.DataFrame([{"model": "teacher", "memory_method": LONG, "p50_ms": 21.533}])
    html, text = _shown(expected)
    assert "durin..." in html  # pandas cut it
    assert table_problems(html, text, expected) == []


def test_an_edited_cut_text_or_number_is_still_flagged():
    expected = pd.DataFrame([{"model": "teacher", "memory_method": LONG, "p50_ms": 21.533}])
    edited = expected.assign(memory_method="weights only, measured by hand with a stopwatch and a ruler ok")
    html, text = _shown(edited)
    assert table_problems(html, text, expected)
    faster = expected.assign(p50_ms=11.0)
    html, text = _shown(faster)
    assert table_problems(html, text, expected)
