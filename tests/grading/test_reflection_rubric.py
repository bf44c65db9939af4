"""Reflections earn points for the ideas a good answer contains (grader/kdlab_grader/reflection_rubric.py), not for
answering (issue 33, finding 9); the instructor's list (instructor/reflections.md) is the same checklist."""

from pathlib import Path

import nbformat

from kdlab.config import NOTEBOOKS
from kdlab.course.assignments import reflections
from kdlab_grader.grader import load_rubric
from kdlab_grader.reflection_rubric import RUBRIC, points, rubric_markdown, score

ROOT = Path(__file__).resolve().parents[2]
GOOD_R32 = ("`minilm` 的一致率 94.0%，`ce` 是 90.6%。ce 沒看過教師，一致率也比它的準確率高，所以「一致率比準確率高」"
            "不代表學到了教師；證據是 minilm 比 ce 多 3.4 個百分點的一致。")
ANSWERED_ONLY = "一致率比準確率高，所以學生學到了教師。"


def test_the_default_rubric_gives_nothing_for_answering_and_a_point_per_idea():
    rubric = load_rubric()
    assert rubric["reflections"] == {"answered": 0, "idea": 1}
    assert points("R3.2", GOOD_R32, rubric) == (3.0, 3.0, points("R3.2", GOOD_R32, rubric)[2])
    got, top, message = points("R3.2", ANSWERED_ONLY, rubric)
    assert (got, top) == (0.0, 3.0) and "missing: control, not proof, gap" in message
    assert points("R3.2", "", rubric)[:2] == (0.0, 3.0)
    assert points("R3.2", ANSWERED_ONLY, {"reflections": {"answered": 1}}) == (1.0, 1.0, "answered")  # old rubrics


def test_the_ideas_are_found_in_english_too():
    found, missing = score("R4.3", "Padded latency: none qualifies; at real lengths hinton fp32 does. P50 makes the "
                                   "budget easier than P95, and the numbers depend on the machine.")
    assert missing == [] and len(found) == 4
    assert score("R2.3", "1.36 → 0.25, below the uniform 0.80; before it was above uniform: confident on [CLS], "
                         "not flat. The ce student's KL is needed too.")[1] == []


def test_every_reflection_of_the_notebooks_has_a_checklist_and_the_instructor_list_is_it():
    asked = {q for name in NOTEBOOKS for q in reflections(nbformat.read(ROOT / name, as_version=4))}
    assert asked <= set(RUBRIC)
    assert (ROOT / "instructor" / "reflections.md").read_text(encoding="utf-8") == rubric_markdown()
