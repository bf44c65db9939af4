"""The deployment verdict against the run's own noise (04-Benchmark, its report and its map).

For each candidate row of ``kdlab.course.deployment.verdict``:

- **latency margin** = budget − P50 (ms; > 0 fits), beside the **timing spread** = P95 − P50 of that model's
  batch-1 timing in the same benchmark: a margin smaller than the spread could flip on a re-run;
- **accuracy margin** = accuracy − floor·teacher accuracy (points; > 0 keeps the target), beside the **Wilson
  half-width** z/(1+z²/n)·√(p(1−p)/n + z²/4n²) of that accuracy on its n dev sentences.

The winner is *inside the noise* when its own margins are, when a more accurate row misses the budget by less than
its spread, or when a qualifying row is closer in accuracy than the half-width; then the text names what would
decide it (more timing repeats, seeds, and the exact McNemar test, ``scipy.stats.binomtest``, between the close
pair on the same sentences). A budget that the layer ratio cannot reach in fp32 (embeddings and the classifier head
cost the same in teacher and student, so an L_t → L_s cut is at most L_t/L_s faster) is named as unreachable.
"""

from __future__ import annotations

import math

Z95 = 1.96
MAX_RIVALS = 2  # close-in-accuracy rows named (and tested) one by one; the rest are listed by name


def wilson_half_width(p: float, n: int, z: float = Z95) -> float:
    """Half the width of the Wilson score interval of an accuracy ``p`` (0..1) on ``n`` sentences:
    z/(1 + z²/n) · √(p(1−p)/n + z²/(4n²))."""
    if not n:
        return float("nan")
    return z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))


def format_p(p: float) -> str:
    """A p-value as text: "p < 0.001" under 0.001 (an exact test never gives 0), else two significant digits."""
    return "p < 0.001" if p < 0.001 else f"p = {float(f'{p:.2g}'):g}"


def _timing(results: dict, key: str, model: str | None, precision: str) -> dict | None:
    for row in results.get(key) or []:
        if (isinstance(row, dict) and row.get("model") == model and row.get("precision") == precision
                and int(row.get("batch", 0)) == 1 and row.get("status", "ok") == "ok"):
            return row
    return None


def predictions(results: dict, row: dict) -> list | None:
    """The dev predictions of a verdict row (fp32: ``teacher``/``students``; INT8: ``int8_teacher``/``int8_students``)."""
    model, int8 = row["model"], row["precision"] == "int8"
    if model == "teacher":
        entry = results.get("int8_teacher" if int8 else "teacher")
    else:
        entry = (results.get("int8_students" if int8 else "students") or {}).get(model)
    return (entry or {}).get("predictions")


def margins(found: dict, results: dict) -> list[dict]:
    """One dict per row of ``found`` (a ``verdict``): latency and accuracy margins beside their noise, and whether
    each margin is inside it (``None`` where a number is missing)."""
    out = []
    budget, t_acc, floor = found["budget_ms"], found["teacher_accuracy"], found["floor"]
    n_default = len(results.get("dev_labels") or []) or None
    for r in found["rows"]:
        timed = _timing(results, found.get("key", "benchmark"), r.get("timed_as"), r["precision"])
        spread = float(timed["p95_ms"]) - float(timed["p50_ms"]) if timed and timed.get("p95_ms") is not None else None
        n = r.get("n") or n_default
        half = 100 * wilson_half_width(r["accuracy"], n) if n else None
        lat = budget - r["p50_ms"] if budget is not None else None
        acc = 100 * (r["accuracy"] - floor * t_acc) if t_acc else None
        out.append({"name": r["name"], "p50_ms": r["p50_ms"], "budget margin ms": lat, "P95−P50 ms": spread,
                    "latency in noise": None if lat is None or spread is None else abs(lat) <= spread,
                    "accuracy %": 100 * r["accuracy"], "floor margin pts": acc, "± pts (95%)": half,
                    "accuracy in noise": None if acc is None or half is None else abs(acc) <= half,
                    "fits": lat is not None and acc is not None and lat >= 0 and acc >= 0})
    return out


def unreachable(found: dict, results: dict) -> list[str]:
    """A sentence per fp32 student architecture whose layer ratio cannot reach the budget's speed-up."""
    teacher_layers = (results.get("teacher") or {}).get("layers")
    teacher_p50 = (_timing(results, found.get("key", "benchmark"), "teacher", "fp32") or {}).get("p50_ms")
    if not teacher_p50 or not found.get("budget_ms"):
        return []
    needed = float(teacher_p50) / found["budget_ms"]  # the speed-up the budget asks for (the rule: 1 / its share)
    out, seen = [], set()
    for r in found["rows"]:
        layers = ((results.get("students") or {}).get(r["model"]) or {}).get("layers")
        if r["precision"] != "fp32" or r["model"] == "teacher" or not layers or not teacher_layers:
            continue
        if layers in seen or teacher_layers / layers > needed + 1e-9:
            continue
        seen.add(layers)
        if float(teacher_p50) / r["p50_ms"] >= needed:  # the timing says otherwise: noise, not a bound
            continue
        got = f" (measured {float(teacher_p50) / r['p50_ms']:.2f}×)"
        out.append(f"The budget is unreachable for the fp32 {layers}-layer students: it needs a {needed:.2f}× "
                   f"speed-up, and a {teacher_layers} → {layers} layer cut makes the encoder at most "
                   f"{teacher_layers / layers:.2f}× faster while the embeddings and the classifier head cost the same "
                   f"in both, so the whole model gains less{got}; only a faster precision or fewer layers can meet it.")
    return out


def _mcnemar(results: dict, a: dict, b: dict) -> str | None:
    from kdlab.metrics.classification import mcnemar

    labels, pa, pb = results.get("dev_labels"), predictions(results, a), predictions(results, b)
    if not labels or not pa or not pb or not len(labels) == len(pa) == len(pb):
        return None
    test = mcnemar(labels, pa, pb)
    return (f"McNemar (exact) `{a['name']}` vs `{b['name']}` on the same {len(labels)} sentences: "
            f"{test['a_only']} right only for the first, {test['b_only']} only for the second, "
            f"{format_p(test['p_value'])}")


def close_calls(found: dict, results: dict) -> list[dict]:
    """What makes the verdict fragile, as ``{kind, text}`` (kind ``timing`` or ``accuracy``): the winner's own margins
    inside the noise; a more accurate row that keeps the target but misses the budget by less than its spread; a
    qualifying row closer to the winner in accuracy than the half-width. A rival whose accuracy is that close to the
    winner's gets the exact McNemar test against it (when both rows' predictions are stored)."""
    rows = {m["name"]: m for m in margins(found, results)}
    by_name = {r["name"]: r for r in found["rows"]}
    win = rows.get(found["choice"]) if found["choice"] else None
    calls = []
    if win and win["latency in noise"]:
        calls.append({"kind": "timing", "text": f"`{win['name']}` is {win['budget margin ms']:.2f} ms under the "
                      f"budget, within its own timing spread (P95 − P50 {win['P95−P50 ms']:.2f} ms)"})
    if win and win["accuracy in noise"]:
        calls.append({"kind": "accuracy", "text": f"`{win['name']}` keeps the target by {win['floor margin pts']:.2f} "
                      f"points, within its ±{win['± pts (95%)']:.2f}-point interval"})
    for m in rows.values():
        if m is win or m["floor margin pts"] is None:
            continue
        gap = win["accuracy %"] - m["accuracy %"] if win else None
        tied = gap is not None and m["± pts (95%)"] is not None and abs(gap) <= m["± pts (95%)"]
        test = _mcnemar(results, by_name[win["name"]], by_name[m["name"]]) if tied else None
        paired = f" ({test})" if test else ""
        if not m["fits"] and m["latency in noise"] and m["floor margin pts"] >= 0 and (win is None or gap < 0):
            calls.append({"kind": "timing", "text": f"`{m['name']}` ({m['accuracy %']:.2f}%) keeps the target but "
                          f"misses the budget by {-m['budget margin ms']:.2f} ms, less than its timing spread "
                          f"({m['P95−P50 ms']:.2f} ms)" + (f"; it is {-gap:.2f} points ahead, inside the "
                                                            f"±{m['± pts (95%)']:.2f}-point interval{paired}"
                                                            if tied else "")})
        elif m["fits"] and tied:
            calls.append({"kind": "accuracy", "gap": abs(gap), "name": m["name"], "text": f"`{m['name']}` also fits, {gap:.2f} points "
                          f"behind, inside the ±{m['± pts (95%)']:.2f}-point interval{paired}"})
    rivals = sorted((c for c in calls if "gap" in c), key=lambda c: c["gap"])
    if len(rivals) > MAX_RIVALS:  # the closest ones, tested; the rest counted
        drop = rivals[MAX_RIVALS:]
        calls = [c for c in calls if not any(c is d for d in drop)]
        calls.append({"kind": "accuracy", "text": f"{len(drop)} more qualifying rows are as close "
                      f"(" + ", ".join(f"`{d['name']}`" for d in drop) + ")"})
    return calls


def noise_text(found: dict, results: dict, repeats: int | None = None) -> str:
    """The verdict's noise in words: unreachable budgets, then "inside the noise …" and "What would decide it"."""
    if found["budget_ms"] is None:
        return ""
    parts = unreachable(found, results)
    calls = close_calls(found, results)
    if not calls:
        parts.append("Every margin that decides it is larger than its noise (timing spread P95 − P50, the accuracy's "
                     "95% interval).")
        return " ".join(parts)
    parts.append("The verdict is inside the noise: " + "; ".join(c["text"] for c in calls) + ".")
    decide = []
    if any(c["kind"] == "timing" for c in calls):
        decide.append((f"more timing repeats (this run: {repeats} per model)" if repeats else "more timing repeats")
                      + " on an idle machine for the latency margins")
    if any(c["kind"] == "accuracy" or "points ahead" in c["text"] for c in calls):
        decide.append("students trained with more seeds for the accuracy gaps, and a paired test on the same "
                      "sentences (exact McNemar, `scipy.stats.binomtest`) between the close candidates")
    parts.append("What would decide it: " + "; ".join(decide) + ".")
    return " ".join(parts)


def margins_table(found: dict, results: dict):
    """``margins`` as a DataFrame, rounded for a report or a notebook."""
    import pandas as pd

    return pd.DataFrame(margins(found, results)).round(2)
