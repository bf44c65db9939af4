"""What a good answer to each reflection question contains: a checklist of ideas, each worth the rubric's
``[reflections] idea`` points (``rubric.toml``), found by keywords in English or Chinese.

``score(question, text)`` returns the ideas an answer names and the ones it misses. A keyword check is a first
pass, not a grade: the gradebook's message lists both, and the instructor reads the answers (``reflections.md``
in the grader's output) and adjusts by hand with the same list (``instructor/reflections.md``, written from
``RUBRIC`` by ``rubric_markdown``). Answering earns nothing by itself (``answered = 0``): the points are for ideas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Idea:
    name: str
    says: str  # what a good answer says, for the instructor
    pattern: str  # a regex (case-insensitive) that finds it in an answer


def _i(name: str, says: str, pattern: str) -> Idea:
    return Idea(name, says, pattern)


NUMBER_PCT = r"\d+(\.\d+)?\s*(%|個?百分點|points?)"
RUBRIC: dict[str, tuple[Idea, ...]] = {
    "R1.1": (_i("shares", "quotes the parameter share and the layer share of its run", NUMBER_PCT + r"|\d\s*/\s*\d"),
             _i("embeddings", "the embeddings (vocabulary × width) and classifier are copied whole",
                r"embedding|嵌入|vocab|詞彙|詞表"),
             _i("speed", "speed follows the layers (the compute), not the parameters",
                r"(speed|速度|latency|延遲|快).{0,40}(layer|層)|(layer|層).{0,40}(speed|速度|latency|延遲|快)")),
    "R1.2": (_i("width", "quotes the interval's width on the run's dev set", NUMBER_PCT),
             _i("paired", "overlap decides nothing: same sentences, so a paired test (McNemar)",
                r"paired|成對|McNemar|同一批|same sentences|相關|correlat"),
             _i("seeds", "several seeds on top of the test", r"seed|種子")),
    "R1.3": (_i("ranking", "the ranking of the classes does not change with T",
                r"(排名|順序|排序).{0,8}(不|沒)|rank\w*.{0,20}(not|never|same)|same order"),
             _i("dark knowledge", "the small probabilities grow: the wrong classes' relative sizes become visible",
                r"dark knowledge|暗知識|小的?機率|變大|grow|larger|increase|上升"),
             _i("limit", "as T → ∞ every class tends to 1/K: no information", r"uniform|均勻|平均|1\s*/\s*5|0\.2\b|沒有資訊|no information")),
    "R2.1": (_i("largest term", "names the term with the largest share in the table",
                r"attention|value|\bkd\b|\bce\b|注意力|值關係"),
             _i("weights", "raise α (CE) or lower β/γ/δ", r"α|alpha|β|beta|γ|gamma|δ|delta"),
             _i("spread", "checks the effect over seeds (re-weightings land within the spread)",
                r"seed|種子|變異|spread")),
    "R2.2": (_i("gap", "quotes ce − ce-random on the run", NUMBER_PCT),
             _i("confound", "ce-random also randomises the embeddings: the gap is pre-training, not the layer map",
                r"預訓練|pre-?train|embedding|嵌入"),
             _i("control", "the layer choice is measured against the first/last three layers",
                r"前三|後三|first three|last three|前.{0,4}層|後.{0,4}層|first.{0,20}last")),
    "R2.3": (_i("numbers", "quotes the KL before and after", r"\d\.\d+.{0,40}\d\.\d+"),
             _i("uniform", "reads them against the uniform-attention KL", r"uniform|均勻|平均地?看"),
             _i("above uniform", "above uniform is confident attention in the wrong place (e.g. [CLS]), not flat",
                r"看錯|篤定|confiden|CLS|SEP|not flat|不是.{0,6}平|高於|above"),
             _i("more evidence", "more evidence: ce's KL, agreement beside ce's, the maps",
                r"\bce\b|agreement|一致|注意力圖|\bmaps?\b|圖")),
    "R3.1": (_i("p", "quotes the McNemar p of minilm vs ce", r"\bp\s*[=＝<>≈]?\s*0?\.\d+|p\s*值|p-value"),
             _i("threshold", "reads it against 0.05 (p ≥ 0.05: cannot tell apart, not equal)",
                r"0\.05|顯著|significan"),
             _i("seeds", "one seed is not enough: the multi-seed difference with its interval", r"seed|種子")),
    "R3.2": (_i("control", "compares with ce's agreement (ce never saw the teacher)", r"\bce\b|對照|沒看過|never saw"),
             _i("not proof", "agreement above accuracy alone proves nothing (easy sentences; ce agrees too)",
                r"不代表|不能|不足|proves? nothing|not (enough|proof|evidence)|簡單的?句|easy"),
             _i("gap", "the evidence is minilm's agreement beyond ce's",
                r"(多|gap|差|excess|more|higher|高).{0,20}(一致|agree)|(一致|agree).{0,30}(多|gap|差|excess|more|higher|高出)")),
    "R3.3": (_i("sentence", "quotes a sentence where the teacher is right and the student wrong",
                r"[「\"“'‘].{12,}?[」\"”'’]"),
             _i("cause", "names a plausible cause (negation, contrast, rare word, truncation, sarcasm)",
                r"否定|negat|\bnot\b|\bbut\b|但|轉折|sarcas|諷刺|反諷|rare|罕見|少見|long|長句|truncat|截斷"),
             _i("check", "says how to check it (more such sentences, the attention map)",
                r"驗證|檢查|check|test|attention|注意力|更多|more sentences")),
    "R4.1": (_i("numbers", "quotes the parameter share and the speed-ups at batch 1 and 32", r"\d+(\.\d+)?\s*[×x倍]"),
             _i("layer ratio", "the layer ratio is the ceiling the speed-up follows",
                r"層數?比|layer ratio|\d\s*/\s*\d|上限|ceiling|一半|half"),
             _i("embeddings", "the embeddings that keep the parameter share high cost a lookup",
                r"embedding|嵌入|lookup|查表")),
    "R4.2": (_i("numbers", "quotes padded and real-length latencies", r"\d+(\.\d+)?\s*ms|毫秒"),
             _i("real for users", "real lengths are what users wait for", r"真實|real|使用者|用戶|users"),
             _i("padded to compare", "padded lengths compare models under one fixed cost",
                r"補|padd|公平|compar|比較")),
    "R4.3": (_i("padded reading", "the answer under padded latency", r"padd|補到|128"),
             _i("real reading", "the answer under real-length latency (it can differ)", r"真實|real"),
             _i("P95 vs P50", "P50 makes the budget easier; P95 is the tail users notice",
                r"P50.{0,60}P95|P95.{0,60}P50"),
             _i("machine", "latency depends on the machine (and the noise of one timing)",
                r"machine|機器|硬體|hardware|CPU|GPU|雜訊|noise")),
    "R7.1": (_i("numbers", "quotes both perplexities (kd-forward and ce) and the gap", r"\d+(\.\d+)?"),
             _i("interval", "judges the gap by the reference's paired interval over seeds (one seed decides nothing)",
                r"interval|區間|seed|種子|bootstrap"),
             _i("capacity", "names the student farthest above the teacher (the smallest) and how much KD narrowed it",
                r"1\s*[x×]\s*64|smallest|最小|capacity|容量|farthest|最遠|narrow|縮小")),
    "R7.2": (_i("numbers", "quotes sense precision / coverage / spread per regime", r"\d\.\d+"),
             _i("verdict", "reads the reference's verdict (held / failed / not shown), not one seed",
                r"held|failed|not shown|成立|不成立|量不出|判定"),
             _i("why not", "a cause: the teacher's samples barely match a sense (a weak, not very multi-modal "
                "teacher), the student's capacity, sampling at T = 1, too few steps",
                r"teacher|教師|capacity|容量|mode|峰|temperature|溫度|steps|步數|weak|弱")),
}


def score(question: str, text: str) -> tuple[list[str], list[str]]:
    """(ideas found, ideas missing) of ``text`` for ``question``; a question without a checklist has neither."""
    found, missing = [], []
    for idea in RUBRIC.get(question, ()):
        (found if text and re.search(idea.pattern, text, re.I | re.S) else missing).append(idea.name)
    return found, missing


def points(question: str, text: str, rubric: dict) -> tuple[float, float, str]:
    """(points, max points, message) of one answer under ``rubric``'s ``[reflections]``: ``answered`` for any
    answer (0 by default: the points are for ideas) plus ``idea`` per idea found."""
    table = rubric.get("reflections", {})
    answered, per_idea = float(table.get("answered", 0)), float(table.get("idea", 0))
    found, missing = score(question, text)
    got = (answered if text else 0) + per_idea * len(found)
    top = answered + per_idea * (len(found) + len(missing))
    if not text:
        return 0.0, top, "no answer"
    message = (f"ideas found: {', '.join(found) or 'none'}; missing: {', '.join(missing) or 'none'} "
               "(keyword check: read the answer and adjust by hand)") if per_idea else "answered"
    return got, top, message


def rubric_markdown() -> str:
    """The checklist as Markdown (``instructor/reflections.md``)."""
    lines = ["# What a good reflection answer contains", "",
             "Written by `python -m kdlab_grader.reflection_rubric` from `grader/kdlab_grader/reflection_rubric.py` "
             "(edit it there). `kdlab grade` gives `[reflections] idea` points (rubric.toml: 1) per idea its keyword "
             "check finds and nothing for answering (`answered = 0`); the check is a first pass, so read each answer "
             "(the grader's `reflections.md`) and adjust by hand with this list. Numbers an answer quotes must be "
             "its own run's: the model answers (`instructor/model-answers.md`) are one run's, and latency and INT8 "
             "accuracy differ by machine. Known pitfalls: `instructor/known-issues.md`.", ""]
    for question, ideas in RUBRIC.items():
        lines += [f"## {question}", ""] + [f"- **{idea.name}** (1 point): {idea.says}" for idea in ideas] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(rubric_markdown(), end="")
