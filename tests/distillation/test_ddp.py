"""Distributed data parallel (one process per device, each with its own Q/K/V hooks): two CPU processes on the
gloo backend through ``torchrun``, the path kdlab recommends for several GPUs instead of nn.DataParallel."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "helpers" / "ddp_worker.py"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
         str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_both_ranks_train_under_ddp(ddp_run):
    for rank in ddp_run:
        assert rank["world_size"] == 2
        assert rank["wrapped"] == "DistributedDataParallel"
        assert len(rank["losses"]) == 3 and all(math.isfinite(x) and x > 0 for x in rank["losses"])


def test_ranks_end_with_the_same_student(ddp_run):
    # gradients are all-reduced: both processes hold identical weights after every step
    assert ddp_run[0]["checksum"] == pytest.approx(ddp_run[1]["checksum"], rel=0, abs=1e-9)


def test_each_rank_captures_its_own_batch(ddp_run):
    # the attention term is logged per process before any reduction: different shards, different values
    assert all(x > 0 for rank in ddp_run for x in rank["attention"])
    assert ddp_run[0]["attention"] != ddp_run[1]["attention"]


def test_callers_teacher_is_not_frozen_in_place(ddp_run):
    assert all(rank["teacher_requires_grad"] for rank in ddp_run)
