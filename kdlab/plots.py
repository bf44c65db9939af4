"""Figures for the notebooks. Each function draws one figure and returns it (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def token_length_histogram(lengths: list[int], max_length: int, title: str = "SST-2 token lengths (train)"):
    """Histogram of untruncated token counts with the truncation limit marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(lengths, bins=min(60, max(lengths) + 1), color="tab:blue", alpha=0.8)
    ax.axvline(max_length, color="tab:red", ls="--", label=f"max_length = {max_length}")
    ax.axvline(float(np.mean(lengths)), color="k", ls=":", label=f"mean = {np.mean(lengths):.1f}")
    ax.set(xlabel="tokens per sentence (with [CLS]/[SEP])", ylabel="sentences", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


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
    ax.set_xticks(np.arange(len(logits)) + width * (len(temperatures) - 1) / 2, ["negative", "positive"])
    ax.set(ylim=(0, 1.1), ylabel="probability", title=f"Teacher softmax(z/T): “{sentence[:40]}”")
    ax.legend()
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]]):
    """Left: loss components of each variant per logging step. Right: dev accuracy per evaluation."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4))
    styles = {"loss": "-", "loss_ce": "--", "loss_kd": "-.", "loss_attention": ":", "loss_value": (0, (1, 3))}
    colors = dict(zip(histories, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for variant, history in histories.items():
        train = [h for h in history if "loss" in h and "eval_loss" not in h]
        for key, style in styles.items():
            points = [(h["step"], h[key]) for h in train if key in h]
            if points and (key != "loss_ce" or variant != "ce"):
                x, y = zip(*points)
                ax_loss.plot(x, y, ls=style, color=colors[variant], label=f"{variant}: {key}")
        evals = [(h["step"], h["eval_accuracy"]) for h in history if "eval_accuracy" in h]
        if evals:
            x, y = zip(*evals)
            ax_acc.plot(x, y, marker="o", color=colors[variant], label=variant)
    ax_loss.set(xlabel="step", ylabel="loss", title="Training loss components", yscale="log")
    ax_loss.legend(fontsize=7, ncol=2)
    ax_acc.set(xlabel="step", ylabel="dev accuracy", title="Dev accuracy during training")
    ax_acc.legend()
    fig.tight_layout()
    return fig


@torch.inference_mode()
def last_layer_attention(model, tokenizer, sentence: str, head: int | None = None):
    """(tokens, attention [S, S]) of the last layer for one sentence, averaged over heads unless ``head``."""
    from kdlab.capture import QKVCapture

    model = model.eval()
    device = next(model.parameters()).device
    enc = tokenizer(sentence, return_tensors="pt").to(device)
    with QKVCapture(model) as cap:
        model(**enc)
        q, k, _ = cap.qkv()
    att = torch.softmax(q.float() @ k.float().transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)[0]  # [H, S, S]
    att = att[head] if head is not None else att.mean(0)
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), att.cpu().numpy()


def attention_maps(models: dict, tokenizer, sentence: str):
    """Last-layer attention (mean over heads) of each model for one sentence, side by side."""
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.2))
    axes = np.atleast_1d(axes)
    for ax, (name, model) in zip(axes, models.items()):
        tokens, att = last_layer_attention(model, tokenizer, sentence)
        ax.imshow(att, cmap="viridis", vmin=0)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
        ax.set_title(name, fontsize=10)
    fig.suptitle("Last-layer self-attention (mean over heads); rows = queries, columns = keys")
    fig.tight_layout()
    return fig


def confusion_matrices(matrices: dict[str, np.ndarray]):
    """2×2 confusion matrices (rows = gold, columns = predicted) side by side."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (name, m) in zip(axes, matrices.items()):
        ax.imshow(m, cmap="Blues")
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, int(value), ha="center", va="center", color="white" if value > m.max() / 2 else "black")
        ax.set_xticks([0, 1], ["neg", "pos"])
        ax.set_yticks([0, 1], ["neg", "pos"])
        ax.set(xlabel="predicted", ylabel="gold", title=name)
    fig.tight_layout()
    return fig


def latency_bars(bench):
    """P50 latency per model and precision, one panel per batch size, P95 as the error bar top."""
    bench = bench[bench["status"] == "ok"]
    batches = sorted(bench["batch"].unique())
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 3.6))
    axes = np.atleast_1d(axes)
    for ax, batch in zip(axes, batches):
        rows = bench[bench["batch"] == batch]
        labels = [f"{m}\n{p}" for m, p in zip(rows["model"], rows["precision"])]
        p50 = rows["p50_ms"].to_numpy()
        ax.bar(labels, p50, yerr=[np.zeros_like(p50), rows["p95_ms"].to_numpy() - p50], capsize=3, color="tab:blue")
        for x, (value, speed) in enumerate(zip(p50, rows["speedup_vs_teacher"])):
            ax.text(x, value, f"{value:.1f} ms\n{speed:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.set(ylabel="P50 latency per batch (ms)", title=f"batch {batch}, seq {int(rows['seq'].iloc[0])}")
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_latency(points: list[dict]):
    """Trade-off scatter: dev accuracy (with 95% interval) against P50 latency. points: name, p50_ms, accuracy,
    acc_low, acc_high."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for p in points:
        err = [[max(0.0, 100 * (p["accuracy"] - p["acc_low"]))], [max(0.0, 100 * (p["acc_high"] - p["accuracy"]))]]
        ax.errorbar(p["p50_ms"], 100 * p["accuracy"], yerr=err, fmt="o", capsize=4)
        ax.annotate(p["name"], (p["p50_ms"], 100 * p["accuracy"]), textcoords="offset points", xytext=(6, 4))
    ax.set(xlabel="P50 latency per batch (ms)", ylabel="dev accuracy (%)",
           title="Accuracy vs latency (error bars: 95% interval)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
