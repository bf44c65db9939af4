"""Markdown states no measured number (issue 33, finding 5): a number the run or a multi-seed reference measured is
rendered by code (a table, ``lab.headline()``, ``lab.reference_note(key)``), so it cannot drift from what the
notebook shows. This scans every Markdown cell of 01–07 for measured-looking numbers — decimals, percentages,
signed differences (+2.4), multiples (×, 倍), points (點, 個百分點), milliseconds — and fails on any that no entry of
``ALLOWED`` covers. An entry is ``(notebook, phrase, reason)``: the number is allowed where it lies inside
``phrase`` in that notebook's Markdown (a course-text or paper quote, a constant such as ``T = 4``, a definition).
An entry whose phrase no longer appears (or covers no number) is stale and fails too, so the list shrinks with the text.

To extend: add one tuple with the shortest phrase that makes the number's role plain and say why it is not a
measurement of this lab."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("01-Setup.ipynb", "02-Distill.ipynb", "03-Inference.ipynb", "04-Benchmark.ipynb",
             "advanced/05-Advanced.ipynb", "advanced/06-Compression.ipynb", "advanced/07-LLM-Distillation.ipynb")

_UNIT = r"(?:%|ms\b|毫秒|×|x\b|倍|點|個百分點)"
NUMBER = re.compile(
    rf"(?<![\w.])(?:[+−-]\s?)?\d+(?:[.,]\d+)*\s?{_UNIT}"  # 84.9%, 16 倍, 2.78×, 0.7 點, 10 毫秒
    r"|(?<![\w.])[+−]\d+(?:\.\d+)?"  # +2.4, −0.2
    r"|(?<![\w.\-/])\d+\.\d+(?![\w.])"  # 0.19, 84.9
)
_LINK = re.compile(r"\]\([^)]*\)|https?://\S+")  # link targets (a Colab badge's v0.1.0) are not text

COURSE = "the course text's own claim, quoted beside this lab's measurement"
ALLOWED: list[tuple[str, str, str]] = [
    # 01-Setup
    ("01-Setup.ipynb", "（±25%）", "the stated tolerance of the timed reference run, not a result"),
    ("01-Setup.ipynb", "compute capability 是 7.5", "a hardware constant of the T4"),
    ("01-Setup.ipynb", "model card 上的 dev 準確率是 92.4%", "the Hub model card's number, quoted as such"),
    ("01-Setup.ipynb", "準確率旁邊是 95% Wilson", "the confidence level, a constant"),
    ("01-Setup.ipynb", "若準確率遠低於 50%", "chance level of a balanced two-class task"),
    ("01-Setup.ipynb", "accuracy 約 50%，F1 卻有約 0.67", "arithmetic of an all-positive guesser (P = 0.5, R = 1)"),
    ("01-Setup.ipynb", "precision ≈ 0.5", "arithmetic of an all-positive guesser"),
    ("01-Setup.ipynb", "positive 約 0.76，very positive 約 0.17",
     "softmax of the fixed five-class logits the next cell plots (checked below)"),
    ("01-Setup.ipynb", "教師準確率的 95% 信賴區間", "the confidence level, a constant"),
    ("01-Setup.ipynb", "如果兩個學生差 1 個百分點", "a hypothetical in a question"),
    # 02-Distill
    ("02-Distill.ipynb", "α = 0.1、β = 0.4、γ = 0.3、δ = 0.2", "the default loss weights (config constants)"),
    ("02-Distill.ipynb", "γ = 0.3、δ = 0.2 這組權重", "the default loss weights (config constants)"),
    ("02-Distill.ipynb", "T 每加倍梯度約縮小 4 倍", "the 1/T² law (2² = 4), a derivation"),
    ("02-Distill.ipynb", "`T = 4` 時是 16 倍", "T² at T = 4, a derivation"),
    ("02-Distill.ipynb", "誤差線是 95% 區間", "the confidence level, a constant"),
    ("02-Distill.ipynb", "講義的 +2–5%", COURSE),
    ("02-Distill.ipynb", "準確率就會動 1–2 個百分點", "the order of the seed spread, the reason for seeds"),
    ("02-Distill.ipynb", "一個種子的結果會動 1–2 個百分點", "the order of the seed spread, the reason for seeds"),
    ("02-Distill.ipynb", "p < 0.05", "the significance threshold, a constant"),
    # 03-Inference (helper "kit" may change these cells: keep the phrases in step)
    ("03-Inference.ipynb", "準確率與 95% 信賴區間", "the confidence level, a constant"),
    ("03-Inference.ipynb", "**95% CI**", "the confidence level, a constant"),
    ("03-Inference.ipynb", "（872 句時大約 ±2 個百分點）", "the Wilson half-width at n = 872, p ≈ 0.85 (a formula)"),
    ("03-Inference.ipynb", "p < 0.05 才說兩者", "the significance threshold, a constant"),
    ("03-Inference.ipynb", "p > 0.05 代表", "the significance threshold, a constant"),
    ("03-Inference.ipynb", "會隨機動 1–2 個百分點", "the order of the seed spread, the reason for seeds"),
    ("03-Inference.ipynb", "差的 95% 區間", "the confidence level, a constant"),
    ("03-Inference.ipynb", "Binomial(b + c, 0.5)", "McNemar's null hypothesis, a definition"),
    ("03-Inference.ipynb", "2 × P(X ≤ min(b, c", "the two-sided p-value's formula"),
    # 04-Benchmark (helper "verdict" may change these cells)
    ("04-Benchmark.ipynb", "細線是 95% 區間", "the confidence level, a constant"),
    ("04-Benchmark.ipynb", "準確率的 95% 區間", "the confidence level, a constant"),
    ("04-Benchmark.ipynb", "dev 句子上的 95% 區間半寬", "the confidence level, a constant"),
    # 05-Advanced
    ("advanced/05-Advanced.ipynb", "差距小於 1–2 個百分點時", "the order of the seed spread, the reason for seeds"),
    ("advanced/05-Advanced.ipynb", "差距大於 1–2 個百分點", "the order of the seed spread, in a question"),
    # 06-Compression
    ("advanced/06-Compression.ipynb", "| 2–3× | 90–95% |", COURSE),
    ("advanced/06-Compression.ipynb", "| 6–9× | 85–90% |", COURSE),
    ("advanced/06-Compression.ipynb", "| 3–5× | 80–85% |", COURSE),
    ("advanced/06-Compression.ipynb", "| 10–15× | 70–80% |", COURSE),
    ("advanced/06-Compression.ipynb", "`distilled, 50% unstructured zeros`", "the sparsity the code sets, a setting"),
    ("advanced/06-Compression.ipynb", "30,522 × 384", "the vocabulary × width of all-MiniLM-L6 (its config)"),
    ("advanced/06-Compression.ipynb", "差距小於 1–2 個百分點時", "the order of the seed spread, the reason for seeds"),
    ("advanced/06-Compression.ipynb", "能到 10–15×", COURSE),
    # 07-LLM-Distillation (another team's chapter)
    ("advanced/07-LLM-Distillation.ipynb", "5% 的詞整個留出來", "the held-out share, a data setting"),
    ("advanced/07-LLM-Distillation.ipynb", "降到 0.21 倍（forward KL）和 0.12 倍（JSD）",
     "07's team: a benchmarks/ measurement quoted in prose (BENCHMARKS.md 'Memory of the full-vocabulary "
     "losses'); a candidate for rendering by code"),
    ("advanced/07-LLM-Distillation.ipynb", "ROUGE-L ≥ 0.5", "the matching threshold, a definition"),
    ("advanced/07-LLM-Distillation.ipynb", "bootstrap 的 95% 區間", "the confidence level, a constant"),
]


def markdown_cells(notebook: str) -> list[str]:
    nb = nbformat.read(ROOT / notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def measured_numbers(text: str) -> list[tuple[str, int, int]]:
    """``(number, start, end)`` of every measured-looking number in Markdown ``text`` (link targets skipped)."""
    text = _LINK.sub(lambda m: " " * len(m.group()), text)
    return [(m.group(), m.start(), m.end()) for m in NUMBER.finditer(text)]


def _covered(text: str, start: int, end: int, phrases: list[str]) -> bool:
    for phrase in phrases:
        at = text.find(phrase)
        while at >= 0:
            if at <= start and end <= at + len(phrase):
                return True
            at = text.find(phrase, at + 1)
    return False


def unallowed(notebook: str, cells: list[str], allowed=ALLOWED) -> list[str]:
    """The numbers of ``cells`` (Markdown sources of ``notebook``) that no allowance covers, with context."""
    phrases = [phrase for nb, phrase, _ in allowed if nb == notebook]
    found = []
    for text in cells:
        for number, start, end in measured_numbers(text):
            if not _covered(text, start, end, phrases):
                found.append(f"{notebook}: {number!r} in …{text[max(0, start - 30):end + 20]!r}…")
    return found


def stale(cells_by_notebook: dict[str, list[str]], allowed=ALLOWED) -> list[tuple[str, str]]:
    """Allowances whose phrase appears in no Markdown cell of their notebook, or covers no measured number."""
    out = []
    for notebook, phrase, _ in allowed:
        if not any(phrase in text and measured_numbers(phrase) for text in cells_by_notebook.get(notebook, [])):
            out.append((notebook, phrase))
    return out


def test_a_typed_measurement_fails_the_scan():
    cell = "`ce` 只用標籤是 84.9%，MiniLM − CE = +2.4，latency 11.0 ms、1.94×；0.19 / 0.04 / 0.15。"
    found = [n for n, _, _ in measured_numbers(cell)]
    assert found == ["84.9%", "+2.4", "11.0 ms", "1.94×", "0.19", "0.04", "0.15"]
    assert len(unallowed("02-Distill.ipynb", [cell])) == len(found)
    # constants and names are not measurements: T = 4, 6 → 3 layers, 20 repeats, R1.1, all-MiniLM-L6, a badge's v0.1.0
    plain = ("T = 4、6 → 3 層、20 次重複、seq 128、反思 R1.1、all-MiniLM-L6、"
             "[badge](https://colab.research.google.com/github/x/y/blob/v0.1.0/01.ipynb)")
    assert measured_numbers(plain) == []


def test_an_allowance_covers_only_its_phrase():
    cell = "講義的 +2–5% 是和前 N 層比；我們量到 +0.5。"
    allowed = [("02-Distill.ipynb", "講義的 +2–5%", COURSE)]
    assert [line.split(": ")[1].split(" in ")[0] for line in unallowed("02-Distill.ipynb", [cell], allowed)] == ["'+0.5'"]


def test_a_stale_allowance_fails():
    cells = {"02-Distill.ipynb": ["預設 T = 4、α = 0.1。"]}
    allowed = [("02-Distill.ipynb", "α = 0.1", "a constant"), ("02-Distill.ipynb", "`ce` 84.9%", "gone"),
               ("02-Distill.ipynb", "T = 4", "covers no number")]
    assert stale(cells, allowed) == [("02-Distill.ipynb", "`ce` 84.9%"), ("02-Distill.ipynb", "T = 4")]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_markdown_states_no_measured_number(notebook):
    found = unallowed(notebook, markdown_cells(notebook))
    assert not found, ("numbers typed into Markdown (render them from the run or a named reference result, e.g. "
                       "lab.reference_note(key), or add an ALLOWED entry saying why it is not a measurement):\n"
                       + "\n".join(found))


def test_no_allowance_is_stale():
    cells = {notebook: markdown_cells(notebook) for notebook in NOTEBOOKS}
    assert not stale(cells), f"ALLOWED entries whose phrase is gone from the notebook: {stale(cells)}"


def test_the_five_class_example_quotes_its_own_softmax():
    """01's text quotes two probabilities of the fixed example the next cell plots: they are its softmax at T = 1."""
    import ast

    import torch

    nb = nbformat.read(ROOT / "01-Setup.ipynb", as_version=4)
    call = next(node for c in nb.cells if c.cell_type == "code" and "multiclass_temperature_demo(" in c.source
                for node in ast.walk(ast.parse(c.source)) if isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "multiclass_temperature_demo")
    logits, names = ast.literal_eval(call.args[0]), ast.literal_eval(call.args[1])
    p = dict(zip(names, torch.softmax(torch.tensor(logits), dim=-1).tolist()))
    source = next(c for c in markdown_cells("01-Setup.ipynb") if "very positive 約" in c)
    assert f"positive 約 {p['positive']:.2f}" in source and f"very positive 約 {p['very positive']:.2f}" in source
