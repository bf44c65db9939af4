"""Peak memory of the full-vocabulary distillation losses, whole vs chunked (``kdlab.lm.losses``, ``chunk_tokens``).

Each case runs in its own subprocess (a fresh heap; torch's CPU tensors are invisible to ``tracemalloc``): it makes
the student's logits (fp32, requiring grad) and the teacher's, ``[B, S, V]`` with ``--tokens`` real targets and the
rest padding, then resets the process's resident-memory high-water mark (``/proc/self/clear_refs``), runs the loss
forward and backward, and reads the high-water mark (``VmHWM``). The child runs with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB: otherwise glibc's dynamic threshold keeps the freed memory of earlier
chunks resident, and the high-water mark measures the allocator's pooling instead of the live tensors. Printed per case: the peak of the whole process,
the memory the inputs already held, and the loss's own peak above them, in MiB and in ``[N, V]`` fp32 tensors
(N = B·S positions).

    python benchmarks/lm_memory.py --chunk 256,128                  # V = 50,257, 4,096 real tokens of 8 × 540
    python benchmarks/lm_memory.py --vocab 1000 --batch 2 --seq 40 --tokens 64   # seconds (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
    """A /proc/self/status field in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _child(args) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from kdlab.lm import losses

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, args.seq, args.vocab)
    student = (torch.randn(shape, generator=g) * 2).requires_grad_(True)
    teacher = torch.randn(shape, generator=g) * 2
    mask = torch.zeros(args.batch, args.seq, dtype=torch.bool)
    mask.view(-1)[: args.tokens] = True  # the first --tokens positions are real, the rest padding
    chunk = None if int(args.chunk) == 0 else int(args.chunk)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    before = _status("VmRSS")
    start = time.perf_counter()
    loss = losses.distillation_loss(student, teacher, mask, args.kind, chunk_tokens=chunk)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM")
    return {"kind": args.kind, "chunk_tokens": chunk, "loss": float(loss), "seconds": seconds,
            "peak_mib": peak / 1024, "inputs_mib": before / 1024, "loss_peak_mib": (peak - before) / 1024,
            "nv_tensor_mib": args.batch * args.seq * args.vocab * 4 / 2**20,
            "grad_norm": float(student.grad.norm())}


def run_case(args, kind: str, chunk: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--kind", kind, "--chunk", str(chunk),
           "--vocab", str(args.vocab), "--batch", str(args.batch), "--seq", str(args.seq),
           "--tokens", str(args.tokens), "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20), "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=540)
    p.add_argument("--tokens", type=int, default=4096, help="real (unmasked) positions; the rest is padding")
    p.add_argument("--chunk", default="256", help="chunk_tokens of the chunked cases, comma-separated")
    p.add_argument("--kinds", default="forward,jsd")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kind", default="forward", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.tokens > args.batch * args.seq:
        p.error(f"--tokens {args.tokens} > batch × seq = {args.batch * args.seq}")
    if args.child:
        print(json.dumps(_child(args)))
        return {}
    rows = []
    for kind in args.kinds.split(","):
        whole = run_case(args, kind, 0)
        for r in [whole] + [run_case(args, kind, int(c)) for c in str(args.chunk).split(",")]:
            r["ratio_to_whole"] = r["loss_peak_mib"] / whole["loss_peak_mib"]
            r["nv_tensors"] = r["loss_peak_mib"] / r["nv_tensor_mib"]
            r["same_loss"] = abs(r["loss"] - whole["loss"]) <= 1e-4 * abs(whole["loss"])
            rows.append(r)
    print(f"V = {args.vocab:,}, {args.tokens:,} real tokens of {args.batch} × {args.seq}, fp32, "
          f"{args.threads} thread(s); one [N, V] fp32 tensor = {rows[0]['nv_tensor_mib']:.0f} MiB; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| loss | chunk_tokens | process peak MiB | inputs MiB | loss's own peak MiB | in [N, V] tensors | "
          "vs whole | s | same value |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['chunk_tokens'] or 'whole'} | {r['peak_mib']:.0f} | {r['inputs_mib']:.0f} | "
              f"{r['loss_peak_mib']:.0f} | {r['nv_tensors']:.2f} | {r['ratio_to_whole']:.2f} | {r['seconds']:.1f} | "
              f"{r['same_loss']} |")
    result = {"settings": {k: getattr(args, k) for k in ("vocab", "batch", "seq", "tokens", "chunk", "threads")},
              "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
