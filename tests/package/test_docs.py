"""The documents a newcomer reads first, checked against the repository.

- every repository path the README names (a backticked path or a link to a file or folder) exists, and every
  ``kdlab.…`` module it names is a module of the package;
- every link to a BENCHMARKS.md section (``BENCHMARKS.md#anchor`` in the README, the notebooks and the instructor's
  notes; ``#anchor`` inside BENCHMARKS.md) lands on one of its headings, by GitHub's anchor rules;
- ``requirements.txt`` holds no versions of its own (they live in pyproject.toml), names only extras pyproject.toml
  defines, and ``pip install -r requirements.txt`` into a fresh environment gives an importable kdlab.

Each checker is a plain function of text, so the tests also show it failing on a stale path or a broken anchor.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
REQUIREMENTS = ROOT / "requirements.txt"

# Folders the lab writes or installs into, never part of a clean clone: a path under them names an output.
GENERATED = {"runs", ".venv", "build", "dist", "solved", "grades", "submissions"}
# A bare file name (no folder) that is one of these, or has one of these endings, is a top-level file (others, such as
# `config.json` or `containment.txt`, name what the lab or the grader writes).
TOP_LEVEL_FILES = {"pyproject.toml", "requirements.txt", "README.md", "BENCHMARKS.md"}
TOP_LEVEL_SUFFIXES = (".sh", ".ipynb")
_PATHLIKE = re.compile(r"^[\w.\-/]+$")


def _top_level_folders(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and p.name not in GENERATED and p.name != ".git"}


def named_paths(text: str, root: Path = ROOT) -> set[str]:
    """The repository paths ``text`` names: backticked spans and link targets that look like a path into one of
    the repository's top-level folders (``tests/distillation/test_ddp.py``, ``kdlab/course/``), a top-level file
    (``setup.sh``, ``01-Setup.ipynb``) or any relative link target (``[x](BENCHMARKS.md#y)`` → ``BENCHMARKS.md``).
    Outputs (``runs/<profile>/``), placeholders and URLs are not paths of the repository."""
    folders = _top_level_folders(root)
    found = set()
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))
    words = [w.strip("'\"();,") for chunk in blocks + spans for w in chunk.split()]
    links = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"^(\w+:|#)", t)]
    for raw in words + links:
        candidate = raw.split("#", 1)[0].removeprefix("./").rstrip("/")
        if not candidate or not _PATHLIKE.match(candidate) or ".." in candidate.split("/"):
            continue
        first = candidate.split("/", 1)[0]
        if raw in links or ("/" in candidate and first in folders) or (
                "/" not in candidate and (candidate in TOP_LEVEL_FILES or candidate.endswith(TOP_LEVEL_SUFFIXES))):
            found.add(candidate)
    return found


def named_modules(text: str) -> set[str]:
    """Dotted ``kdlab.…`` names in backticks (``kdlab.data.augment``, ``kdlab.lab.train_variant``)."""
    names = re.findall(r"`(kdlab(?:\.\w+)+)", text)
    return {m for m in names if m.rsplit(".", 1)[1] not in {"json", "py", "toml", "md", "txt"}}


def missing_module(name: str, root: Path = ROOT) -> str | None:
    """Why ``name`` (``kdlab.sub.module[.attribute]``) is not in the package, or None when it is: the longest prefix
    that is a module or package must exist, and the first name after it must appear in that module's source."""
    parts = name.split(".")
    path = root
    for i, part in enumerate(parts):
        if (path / part / "__init__.py").is_file():
            path = path / part
            continue
        if (path / f"{part}.py").is_file():
            source = (path / f"{part}.py").read_text(encoding="utf-8")
            rest = parts[i + 1:]
            break
        source = (path / "__init__.py").read_text(encoding="utf-8") if i > 1 else ""
        rest = parts[i:]
        if i <= 1:
            return f"no module {'.'.join(parts[:i + 1])}"
        break
    else:
        return None
    if rest and not re.search(rf"\b{re.escape(rest[0])}\b", source):
        return f"{rest[0]} is not in {'.'.join(parts[:len(parts) - len(rest)])}"
    return None


def test_every_path_the_readme_names_exists():
    readme = README.read_text(encoding="utf-8")
    paths = named_paths(readme)
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == [], f"the README names paths that do not exist: {missing}"
    assert {"setup.sh", "run_lab.sh", "test.sh", "01-Setup.ipynb", "BENCHMARKS.md"} <= paths  # the checker sees them


def test_every_module_the_readme_names_exists():
    readme = README.read_text(encoding="utf-8")
    modules = named_modules(readme)
    assert "kdlab.distillation.losses.DistillationLoss" in modules
    problems = {m: why for m in sorted(modules) if (why := missing_module(m))}
    assert problems == {}


def test_the_path_checker_catches_a_stale_path(tmp_path):
    (tmp_path / "tests" / "distillation").mkdir(parents=True)
    (tmp_path / "tests" / "distillation" / "test_ddp.py").write_text("")
    text = ("DDP is tested (`tests/test_ddp.py`, `tests/distillation/test_ddp.py`); outputs go to "
            "`runs/<profile>/students/`; see [the benchmarks](BENCHMARKS.md#x) and `setup.sh`; "
            "`my_distill.py` is yours; https://example.org/a/b is not a path.")
    paths = named_paths(text, tmp_path)
    assert paths == {"tests/test_ddp.py", "tests/distillation/test_ddp.py", "BENCHMARKS.md", "setup.sh"}
    assert [p for p in sorted(paths) if not (tmp_path / p).exists()] == ["BENCHMARKS.md", "setup.sh",
                                                                         "tests/test_ddp.py"]
    assert missing_module("kdlab.distillation.losses.kd_loss") is None
    assert missing_module("kdlab.distillation.losses.no_such_loss") is not None
    assert missing_module("kdlab.hf_metrics") is not None
