"""The figures of ``advanced/07-LLM-Distillation.ipynb`` (the lab's are in ``kdlab.plots``); each returns its
figure with a one-sentence takeaway computed from its own numbers (``fig.takeaway``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from kdlab.plots import _caption


def mode_seeking():
    """Mean-seeking vs mode-seeking (``kdlab.lm.toy``): a one-mode student fitted to a two-mode teacher by forward
    KL and by reverse KL, from the same start."""
    from kdlab.lm import toy

    x = toy.grid()
    log_p = toy.two_modes(x)
    fits = {kind: toy.fit(kind, x, log_p) for kind in ("forward", "reverse")}
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    ax.fill_between(x.numpy(), log_p.exp().numpy(), color="gray", alpha=0.35, label="teacher p (two modes)")
    styles = {"forward": ("tab:blue", "forward KL(p ‖ q): mean-seeking"),
              "reverse": ("tab:red", "reverse KL(q ‖ p): mode-seeking")}
    for kind, result in fits.items():
        color, label = styles[kind]
        ax.plot(x.numpy(), result["log_q"].exp().numpy(), color=color, lw=2,
                label=f"{label} (μ = {result['mu']:.1f}, σ = {result['sigma']:.1f})")
    ax.set(xlabel="outcome (think: the next token)", ylabel="probability",
           title="One-mode student, two-mode teacher: what each KL makes the student do")
    ax.legend(fontsize=8)
    fig.tight_layout()
    centre = int(torch.argmin(x.abs()))  # the gap between the two modes
    f, r = fits["forward"], fits["reverse"]
    p_centre = float(log_p[centre].exp())
    return _caption(fig, f"forward KL spreads the student over both modes (σ = {f['sigma']:.1f}) and puts "
                         f"{float(f['log_q'][centre].exp()) / p_centre:.0f}× the teacher's probability where the "
                         f"teacher has almost none; reverse KL sits on one mode (μ = {r['mu']:.1f}, σ = {r['sigma']:.1f}) "
                         "and ignores the other — a student trained with it writes fewer kinds of continuation.")


def lm_regimes(table):
    """Each regime's held-out perplexity against the teacher's NLL of its samples (``lm_tables.regimes_table``):
    down-left is better on both."""
    fig, ax = plt.subplots(figsize=(6.8, 4.0))
    for _, row in table.iterrows():
        marker = "*" if row["regime"] == "teacher" else "o"
        ax.scatter(row["perplexity"], row["teacher_nll_of_samples"], s=120 if marker == "*" else 45, marker=marker)
        ax.annotate(f"{row['regime']} (d2 {row['distinct_2']:.2f})", (row["perplexity"], row["teacher_nll_of_samples"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel="held-out perplexity (lower: predicts held-out text better)",
           ylabel="teacher NLL of the model's samples\n(lower: writes what the teacher would)",
           title="Distillation regimes: two views of a language model")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    students = table[table["regime"] != "teacher"]
    best_ppl = students.loc[students["perplexity"].idxmin()]
    best_nll = students.loc[students["teacher_nll_of_samples"].idxmin()]
    same = best_ppl["regime"] == best_nll["regime"]
    return _caption(fig, (f"{best_ppl['regime']} has the lowest held-out perplexity ({best_ppl['perplexity']:.1f})"
                          + (" and also writes the most teacher-like samples" if same else
                             f", {best_nll['regime']} writes the most teacher-like samples "
                             f"(teacher NLL {best_nll['teacher_nll_of_samples']:.2f})")
                          + "; read distinct-2 (d2) beside it: teacher-like samples can also be repetitive. One "
                          "seed per point: the benchmark's multi-seed table says which gaps are real."))
