"""The steps of ``advanced/07-LLM-Distillation.ipynb``: one call per notebook step, everything saved under
``runs/<profile>/lm/`` and reused when its settings match (``kdlab.lm.runs``).

>>> cfg = lm_lab.setup("cpu")
>>> ctx = lm_lab.prepare(cfg)                  # text, tokenizer, teacher (trained here or loaded), examples
>>> rows = lm_lab.train_regimes(ctx)            # every regime of cfg.regimes, same steps, same seed
>>> lm_lab.regimes_table(rows)
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from kdlab.artifacts import atomic_dir, atomic_write_json
from kdlab.errors import KDLabError
from kdlab.lm import corpus, evaluation, generation, models, runs
from kdlab.lm.config import REGIMES, LMConfig, load_lm_config


@dataclasses.dataclass
class Context:
    """What every step after ``prepare`` works on."""

    cfg: LMConfig
    tokenizer: object
    teacher: torch.nn.Module
    train: object  # datasets.Dataset of input_ids (+ index)
    heldout: object
    collator: corpus.Collator
    rows: int  # logit columns that mean tokens
    device: torch.device
    teacher_record: dict


def setup(profile: str | None = None, **overrides) -> LMConfig:
    """Validated settings (``kdlab.lm.config.load_lm_config``); threads pinned when ``num_threads`` is set."""
    cfg = load_lm_config(profile, **overrides)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    cfg.run_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg.run_dir() / "config.json", cfg.to_dict())
    return cfg


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare(cfg: LMConfig, train_teacher: bool = True) -> Context:
    """Load the text and the tokenizer, then the teacher: the saved one when it was made with these settings,
    else the Hub's/the folder's (``teacher`` = an id or a path), else one trained here (``teacher="train"``,
    unless ``train_teacher`` is False: then KDLabError). Checks the pair of tokenizer and teacher first."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = corpus.load_texts(cfg)
    folder = runs.teacher_dir(cfg)
    settings = runs.teacher_settings(cfg)
    record = runs.saved(folder, settings)
    device = _device()
    if record is not None:
        tokenizer = corpus.prepare_tokenizer(AutoTokenizer.from_pretrained(str(folder)))
        teacher = AutoModelForCausalLM.from_pretrained(str(folder))
    elif cfg.teacher != "train":
        source = cfg.teacher
        tokenizer = corpus.prepare_tokenizer(AutoTokenizer.from_pretrained(source))
        teacher = AutoModelForCausalLM.from_pretrained(source)
        record = {"settings": settings, "source": source, "trained_here": False}
    else:
        if not train_teacher:
            raise KDLabError(f"no saved teacher with these settings in {folder}: run prepare(cfg) once to train it.")
        tokenizer = corpus.train_tokenizer(texts["train"], cfg.vocab_size)
        record = _train_teacher(cfg, tokenizer, texts, folder, settings, device)
        teacher = AutoModelForCausalLM.from_pretrained(str(folder))
    rows = models.usable_rows(teacher, tokenizer, "teacher")
    collator = corpus.Collator(tokenizer.pad_token_id)
    train = corpus.examples(texts["train"], tokenizer, cfg, cfg.train_texts)
    heldout = corpus.examples(texts["validation"], tokenizer, cfg, cfg.eval_texts)
    if cfg.student_init == "cut" and cfg.student_layers > models.depth(teacher):
        raise KDLabError(f"student_layers={cfg.student_layers} is deeper than the teacher's {models.depth(teacher)} "
                         "blocks: choose fewer.")
    return Context(cfg, tokenizer, teacher.to(device).eval(), train, heldout, collator, rows, device, record)


def _train_teacher(cfg, tokenizer, texts, folder: Path, settings: dict, device) -> dict:
    from kdlab.lm.trainer import train

    model = models.teacher_from_config(cfg, tokenizer)
    data = corpus.examples(texts["train"], tokenizer, cfg)
    collator = corpus.Collator(tokenizer.pad_token_id)
    steps = max(1, round(cfg.teacher_epochs * len(data) / (cfg.batch_size * cfg.gradient_accumulation_steps)))
    teacher_cfg = dataclasses.replace(cfg, seed=cfg.teacher_seed)
    model, record = train(model, teacher_cfg, "ce", data, collator, len(tokenizer), folder.parent / ".teacher-work",
                          tokenizer=tokenizer, learning_rate=cfg.teacher_learning_rate, max_steps=steps,
                          warmup_steps=max(1, steps // 20), name="teacher")
    record.update(settings=settings, trained_here=True, examples=len(data),
                  parameters=models.parameters(model))
    with atomic_dir(folder) as tmp:
        model.save_pretrained(str(tmp))
        corpus.save_tokenizer(tokenizer, tmp)
        atomic_write_json(Path(tmp) / "kdlab.json", record)
    return record


def teacher_summary(ctx: Context):
    """One-row table: the teacher's shape, how it was made, its held-out perplexity."""
    import pandas as pd

    ppl = evaluation.perplexity(ctx.teacher, ctx.heldout, ctx.collator, ctx.rows, device=ctx.device)
    rec = ctx.teacher_record
    return pd.DataFrame([{
        "teacher": ctx.cfg.teacher if ctx.cfg.teacher != "train" else "GPT-2-shaped, trained here",
        "blocks": models.depth(ctx.teacher), "parameters_M": round(models.parameters(ctx.teacher) / 1e6, 2),
        "vocabulary": len(ctx.tokenizer), "train_examples": len(ctx.train), "heldout_tokens": ppl["tokens"],
        "heldout_perplexity": round(ppl["perplexity"], 2),
        "train_minutes": round(rec.get("train_seconds", 0) / 60, 1) if rec.get("trained_here") else None,
    }])


# --- the regimes ----------------------------------------------------------------------------------------------
def seqkd_data(ctx: Context, seed: int):
    """Sequence-level KD's training data: the teacher's continuations of training prompts, the loss on the
    continuation only (``prompt_length``). ``seqkd_decoding="greedy"`` (default) is Kim & Rush's (2016) recipe: the
    teacher's greedy output approximates its mode (they use beam search), one per distinct prompt;
    ``"sample"`` samples at T = 1, ``cfg.seqkd_texts`` of them (TRL GKD's ``seq_kd``). Saved under ``lm/seqkd/``
    and reused for the same settings."""
    from datasets import Dataset

    cfg = ctx.cfg
    n = cfg.seqkd_texts or cfg.student_steps * cfg.batch_size * cfg.gradient_accumulation_steps
    settings = {"code": runs.CODE_VERSION, "teacher": runs.teacher_settings(cfg), "n": n,
                "prompt_tokens": cfg.prompt_tokens, "max_new_tokens": cfg.max_new_tokens, "seed": seed,
                "train_texts": cfg.train_texts, "decoding": cfg.seqkd_decoding}
    path = cfg.run_dir() / "seqkd" / f"{runs.key(settings)}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        sequences, prompt_lengths = saved["sequences"], saved["prompt_lengths"]
    else:
        source = corpus.prompts(ctx.train, cfg.prompt_tokens, len(ctx.train))
        greedy = cfg.seqkd_decoding == "greedy"
        if greedy:  # greedy is deterministic: one generation per distinct prompt
            chosen = list(dict.fromkeys(map(tuple, source)))[:n]
        else:
            chosen = [source[i % len(source)] for i in range(n)]
        start = time.perf_counter()
        sequences = generation.sample(ctx.teacher, [list(p) for p in chosen], cfg.max_new_tokens,
                                      ctx.tokenizer.eos_token_id, ctx.tokenizer.pad_token_id, seed=seed,
                                      greedy=greedy)
        prompt_lengths = [len(p) for p in chosen]
        atomic_write_json(path, {"settings": settings, "seconds": time.perf_counter() - start,
                                 "sequences": sequences, "prompt_lengths": prompt_lengths})
    kept = [(s[: cfg.context], p) for s, p in zip(sequences, prompt_lengths) if len(s[: cfg.context]) > p]
    return Dataset.from_dict({"input_ids": [s for s, _ in kept], "prompt_length": [p for _, p in kept],
                              "index": list(range(len(kept)))})


def teacher_cache(ctx: Context, k: int | None = None):
    """The teacher's top-k cache of the training examples (built once, ``lm/cache-k<k>/``)."""
    from kdlab.lm.cache import TeacherCache, cache_teacher

    k = k or ctx.cfg.top_k
    folder = ctx.cfg.run_dir() / f"cache-k{k}"
    settings = {"teacher": runs.teacher_settings(ctx.cfg), "k": k, "train_texts": ctx.cfg.train_texts}
    info_path = folder / "settings.json"
    if not (info_path.is_file() and json.loads(info_path.read_text()) == json.loads(json.dumps(settings))):
        start = time.perf_counter()
        info = cache_teacher(ctx.teacher, ctx.train, ctx.collator, k, folder, ctx.rows)
        info["seconds"] = time.perf_counter() - start
        atomic_write_json(folder / "cache.json", info)
        atomic_write_json(info_path, settings)
    return TeacherCache(folder)


def train_student(ctx: Context, regime: str, seed: int | None = None, retrain: bool = False) -> dict:
    """Make a student (``new_student``: cut from the teacher or from nothing) and train it with ``regime`` (or
    reuse the saved one); returns its record with held-out metrics. Every regime: the same start, steps, batch
    size, schedule and seed."""
    from transformers import AutoModelForCausalLM

    from kdlab.lm.trainer import train

    cfg = ctx.cfg
    seed = cfg.seed if seed is None else seed
    if regime not in REGIMES:
        raise KDLabError(f"regime {regime!r}: choose from {', '.join(REGIMES)}.")
    folder = runs.student_dir(cfg, regime, seed)
    settings = runs.student_settings(cfg, regime, seed)
    record = None if retrain else runs.saved(folder, settings)
    measured_with = runs.metric_settings(cfg, seed)
    if record is not None:
        model = AutoModelForCausalLM.from_pretrained(str(folder)).to(ctx.device).eval()
        if json.dumps(record.get("metric_settings"), sort_keys=True) != json.dumps(measured_with, sort_keys=True,
                                                                                     default=str):
            # the student is the same but a metric's settings changed: measure again, never return stale numbers
            record.update(metrics=student_metrics(ctx, model, seed), metric_settings=measured_with)
            atomic_write_json(folder / "kdlab.json", record)
        record["reused"] = True
        record["model"] = model
        return record
    student = new_student(ctx, seed)
    models.check_pair(ctx.teacher, student, ctx.tokenizer)
    data = seqkd_data(ctx, seed) if regime == "seqkd" else ctx.train
    cache = teacher_cache(ctx) if regime == "kd-cached" else None
    run_cfg = dataclasses.replace(cfg, seed=seed)
    student, record = train(student, run_cfg, regime, data, ctx.collator, ctx.rows, folder.parent / ".work",
                            teacher=ctx.teacher, cache=cache, tokenizer=ctx.tokenizer, seed=seed,
                            name=f"{regime} seed {seed}")
    record.update(settings=settings, seed=seed, metrics=student_metrics(ctx, student, seed),
                  metric_settings=measured_with)
    with atomic_dir(folder) as tmp:
        student.save_pretrained(str(tmp))
        atomic_write_json(Path(tmp) / "kdlab.json", record)
    record["reused"] = False
    record["model"] = student
    return record


def new_student(ctx: Context, seed: int):
    """The untrained student of ``cfg.student_init``: cut from the teacher (its embeddings, head and alternate
    blocks) or randomly initialised (``student_layers`` × ``student_width``, seeded)."""
    cfg = ctx.cfg
    if cfg.student_init == "random":
        return models.random_student(ctx.teacher, cfg.student_layers, cfg.student_width, cfg.student_heads, seed)
    return models.cut_student(ctx.teacher, cfg.student_layers, cfg.layer_map)


def step0_metrics(ctx: Context, seed: int | None = None) -> dict:
    """The metrics of the student before any training (the step-0 row every table needs: how far training moved
    it, and how close to the teacher a cut student already starts)."""
    seed = ctx.cfg.seed if seed is None else seed
    return student_metrics(ctx, new_student(ctx, seed).to(ctx.device).eval(), seed)


def student_metrics(ctx: Context, model, seed: int) -> dict:
    """Held-out perplexity, and the student's samples from held-out prompts: the teacher's NLL of them, distinct-1/2,
    mean length (``kdlab.lm.evaluation``)."""
    cfg = ctx.cfg
    ppl = evaluation.perplexity(model, ctx.heldout, ctx.collator, ctx.rows, device=ctx.device)
    prompts = corpus.prompts(ctx.heldout, cfg.prompt_tokens, cfg.num_samples)
    samples = generation.sample(model, prompts, cfg.max_new_tokens, ctx.tokenizer.eos_token_id,
                                ctx.tokenizer.pad_token_id, seed=10_000 + seed)
    length = len(prompts[0])
    continuations = [generation.continuation(s, length, ctx.tokenizer.eos_token_id) for s in samples]
    return {"perplexity": ppl["perplexity"], "nll": ppl["nll"], "heldout_tokens": ppl["tokens"],
            "teacher_nll_of_samples": evaluation.teacher_nll(ctx.teacher, samples, length, ctx.rows,
                                                             ctx.tokenizer.pad_token_id),
            "distinct_1": evaluation.distinct_n(continuations, 1), "distinct_2": evaluation.distinct_n(continuations, 2),
            "mean_length": evaluation.mean_length(continuations),
            "samples": [ctx.tokenizer.decode(s[length:], skip_special_tokens=True) for s in samples[:8]],
            "prompts": [ctx.tokenizer.decode(p, skip_special_tokens=True) for p in prompts[:8]]}


def teacher_metrics(ctx: Context, seed: int = 0) -> dict:
    """The same measurements for the teacher itself (its samples scored by itself: its own entropy rate)."""
    return student_metrics(ctx, ctx.teacher, seed)


def train_regimes(ctx: Context, regimes=None, seeds=None) -> list[dict]:
    """``train_student`` for every regime and seed (default ``cfg.regimes``, ``[cfg.seed]``); records without
    their models, so a list of them can be tabled and saved."""
    out = []
    for seed in seeds or [ctx.cfg.seed]:
        for regime in regimes or ctx.cfg.regimes:
            record = train_student(ctx, regime, seed)
            record.pop("model", None)
            out.append(record)
    return out


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


def load_student(ctx: Context, regime: str, seed: int | None = None):
    """A trained student (``train_student`` first), evaluation mode, on the run's device."""
    record = train_student(ctx, regime, seed)
    return record["model"]


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
