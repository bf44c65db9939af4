"""Figures for the notebooks. Each function draws one figure and returns it (matplotlib), with a one-sentence
takeaway written from the figure's own numbers under it (``fig.takeaway``, also drawn as the caption): the sentence a
reader should leave with, which cannot disagree with the figure because it is computed from the same data."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch


def _caption(fig, text: str):
    """Write ``text`` under the figure (wrapped to its width) and keep it as ``fig.takeaway``."""
    fig.takeaway = text
    width = max(40, int(fig.get_figwidth() * 15))
    fig.text(0.01, 0.0, "\n".join(textwrap.wrap("Takeaway: " + text, width)), ha="left", va="top", fontsize=9,
             style="italic", transform=fig.transFigure)
    return fig


def token_length_histogram(lengths: list[int], max_length: int, title: str = "SST-2 token lengths (train)"):
    """Histogram of untruncated token counts with the truncation limit marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(lengths, bins=min(60, max(lengths) + 1), color="tab:blue", alpha=0.8)
    ax.axvline(max_length, color="tab:red", ls="--", label=f"max_length = {max_length}")
    ax.axvline(float(np.mean(lengths)), color="k", ls=":", label=f"mean = {np.mean(lengths):.1f}")
    ax.set(xlabel="tokens per sentence (with [CLS]/[SEP])", ylabel="sentences", title=title)
    ax.legend()
    fig.tight_layout()
    lengths = np.asarray(lengths)
    kept = float((lengths <= max_length).mean())
    padding = 1 - float(np.minimum(lengths, max_length).mean()) / max_length
    return _caption(fig, f"{kept:.1%} of the sentences fit in max_length = {max_length} (mean {lengths.mean():.1f} "
                         f"tokens): padding every sentence to {max_length} would make {padding:.0%} of the tokens "
                         "padding, so batches are padded only to their longest sentence (dynamic padding).")


@torch.inference_mode()
def temperature_demo(model, tokenizer, sentence: str, temperatures=(1, 4, 10)):
    """softmax(z / T) of the teacher's logits for one sentence at several temperatures (bar chart)."""
    model = model.eval()
    device = next(model.parameters()).device
    logits = model(**tokenizer(sentence, return_tensors="pt").to(device)).logits[0].float().cpu()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(temperatures)
    for i, t in enumerate(temperatures):
        p = torch.softmax(logits / t, -1).numpy()
        bars = ax.bar(np.arange(len(p)) + i * width, p, width, label=f"T = {t}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    from kdlab.tables import display_class_names

    names = display_class_names(model)
    ax.set_xticks(np.arange(len(logits)) + width * (len(temperatures) - 1) / 2, names)
    ax.set(ylim=(0, 1.1), ylabel="probability")
    ax.set_title("Teacher softmax(z/T) for: " + "\n".join(textwrap.wrap(f"“{sentence}”", 70)), fontsize=9)
    ax.legend()
    fig.tight_layout()
    return _caption(fig, _temperature_takeaway(logits, names, temperatures))


def _temperature_takeaway(logits, names, temperatures) -> str:
    """What a temperature figure shows: the ranking at every T, and how the smallest probability grows."""
    probs = {t: torch.softmax(torch.as_tensor(logits, dtype=torch.float32) / t, -1) for t in temperatures}
    orders = {tuple(torch.argsort(p, descending=True).tolist()) for p in probs.values()}
    low = int(torch.argmin(probs[temperatures[0]]))
    same = "the same at every T" if len(orders) == 1 else "changed (it cannot: check the logits)"
    grows = ", ".join(f"{float(probs[t][low]):.2f} at T = {t:g}" for t in temperatures)
    return (f"the ranking of the classes is {same} (top: {names[int(torch.argmax(probs[temperatures[0]]))]}); T only "
            f"changes how big the small probabilities are — {names[low]} is {grows}.")


LOSS_TERMS = (("loss_ce", "alpha", "CE (hard labels)"), ("loss_kd", "beta", "KD (soft labels, ×T²)"),
              ("loss_attention", "gamma", "self-attention distribution"), ("loss_value", "delta", "value relation"))


def training_curves(histories: dict[str, list[dict]], weights: dict[str, dict] | None = None):
    """One panel per loss term, each term multiplied by its weight in that student's objective (what the
    optimizer sees), one line per student; last panel: dev accuracy during training. ``weights``:
    ``{student: {"alpha": .., "beta": .., "gamma": .., "delta": ..}}`` (from ``vars(loss)``); without it the
    raw terms are drawn."""
    terms = [t for t in LOSS_TERMS if any(t[0] in h for hist in histories.values() for h in hist)]
    fig, axes = plt.subplots(1, len(terms) + 1, figsize=(3.6 * (len(terms) + 1), 3.4))
    colors = dict(zip(histories, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (key, weight_name, label) in zip(axes, terms):
        for name, history in histories.items():
            w = (weights or {}).get(name, {}).get(weight_name, 1.0)
            points = [(h["step"], w * h[key]) for h in history if key in h and "eval_loss" not in h]
            if points and w > 0:
                x, y = zip(*points)
                ax.plot(x, y, color=colors[name], label=name)
        ax.set(xlabel="step", title=("weighted " if weights else "") + label, yscale="log")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("loss term × its weight" if weights else "loss term")
    ax_acc = axes[-1]
    for name, history in histories.items():
        evals = [(h["step"], h["eval_accuracy"]) for h in history if "eval_accuracy" in h]
        if evals:
            x, y = zip(*evals)
            ax_acc.plot(x, [100 * v for v in y], marker="o", color=colors[name], label=name)
    ax_acc.set(xlabel="step", ylabel="dev accuracy (%)", title="dev accuracy")
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    return _caption(fig, _curves_takeaway(histories))


def _curves_takeaway(histories: dict[str, list[dict]]) -> str:
    """Each student's last dev accuracy and its number of steps; why one line may stop early."""
    parts, steps = [], {}
    for name, history in histories.items():
        steps[name] = max([h["step"] for h in history if "step" in h] or [0])
        last = [h["eval_accuracy"] for h in history if "eval_accuracy" in h]
        parts.append(f"{name} {100 * last[-1]:.1f}%" if last else name)
        parts[-1] += f" after {steps[name]} steps"
    longest = max(steps.values() or [0])
    short = [n for n, s in steps.items() if s < longest]
    note = (f"; {', '.join(short)} stop{'s' if len(short) == 1 else ''} earlier because {'it trains' if len(short) == 1 else 'they train'} "
            "on fewer sentences for the same epochs (the labelled ones only)") if short else ""
    return (f"last dev accuracy: {', '.join(parts)}{note}. Each loss panel is a term × its weight on a log scale: "
            "a falling line is that term being learned, not the objectives of two students compared.")


def kd_gradient_vs_temperature(temperatures=(1, 2, 4, 8, 16, 32), num_classes: int = 5, batch: int = 512,
                               seed: int = 0):
    """Size of the KD gradient on the student's logits as T grows, with and without the T² factor.

    ∂/∂z_s of T²·KL(p_t^T ‖ p_s^T) is T·(p_s^T − p_t^T): for large T it tends to (z_s − z_t)/C, a constant, while
    without T² the gradient shrinks like 1/T². Random logits, ``num_classes`` classes; mean L2 norm per example."""
    from kdlab.distillation.losses import kd_loss

    g = torch.Generator().manual_seed(seed)
    z_t = torch.randn(batch, num_classes, generator=g) * 3
    z_s0 = torch.randn(batch, num_classes, generator=g) * 3
    with_t2, without = [], []
    for t in temperatures:
        z_s = z_s0.clone().requires_grad_(True)
        kd_loss(z_s, z_t, t).backward()
        norm = float(z_s.grad.norm(dim=-1).mean() * batch)  # undo the batch mean: per-example gradient size
        with_t2.append(norm)
        without.append(norm / t**2)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.plot(temperatures, with_t2, marker="o", label="T² · KL  (kdlab, Hinton)")
    ax.plot(temperatures, without, marker="s", label="KL without T²")
    ax.set(xscale="log", yscale="log", xlabel="temperature T", ylabel="‖∂L/∂z_student‖ per example",
           title=f"KD gradient vs T ({num_classes} classes, random logits)")
    ax.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    lo, hi = temperatures[0], temperatures[-1]
    return _caption(fig, f"with T² the soft-label gradient stays between {min(with_t2):.2f} and {max(with_t2):.2f} "
                         f"from T = {lo:g} to {hi:g}; without it, it falls {without[0] / without[-1]:.0f}× (about "
                         f"1/T²): a high temperature would quietly switch the soft labels off, which T² prevents.")


def multiclass_temperature_demo(logits, class_names, temperatures=(1, 4, 10), title: str = ""):
    """softmax(z/T) of one set of logits over several classes: at T = 1 only the top class is visible; a higher T
    shows how the teacher ranks the wrong classes (dark knowledge, 暗知識); T → ∞ is uniform (no information)."""
    logits = torch.as_tensor(logits, dtype=torch.float32)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(temperatures)
    x = np.arange(len(class_names))
    for i, t in enumerate(temperatures):
        p = torch.softmax(logits / t, -1).numpy()
        bars = ax.bar(x + i * width, p, width, label=f"T = {t:g}")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x + width * (len(temperatures) - 1) / 2, class_names, fontsize=8)
    ax.set(ylim=(0, 1.1), ylabel="probability", title=title or "softmax(z / T) over five classes")
    ax.legend()
    fig.tight_layout()
    return _caption(fig, _temperature_takeaway(logits, list(class_names), temperatures))


@torch.inference_mode()
def last_layer_attention(model, tokenizer, sentence: str, head: int | None = None):
    """(tokens, attention [S, S]) of the last layer for one sentence, averaged over heads unless ``head``."""
    from kdlab.distillation.capture import QKVCapture

    model = model.eval()
    device = next(model.parameters()).device
    enc = tokenizer(sentence, return_tensors="pt").to(device)
    with QKVCapture(model) as cap:
        model(**enc)
        q, k, _ = cap.qkv()
    att = torch.softmax(q.float() @ k.float().transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)[0]  # [H, S, S]
    att = att[head] if head is not None else att.mean(0)
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), att.cpu().numpy()


def attention_maps(models: dict, tokenizer, sentence: str, dev_kl: dict | None = None):
    """Last-layer attention (mean over heads) of each model for one sentence, side by side, on one color scale
    with one color bar (so the panels can be compared). ``dev_kl`` (``{"before", "after", "uniform",
    "sentences"}``, the numbers printed above the figure): the takeaway quotes those and their readings, so the
    caption and the print never disagree; without it, the per-sentence KL of the head-averaged maps."""
    maps = {name: last_layer_attention(model, tokenizer, sentence) for name, model in models.items()}
    vmax = max(float(att.max()) for _, att in maps.values())
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models) + 0.8, 4.4))
    axes = np.atleast_1d(axes)
    image = None
    for ax, (name, (tokens, att)) in zip(axes, maps.items()):
        image = ax.imshow(att, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
        ax.set_title(name, fontsize=10)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="attention weight")
    fig.suptitle("Last-layer self-attention, mean over heads (rows: queries, columns: keys)", fontsize=10)
    if dev_kl:
        from kdlab.measurement.similarity import attention_kl_readings

        read = attention_kl_readings({w: dev_kl[w] for w in ("before", "after")}, dev_kl["uniform"])
        return _caption(fig, f"Attention KL to the teacher on {dev_kl.get('sentences', 'the')} dev sentences (the "
                        f"numbers printed above): before {dev_kl['before']:.4f} — {read['before']}; after "
                        f"{dev_kl['after']:.4f} — {read['after']}; uniform attention {dev_kl['uniform']:.4f}. The "
                        "maps are one sentence, heads averaged: look where each row's weight sits.")
    (first, (_, reference)), *others = maps.items()
    if not others:
        return _caption(fig, f"{first}'s last-layer attention for this sentence.")
    kl = {name: _row_kl(reference, att) for name, (_, att) in others}
    closest = min(kl, key=kl.get)
    return _caption(fig, "KL from " + first + "'s head-averaged map, mean over queries: " +
                    ", ".join(f"{n} {v:.3f}" for n, v in kl.items()) + f" — {closest} attends most like {first} on "
                    "this sentence (one sentence, averaged heads: 03 measures it on every dev sentence).")


def _row_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over rows of KL(p_row ‖ q_row) for two [S, S] row-stochastic maps."""
    p, q = np.clip(p, 1e-12, None), np.clip(q, 1e-12, None)
    return float((p * (np.log(p) - np.log(q))).sum(-1).mean())


def confusion_matrices(matrices: dict[str, np.ndarray], names=None):
    """Confusion matrices (rows = gold, columns = predicted) side by side; ``names``: the class names."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (name, m) in zip(axes, matrices.items()):
        ax.imshow(m, cmap="Blues")
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, int(value), ha="center", va="center", color="white" if value > m.max() / 2 else "black")
        k = m.shape[0]
        labels = [str(n)[:8] for n in (names or (["neg", "pos"] if k == 2 else range(k)))]
        ax.set_xticks(range(k), labels, rotation=45 if k > 3 else 0, fontsize=8)
        ax.set_yticks(range(k), labels, fontsize=8)
        ax.set(xlabel="predicted", ylabel="gold", title=name)
    fig.tight_layout()
    parts = []
    for name, m in matrices.items():
        m = np.asarray(m)
        off = m - np.diag(np.diag(m))
        if off.sum() == 0:
            parts.append(f"{name} makes no error")
            continue
        i, j = np.unravel_index(int(off.argmax()), off.shape)
        classes = names or (["negative", "positive"] if m.shape[0] == 2 else [str(k) for k in range(m.shape[0])])
        parts.append(f"{name} {int(off.sum())} errors, most often gold {classes[i]} read as {classes[j]} "
                     f"({int(off[i, j])})")
    return _caption(fig, "; ".join(parts) + ". A model that leans to one side (one off-diagonal cell much larger) "
                    "has learned a bias, not only less accuracy.")


def latency_bars(bench):
    """P50 latency per model and precision, one panel per batch size: horizontal bars (the labels never overlap),
    the bar is the P50 and its whisker reaches the P95; each bar says its P50 and its speed-up over the fp32
    teacher."""
    bench = bench[bench["status"] == "ok"]
    batches = sorted(bench["batch"].unique())
    height = 0.5 + 0.42 * max(len(bench[bench["batch"] == b]) for b in batches)
    fig, axes = plt.subplots(1, len(batches), figsize=(6.2 * len(batches), height))
    axes = np.atleast_1d(axes)
    for ax, batch in zip(axes, batches):
        rows = bench[bench["batch"] == batch].iloc[::-1]  # the first model on top
        labels = [f"{m} · {p}" for m, p in zip(rows["model"], rows["precision"])]
        p50 = rows["p50_ms"].to_numpy()
        ys = np.arange(len(labels))
        ax.barh(ys, p50, xerr=[np.zeros_like(p50), rows["p95_ms"].to_numpy() - p50], capsize=3, color="tab:blue")
        for y, (value, top, speed) in enumerate(zip(p50, rows["p95_ms"], rows["speedup_vs_teacher"])):
            ax.text(top, y, f"  {value:.1f} ms · {speed:.2f}×", va="center", fontsize=8)  # right of the whisker
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_xlim(0, 1.35 * float(rows["p95_ms"].max()))
        ax.set(xlabel="latency per batch (ms): bar = P50, whisker = P95",
               title=f"batch {batch}, seq {int(rows['seq'].iloc[0])}")
    fig.tight_layout()
    parts = []
    for batch in batches:
        rows = bench[(bench["batch"] == batch) & (bench["model"] != "teacher")
                     & ~bench["model"].str.contains("untrained")]  # speed only: never the one to deploy
        if len(rows):
            best = rows.loc[rows["p50_ms"].idxmin()]
            parts.append(f"at batch {batch} the fastest trained student is {best['model']} {best['precision']} "
                         f"({best['p50_ms']:.1f} ms, {best['speedup_vs_teacher']:.2f}× the fp32 teacher)")
    bounds = bench[bench["model"].str.contains("untrained") & (bench["batch"] == batches[0])]
    if len(bounds):  # its speed is real, its weights are not: never "the fastest student" to pick
        best = bounds.loc[bounds["p50_ms"].idxmin()]
        parts.append(f"{best['model']} ({best['p50_ms']:.1f} ms) is a speed bound only: untrained, it has no "
                     "accuracy and is never a candidate")
    return _caption(fig, ("; ".join(parts) or "only the teacher was timed") + ". A whisker much longer than its "
                    "bar is a noisy tail: users feel the P95, not the P50.")


def sweep_plot(table, x: str, title: str = ""):
    """Dev accuracy (with its 95% interval) against one swept setting: ``table`` from ``lab.sweep``."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    xs = table[x].astype(str) if table[x].dtype == object else table[x]
    # clipped at 0: at 0% or 100% accuracy an interval's end equals the value up to rounding (a -1e-14 bar is an error)
    below = np.clip(table["accuracy_%"] - table["low_%"], 0, None)
    above = np.clip(table["high_%"] - table["accuracy_%"], 0, None)
    ax.errorbar(xs, table["accuracy_%"], yerr=[below, above], fmt="o-", capsize=4)
    ax.set(xlabel=x, ylabel="dev accuracy (%)", title=title or f"accuracy vs {x} (one seed; bars: 95% interval)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    best, worst = table.loc[table["accuracy_%"].idxmax()], table.loc[table["accuracy_%"].idxmin()]
    gap = float(best["accuracy_%"] - worst["accuracy_%"])
    reading = ("inside the 1–2 points one seed moves by: this sweep ranks nothing" if gap <= 2 else
               "more than one seed's 1–2 points, worth re-running with several seeds before believing it")
    return _caption(fig, f"best {x} = {best[x]} ({best['accuracy_%']:.1f}%), worst {worst[x]} "
                         f"({worst['accuracy_%']:.1f}%): {gap:.1f} points apart, {reading}.")


def loss_race(race: dict, verdict: dict):
    """02's loss race: the training objective of the student trained with your loss beside kdlab's (same seed,
    same batches; one point per length group, so no sawtooth), and each one's dev accuracy with its 95% interval.
    ``race``: ``kdlab.lab.loss_race``'s result; ``verdict``: ``kdlab.distillation.custom.race_verdict``'s."""
    from kdlab.distillation.custom import RACE_LABELS

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = {"kdlab": "tab:blue", "yours": "tab:orange"}
    for name, result in race.items():
        steps = [h["step"] for h in result.history if "loss" in h and "eval_loss" not in h and "step" in h]
        left.plot(steps, _losses(result.history), marker=".", label=RACE_LABELS.get(name, name), color=colors.get(name))
    left.set(xlabel="step", ylabel="training objective (mean per length group)",
             title="the same student, batches and seed; only the loss differs")
    left.legend()
    names, runs = list(race), verdict["runs"]
    accs = [100 * runs[n]["accuracy"] for n in names]
    below = [max(0.0, a - 100 * runs[n]["low"]) for a, n in zip(accs, names)]
    above = [max(0.0, 100 * runs[n]["high"] - a) for a, n in zip(accs, names)]
    bars = right.bar([RACE_LABELS.get(n, n) for n in names], accs, yerr=[below, above], capsize=6,
                     color=[colors.get(n, "gray") for n in names])
    right.bar_label(bars, fmt="%.1f%%", label_type="center", color="white")
    right.set(ylabel="dev accuracy (%)", ylim=(0, 100), title="after the race (95% intervals)")
    fig.tight_layout()
    if "yours" not in race:
        return _caption(fig, f"kdlab's loss alone ({accs[0]:.1f}%): do the exercises above and re-run this cell to "
                             "race your own loss against it.")
    mine, theirs = (_losses(race[n].history) for n in ("yours", "kdlab"))
    if not (mine and theirs):
        return _caption(fig, f"no training loss was logged; {verdict['text']}")
    # The first logged step decides (same weights, same batch): a term computed differently differs there; later
    # windows can drift by float noise. Each term is compared (a wrong kd_loss can hide in a total of other terms).
    first = [next(h for h in race[n].history if "loss" in h and "step" in h) for n in ("yours", "kdlab")]
    differ = [k for k in first[1] if (k == "loss" or k.startswith("loss_")) and k in first[0]
              and abs(first[0][k] - first[1][k]) > 1e-3 * max(abs(first[1][k]), 1e-8)]
    if not differ:
        return _caption(fig, f"your objective is kdlab's from the first logged step ({mine[0]:.4f} vs "
                             f"{theirs[0]:.4f}, every term alike): your loss trains what kdlab's does; {verdict['text']}")
    k = next((k for k in differ if k != "loss"), "loss")
    term = {"loss_kd": "KD term", "loss_attention": "attention term", "loss_value": "value-relation term",
            "loss": "objective"}.get(k, k)
    return _caption(fig, f"your {term} differs from kdlab's from the first logged step ({first[0][k]:.4g} vs "
                         f"{first[1][k]:.4g}): your loss is not kdlab's — the check above says how; {verdict['text']}")


def _losses(history) -> list[float]:
    return [h["loss"] for h in history if "loss" in h and "eval_loss" not in h and "step" in h]

