"""Issue 33 finding 6: 04 teaches ONNX Runtime, so every way a student installs the lab brings it (setup.sh's
default, requirements.txt, the Colab cell), and CI's environment has it (no "skipped" ONNX row in CI either)."""
import re
import tomllib
from pathlib import Path

from kdlab.course import colab

ROOT = Path(__file__).resolve().parents[2]


def _extras(spec: str) -> set[str]:
    found = re.search(r"\[([a-z,]+)\]", spec)
    return set(found.group(1).split(",")) if found else set()


def test_the_onnx_extra_holds_onnx_runtime():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("onnxruntime") for d in extras["onnx"])
    assert any("onnx" in _extras(d) for d in extras["dev"])  # CI installs it (setup.sh --dev)


def test_every_student_install_brings_the_onnx_extra():
    setup = (ROOT / "setup.sh").read_text()
    default = re.search(r'^extras="([a-z,]+)"', setup, re.M).group(1)
    assert "onnx" in default.split(","), "bash setup.sh (the lab's own setup) must install ONNX Runtime"
    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("-e .")]
    assert requirements and "onnx" in _extras(requirements[0])
    assert "onnx" in _extras(colab.install_source())
    assert "[onnx]" in colab.colab_cell()  # the uploaded-folder branch too


def test_onnx_runtime_is_importable_here():
    import onnxruntime  # noqa: F401  (a failure here means 04's ONNX rows would say "skipped")
