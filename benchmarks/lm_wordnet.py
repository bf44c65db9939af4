"""Distilling a causal LM on WordNet's glosses (issue 35): a teacher beside n-gram baselines, students that start
from nothing (two sizes) and a student cut from the teacher, CE vs KD at equal steps with step-0 rows, and the
regimes told apart by response measures (``kdlab.lm.measures``): ROUGE-L of greedy responses, sense coverage and
precision of sampled ones, the exposure-bias curve.

- Text: ``kdlab.lm.wordnet.entries()`` (familiar senses of polysemous single-word lemmas), 5% of the lemmas held
  out whole; a byte-level BPE trained on the training text.
- Teacher: GPT-2-shaped, trained once here with CE on every training entry (``--teacher-*``), random batches (the
  lab's length-grouped batches learn far slower on these entries: BENCHMARKS-lm.md), saved under ``--root``;
  reused when its settings match. The numbers in BENCHMARKS-lm.md of 2026-12-06 used length-grouped batches.
- Students: see ``--student-entries`` training entries (whole lemmas, the same for every student and seed), train
  ``--steps`` steps each, same batch, schedule and learning rate; the same dropout (0) for CE and KD.
- Measured per student: held-out perplexity (per-example NLL kept for paired bootstraps), ROUGE-L (greedy response
  vs the lemma's definitions, best one), sense coverage / precision (``--samples`` samples per prompt at T = 1,
  matched by ROUGE-L ≥ 0.5), teacher NLL by generated position (the exposure curve), on ``--prompts`` prompts of
  the students' own training lemmas.

    python benchmarks/lm_wordnet.py --seeds 3 --json runs/lm_wordnet.json      # 2 cores: see BENCHMARKS-lm.md
    python benchmarks/lm_wordnet.py --smoke                                    # seconds, for the test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from kdlab.artifacts import atomic_dir, atomic_write_json  # noqa: E402
from kdlab.lm import corpus, evaluation, generation, measures, models, wordnet  # noqa: E402
from kdlab.lm.config import load_lm_config  # noqa: E402
from kdlab.lm.trainer import train  # noqa: E402

# student name → how it starts
STUDENTS = {"random-1x64": ("random", 1, 64, 2), "random-2x128": ("random", 2, 128, 4), "cut-2": ("cut", 2, None, None)}


def _mean_sd(values):
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def build(args):
    """Texts, tokenizer, teacher (trained or reused), the students' data and the evaluation prompts."""
    cfg = load_lm_config("cpu", corpus="wordnet", tokenizer="train", teacher="train", vocab_size=args.vocab,
                         context=args.context, teacher_layers=args.teacher_layers, teacher_width=args.teacher_width,
                         teacher_heads=4, batch_size=args.batch, learning_rate=args.lr, warmup_steps=args.steps // 20,
                         logging_steps=50, runs_dir=args.root, chunk_tokens=128, prompt_tokens=1,
                         max_new_tokens=args.positions)
    found = wordnet.entries()
    parts = wordnet.split(found)
    if args.smoke:
        parts = {"train": parts["train"][:600], "validation": parts["validation"][:60]}
    texts = {k: [e.text for e in v] for k, v in parts.items()}
    settings = {"vocab": args.vocab, "context": args.context, "layers": args.teacher_layers,
                "width": args.teacher_width, "steps": args.teacher_steps, "lr": args.teacher_lr,
                "entries": len(texts["train"]), "smoke": args.smoke, "code": "lm_wordnet-2", "batches": "random"}
    folder = Path(args.root) / "lm_wordnet" / "teacher"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record_path = folder / "kdlab.json"
    if record_path.is_file() and json.loads(record_path.read_text()).get("settings") == settings:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        teacher = AutoModelForCausalLM.from_pretrained(str(folder))
        teacher_record = json.loads(record_path.read_text())
    else:
        tokenizer = corpus.train_tokenizer(texts["train"], args.vocab)
        data = corpus.examples(texts["train"], tokenizer, cfg)
        teacher = models.teacher_from_config(dataclasses.replace(cfg, teacher_heads=4), tokenizer)
        tcfg = dataclasses.replace(cfg, batch_size=64, warmup_steps=max(1, args.teacher_steps // 20))
        teacher, teacher_record = train(teacher, tcfg, "ce", data, corpus.Collator(tokenizer.pad_token_id),
                                        len(tokenizer), folder.parent / ".work", tokenizer=tokenizer,
                                        learning_rate=args.teacher_lr, max_steps=args.teacher_steps, name="teacher",
                                        arguments={"train_sampling_strategy": "random"})
        teacher_record = {"settings": settings, "train_seconds": teacher_record["train_seconds"],
                          "steps": teacher_record["steps"], "examples": len(data)}
        with atomic_dir(folder) as tmp:
            teacher.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            atomic_write_json(Path(tmp) / "kdlab.json", teacher_record)
    teacher.eval()
    tokenizer = corpus.prepare_tokenizer(tokenizer)
    collator = corpus.Collator(tokenizer.pad_token_id)
    train_all = corpus.examples(texts["train"], tokenizer, cfg)
    heldout = corpus.examples(texts["validation"], tokenizer, cfg)
    # the students' entries: whole lemmas, the first ones of a fixed shuffle
    lemmas = sorted({e.prompt for e in parts["train"]})
    order = torch.randperm(len(lemmas), generator=torch.Generator().manual_seed(0)).tolist()
    per_lemma: dict[str, int] = {}
    for e in parts["train"]:
        per_lemma[e.prompt] = per_lemma.get(e.prompt, 0) + 1
    chosen, count = set(), 0
    for i in order:
        if count >= args.student_entries:
            break
        chosen.add(lemmas[i])
        count += per_lemma[lemmas[i]]
    keep = [i for i, e in enumerate(parts["train"]) if e.prompt in chosen]
    student_train = train_all.select(keep)
    senses = wordnet.senses_by_prompt(parts["train"])
    eval_prompts = [p for p in sorted(chosen)][: args.prompts]
    return dict(cfg=cfg, tokenizer=tokenizer, teacher=teacher, collator=collator, train_all=train_all,
                heldout=heldout, student_train=student_train, senses=senses, eval_prompts=eval_prompts,
                teacher_record=teacher_record, rows=len(tokenizer))


def _prompt_ids(tokenizer, prompt):
    return [tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]


def response_metrics(env, model, seed: int, args) -> dict:
    tok, teacher = env["tokenizer"], env["teacher"]
    prompts = env["eval_prompts"]
    ids = [_prompt_ids(tok, p) for p in prompts]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    greedy = generation.sample(model, ids, args.positions, eos, pad, greedy=True)
    decode = lambda seq, n: tok.decode(generation.continuation(seq, n, eos), skip_special_tokens=True).strip()  # noqa: E731
    responses = [decode(s, len(p)) for s, p in zip(greedy, ids)]
    rouge = measures.rouge_l(responses, [env["senses"][p] for p in prompts])
    many = [p for p in ids for _ in range(args.samples)]
    sampled = generation.sample(model, many, args.positions, eos, pad, seed=20_000 + seed)
    by_prompt: dict[str, list[str]] = {}
    for k, seq in enumerate(sampled):
        prompt = prompts[k // args.samples]
        by_prompt.setdefault(prompt, []).append(decode(seq, len(ids[k // args.samples])))
    sense = measures.sense_scores(by_prompt, env["senses"])
    curve = measures.exposure_curve(teacher, sampled, [len(p) for p in many], env["rows"], pad, args.positions)
    ppl_sums, counts = evaluation.per_example_nll(model, env["heldout"], env["collator"], env["rows"])
    return {"heldout_ppl": math.exp(sum(ppl_sums) / sum(counts)), "nll_sums": ppl_sums, "rouge_l": rouge,
            "sense_coverage": sense["coverage"], "sense_precision": sense["precision"],
            "exposure": [c["teacher_nll"] for c in curve], "exposure_n": [c["n"] for c in curve],
            "examples": [(prompts[i], responses[i]) for i in range(min(4, len(prompts)))]}


def make_student(env, name: str, seed: int):
    kind, layers, width, heads = STUDENTS[name]
    if kind == "cut":
        return models.cut_student(env["teacher"], layers)
    return models.random_student(env["teacher"], layers, width, heads, seed=seed)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    env = build(args)
    cfg = env["cfg"]
    teacher_ppl = evaluation.perplexity(env["teacher"], env["heldout"], env["collator"], env["rows"])
    ngrams = measures.ngram_perplexities(env["train_all"]["input_ids"], env["heldout"]["input_ids"], env["rows"],
                                         env["heldout"]["prompt_length"])
    out_path = Path(args.json) if args.json else None
    done = json.loads(out_path.read_text()) if out_path and out_path.is_file() else {}
    results = done.get("runs", {})
    summary = {"teacher": {"heldout_ppl": teacher_ppl["perplexity"], "tokens": teacher_ppl["tokens"],
                           "parameters": models.parameters(env["teacher"]),
                           "train_seconds": env["teacher_record"].get("train_seconds"),
                           "steps": env["teacher_record"].get("steps")},
               "ngrams": ngrams, "student_examples": len(env["student_train"]),
               "teacher_examples": len(env["train_all"]), "eval_prompts": len(env["eval_prompts"])}
    print(json.dumps(summary), flush=True)
    summary["teacher_metrics"] = response_metrics(env, env["teacher"], 0, args)
    plan = []
    for seed in range(args.seeds):
        for name in args.students.split(","):
            plan.append((name, "step0", seed))
            for regime in args.regimes.split(","):
                plan.append((name, regime, seed))
        for extra in filter(None, args.extra.split(",")):  # e.g. "random-2x128:onpolicy-0.5"
            name, regime = extra.split(":")
            plan.append((name, regime, seed))
    for name, regime, seed in plan:
        key = f"{name}|{regime}|{seed}"
        if key in results:
            continue
        student = make_student(env, name, seed)
        start = time.perf_counter()
        record = {"steps": 0}
        if regime != "step0":
            base = "onpolicy" if regime.startswith("onpolicy") else regime
            changes = {"seed": seed, "student_steps": args.steps}
            if base == "onpolicy":
                changes.update(lmbda=float(regime.split("-", 1)[1]), onpolicy_loss="reverse")
            rcfg = dataclasses.replace(cfg, **changes)
            student, record = train(student, rcfg, base, env["student_train"], env["collator"], env["rows"],
                                    Path(args.root) / "lm_wordnet" / ".work", teacher=env["teacher"],
                                    tokenizer=env["tokenizer"], seed=seed, name=key)
        metrics = response_metrics(env, student.eval(), seed, args)
        results[key] = {"student": name, "regime": regime, "seed": seed, "parameters": models.parameters(student),
                        "train_seconds": time.perf_counter() - start if regime != "step0" else 0.0,
                        "steps": record["steps"], **metrics}
        print(key, {k: round(v, 3) for k, v in results[key].items() if isinstance(v, float)}, flush=True)
        if out_path:
            atomic_write_json(out_path, {"summary": summary, "args": vars(args), "runs": results})
    summary["runs"] = results
    if out_path:
        atomic_write_json(out_path, {"summary": summary, "args": vars(args), "runs": results})
    return summary


def tables(result: dict) -> str:
    """Markdown tables of a finished (or partial) run: rows per student × regime (mean ± sd over seeds), and the
    exposure curves."""
    runs = list(result["runs"].values())
    lines = ["| student | regime | seeds | params | held-out ppl | ROUGE-L | sense coverage | sense precision | "
             "teacher NLL pos 1-4 | pos 9-16 |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault((r["student"], r["regime"]), []).append(r)
    for (student, regime), group in groups.items():
        def cell(key, fmt="{:.3f} ± {:.3f}"):
            return fmt.format(*_mean_sd(r[key] for r in group))

        early = _mean_sd(statistics.fmean(r["exposure"][:4]) for r in group)
        late = _mean_sd(statistics.fmean([x for x in r["exposure"][8:16] if x == x] or [float("nan")]) for r in group)
        lines.append(f"| {student} | {regime} | {len(group)} | {group[0]['parameters'] / 1e6:.2f}M | "
                     f"{cell('heldout_ppl', '{:.1f} ± {:.1f}')} | {cell('rouge_l')} | {cell('sense_coverage')} | "
                     f"{cell('sense_precision')} | {early[0]:.2f} ± {early[1]:.2f} | {late[0]:.2f} ± {late[1]:.2f} |")
    return "\n".join(lines)


PAIRS = [("kd-forward", "ce"), ("kd-reverse", "kd-forward"), ("onpolicy-0.5", "kd-reverse"),
         ("onpolicy-1.0", "kd-reverse")]


def heldout_counts(result: dict) -> list[int]:
    """The held-out entries' target counts (definition tokens), rebuilt from the saved teacher's tokenizer."""
    from transformers import AutoTokenizer

    args = result["args"]
    tokenizer = AutoTokenizer.from_pretrained(str(Path(args["root"]) / "lm_wordnet" / "teacher"))
    parts = wordnet.split(wordnet.entries())
    validation = parts["validation"][:60] if args.get("smoke") else parts["validation"]
    rows, lengths = corpus.prompt_response([e.text for e in validation], tokenizer, args["context"])
    return [len(r) - 1 - (p - 1) for r, p in zip(rows, lengths)]


def pair_table(result: dict) -> str:
    """Paired comparisons over the seeds both regimes have, per student: Δ held-out NLL per token (nats; bootstrap
    over seeds and held-out entries, 95%), and seed-paired differences of ROUGE-L and of the exposure curve's
    late − early teacher NLL."""
    runs = result["runs"]
    counts = heldout_counts(result)
    lines = ["| student | a | b | seeds | Δ NLL/token a − b [95%] | a wins | Δ ROUGE-L (mean, per seed) | "
             "Δ exposure slope (late − early) |", "|---|---|---|---|---|---|---|---|"]
    students = dict.fromkeys(r["student"] for r in runs.values())
    for student in students:
        for a, b in PAIRS:
            seeds = sorted({r["seed"] for r in runs.values() if r["student"] == student and r["regime"] == a}
                           & {r["seed"] for r in runs.values() if r["student"] == student and r["regime"] == b})
            if not seeds:
                continue
            ra = [runs[f"{student}|{a}|{s}"] for s in seeds]
            rb = [runs[f"{student}|{b}|{s}"] for s in seeds]
            boot = evaluation.paired_nll_bootstrap([r["nll_sums"] for r in ra], [r["nll_sums"] for r in rb], counts)
            d_rouge = [x["rouge_l"] - y["rouge_l"] for x, y in zip(ra, rb)]

            def slope(r):
                late = [v for v in r["exposure"][8:16] if v == v]
                return (statistics.fmean(late) if late else float("nan")) - statistics.fmean(r["exposure"][:4])

            d_slope = [slope(x) - slope(y) for x, y in zip(ra, rb)]
            lines.append(f"| {student} | {a} | {b} | {len(seeds)} | {boot['mean_diff_nll']:+.3f} "
                         f"[{boot['boot_low']:+.3f}, {boot['boot_high']:+.3f}] | {boot['wins']}/{len(seeds)} | "
                         f"{statistics.fmean(d_rouge):+.3f} ({', '.join(f'{d:+.3f}' for d in d_rouge)}) | "
                         f"{statistics.fmean(d_slope):+.3f} ({', '.join(f'{d:+.2f}' for d in d_slope)}) |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(ROOT / "runs"))
    p.add_argument("--json", default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--students", default="random-1x64,random-2x128,cut-2")
    p.add_argument("--regimes", default="ce,kd-forward")
    p.add_argument("--extra", default="random-2x128:kd-reverse,random-2x128:onpolicy-0.5,random-2x128:onpolicy-1.0")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--student-entries", type=int, default=4000)
    p.add_argument("--prompts", type=int, default=48)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--positions", type=int, default=16)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--context", type=int, default=48)
    p.add_argument("--teacher-layers", type=int, default=4)
    p.add_argument("--teacher-width", type=int, default=256)
    p.add_argument("--teacher-steps", type=int, default=1500)
    p.add_argument("--teacher-lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="a tiny run in seconds (tests)")
    p.add_argument("--tables", default=None, help="print the markdown tables of a saved --json and stop")
    args = p.parse_args(argv)
    if args.tables:
        saved = json.loads(Path(args.tables).read_text())
        print(tables(saved))
        print()
        print(pair_table(saved))
        return {}
    if args.smoke:
        args.seeds, args.steps, args.teacher_steps, args.student_entries = 1, 4, 20, 60
        args.prompts, args.samples, args.positions, args.vocab = 4, 2, 6, 300
        args.teacher_layers, args.teacher_width, args.context = 2, 32, 40
    result = run(args)
    print(tables(result))
    if args.json:
        print(pair_table(json.loads(Path(args.json).read_text())))
    return result


if __name__ == "__main__":
    main()
