"""The timed reference run behind ``kdlab run``'s time estimate: a finished ``python -m kdlab run --profile P``
becomes ``kdlab/course/lab_timing.json``'s entry for P, with this machine's calibrated training-step time measured
now (run it right after the lab run, on the same idle machine). Prints and appends to BENCHMARKS.md.

    KDLAB_DATA_DIR=../shared/data/sst2 python -m kdlab run --profile cpu   # the run, timed per notebook
    python benchmarks/lab_timing.py runs/cpu                                # -> lab_timing.json + BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdlab.course.reference import TIMING_FILE, export_lab_timing, timing_entry  # noqa: E402
from kdlab.measurement.records import append_markdown, report_header  # noqa: E402
from kdlab.measurement.timing import machine_summary  # noqa: E402
from kdlab.report import load_results  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="the run folder of a finished `kdlab run` (e.g. runs/cpu)")
    p.add_argument("--timing-file", default=str(TIMING_FILE))
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    from kdlab.config import KDConfig
    from kdlab.measurement.calibration import step_seconds

    results = load_results(args.run_dir)
    cfg = KDConfig(**{k: v for k, v in (results.get("config") or {}).items() if k in KDConfig.__dataclass_fields__})
    seconds = step_seconds(cfg)
    import torch

    machine = machine_summary("cuda" if torch.cuda.is_available() else "cpu", cfg.num_threads or torch.get_num_threads())
    name = f"{machine['device']}, {machine['cores']} cores"
    entry = timing_entry(results, seconds, name, dt.date.today().isoformat())
    lines = [f"{name}: {s / 60:.1f} min" for name, s in entry["notebook_seconds"].items()]
    line = (f"profile `{cfg.profile}`: whole lab {entry['total_seconds'] / 60:.1f} min ({'; '.join(lines)}; the "
            f"teacher fine-tune {entry['teacher_finetune_seconds'] / 60:.1f} min of 01); calibrated MiniLM step "
            f"{1000 * seconds:.0f} ms")
    print(line)
    if not args.no_write:
        export_lab_timing(cfg.profile, entry, args.timing_file)
        command = "python benchmarks/lab_timing.py " + " ".join(argv if argv is not None else sys.argv[1:])
        head = report_header(command, "cpu", cfg.num_threads or 0, [f"run folder: {args.run_dir}"])
        title = f"The lab timed whole, the reference of `kdlab run`'s estimate — {entry['date']}"
        print(f"appended to {append_markdown(args.output, title, head + ['', line])}")
    return entry


if __name__ == "__main__":
    main()
