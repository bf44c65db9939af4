"""Distilling a causal LM, measured over several seeds (advanced/07-LLM-Distillation.ipynb's regimes).

Every regime trains the same student (cut from the teacher's alternate blocks) for the same steps, batch, schedule
and seed; the teacher is trained once (``kdlab.lm_lab.prepare``) and shared. Prints and appends to BENCHMARKS.md:

- per regime: held-out perplexity, the teacher's NLL of the student's samples, distinct-2 (mean ± sd over seeds);
- paired comparisons (Δ NLL per held-out token, nats; a bootstrap over seeds and sentences; seed-level wins):
  each regime against ``ce``, forward vs reverse vs JSD, the cached teacher against the live one;
- the teacher cache for each ``--cache-k``: bytes per token, build time, seconds per step without the teacher's
  forward against ``kd-forward`` with it, perplexity against full distributions;
- TRL's ``GKDTrainer`` beside kdlab's ``onpolicy`` (``--trl``; same student, steps, λ, β, seed);
- forward tokens/s and size of the student against the teacher.

Runs are saved under ``<root>/<profile>/lm/`` (the notebook's own folder when ``--root`` is the lab's runs) and
reused, so a stopped job starts again where it was.

    python benchmarks/lm.py --seeds 3 --trl                       # cpu profile on ../shared/data/sst2, ~25 min
    python benchmarks/lm.py --profile smoke --seeds 2 --no-write   # seconds, synthetic text
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdlab import lm_lab, lm_tables  # noqa: E402
from kdlab.lm import evaluation  # noqa: E402
from kdlab.measurement.records import append_markdown, markdown_table, report_header  # noqa: E402

PAIRS = [("kd-forward", "ce"), ("kd-reverse", "ce"), ("kd-jsd", "ce"), ("kd-skew", "ce"), ("kd-cached", "ce"),
         ("seqkd", "ce"), ("onpolicy", "ce"), ("kd-reverse", "kd-forward"), ("kd-jsd", "kd-forward"),
         ("kd-jsd", "kd-reverse"), ("kd-cached", "kd-forward"), ("onpolicy", "kd-reverse")]


def _mean_sd(values) -> tuple[float, float]:
    import statistics

    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def regime_rows(records: list[dict], teacher: dict) -> list[dict]:
    rows = [{"regime": "teacher", "seeds": 1, "perplexity": f"{teacher['perplexity']:.1f}",
             "teacher_nll_of_samples": f"{teacher['teacher_nll_of_samples']:.3f}",
             "distinct_2": f"{teacher['distinct_2']:.3f}", "train_s": "", "per_seed_ppl": ""}]
    for regime in dict.fromkeys(r["regime"] for r in records):
        group = [r for r in records if r["regime"] == regime]
        cells = {}
        for key, fmt in (("perplexity", "{:.1f} ± {:.1f}"), ("teacher_nll_of_samples", "{:.3f} ± {:.3f}"),
                         ("distinct_2", "{:.3f} ± {:.3f}")):
            cells[key] = fmt.format(*_mean_sd(r["metrics"][key] for r in group))
        rows.append({"regime": regime, "seeds": len(group), **cells,
                     "train_s": f"{_mean_sd(r['train_seconds'] for r in group)[0]:.0f}",
                     "per_seed_ppl": ", ".join(f"{r['seed']}: {r['metrics']['perplexity']:.1f}" for r in group)})
    return rows


def pair_rows(nll: dict, counts, records: list[dict]) -> list[dict]:
    import math

    from scipy import stats

    ppl = {(r["regime"], r["seed"]): r["metrics"]["perplexity"] for r in records}
    rows = []
    for a, b in PAIRS:
        if a not in nll or b not in nll:
            continue
        seeds = sorted(set(nll[a]) & set(nll[b]))
        if not seeds:
            continue
        out = evaluation.paired_nll_bootstrap([nll[a][s] for s in seeds], [nll[b][s] for s in seeds], counts)
        d_ppl = [ppl[(a, s)] - ppl[(b, s)] for s in seeds]
        t_p = stats.ttest_rel([ppl[(a, s)] for s in seeds], [ppl[(b, s)] for s in seeds]).pvalue \
            if len(seeds) > 2 else float("nan")
        rows.append({"a": a, "b": b, "seeds": len(seeds), "d_ppl": f"{_mean_sd(d_ppl)[0]:+.1f}",
                     "d_nll_per_token": f"{out['mean_diff_nll']:+.4f}",
                     "boot_95": f"[{out['boot_low']:+.4f}, {out['boot_high']:+.4f}]", "boot_p": f"{out['boot_p']:.3g}",
                     "a_better_seeds": f"{out['wins']}/{len(seeds)}",
                     "t_p": "" if math.isnan(t_p) else f"{t_p:.3g}"})
    return rows


def cache_rows(ctx, ks, seeds, nll, counts, records) -> list[dict]:
    """The top-k cache for each k (k = cfg.top_k is the notebook's own kd-cached; other k in their own folders)."""
    base = {r["seed"]: r for r in records if r["regime"] == "kd-forward"}
    rows = []
    for k in ks:
        if k == ctx.cfg.top_k:
            kctx, regime_records = ctx, [r for r in records if r["regime"] == "kd-cached"]
        else:
            cfg = dataclasses.replace(ctx.cfg, top_k=k, runs_dir=str(Path(ctx.cfg.runs_dir) / f"cache-study-k{k}"))
            cfg.run_dir().mkdir(parents=True, exist_ok=True)
            kctx = dataclasses.replace(ctx, cfg=cfg)
            regime_records = []
            for s in seeds:
                record = _strip(lm_lab.train_student(kctx, "kd-cached", s))
                record["_nll"] = evaluation.per_example_nll(record.pop("_model"), ctx.heldout, ctx.collator,
                                                            ctx.rows)[0]
                regime_records.append(record)
        info = lm_lab.teacher_cache(kctx, k).info
        per_step = _mean_sd(r["train_seconds"] / r["steps"] for r in regime_records)[0]
        ppl = _mean_sd(r["metrics"]["perplexity"] for r in regime_records)
        row = {"k": k, "MiB": f"{info['bytes'] / 2**20:.1f}", "bytes_per_token": f"{info['bytes_per_token']:.0f}",
               "build_s": f"{info.get('seconds', float('nan')):.0f}", "s_per_step": f"{per_step:.3f}",
               "perplexity": f"{ppl[0]:.1f} ± {ppl[1]:.1f}"}
        if base:
            live = _mean_sd(base[s]["train_seconds"] / base[s]["steps"] for s in base)[0]
            row["kd-forward_s_per_step"] = f"{live:.3f}"
            sums = {r["seed"]: r["_nll"] for r in regime_records if r.get("_nll") is not None}
            common = sorted(set(sums) & set(nll.get("kd-forward", {})))
            if common:
                out = evaluation.paired_nll_bootstrap([sums[s] for s in common],
                                                      [nll["kd-forward"][s] for s in common], counts)
                row["vs_full_d_nll"] = f"{out['mean_diff_nll']:+.4f} [{out['boot_low']:+.4f}, {out['boot_high']:+.4f}]"
        rows.append(row)
    return rows


def _strip(record: dict) -> dict:
    model = record.pop("model", None)
    return {**record, "_model": model}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--regimes", default=None, help="comma-separated (default: the profile's)")
    p.add_argument("--cache-k", default="4,32,128", help="top-k values of the cache study ('' to skip)")
    p.add_argument("--trl", action="store_true", help="also train TRL's GKDTrainer (needs trl)")
    p.add_argument("--root", default=str(ROOT / "runs"))
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    overrides = {"runs_dir": args.root}
    if args.profile != "smoke":
        overrides["data"] = args.data
    if args.regimes:
        overrides["regimes"] = args.regimes.split(",")
    start = time.perf_counter()
    cfg = lm_lab.setup(args.profile, **overrides)
    ctx = lm_lab.prepare(cfg)
    seeds = [cfg.seed + i for i in range(args.seeds)]
    teacher = lm_lab.teacher_metrics(ctx)
    records, nll, counts = [], {}, None
    for seed in seeds:
        for regime in cfg.regimes:
            record = _strip(lm_lab.train_student(ctx, regime, seed))
            sums, counts = evaluation.per_example_nll(record.pop("_model"), ctx.heldout, ctx.collator, ctx.rows)
            nll.setdefault(regime, {})[seed] = sums
            records.append(record)
            took = "reused" if record["reused"] else f"{record['train_seconds']:.0f} s"
            print(f"{regime} seed {seed}: perplexity {record['metrics']['perplexity']:.2f} ({took})", flush=True)
    ks = [int(k) for k in args.cache_k.split(",") if k.strip()]
    cache = []
    if ks and "kd-cached" in cfg.regimes:
        cache = cache_rows(ctx, ks, seeds, nll, counts, _with_nll(records, nll))
    trl = None
    if args.trl and "onpolicy" in cfg.regimes:
        from kdlab.lm import trl_check

        student, rec = trl_check.train_gkd(ctx, seeds[0], Path(args.root) / args.profile / "lm" / ".trl-work")
        trl_ppl = evaluation.perplexity(student, ctx.heldout, ctx.collator, ctx.rows)["perplexity"]
        mine = next(r for r in records if r["regime"] == "onpolicy" and r["seed"] == seeds[0])
        trl = {"seed": seeds[0], "trl_gkd_perplexity": trl_ppl, "trl_seconds": rec["train_seconds"],
               "kdlab_onpolicy_perplexity": mine["metrics"]["perplexity"], "kdlab_seconds": mine["train_seconds"],
               "settings": trl_check.same_settings_as_kdlab(ctx)}
        print(f"TRL GKDTrainer seed {seeds[0]}: perplexity {trl_ppl:.2f} in {rec['train_seconds']:.0f} s; kdlab "
              f"onpolicy {mine['metrics']['perplexity']:.2f} in {mine['train_seconds']:.0f} s", flush=True)
    speed = lm_tables.speed_table(ctx, lm_lab.load_student(ctx, "kd-forward" if "kd-forward" in cfg.regimes
                                                        else cfg.regimes[0], seeds[0]))
    regimes = regime_rows(records, teacher)
    pairs = pair_rows(nll, counts, records)
    wall = time.perf_counter() - start
    summary = {"profile": cfg.profile, "seeds": seeds, "config": cfg.to_dict(), "teacher": _plain(teacher),
               "teacher_record": {k: v for k, v in ctx.teacher_record.items() if k != "history"},
               "regimes": regimes, "pairs": pairs, "cache": cache, "trl": trl,
               "speed": speed.to_dict(orient="records"), "wall_seconds": wall}
    out_json = Path(args.root) / args.profile / "lm" / "benchmark.json"
    out_json.write_text(json.dumps(summary, indent=1, default=str))
    text = ["### Regimes (mean ± sd over seeds)", "", markdown_table(_frame(regimes)), "",
            "### Paired comparisons (a − b; Δ NLL in nats per held-out token, bootstrap over seeds and sentences)",
            "", markdown_table(_frame(pairs))]
    if cache:
        text += ["", "### The teacher cache (top-k log-probabilities + the remaining mass)", "",
                 markdown_table(_frame(cache))]
    if trl:
        text += ["", f"### TRL's GKDTrainer beside kdlab's onpolicy (seed {trl['seed']})", "",
                 f"TRL GKDTrainer: perplexity {trl['trl_gkd_perplexity']:.2f} in {trl['trl_seconds']:.0f} s; kdlab "
                 f"onpolicy: {trl['kdlab_onpolicy_perplexity']:.2f} in {trl['kdlab_seconds']:.0f} s."]
    text += ["", "### Speed and size", "", markdown_table(speed)]
    print("\n".join(text))
    if not args.no_write:
        command = "python benchmarks/lm.py " + " ".join(argv if argv is not None else sys.argv[1:])
        t = ctx.teacher_record
        made = f"trained here, {t.get('train_seconds', 0) / 60:.1f} min" if t.get("trained_here") else cfg.teacher
        notes = [f"profile `{cfg.profile}`: teacher {cfg.teacher_layers} blocks × {cfg.teacher_width} ({made}), "
                 f"held-out perplexity {teacher['perplexity']:.1f}; students {cfg.student_layers} blocks cut from it, "
                 f"{cfg.student_steps} steps × batch {cfg.batch_size}, lr {cfg.learning_rate}, on "
                 f"{len(ctx.train):,} training texts; held out {len(ctx.heldout):,} texts ({sum(counts):,} tokens); "
                 f"seeds {seeds}; wall {wall / 60:.1f} min (saved runs reused)"]
        head = report_header(command, str(ctx.device), cfg.num_threads or 0, notes)
        title = f"Distilling a causal LM over {len(seeds)} seeds: `{cfg.profile}` — {time.strftime('%Y-%m-%d')}"
        print(f"appended to {append_markdown(args.output, title, head + [''] + text)}")
    return summary


def _with_nll(records, nll):
    return [{**r, "_nll": nll.get(r["regime"], {}).get(r["seed"])} for r in records]


def _plain(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("samples", "prompts")}


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
