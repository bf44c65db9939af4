"""The steps of ``advanced/07-LLM-Distillation.ipynb``: one call per notebook step, everything saved under
``runs/<profile>/lm/`` and reused when its settings match (``kdlab.lm.runs``).

>>> cfg = lm_lab.setup("cpu")
>>> ctx = lm_lab.prepare(cfg)                  # text, tokenizer, teacher (trained here or loaded), examples
>>> rows = lm_lab.train_regimes(ctx)            # every regime of cfg.regimes, same steps, same seed
>>> lm_tables.regimes_table(rows)
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    prompts: list[str] | None = None  # wordnet: prompts of the students' own lemmas (the response measures)
    senses: dict[str, list[str]] | None = None  # wordnet: prompt → the definitions of its senses


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
    prompts = senses = None
    if cfg.corpus == "wordnet":
        from kdlab.lm import wordnet

        senses = wordnet.senses_of_texts(texts["train"])
        seen = cfg.train_texts or len(texts["train"])
        prompts = wordnet.whole_prompts(texts["train"], seen)[: cfg.response_prompts]
    return Context(cfg, tokenizer, teacher.to(device).eval(), train, heldout, collator, rows, device, record,
                   prompts, senses)


def _train_teacher(cfg, tokenizer, texts, folder: Path, settings: dict, device) -> dict:
    from kdlab.lm.trainer import train

    model = models.teacher_from_config(cfg, tokenizer)
    data = corpus.examples(texts["train"], tokenizer, cfg)
    collator = corpus.Collator(tokenizer.pad_token_id)
    batch = cfg.teacher_batch_size or cfg.batch_size
    steps = max(1, round(cfg.teacher_epochs * len(data) / (batch * cfg.gradient_accumulation_steps)))
    teacher_cfg = dataclasses.replace(cfg, seed=cfg.teacher_seed, batch_size=batch)
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


def ngram_baselines(ctx: Context) -> dict:
    """Unigram and bigram perplexities (``kdlab.lm.measures.ngram_perplexities``) counted on the teacher's training
    text and scored on the students' held-out targets (a prompt → response corpus: the responses only), with
    ``train_examples``: what a teacher must beat clearly to be worth distilling."""
    from kdlab.lm import measures

    train_all = corpus.examples(corpus.load_texts(ctx.cfg)["train"], ctx.tokenizer, ctx.cfg)
    starts = ctx.heldout["prompt_length"] if "prompt_length" in ctx.heldout.column_names else None
    out = measures.ngram_perplexities(train_all["input_ids"], ctx.heldout["input_ids"], ctx.rows, starts)
    return {**out, "train_examples": len(train_all)}


def teacher_summary(ctx: Context):
    """One-row table: the teacher's shape, how it was made, its held-out perplexity, and beside it (a teacher
    trained here) the unigram and bigram baselines on the same targets (``ngram_baselines``)."""
    import pandas as pd

    ppl = evaluation.perplexity(ctx.teacher, ctx.heldout, ctx.collator, ctx.rows, device=ctx.device)
    ngrams = ngram_baselines(ctx) if ctx.cfg.teacher == "train" else None
    rec = ctx.teacher_record
    return pd.DataFrame([{
        "teacher": ctx.cfg.teacher if ctx.cfg.teacher != "train" else "GPT-2-shaped, trained here",
        "blocks": models.depth(ctx.teacher), "parameters_M": round(models.parameters(ctx.teacher) / 1e6, 2),
        "vocabulary": len(ctx.tokenizer), "train_examples": len(ctx.train), "heldout_tokens": ppl["tokens"],
        "heldout_perplexity": round(ppl["perplexity"], 2),
        "train_minutes": round(rec.get("train_seconds", 0) / 60, 1) if rec.get("trained_here") else None,
        **({"bigram_perplexity": round(ngrams["bigram"], 1), "unigram_perplexity": round(ngrams["unigram"], 1)}
           if ngrams else {}),
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
    mean length (``kdlab.lm.evaluation``); on prompt → response text (wordnet) also ROUGE-L of greedy responses,
    sense coverage / precision and the exposure curve (``kdlab.lm.responses``)."""
    cfg = ctx.cfg
    sums, counts = evaluation.per_example_nll(model, ctx.heldout, ctx.collator, ctx.rows, device=ctx.device)
    nll = sum(sums) / max(1, sum(counts))
    ppl = {"nll": nll, "perplexity": math.exp(nll), "tokens": int(sum(counts))}
    prompts = corpus.prompts(ctx.heldout, cfg.prompt_tokens, cfg.num_samples)
    samples = generation.sample(model, prompts, cfg.max_new_tokens, ctx.tokenizer.eos_token_id,
                                ctx.tokenizer.pad_token_id, seed=10_000 + seed)
    lengths = [len(p) for p in prompts]
    continuations = [generation.continuation(s, n, ctx.tokenizer.eos_token_id) for s, n in zip(samples, lengths)]
    out = {"perplexity": ppl["perplexity"], "nll": ppl["nll"], "heldout_tokens": ppl["tokens"], "nll_sums": sums,
           "teacher_nll_of_samples": evaluation.teacher_nll(ctx.teacher, samples, lengths, ctx.rows,
                                                            ctx.tokenizer.pad_token_id),
           "distinct_1": evaluation.distinct_n(continuations, 1), "distinct_2": evaluation.distinct_n(continuations, 2),
           "mean_length": evaluation.mean_length(continuations),
           "samples": [ctx.tokenizer.decode(s[n:], skip_special_tokens=True) for s, n in zip(samples[:8], lengths)],
           "prompts": [ctx.tokenizer.decode(p, skip_special_tokens=True) for p in prompts[:8]]}
    if ctx.prompts:  # prompt → response text (wordnet): the measures that tell the regimes apart
        from kdlab.lm.responses import response_scores

        out.update(response_scores(model, ctx.teacher, ctx.tokenizer, ctx.prompts, ctx.senses, ctx.rows,
                                   samples=cfg.samples_per_prompt, max_new_tokens=cfg.max_new_tokens, seed=seed,
                                   context=cfg.context))
        out["samples"] = [response for _, response in out["examples"]]
        out["prompts"] = [prompt for prompt, _ in out["examples"]]
    return out


def capacity(ctx: Context, shapes=("random-1x64", "random-2x128", "cut-2"), regimes=("ce", "kd-forward"),
             seed: int | None = None) -> list[dict]:
    """The capacity gap: for each student shape (``kdlab.lm.config.STUDENT_SHAPES``) its step-0 row and each regime,
    same steps, data and seed; records (without models) with ``shape`` and ``parameters``. Saved students are
    reused (the notebook's own regimes of the default shape are not trained twice)."""
    from kdlab.lm.config import STUDENT_SHAPES

    seed = ctx.cfg.seed if seed is None else seed
    out = []
    for shape in shapes:
        if shape not in STUDENT_SHAPES:
            raise KDLabError(f"student shape {shape!r}: choose from {', '.join(STUDENT_SHAPES)}.")
        sub = dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, **STUDENT_SHAPES[shape]))
        start = new_student(sub, seed)
        out.append({"shape": shape, "regime": "step 0", "seed": seed, "parameters": models.parameters(start),
                    "metrics": student_metrics(sub, start.to(ctx.device).eval(), seed), "train_seconds": 0.0})
        for regime in regimes:
            record = train_student(sub, regime, seed)
            model = record.pop("model")
            out.append({**record, "shape": shape, "parameters": models.parameters(model)})
    return out


def teacher_metrics(ctx: Context, seed: int = 0) -> dict:
    """The same measurements for the teacher itself (its samples scored by itself: its own entropy rate); also
    written to ``<run_dir>/teacher-metrics.json`` (without per-example data) for the instructor's kit."""
    out = student_metrics(ctx, ctx.teacher, seed)
    atomic_write_json(ctx.cfg.run_dir() / "teacher-metrics.json",
                      {"metric_settings": runs.metric_settings(ctx.cfg, seed),
                       "metrics": {k: v for k, v in out.items() if k not in ("nll_sums", "examples")}})
    return out


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


def load_student(ctx: Context, regime: str, seed: int | None = None):
    """A trained student (``train_student`` first), evaluation mode, on the run's device."""
    record = train_student(ctx, regime, seed)
    return record["model"]
