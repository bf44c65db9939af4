"""The tables of ``advanced/07-LLM-Distillation.ipynb``: the settings, the regimes side by side, samples, the
cached teacher, speed and size, and what the vocabulary checks say — each a ``pandas.DataFrame`` built from the
records ``kdlab.lm_lab`` returns (steps there, tables here).
"""

from __future__ import annotations

from kdlab.errors import KDLabError
from kdlab.lm import corpus, evaluation, models
from kdlab.lm.config import REGIMES, LMConfig
from kdlab.lm_lab import Context, teacher_cache


RESPONSE_COLUMNS = ("rouge_l", "sense_coverage", "sense_precision", "sense_spread", "sense_kl")


def _row_metrics(metrics: dict) -> dict:
    """The numbers a table row shows of one record's metrics: perplexity, the teacher's NLL of the samples,
    distinct-2, and on prompt → response text the response measures and the exposure curve's early and late
    means (the teacher's NLL at generated positions 1–4 and 9–16)."""
    import statistics

    out = {k: metrics[k] for k in ("perplexity", "teacher_nll_of_samples", "distinct_2")}
    if "rouge_l" in metrics:
        out.update({k: metrics[k] for k in RESPONSE_COLUMNS if k in metrics})
        late = [x for x in metrics["exposure"][8:16] if x == x]
        out["exposure_1_4"] = statistics.fmean(metrics["exposure"][:4])
        out["exposure_9_16"] = statistics.fmean(late) if late else float("nan")
    return out


def regimes_table(records: list[dict], teacher: dict | None = None, step0: dict | None = None):
    """One row per regime (mean over the seeds given): held-out perplexity, teacher NLL of samples, distinct-2, the
    response measures where the text has them (``_row_metrics``), train time; the teacher's own row first and the
    untrained student's (``lm_lab.step0_metrics``) second when given."""
    import pandas as pd

    rows = []
    for name, what, metrics in (("teacher", "the teacher itself", teacher), ("step 0", "the student before training",
                                                                              step0)):
        if metrics:
            rows.append({"regime": name, "what": what, "seeds": 1, **_row_metrics(metrics), "train_s": None})
    frame = pd.DataFrame([{"regime": r["regime"], "seed": r["seed"], **_row_metrics(r["metrics"]),
                           "train_s": r["train_seconds"]} for r in records])
    for regime, group in frame.groupby("regime", sort=False):
        rows.append({"regime": regime, "what": REGIMES[regime], "seeds": len(group),
                     **group.drop(columns=["regime", "seed"]).mean(numeric_only=True).to_dict()})
    return pd.DataFrame(rows).round({"perplexity": 2, "teacher_nll_of_samples": 3, "distinct_2": 3, "rouge_l": 3,
                                     "sense_coverage": 3, "sense_precision": 3, "sense_spread": 3,
                                     "sense_kl": 3, "exposure_1_4": 2,
                                     "exposure_9_16": 2, "train_s": 1})


def capacity_table(records: list[dict], teacher: dict):
    """The capacity gap (``lm_lab.capacity``): per student shape (random-init sizes, cut from the teacher) and
    regime, held-out perplexity at step 0 and after training, and how far above the teacher it stays (Δ NLL per
    held-out token, nats: log(student ppl / teacher ppl))."""
    import math

    import pandas as pd

    rows = [{"student": r["shape"], "parameters_M": round(r["parameters"] / 1e6, 2), "regime": r["regime"],
             "seed": r["seed"], "perplexity": round(r["metrics"]["perplexity"], 1),
             "above_teacher_nats": round(math.log(r["metrics"]["perplexity"] / teacher["perplexity"]), 3)}
            for r in records]
    return pd.DataFrame(rows)


def samples_table(records: list[dict], n: int = 4):
    """The first ``n`` held-out prompts and each regime's continuation (seed ``records[0]``'s)."""
    import pandas as pd

    first = {}
    for r in records:
        first.setdefault(r["regime"], r)
    prompts = next(iter(first.values()))["metrics"]["prompts"][:n]
    return pd.DataFrame([{"prompt": p, **{regime: r["metrics"]["samples"][i] for regime, r in first.items()}}
                         for i, p in enumerate(prompts)])


def speed_table(ctx: Context, student) -> object:
    """Parameters, MB and forward tokens/s at the training batch shape for the teacher and one student."""
    import pandas as pd

    seq = min(ctx.cfg.context, 64)
    rows = []
    for name, model in (("teacher", ctx.teacher), (f"student ({models.depth(student)} blocks)", student)):
        rows.append({"model": name, "blocks": models.depth(model), "parameters_M": round(models.parameters(model) / 1e6, 2),
                     "MB": round(evaluation.disk_megabytes(model), 1),
                     "forward_tokens_per_s": round(evaluation.forward_tokens_per_second(model, ctx.cfg.batch_size, seq))})
    frame = pd.DataFrame(rows)
    frame["speedup"] = (frame["forward_tokens_per_s"] / frame["forward_tokens_per_s"].iloc[0]).round(2)
    return frame


def settings_table(cfg: LMConfig):
    """The settings a student sees in the notebook, one per row."""
    import pandas as pd

    rows = {
        "profile": cfg.profile,
        "teacher": cfg.teacher if cfg.teacher != "train" else
        f"trained here: {cfg.teacher_layers} blocks × {cfg.teacher_width}, {cfg.teacher_heads} heads, "
        f"{cfg.teacher_epochs:g} epochs, batch {cfg.teacher_batch_size or cfg.batch_size}, lr "
        f"{cfg.teacher_learning_rate:g}, dropout {cfg.teacher_dropout:g}",
        "text": {"wordnet": "WordNet 3.0's definitions as prompt → definition pairs (held out: 5% of the lemmas)",
                 "sst2": "SST-2's whole training sentences (held out: its dev sentences)",
                 "wikitext": "WikiText-103 (held out: its test split)",
                 "synthetic": "synthetic sentences (smoke)"}[cfg.corpus],
        "tokenizer": "the teacher's" if cfg.tokenizer == "teacher" else f"byte-level BPE, {cfg.vocab_size} tokens, trained here",
        "context (tokens)": cfg.context,
        "student blocks": cfg.student_layers,
        "regimes": ", ".join(cfg.regimes),
        "steps per student (every regime)": cfg.student_steps,
        "batch size × accumulation": f"{cfg.batch_size} × {cfg.gradient_accumulation_steps}",
        "learning rate (cosine)": cfg.learning_rate,
        "temperature T": cfg.temperature,
        "JSD β (0 forward, 1 reverse)": cfg.jsd_beta,
        "on-policy share λ": cfg.lmbda,
        "cached top-k": cfg.top_k,
        "prompt tokens + new tokens": f"{cfg.prompt_tokens} + {cfg.max_new_tokens}",
        "seed": cfg.seed,
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="setting"))


def vocabulary_checks(ctx: Context):
    """What the pair checks say, on three cases built from this run's teacher: the real pair (passes), a teacher
    whose output layer is padded past the tokenizer (handled: the extra rows are left out of every softmax), and a
    student tokenizer trained on other text (refused, naming what differs)."""
    import pandas as pd

    rows = []
    student = models.cut_student(ctx.teacher, ctx.cfg.student_layers, ctx.cfg.layer_map)
    rows.append({"case": "the student cut from this teacher",
                 "result": f"ok: both use {models.check_pair(ctx.teacher, student, ctx.tokenizer)} logit columns"})
    padded = copy_model(ctx.teacher)
    padded.resize_token_embeddings(len(ctx.tokenizer) + 64)
    rows.append({"case": f"a teacher with {models.output_rows(padded)} output rows for {len(ctx.tokenizer)} tokens "
                         "(padded, as Qwen2.5's 151,936 vs 152,064)",
                 "result": f"handled: the losses use the first {models.usable_rows(padded, ctx.tokenizer)} columns"})
    other = corpus.train_tokenizer(["a different corpus makes a different vocabulary"] * 50, 300)
    try:
        models.check_tokenizers(ctx.tokenizer, other)
        message = "not refused (unexpected)"
    except KDLabError as exc:
        message = f"refused: {exc}"
    rows.append({"case": "a student tokenizer trained on other text", "result": message})
    return pd.DataFrame(rows)


def copy_model(model):
    import copy

    return copy.deepcopy(model)


def cache_table(ctx: Context, records: list[dict]):
    """The cached teacher against the live one: bytes per token on disk, seconds per step with and without the
    teacher's forward, held-out perplexity with the top-k cache and with full distributions."""
    import pandas as pd

    store = teacher_cache(ctx)
    by = {r["regime"]: r for r in records if r["seed"] == ctx.cfg.seed}
    rows = []
    for regime, what in (("kd-forward", "live teacher, full distribution"),
                         ("kd-cached", f"cached teacher, top-{store.k} + rest")):
        if regime in by:
            r = by[regime]
            rows.append({"regime": regime, "teacher": what, "seconds_per_step": round(r["train_seconds"] / r["steps"], 3),
                         "perplexity": round(r["metrics"]["perplexity"], 2)})
    frame = pd.DataFrame(rows)
    info = store.info
    frame.attrs["cache"] = info
    print(f"cache: {info['tokens']:,} target tokens, {info['bytes'] / 2**20:.1f} MiB, "
          f"{info['bytes_per_token']:.0f} bytes per token (k = {info['k']}); built in {info.get('seconds', 0):.0f} s")
    return frame


# --- the multi-seed reference (benchmarks/lm_wordnet.py --reference) ------------------------------------------
REFERENCE = "reference_wordnet.json"  # in kdlab/lm/: shipped with the package
MIN_SEEDS = 3  # fewer seeds than this: a prediction's verdict says so instead of "held" or "failed"


def load_reference(path=None) -> dict:
    """The multi-seed WordNet run 07 quotes (``benchmarks/lm_wordnet.py --tables <run> --reference <file>``)."""
    import json
    from pathlib import Path

    path = Path(path) if path else Path(__file__).resolve().parent / "lm" / REFERENCE
    if not path.is_file():
        raise KDLabError(f"no reference results at {path}: run benchmarks/lm_wordnet.py (BENCHMARKS.md) and write "
                         "them with --reference.")
    return json.loads(path.read_text())


def reference_table(reference: dict | None = None):
    """Per student × regime: seeds, held-out perplexity, ROUGE-L, sense coverage and precision, the exposure
    slope (mean ± sd over seeds), with the n-gram baselines and the teacher first."""
    import pandas as pd

    ref = reference or load_reference()
    t, ngrams = ref["teacher"], ref["ngrams"]
    rows = [{"student": "unigram (add-one)", "regime": "—", "seeds": None, "perplexity": f"{ngrams['unigram']:.1f}"},
            {"student": "bigram (Witten–Bell)", "regime": "—", "seeds": None, "perplexity": f"{ngrams['bigram']:.1f}"},
            {"student": "teacher", "regime": "ce (all entries)", "seeds": 1, "perplexity": f"{t['heldout_ppl']:.1f}",
             "rouge_l": f"{t['rouge_l']:.3f}", "sense_coverage": f"{t['sense_coverage']:.3f}",
             "sense_precision": f"{t['sense_precision']:.3f}",
             **{k: f"{t[k]:.3f}" for k in ("sense_spread", "sense_kl") if k in t}}]
    for r in ref["rows"]:
        def cell(key, digits=3):
            return f"{r[key]:.{digits}f} ± {r[key + '_sd']:.{digits}f}" if key in r else ""

        rows.append({"student": r["student"], "regime": r["regime"], "seeds": r["seeds"],
                     "perplexity": cell("heldout_ppl", 1), "rouge_l": cell("rouge_l"),
                     "sense_coverage": cell("sense_coverage"), "sense_precision": cell("sense_precision"),
                     "sense_spread": cell("sense_spread"), "sense_kl": cell("sense_kl"),
                     "exposure_slope": f"{r['exposure_slope']:+.2f} ± {r['exposure_slope_sd']:.2f}"})
    return pd.DataFrame(rows).fillna("")


def _pair(ref: dict, student: str, a: str, b: str) -> dict | None:
    return next((p for p in ref["pairs"] if (p["student"], p["a"], p["b"]) == (student, a, b)), None)


def _row(ref: dict, student: str, regime: str) -> dict | None:
    return next((r for r in ref["rows"] if (r["student"], r["regime"]) == (student, regime)), None)


def _signs(values: list[float]) -> str:
    return f"{sum(v > 0 for v in values)}/{len(values)} seeds > 0"


def predictions_table(reference: dict | None = None):
    """Each prediction of 07 (stated before the runs) beside what the multi-seed reference measured, and a verdict
    computed from the numbers: "held", "failed", or "not shown" (inside the noise: an interval across 0, or seeds
    that disagree)."""
    import statistics

    import pandas as pd

    ref = reference or load_reference()
    rows = []

    def add(prediction, measured, verdict, seeds=None):
        if seeds is not None and seeds < MIN_SEEDS and verdict != "not shown":
            verdict = f"too few seeds ({seeds})"  # a direction seen on one or two seeds is not a result
        rows.append({"prediction": prediction, "measured": measured, "verdict": verdict})

    t, bigram = ref["teacher"]["heldout_ppl"], ref["ngrams"]["bigram"]
    add("the teacher beats the n-gram baselines clearly", f"teacher {t:.1f} vs bigram {bigram:.1f} "
        f"(×{t / bigram:.2f})", "held" if t < 0.8 * bigram else "failed")
    small, big = _row(ref, "random-1x64", "kd-forward"), _row(ref, "random-2x128", "kd-forward")
    if small and big:
        held = small["heldout_ppl"] > big["heldout_ppl"] > t
        add("students stay above their teacher, the smaller more so (KD, from nothing)",
            f"1×64 {small['heldout_ppl']:.1f}, 2×128 {big['heldout_ppl']:.1f}, teacher {t:.1f}",
            "held" if held else "failed")
    for student in ("random-1x64", "random-2x128", "cut-2"):
        p = _pair(ref, student, "kd-forward", "ce")
        if p:
            verdict = "held" if p["high"] < 0 else "failed" if p["low"] > 0 else "not shown"
            add(f"KD beats CE at equal steps ({student})", f"Δ NLL {p['d_nll']:+.3f} [{p['low']:+.3f}, "
                f"{p['high']:+.3f}] nats/token, KD wins {p['a_wins']}/{p['seeds']}", verdict, p["seeds"])
    p = _pair(ref, "random-2x128", "kd-reverse", "kd-forward")
    if p:
        add("forward KL wins held-out perplexity (reverse − forward > 0)", f"Δ NLL {p['d_nll']:+.3f} "
            f"[{p['low']:+.3f}, {p['high']:+.3f}]", "held" if p["low"] > 0 else "failed" if p["high"] < 0 else
            "not shown", p["seeds"])

        def direction(values, want_positive):
            if all(v > 0 for v in values):
                return "held" if want_positive else "failed"
            if all(v < 0 for v in values):
                return "failed" if want_positive else "held"
            return "not shown"

        senses = (  # (measure, prediction, whether reverse − forward should be > 0, unit)
            ("sense_precision", "reverse KL writes more precise responses (sense precision, reverse − forward > 0)",
             True, ""),
            ("sense_coverage", "forward KL covers more senses (sense coverage, reverse − forward < 0)", False, ""),
            ("sense_spread", "reverse KL puts its mass on fewer senses (sense spread by likelihood, reverse − forward "
             "< 0)", False, ""),
            ("sense_kl", "forward KL's mix of senses is nearer the teacher's (sense KL to the teacher, reverse − "
             "forward > 0)", True, " nats"))
        for key, prediction, positive, unit in senses:
            values = p.get("d_" + key)
            if values is not None:  # the likelihood measures are absent from references made before them
                add(prediction, f"{statistics.fmean(values):+.3f}{unit} ({_signs(values)})",
                    direction(values, positive), p["seeds"])
    p = _pair(ref, "random-2x128", "onpolicy@lmbda=1", "onpolicy@lmbda=0")
    if p:
        mean = statistics.fmean(p["d_slope"])
        verdict = ("held" if all(v < 0 for v in p["d_slope"]) else "failed" if all(v > 0 for v in p["d_slope"])
                   else "not shown")
        add("on-policy training flattens the exposure curve (slope, λ = 1 − λ = 0 < 0)",
            f"{mean:+.2f} nats ({_signs(p['d_slope'])})", verdict, p["seeds"])
    return pd.DataFrame(rows)
