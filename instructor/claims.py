"""The claims a model answer makes, checked against the run it was written from (``kit.py``'s answers;
tests/course/test_kit.py runs ``claim_errors`` on every answer, and on old answers the run refutes).

``claim_errors(question, answer, results, facts)`` returns one line per claim the run does not support (empty =
every claim holds):

- **numbers**: every measured-looking number — ``86.6%``, ``20.5 ms``, ``1.94×``, ``p = 0.0105``, ``872 dev
  sentences``, ``41 sentences`` — must be one of ``facts`` (``run_facts``: the run's numbers, fractions also as
  percentages, the agreements computed from its predictions; plus named reference results, e.g. BENCHMARKS.md) at
  the precision shown (``86.6%`` matches 0.8663). Thresholds a question sets (``≤ 10 ms``, ``≥ 97%``) are rules,
  not measurements, and are skipped.
- **R3.2**: "agreement above accuracy ⇒ learned from the teacher" is refuted when ``ce`` — which never saw the
  teacher — also agrees above its own accuracy; an answer that credits the teacher must quote ``ce``'s agreement.
- **R3.1**: "supports"/"does not support" must follow from p < 0.05 on this run.
- **R4.1**: a layer ratio ``N/M`` must be the run's teacher/student layers; "near the layer ratio" only within 10%.
- **R4.3**: when P95 at padded and at real lengths qualify different rows, the answer gives both readings, and
  every row that qualifies under either is named.
- **R2.3**: a reading of the before/after attention KL (near/above/below uniform, flat) must be
  ``kdlab.measurement.similarity.attention_kl_reading``'s.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(
    r"(?P<rule>[≤≥<>]\s*|p\s*[<>]\s*)?(?P<value>\d+(?:\.\d+)?)"
    r"(?P<unit>%| ms\b|×| dev sentences\b| sentences\b)|(?P<p>\bp\s*=\s*)(?P<pvalue>\d+(?:\.\d+)?(?:e-?\d+)?)")

_ARROW = re.compile(r"(\d+(?:\.\d+)?) → (?=\d+(?:\.\d+)?( ms|%|×))")


def agreement(results: dict, name: str) -> float:
    """Share of dev sentences on which student ``name`` predicts the teacher's label (all of them, like the
    accuracies)."""
    teacher = (results.get("teacher") or {}).get("predictions")
    preds = ((results.get("students") or {}).get(name) or {}).get("predictions")
    if not teacher or not preds:
        return float("nan")
    return sum(a == b for a, b in zip(teacher, preds)) / len(preds)


def _walk(value, out: set) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and math.isfinite(value):
        out.add(float(value))
        if abs(value) <= 1:
            out.add(100 * float(value))
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, out)
    elif isinstance(value, list) and len(value) <= 64:  # not the predictions
        for item in value:
            _walk(item, out)


def run_facts(results: dict, extra=(), reference_text: str = "") -> dict[str, set[float]]:
    """The numbers an answer may quote: ``run`` — every number in ``results`` (fractions also ×100), each
    student's agreement with the teacher, ``extra`` (numbers the kit derives, e.g. loss shares, the layer ratio);
    ``reference`` — the percentages of ``reference_text`` (a named reference result such as BENCHMARKS.md:
    accuracies measured elsewhere; never a latency, which belongs to its machine)."""
    facts: set[float] = set()
    _walk(results, facts)
    for name in (results.get("students") or {}):
        a = agreement(results, name)
        if math.isfinite(a):
            facts |= {a, 100 * a}
    for value in extra:
        _walk(value, facts)
    reference = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", reference_text)}
    return {"run": facts, "reference": reference}


def _supported(text: str, facts: set[float]) -> bool:
    value = float(text)
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    tolerance = 0.5 * 10 ** -decimals + 1e-9 if "e" not in text else abs(value) * 0.05
    return any(abs(f - value) <= tolerance for f in facts)


def number_errors(answer: str, facts: dict[str, set[float]]) -> list[str]:
    errors = []
    for m in _NUMBER.finditer(answer):
        if m.group("rule"):
            continue
        value, unit = (m.group("pvalue"), "p") if m.group("p") else (m.group("value"), m.group("unit").strip())
        if not _supported(value, facts["run"] | (facts["reference"] if unit == "%" else set())):
            errors.append(f"{value} ({unit}) is not a number of this run or of a named reference")
    for m in _ARROW.finditer(answer):  # "21.4 → 11.0 ms": the first number has the second's unit
        if not _supported(m.group(1), facts["run"]):
            errors.append(f"{m.group(1)} ({m.group(2).strip()}) is not a number of this run")
    return errors


def qualifying(results: dict, real_lengths: bool) -> list[str]:
    """R4.3's rows (``kdlab.course.deployment.p95_readings``): batch-1 **P95** within the rule's budget (half the
    fp32 teacher's P50 of the same timing: padded to 128 tokens, or at SST-2's real lengths) and accuracy at the
    retention target; [] when 04 did not time that reading."""
    from kdlab.course.deployment import p95_readings

    key = "benchmark_real_lengths" if real_lengths else "benchmark"
    return p95_readings(results).get(key, (None, []))[1]


def _r32(answer: str, results: dict) -> list[str]:
    ce = (results.get("students") or {}).get("ce") or {}
    a_ce, acc_ce = agreement(results, "ce"), ce.get("accuracy", float("nan"))
    errors = []
    infers = re.search(r"agreement above accuracy (means|shows|proves that|implies)|copies the teacher's mistakes",
                       answer, re.I)
    if infers and a_ce > acc_ce:
        errors.append(f"'agreement above accuracy ⇒ learned from the teacher' is refuted by this run: `ce` never saw "
                      f"the teacher and agrees {100 * a_ce:.1f}% at {100 * acc_ce:.1f}% accuracy")
    if re.search(r"learn\w* (from )?the teacher|teacher's function", answer, re.I) and \
            f"{100 * a_ce:.1f}%" not in answer:
        errors.append("credits the teacher without the control: quote `ce`'s agreement (it never saw the teacher)")
    return errors


def _r31(answer: str, results: dict) -> list[str]:
    p = ((results.get("students") or {}).get("minilm") or {}).get("mcnemar_vs_ce_p")
    if not isinstance(p, (int, float)):
        return []
    says_no = re.search(r"does not support|doesn't support|not supported", answer, re.I)
    says_yes = re.search(r"\bsupports it\b(?! only)|\bis supported\b", answer, re.I)
    if p < 0.05 and says_no:
        return [f"says the run does not support MiniLM > CE, but p = {p:.3g} < 0.05"]
    if p >= 0.05 and says_yes and not says_no:
        return [f"says the run supports MiniLM > CE, but p = {p:.3g} ≥ 0.05"]
    return []


def _r41(answer: str, results: dict) -> list[str]:
    t_layers = (results.get("teacher") or {}).get("layers")
    s_layers = ((results.get("students") or {}).get("minilm") or {}).get("layers")
    errors = []
    for a, b in re.findall(r"\b(\d+)/(\d+)\b", answer):
        if (int(a), int(b)) != (t_layers, s_layers):
            errors.append(f"layer ratio {a}/{b} is not this run's {t_layers}/{s_layers}")
    if re.search(r"near the layer ratio", answer, re.I) and t_layers and s_layers:
        ratio = t_layers / s_layers
        speed = next((r.get("speedup_vs_teacher") for r in results.get("benchmark") or []
                      if r.get("model") == f"student-{s_layers}L" and r.get("precision") == "fp32"
                      and int(r.get("batch", 0)) == 1), None)
        if speed is not None and abs(speed - ratio) > 0.1 * ratio:
            errors.append(f"'near the layer ratio' but {speed:.2f}× is not within 10% of {ratio:.2f}×")
    return errors


def _r43(answer: str, results: dict) -> list[str]:
    padded, real = qualifying(results, False), qualifying(results, True)
    errors = []
    if padded != real and not (re.search(r"padded", answer) and re.search(r"real", answer)):
        errors.append(f"one answer where the two readings give two: padded {padded or 'none'}, real lengths "
                      f"{real or 'none'}")
    for name in sorted(set(padded) | set(real)):
        if name not in answer:
            errors.append(f"`{name}` qualifies under one reading but the answer does not name it")
    return errors


def _r23(answer: str, results: dict) -> list[str]:
    from kdlab.measurement.similarity import attention_kl_reading

    kl = results.get("attention_kl_to_teacher") or {}
    if "uniform" not in kl:
        return []
    errors = []
    for when, words in (("before", r"before|untrained"), ("after", r"\bafter\b|(?<!un)trained student")):
        reading = attention_kl_reading(kl[when], kl["uniform"]).split(" (")[0]  # e.g. "above uniform"
        for sentence in re.split(r"(?<=[.;])\s", answer):
            if not re.search(words, sentence, re.I):
                continue
            said = re.search(r"(well below|below|near|above) (uniform|it)\b|sits near it|\bflat\b(?! —)", sentence)
            if said and "not flat" not in sentence:
                claim = said.group(0).replace(" it", " uniform").replace("sits near uniform", "near uniform")
                if claim == "flat" and not reading.startswith("near"):
                    errors.append(f"calls the {when} attention flat, but its KL reads {reading}")
                elif claim.endswith("uniform") and claim.split()[0] not in reading.split()[0:2]:
                    errors.append(f"says the {when} KL is {claim}, but it reads {reading}")
    return errors


RULES = {"R2.3": _r23, "R3.1": _r31, "R3.2": _r32, "R4.1": _r41, "R4.3": _r43}


def claim_errors(question: str, answer: str, results: dict, facts: dict | None = None) -> list[str]:
    """Every claim of ``answer`` (to ``question``) that ``results`` (the run's results.json) does not support."""
    facts = run_facts(results) if facts is None else facts
    return number_errors(answer, facts) + (RULES[question](answer, results) if question in RULES else [])
