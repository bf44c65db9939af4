"""What students install: the wheel holds every subpackage and data file kdlab needs, and no answers."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_kdlab_without_the_solutions(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("kdlab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {n for n in names if n.startswith("kdlab/")}
    source = {str(p.relative_to(ROOT)) for p in (ROOT / "kdlab").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert source <= packaged, sorted(source - packaged)  # every module and data file (rubric, metrics, harness)
    assert not [n for n in names if "solution" in n.lower() or n.startswith("instructor")]
