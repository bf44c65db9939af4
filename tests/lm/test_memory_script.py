"""benchmarks/lm_memory.py at a small size: both cases per loss run in their own process, give the same loss, and
the chunked JSD holds less memory than the whole one."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lm_memory.py"


def test_the_memory_benchmark_measures_whole_and_chunked_losses(tmp_path, capsys):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the high-water mark")
    spec = importlib.util.spec_from_file_location("lm_memory", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main(["--vocab", "20000", "--batch", "1", "--seq", "160", "--tokens", "128", "--chunk", "16",
                          "--kinds", "forward,jsd", "--json", str(tmp_path / "m.json")])
    rows = {(r["kind"], r["chunk_tokens"]): r for r in result["rows"]}
    assert set(rows) == {("forward", None), ("forward", 16), ("jsd", None), ("jsd", 16)}
    assert all(r["same_loss"] for r in rows.values())
    assert rows[("jsd", 16)]["loss_peak_mib"] < rows[("jsd", None)]["loss_peak_mib"]
    assert "| jsd | whole |" in capsys.readouterr().out and (tmp_path / "m.json").is_file()
