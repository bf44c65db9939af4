"""Distilling a causal LM on WordNet's glosses (issue 35): the teacher of 07's `cpu` profile beside n-gram
baselines, students that start from nothing (two sizes) and a student cut from the teacher, CE vs KD at equal steps
with step-0 rows, the regimes told apart by response measures (``kdlab.lm.responses``), and the course text's knobs
(T, the KD/CE mix).

Everything goes through the notebook's own steps (``kdlab.lm_lab``): the teacher is 07's (trained once by
``lm_lab.prepare`` with the `cpu` settings, reused after), each student is ``lm_lab.train_student`` with its shape
and regime settings replaced, saved and reused by its settings' key, measured by ``lm_lab.student_metrics``.

- Students (``--students``): ``random-1x64``, ``random-2x128`` (from nothing), ``cut-2`` (the teacher's blocks 0
  and 2 with its embeddings and head: DistilGPT2's start). All see the profile's ``train_texts`` entries (whole
  lemmas) for ``student_steps`` steps, the same batch, schedule, learning rate and dropout for every regime.
- Regimes: a regime of ``kdlab.lm.config.REGIMES``, ``step0`` (untrained), and settings after ``@``:
  ``kd-forward@temperature=2``, ``onpolicy@lmbda=0.5``, ``kd-forward@ce_weight=0.5``.
- Measured per student: held-out perplexity on the held-out lemmas' definitions (per-example NLL kept for paired
  bootstraps), ROUGE-L of greedy responses, sense coverage / precision (sampled), sense spread and sense KL to the
  teacher (by likelihood), the exposure curve (module
  ``kdlab.lm.responses``), on the profile's ``response_prompts`` prompts of the students' own lemmas.

    python benchmarks/lm_wordnet.py --seeds 3 --json runs/lm_wordnet.json      # 2 cores: see BENCHMARKS.md
    python benchmarks/lm_wordnet.py --tables runs/lm_wordnet.json              # the tables of a saved run
    python benchmarks/lm_wordnet.py --shard 0/2 --json a.json & python benchmarks/lm_wordnet.py --shard 1/2 \
        --json b.json; python benchmarks/lm_wordnet.py --merge a.json b.json --json all.json   # two cores
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

from kdlab import lm_lab  # noqa: E402
from kdlab.artifacts import atomic_write_json  # noqa: E402
from kdlab.lm import evaluation, models  # noqa: E402
from kdlab.lm.config import STUDENT_SHAPES  # noqa: E402

STUDENTS = STUDENT_SHAPES  # student name → the settings that make it
RESPONSE = ("rouge_l", "sense_coverage", "sense_precision", "sense_spread", "sense_kl")  # kdlab.lm.responses
SMOKE = dict(teacher_layers=2, teacher_width=32, teacher_heads=2, teacher_epochs=0.02, vocab_size=400,
             train_texts=200, eval_texts=40, student_steps=4, response_prompts=4, samples_per_prompt=2,
             max_new_tokens=6, num_samples=4, logging_steps=2)


def _mean_sd(values):
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def parse_regime(text: str) -> tuple[str, dict]:
    """``"onpolicy@lmbda=0.5,onpolicy_loss=reverse"`` → ``("onpolicy", {"lmbda": 0.5, "onpolicy_loss": "reverse"})``."""
    regime, _, rest = text.partition("@")
    changes = {}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=")
        try:
            changes[key] = float(value)
        except ValueError:
            changes[key] = value
    return regime, changes


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    cfg = lm_lab.setup("cpu", runs_dir=args.root, num_threads=args.threads, **(SMOKE if args.smoke else {}))
    ctx = lm_lab.prepare(cfg)
    teacher_record = ctx.teacher_record
    ngrams = lm_lab.ngram_baselines(ctx)
    out_path = Path(args.json) if args.json else None
    done = json.loads(out_path.read_text()) if out_path and out_path.is_file() else {}
    results = done.get("runs", {})
    teacher = lm_lab.teacher_metrics(ctx)
    _, counts = evaluation.per_example_nll(ctx.teacher, ctx.heldout, ctx.collator, ctx.rows)
    summary = {"teacher": {"heldout_ppl": teacher["perplexity"], "tokens": teacher["heldout_tokens"],
                           "parameters": models.parameters(ctx.teacher),
                           "train_seconds": teacher_record.get("train_seconds"), "steps": teacher_record.get("steps"),
                           **{k: teacher[k] for k in (*RESPONSE, "exposure")}},
               "ngrams": ngrams, "heldout_counts": counts, "student_examples": len(ctx.train),
               "teacher_examples": ngrams["train_examples"], "eval_prompts": len(ctx.prompts), "config": cfg.to_dict()}
    print(json.dumps({k: v for k, v in summary.items() if k not in ("heldout_counts", "config")}), flush=True)
    plan = []
    for seed in range(args.seeds):
        for name in args.students.split(","):
            plan += [(name, "step0", seed)] + [(name, r, seed) for r in args.regimes.split(",")]
        for extra in filter(None, args.extra.split(";")):  # e.g. "random-2x128:onpolicy@lmbda=0.5"
            name, variant = extra.split(":", 1)
            plan.append((name, variant, seed))
    part, parts = (int(x) for x in args.shard.split("/"))
    plan = plan[part::parts]  # --shard 0/2 and 1/2: two processes, one core each, every other run
    for name, variant, seed in plan:
        key = f"{name}|{variant}|{seed}"
        if key in results:
            continue
        regime, changes = parse_regime(variant)
        run_ctx = dataclasses.replace(ctx, cfg=dataclasses.replace(cfg, **STUDENTS[name], **changes))
        start = time.perf_counter()
        if regime == "step0":
            metrics, steps, model = lm_lab.step0_metrics(run_ctx, seed), 0, lm_lab.new_student(run_ctx, seed)
        else:
            record = lm_lab.train_student(run_ctx, regime, seed)
            metrics, steps, model = record["metrics"], record["steps"], record["model"]
        results[key] = {"student": name, "regime": variant, "seed": seed, "parameters": models.parameters(model),
                        "seconds": time.perf_counter() - start, "steps": steps, "heldout_ppl": metrics["perplexity"],
                        **{k: metrics[k] for k in ("nll_sums", *RESPONSE, "exposure", "exposure_n", "examples")}}
        print(key, {k: round(v, 3) for k, v in results[key].items() if isinstance(v, float)}, flush=True)
        if out_path:
            atomic_write_json(out_path, {"summary": summary, "args": vars(args), "runs": results})
    summary["runs"] = results
    if out_path:
        atomic_write_json(out_path, {"summary": summary, "args": vars(args), "runs": results})
    return summary


def _slope(exposure: list[float]) -> float:
    """Late − early teacher NLL of a model's responses: mean over positions 9–16 minus mean over 1–4."""
    late = [x for x in exposure[8:16] if x == x]
    return (statistics.fmean(late) if late else math.nan) - statistics.fmean(exposure[:4])


def _student_place(student: str) -> int:
    """A student's place in the tables: as ``STUDENTS`` lists them, any other after."""
    return list(STUDENTS).index(student) if student in STUDENTS else len(STUDENTS)


def group_rows(result: dict) -> list[dict]:
    """Per student × regime: seeds, parameters, and mean and sd over seeds of every measure."""
    groups: dict[tuple, list] = {}
    for r in result["runs"].values():
        groups.setdefault((r["student"], r["regime"]), []).append(r)
    rows = []
    regimes = ["step0", "ce", "kd-forward", "kd-reverse", *(b for a, b in PAIRS), *(a for a, b in PAIRS)]
    order = {r: i for i, r in reversed(list(enumerate(regimes)))}  # each regime at its first place

    def place(key):  # students as STUDENTS lists them, regimes as a run plans them (merged runs come unordered)
        student, regime = key
        return (_student_place(student), order.get(regime, 99), regime)

    for (student, regime), group in sorted(groups.items(), key=lambda item: place(item[0])):
        row = {"student": student, "regime": regime, "seeds": len(group), "parameters": group[0]["parameters"]}
        for key in ("heldout_ppl", *RESPONSE):
            if all(key in r for r in group):
                row[key], row[key + "_sd"] = _mean_sd(r[key] for r in group)
        row["exposure_1_4"], row["exposure_1_4_sd"] = _mean_sd(statistics.fmean(r["exposure"][:4]) for r in group)
        row["exposure_slope"], row["exposure_slope_sd"] = _mean_sd(_slope(r["exposure"]) for r in group)
        rows.append(row)
    return rows


def tables(result: dict) -> str:
    """The markdown table of a finished (or partial) run: the n-gram baselines, the teacher, then a row per
    student × regime (mean ± sd over seeds)."""
    lines = ["| student | regime | seeds | params | held-out ppl | ROUGE-L | sense coverage | sense precision | "
             "sense spread | sense KL to teacher | teacher NLL pos 1-4 | late − early |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    t, ngrams = result["summary"]["teacher"], result["summary"]["ngrams"]
    lines += [f"| unigram (add-one) | — | — | — | {ngrams['unigram']:.1f} | | | | | | | |",
              f"| bigram (Witten–Bell) | — | — | — | {ngrams['bigram']:.1f} | | | | | | | |",
              f"| teacher | — | 1 | {t['parameters'] / 1e6:.2f}M | {t['heldout_ppl']:.1f} | {t['rouge_l']:.3f} | "
              f"{t['sense_coverage']:.3f} | {t['sense_precision']:.3f} | {t.get('sense_spread', math.nan):.3f} | "
              f"{t.get('sense_kl', math.nan):.3f} | {statistics.fmean(t['exposure'][:4]):.2f} | "
              f"{_slope(t['exposure']):+.2f} |"]
    for r in group_rows(result):
        def cell(key, digits=3):
            return f"{r[key]:.{digits}f} ± {r[key + '_sd']:.{digits}f}" if key in r else "—"

        lines.append(f"| {r['student']} | {r['regime']} | {r['seeds']} | {r['parameters'] / 1e6:.2f}M | "
                     f"{cell('heldout_ppl', 1)} | {cell('rouge_l')} | {cell('sense_coverage')} | "
                     f"{cell('sense_precision')} | {cell('sense_spread')} | {cell('sense_kl')} | "
                     f"{cell('exposure_1_4', 2)} | {r['exposure_slope']:+.2f} ± "
                     f"{r['exposure_slope_sd']:.2f} |")
    return "\n".join(lines)


PAIRS = [("kd-forward", "ce"), ("kd-reverse", "kd-forward"), ("onpolicy@lmbda=0.5", "kd-reverse"),
         ("onpolicy@lmbda=1", "kd-reverse"), ("onpolicy@lmbda=1", "onpolicy@lmbda=0"),
         ("onpolicy@lmbda=0.5", "onpolicy@lmbda=0"),
         ("kd-forward@temperature=2", "kd-forward"), ("kd-forward@temperature=4", "kd-forward"),
         ("kd-forward@ce_weight=0.5", "kd-forward"), ("kd-forward@ce_weight=0.5", "ce")]


def pair_rows(result: dict) -> list[dict]:
    """Paired comparisons over the seeds both regimes have, per student: Δ held-out NLL per token a − b (nats;
    bootstrap over seeds and held-out entries, 95%) and seed-paired mean differences of ROUGE-L, sense coverage,
    sense precision and the exposure slope."""
    runs, counts = result["runs"], result["summary"]["heldout_counts"]
    out = []
    found = dict.fromkeys(r["student"] for r in runs.values())
    for student in sorted(found, key=_student_place):
        for a, b in PAIRS:
            seeds = sorted({r["seed"] for r in runs.values() if r["student"] == student and r["regime"] == a}
                           & {r["seed"] for r in runs.values() if r["student"] == student and r["regime"] == b})
            if not seeds:
                continue
            ra = [runs[f"{student}|{a}|{s}"] for s in seeds]
            rb = [runs[f"{student}|{b}|{s}"] for s in seeds]
            boot = evaluation.paired_nll_bootstrap([r["nll_sums"] for r in ra], [r["nll_sums"] for r in rb], counts)
            row = {"student": student, "a": a, "b": b, "seeds": len(seeds), "d_nll": boot["mean_diff_nll"],
                   "low": boot["boot_low"], "high": boot["boot_high"], "a_wins": boot["wins"]}
            for key in RESPONSE:
                if all(key in x for x in ra + rb):
                    row["d_" + key] = [x[key] - y[key] for x, y in zip(ra, rb)]
            row["d_slope"] = [_slope(x["exposure"]) - _slope(y["exposure"]) for x, y in zip(ra, rb)]
            out.append(row)
    return out


def pair_table(result: dict) -> str:
    lines = ["| student | a | b | seeds | Δ NLL/token a − b [95%] | a wins | Δ ROUGE-L (mean; per seed) | "
             "Δ sense precision | Δ sense coverage | Δ sense spread | Δ sense KL | Δ exposure slope (late − early) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in pair_rows(result):
        def per_seed(values, digits=3):
            if values is None:
                return "—"
            return f"{statistics.fmean(values):+.{digits}f} ({', '.join(f'{v:+.{digits}f}' for v in values)})"

        lines.append(f"| {r['student']} | {r['a']} | {r['b']} | {r['seeds']} | {r['d_nll']:+.3f} [{r['low']:+.3f}, "
                     f"{r['high']:+.3f}] | {r['a_wins']}/{r['seeds']} | {per_seed(r['d_rouge_l'])} | "
                     f"{per_seed(r['d_sense_precision'])} | {per_seed(r['d_sense_coverage'])} | "
                     f"{per_seed(r.get('d_sense_spread'))} | {per_seed(r.get('d_sense_kl'))} | "
                     f"{per_seed(r['d_slope'], 2)} |")
    return "\n".join(lines)


def reference(result: dict) -> dict:
    """What 07 shows as the multi-seed reference (``kdlab/lm/reference_wordnet.json``): the baselines, the teacher,
    the group rows and the paired rows, without per-sentence data."""
    summary = result["summary"]
    args = result.get("args", {})
    command = (f"python benchmarks/lm_wordnet.py --seeds {args.get('seeds')} --students {args.get('students')} "
               f"--regimes {args.get('regimes')} --extra '{args.get('extra')}'")
    return {"command": command,
            "teacher": {k: v for k, v in summary["teacher"].items() if k != "exposure"},
            "ngrams": summary["ngrams"], "student_examples": summary["student_examples"],
            "teacher_examples": summary["teacher_examples"], "rows": group_rows(result), "pairs": pair_rows(result)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(ROOT / "runs"), help="runs folder (the teacher: <root>/cpu/lm/teacher)")
    p.add_argument("--json", default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--students", default="random-1x64,random-2x128,cut-2")
    p.add_argument("--regimes", default="ce,kd-forward", help="for every student")
    p.add_argument("--extra", default="random-2x128:kd-reverse;random-2x128:onpolicy@lmbda=0.5;"
                                      "random-2x128:onpolicy@lmbda=1", help="student:regime items, ';'-separated")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="a tiny run in seconds (tests)")
    p.add_argument("--tables", default=None, help="print the markdown tables of a saved --json and stop")
    p.add_argument("--reference", default=None, help="with --tables: also write 07's reference summary here")
    p.add_argument("--shard", default="0/1", help="k/n: run every n-th run from the k-th (n processes, then --merge)")
    p.add_argument("--merge", nargs="+", default=None, help="merge these saved --json runs into --json and stop")
    args = p.parse_args(argv)
    if args.merge:
        saved = [json.loads(Path(f).read_text()) for f in args.merge]
        merged = {"summary": saved[0]["summary"], "args": {**saved[0]["args"], "seeds": args.seeds},
                  "runs": {k: v for s in saved for k, v in s["runs"].items()}}
        atomic_write_json(Path(args.json), merged)
        return merged
    if args.tables:
        saved = json.loads(Path(args.tables).read_text())
        print(tables(saved))
        print()
        print(pair_table(saved))
        if args.reference:
            atomic_write_json(Path(args.reference), reference(saved))
        return {}
    if args.smoke:
        args.seeds = 1
    result = run(args)
    print(tables({"summary": result, "runs": result["runs"]}))
    if args.json:
        print(pair_table(json.loads(Path(args.json).read_text())))
    return result


if __name__ == "__main__":
    main()
