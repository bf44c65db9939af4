"""Is a training run repeatable? The same `ce` student trained several times with the same seed and settings.

    python benchmarks/determinism.py [--samples 2000] [--threads 2]

Trains a 3-layer student cut from all-MiniLM-L6-v2 (the `cpu` profile's student, CE only, no teacher needed) on
the first ``--samples`` SST-2 sentences of the seeded shuffle, one epoch, in fresh processes:
(a) twice with ``--threads`` torch threads, (b) once with 1 thread, (c) once with another seed. Prints and appends
to BENCHMARKS.md the dev accuracy, how many of the 872 dev predictions differ from run (a1), and the largest weight
difference: it tells which of "same settings", "thread count" and "seed" move a result.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_once(samples: int, threads: int, seed: int, out: str, data: str) -> None:
    """One run in this process: train, save predictions and a weight checksum vector to ``out``."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from kdlab import lab
    from kdlab.distillation.training import distill
    from kdlab.models.teacher import load_teacher

    cfg = lab.setup("cpu", data=data, max_train_samples=samples, num_epochs=1.0, eval_steps=None, seed=seed,
                    runs_dir=str(Path(out) / "runs"), num_threads=threads)
    teacher = load_teacher("minilm-l6", seed=cfg.seed)
    result = distill(cfg, teacher.model, teacher.tokenizer, lab.load_data(cfg), "ce", resume=False)
    weights = torch.cat([p.detach().flatten() for p in result.model.parameters()]).numpy()
    np.save(Path(out) / "weights.npy", weights)
    (Path(out) / "result.json").write_text(json.dumps({
        "accuracy": result.metrics["accuracy"], "predictions": [int(p) for p in result.predictions],
        "threads": torch.get_num_threads(), "seconds": result.train_seconds}))


def main(argv=None) -> dict:
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sst2"))
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--_child", nargs=4, metavar=("SAMPLES", "THREADS", "SEED", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        samples, threads, seed, out = args._child
        train_once(int(samples), int(threads), int(seed), out, args.data)
        return {}
    runs = {"a1 (same settings)": (args.threads, args.seed), "a2 (same settings)": (args.threads, args.seed),
            "b (1 thread)": (1, args.seed), "c (seed + 1)": (args.threads, args.seed + 1)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (threads, seed) in runs.items():
            out = Path(tmp) / name.split()[0]
            out.mkdir()
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
            subprocess.run([sys.executable, __file__, "--data", args.data, "--_child", str(args.samples),
                            str(threads), str(seed), str(out)], check=True, env=env)
            res = json.loads((out / "result.json").read_text())
            res["weights"] = np.load(out / "weights.npy")
            results[name] = res
            print(f"{name}: {res['accuracy']:.2%} in {res['seconds']:.0f} s", flush=True)
    ref = results["a1 (same settings)"]
    rows = []
    for name, res in results.items():
        differ = sum(a != b for a, b in zip(res["predictions"], ref["predictions"]))
        rows.append({"run": name, "threads": res["threads"], "accuracy_%": 100 * res["accuracy"],
                     "predictions differing from a1": differ,
                     "max abs weight diff vs a1": float(np.abs(res["weights"] - ref["weights"]).max())})
    import pandas as pd

    from kdlab.measurement.records import append_markdown, markdown_table, report_header

    table = markdown_table(pd.DataFrame(rows))
    print(table)
    if not args.no_write:
        command = "python benchmarks/determinism.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        notes = [f"`ce` student, 3 layers cut from all-MiniLM-L6-v2, {args.samples} SST-2 sentences, 1 epoch, "
                 "each run in a fresh process; dev n = 872"]
        append_markdown(args.output, "Repeatability of one training run", report_header(command, "cpu", args.threads,
                                                                                       notes) + ["", table])
    return {"rows": rows}


if __name__ == "__main__":
    main()
