"""Several seeds of the same training: the seed-to-seed spread, mean ± sd, and paired comparisons of two variants
across seeds and sentences.

One seed on SST-2's 872 dev sentences moves by 1–2 points from run to run, so a difference between two variants
means something only against that spread. ``train_seeds`` trains every variant with every seed (the data fixed,
the training seed varied: data order and dropout), saving each run so that a long job can stop and resume;
``seed_table`` summarises; ``paired_comparison`` compares two variants seed by seed and sentence by sentence.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel

from kdlab.artifacts import read_json
from kdlab.config import KDConfig
from kdlab.distillation.runs import config_differences
from kdlab.distillation.training import RESULT_FILE, distill
from kdlab.errors import KDLabError

ROW_KEYS = ("variant", "seed", "accuracy", "acc_low", "acc_high", "f1", "train_seconds", "predictions")


def seed_list(base: int, count: int) -> list[int]:
    """``count`` seeds starting at ``base``: ``[base, base + 1, ...]``."""
    if count < 1:
        raise KDLabError(f"num_seeds={count}: train at least one seed.")
    return [base + i for i in range(count)]


def run_folder(root: str | Path, seed: int, variant: str) -> Path:
    return Path(root) / f"seed-{seed}" / variant


def _row(variant: str, seed: int, record: dict) -> dict:
    m = record["metrics"]
    return {"variant": variant, "seed": seed, "accuracy": m["accuracy"], "acc_low": m["acc_low"],
            "acc_high": m["acc_high"], "f1": m["f1"], "train_seconds": record.get("train_seconds"),
            "predictions": record["predictions"]}


def saved_run(root: str | Path, seed: int, variant: str, cfg: KDConfig) -> dict | None:
    """The row of a run saved under ``root`` with the training settings of ``cfg`` (seed included), or None."""
    record = read_json(run_folder(root, seed, variant) / RESULT_FILE)
    if (record and record.get("predictions") is not None and isinstance(record.get("config"), dict)
            and not config_differences(record["config"], cfg)):
        return _row(variant, seed, record)
    return None


def train_seeds(cfg: KDConfig, teacher, tokenizer, data, variants, seeds, root: str | Path, log=print) -> list[dict]:
    """Train each of ``variants`` once per seed in ``seeds`` on the same ``data``; each run is saved under
    ``root/seed-S/<variant>/`` and reused when it was saved with the same config (so an interrupted job resumes).

    Returns one row per run: variant, seed, accuracy, acc_low, acc_high, f1, train_seconds, predictions (dev, in
    dataset order).
    """
    rows = []
    for seed in seeds:
        cfg_s = dataclasses.replace(cfg, seed=seed)
        for variant in variants:
            row = saved_run(root, seed, variant, cfg_s)
            if row is None:
                distill(cfg_s, teacher, tokenizer, data, variant, output_dir=run_folder(root, seed, variant),
                        resume=False)
                row = saved_run(root, seed, variant, cfg_s)
                if row is None:
                    raise RuntimeError(f"the run of {variant} seed {seed} did not save its record")
                log(f"{variant} seed {seed}: {row['accuracy']:.2%} in {row['train_seconds']:.0f} s")
            else:
                log(f"{variant} seed {seed}: {row['accuracy']:.2%} (saved run reused)")
            rows.append(row)
    return rows


def load_runs(root: str | Path) -> list[dict]:
    """Every saved run under ``root`` (``seed-S/<variant>/kdlab.json``), whatever its config."""
    rows = []
    for path in sorted(Path(root).glob(f"seed-*/*/{RESULT_FILE}")):
        record = read_json(path)
        if record and record.get("predictions") is not None:
            rows.append(_row(path.parent.name, int(path.parent.parent.name.split("-", 1)[1]), record))
    return rows


def seed_table(rows: list[dict], order=None):
    """Per variant: seeds, mean and sd of dev accuracy (points), min, max, and the per-seed accuracies."""
    variants = order or list(dict.fromkeys(r["variant"] for r in rows))
    out = []
    for variant in variants:
        accs = np.array([r["accuracy"] for r in rows if r["variant"] == variant]) * 100
        if accs.size == 0:
            continue
        seeds = [r["seed"] for r in rows if r["variant"] == variant]
        out.append({"variant": variant, "seeds": accs.size, "mean_%": accs.mean(),
                    "sd_%": accs.std(ddof=1) if accs.size > 1 else float("nan"), "min_%": accs.min(),
                    "max_%": accs.max(),
                    "per_seed_%": ", ".join(f"{s}: {a:.1f}" for s, a in zip(seeds, accs))})
    return pd.DataFrame(out)


def paired_comparison(rows: list[dict], a: str, b: str, labels, n_boot: int = 4000, seed: int = 0) -> dict:
    """Variant ``a`` against ``b`` on the seeds both have, paired by seed and by sentence.

    - ``mean_diff`` (points): mean over seeds of acc_a − acc_b; ``sd_diff`` its seed-to-seed sd; ``wins``: seeds
      where a beat b; ``t_p``: paired t-test over seeds (``scipy.stats.ttest_rel``; needs ≥ 2 seeds).
    - ``boot_low``/``boot_high``/``boot_p``: a two-level bootstrap that resamples seeds and sentences (with
      replacement) and recomputes the mean difference: its 95% interval and two-sided p (share of resamples on
      the other side of 0, doubled). It counts both sources of noise: training randomness and the 872 sentences.
    - ``a_only``/``b_only``: sentences right for one and wrong for the other, summed over seeds (McNemar's
      discordant pairs; not independent across seeds, so no p-value is given for them).
    """
    labels = np.asarray(labels)
    by = {v: {r["seed"]: np.asarray(r["predictions"]) == labels for r in rows if r["variant"] == v} for v in (a, b)}
    seeds = sorted(set(by[a]) & set(by[b]))
    if not seeds:
        raise KDLabError(f"no seed has both {a!r} and {b!r}.")
    right_a = np.stack([by[a][s] for s in seeds]).astype(float)  # [seeds, sentences]
    right_b = np.stack([by[b][s] for s in seeds]).astype(float)
    diffs = (right_a.mean(1) - right_b.mean(1)) * 100
    rng = np.random.default_rng(seed)
    delta = right_a - right_b
    n_s, n_x = delta.shape
    boot = np.empty(n_boot)
    for i in range(n_boot):
        ss = rng.integers(0, n_s, n_s)
        xs = rng.integers(0, n_x, n_x)
        boot[i] = delta[np.ix_(ss, xs)].mean() * 100
    t_p = float(ttest_rel(right_a.mean(1), right_b.mean(1)).pvalue) if n_s > 1 and diffs.std() > 0 else float("nan")
    below, above = float((boot <= 0).mean()), float((boot >= 0).mean())
    return {"a": a, "b": b, "seeds": n_s, "mean_diff": float(diffs.mean()),
            "sd_diff": float(diffs.std(ddof=1)) if n_s > 1 else float("nan"), "wins": int((diffs > 0).sum()),
            "ties": int((diffs == 0).sum()), "t_p": t_p,
            "boot_low": float(np.percentile(boot, 2.5)), "boot_high": float(np.percentile(boot, 97.5)),
            "boot_p": min(1.0, 2 * min(below, above)),
            "a_only": int(((right_a == 1) & (right_b == 0)).sum()), "b_only": int(((right_a == 0) & (right_b == 1)).sum())}


def comparison_table(rows: list[dict], pairs, labels):
    """``paired_comparison`` for each (a, b) in ``pairs`` whose variants both have runs, as a DataFrame."""
    have = {r["variant"] for r in rows}
    return pd.DataFrame([paired_comparison(rows, a, b, labels) for a, b in pairs if a in have and b in have])
