"""04's deployment map: the verdict (``kdlab.course.deployment.verdict``) as a picture that reads at a glance.

Every trained model is a marker (shape = precision) with a number; the key beside the axes names the numbers, so no
long label sits on the points. Numbers are placed by a collision pass (the first of a few offsets around the point
whose box overlaps no box placed before). Error bars are the run's noise: horizontally the point's P50 → P95,
vertically its accuracy's 95% Wilson half-width; grey bands are the same noise around the budget and the floor. The
y-axis is framed around the decision region (the floor and the models near it); a model below the frame is drawn on
its lower edge as ▼ and keyed with its accuracy. The takeaway is the verdict's noise for this run
(``kdlab.course.noise``), not the rule restated.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from kdlab.course.noise import margins, noise_text, wilson_half_width
from kdlab.plots import _caption

MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}
# Offsets (points) tried in turn for a marker's number: right, left, above, below, then the diagonals, then further.
OFFSETS = [(7, -4), (-14, -4), (-3, 7), (-3, -15), (7, 6), (-14, 6), (7, -14), (-14, -14),
           (14, -4), (-22, -4), (-3, 15), (-3, -23)]


def y_limits(found: dict, half_widths: list[float], floor_half: float) -> tuple[float, float]:
    """(low, high) in percent: from twice the floor's 95% half-width (≥ 1 point) below the floor to above the best
    model's interval: the region where the rule decides, not the whole range of accuracies."""
    accs = [100 * r["accuracy"] for r in found["rows"]]
    pad = max(1.0, 2 * floor_half if floor_half == floor_half else 0.0)
    floor = 100 * found["floor"] * found["teacher_accuracy"] if found["teacher_accuracy"] else min(accs)
    high = max(a + (h if h == h else 0.0) for a, h in zip(accs, half_widths)) + 0.3
    return floor - pad, min(100.5, max(high, floor + pad))


def _overlaps(box, boxes) -> bool:
    return any(box.overlaps(other) for other in boxes)


def place_numbers(ax, points, labels):
    """Annotate ``points`` (data coordinates) with ``labels``, each at the first offset in ``OFFSETS`` whose text box
    overlaps no earlier box (markers' own boxes included); returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    taken, texts = [], []
    for (x, y), label in zip(points, labels):
        for dx, dy in OFFSETS:
            text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=9,
                               fontweight="bold", annotation_clip=False)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not _overlaps(box, taken) or (dx, dy) == OFFSETS[-1]:
                break
            text.remove()
        taken.append(box)
        texts.append(text)
    return texts


def deployment_map(found: dict, results: dict):
    """The map of ``found`` (a ``verdict`` of ``results``): accuracy against batch-1 P50, the budget and the floor
    with their noise bands, numbered markers keyed beside the axes, the chosen model ringed."""
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    rows, t_acc = found["rows"], found["teacher_accuracy"]
    if not rows or found["budget_ms"] is None:
        ax.text(0.5, 0.5, "no deployment rows yet: run 03 and 04's benchmark", ha="center", transform=ax.transAxes)
        return _caption(fig, "No verdict yet: nothing is timed and scored.")
    noise = {m["name"]: m for m in margins(found, results)}
    halves = [noise[r["name"]]["± pts (95%)"] or 0.0 for r in rows]
    n = max([r.get("n") or 0 for r in rows]) or len(results.get("dev_labels") or [])
    band = 100 * wilson_half_width(found["floor"] * t_acc, n) if t_acc else float("nan")
    low, high = y_limits(found, halves, band)
    order = sorted(range(len(rows)), key=lambda i: (-rows[i]["accuracy"], rows[i]["p50_ms"]))
    points, labels, key = [], [], []
    for number, i in enumerate(order, start=1):
        r, m = rows[i], noise[rows[i]["name"]]
        acc = 100 * r["accuracy"]
        below = acc < low
        y = low if below else acc
        spread = m["P95−P50 ms"] or 0.0
        if not below:
            ax.errorbar(r["p50_ms"], y, xerr=[[0], [spread]], yerr=halves[i], fmt="none", ecolor="0.6", lw=1,
                        capsize=2)
        ax.scatter(r["p50_ms"], y, marker="v" if below else MARKERS.get(r["precision"], "D"), s=50, zorder=3,
                   clip_on=False)
        points.append((r["p50_ms"], y))
        labels.append(str(number))
        key.append(f"{number}  {r['name']}: {acc:.2f}%, {r['p50_ms']:.1f} ms" + (" (below the frame)" if below else ""))
    budget = found["budget_ms"]
    spreads = [m["P95−P50 ms"] for m in noise.values() if m["P95−P50 ms"] is not None]
    if spreads:
        ax.axvspan(budget - float(np.median(spreads)), budget + float(np.median(spreads)), color="0.85", alpha=0.6,
                   lw=0, label="± median timing spread (P95 − P50)")
    ax.axvline(budget, color="gray", ls="--", lw=1, label=f"budget {budget:.1f} ms")
    if t_acc:
        floor = 100 * found["floor"] * t_acc
        if band == band:
            ax.axhspan(floor - band, floor + band, color="0.9", alpha=0.6, lw=0, label="± 95% interval at the floor")
        ax.axhline(floor, color="gray", ls=":", lw=1, label=f"retention floor {found['floor']:.1%} of the teacher")
    chosen = next((r for r in rows if r["name"] == found["choice"]), None)
    if chosen:
        ax.scatter(chosen["p50_ms"], 100 * chosen["accuracy"], s=260, facecolors="none", edgecolors="red", lw=2,
                   label=f"deploy: {chosen['name']}", zorder=4)
    top = max([r["p50_ms"] + (noise[r["name"]]["P95−P50 ms"] or 0) for r in rows] + [budget])
    ax.set_xlim(0, 1.15 * top)
    ax.set_ylim(low, high)
    ax.set(xlabel="P50 latency, batch 1 (ms); bar to the right = P95", ylabel="dev accuracy (%)",
           title="Deployment map (○ fp32, △ INT8, □ FP16): numbers keyed on the right")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 0.5), borderaxespad=0)
    fig.text(0.70, 0.95, "\n".join(key), ha="left", va="top", fontsize=8, family="monospace")
    fig.subplots_adjust(left=0.08, right=0.68, bottom=0.14, top=0.92)
    ax.number_labels = place_numbers(ax, points, labels)
    return _caption(fig, _takeaway(found, results))


def _takeaway(found: dict, results: dict) -> str:
    """What the map shows for this run: the choice (or none) and how far its deciding margins are from the noise."""
    head = (f"`{found['choice']}` is the model inside both limits" if found["choice"]
            else "no model sits inside both limits")
    return f"{head}. {noise_text(found, results)}"
