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
    table = table[table["regime"] != "step 0"]  # an untrained student sits off the scale of the trained ones
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


def exposure_curves(records: list[dict], teacher: dict | None = None):
    """The exposure-bias curve (``kdlab.lm.responses``): the teacher's mean −log p of each model's own sampled
    response at generated positions 1 … K, one line per regime (mean over the seeds given). A curve that rises
    with the position is a model that compounds its own mistakes; on-policy training should flatten it."""
    import statistics

    by: dict[str, list[list[float]]] = {}
    for r in records:
        if "exposure" in r["metrics"]:
            by.setdefault(r["regime"], []).append(r["metrics"]["exposure"])
    if teacher and "exposure" in teacher:
        by = {"teacher": [teacher["exposure"]], **by}
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    slopes = {}
    for regime, curves in by.items():
        mean = [statistics.fmean(c[k] for c in curves if c[k] == c[k]) if any(c[k] == c[k] for c in curves)
                else float("nan") for k in range(len(curves[0]))]
        ax.plot(range(1, len(mean) + 1), mean, marker="o", ms=3, lw=2.2 if regime == "teacher" else 1.4,
                color="black" if regime == "teacher" else None, label=regime)
        late = [x for x in mean[8:16] if x == x]
        slopes[regime] = (statistics.fmean(late) if late else float("nan")) - statistics.fmean(mean[:4])
    ax.set(xlabel="generated position (token of the model's own response)",
           ylabel="teacher NLL of that token (nats)", title="Exposure bias: does a model drift as it writes?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    students = {k: v for k, v in slopes.items() if k != "teacher" and v == v}
    if not students:
        return _caption(fig, "no student curve long enough to compare early and late positions.")
    rising = max(students, key=students.get)
    flattest = min(students, key=students.get)
    return _caption(fig, f"late − early teacher NLL (positions 9–16 minus 1–4): {rising} {students[rising]:+.2f} "
                         f"(most rising), {flattest} {students[flattest]:+.2f} (flattest) nats; one run per regime "
                         "here: the benchmark's seeds say whether the difference is real.")
