"""The tables of ``advanced/07-LLM-Distillation.ipynb``: the settings, the regimes side by side, samples, the
cached teacher, speed and size, and what the vocabulary checks say — each a ``pandas.DataFrame`` built from the
records ``kdlab.lm_lab`` returns (steps there, tables here).
"""

from __future__ import annotations

from kdlab.errors import KDLabError
from kdlab.lm import corpus, evaluation, models
from kdlab.lm.config import REGIMES, LMConfig
from kdlab.lm_lab import Context, teacher_cache


def regimes_table(records: list[dict], teacher: dict | None = None):
    """One row per regime (mean over the seeds given): held-out perplexity, teacher NLL of samples, distinct-2,
    train time; the teacher's own row first when given."""
    import pandas as pd

    rows = []
    if teacher:
        rows.append({"regime": "teacher", "what": "the teacher itself", "seeds": 1,
                     "perplexity": round(teacher["perplexity"], 2),
                     "teacher_nll_of_samples": round(teacher["teacher_nll_of_samples"], 3),
                     "distinct_2": round(teacher["distinct_2"], 3), "train_s": None})
    frame = pd.DataFrame([{"regime": r["regime"], "seed": r["seed"], **{k: r["metrics"][k] for k in
                           ("perplexity", "teacher_nll_of_samples", "distinct_2")}, "train_s": r["train_seconds"]}
                          for r in records])
    for regime, group in frame.groupby("regime", sort=False):
        rows.append({"regime": regime, "what": REGIMES[regime], "seeds": len(group),
                     "perplexity": round(group["perplexity"].mean(), 2),
                     "teacher_nll_of_samples": round(group["teacher_nll_of_samples"].mean(), 3),
                     "distinct_2": round(group["distinct_2"].mean(), 3), "train_s": round(group["train_s"].mean(), 1)})
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
        f"{cfg.teacher_epochs:g} epochs",
        "text": {"sst2": "SST-2's whole training sentences (held out: its dev sentences)",
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
