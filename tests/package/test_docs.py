"""The documents a newcomer reads first, checked against the repository.

- every repository path the README names (a backticked path or a link to a file or folder) exists, and every
  ``kdlab.…`` module it names is a module of the package;
- every link to a BENCHMARKS.md section (``BENCHMARKS.md#anchor`` in the README, the notebooks and the instructor's
  notes) lands on one of its headings, by GitHub's anchor rules, and so does every ``#anchor`` link inside
  BENCHMARKS.md and inside the README; BENCHMARKS.md opens with what holds now and ends with its archive, where new
  benchmark sections never land;
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


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger): the rendered text lower-cased, every character that is
    not a letter, mark, digit, ``_``, ``-`` or space dropped, spaces turned into ``-``. ``code`` keeps its text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    kept = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl"}  # letters, marks, digits; not ² or ½
    keep = "".join(c for c in text if c in "-_ " or unicodedata.category(c) in kept)
    return keep.replace(" ", "-")


def anchors(markdown: str) -> list[str]:
    """Every heading's anchor in order; a repeated anchor gets ``-1``, ``-2``, … as on GitHub. Code blocks skipped."""
    out, seen = [], {}
    body = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", body, flags=re.M):
        slug = github_anchor(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.append(slug if n == 0 else f"{slug}-{n}")
    return out


def benchmark_links(text: str) -> list[str]:
    """The anchors of ``BENCHMARKS.md#…`` links in ``text`` (URL-decoded)."""
    return [unquote(a) for a in re.findall(r"BENCHMARKS\.md#([^)\s\"'>\]]+)", text)]


def linking_files(root: Path = ROOT) -> list[Path]:
    """The files whose links into BENCHMARKS.md are checked: the README, the notebooks, the instructor's notes."""
    return [root / "README.md", *sorted(root.glob("*.ipynb")), *sorted(root.glob("advanced/*.ipynb")),
            *sorted(root.glob("instructor/*.md")), *sorted(root.glob("benchmarks/*.md"))]


def test_links_to_benchmark_sections_land_on_headings():
    targets = set(anchors(BENCHMARKS.read_text(encoding="utf-8")))
    broken = {}
    for path in linking_files():
        for anchor in benchmark_links(path.read_text(encoding="utf-8")):
            if anchor not in targets:
                broken.setdefault(str(path.relative_to(ROOT)), []).append(anchor)
    broken_inside = {}  # links within one document: BENCHMARKS.md's own, the README's own
    for path in (BENCHMARKS, README):
        text = path.read_text(encoding="utf-8")
        own = set(anchors(text))
        broken_inside[path.name] = [unquote(a) for a in re.findall(r"\]\(#([^)\s]+)\)", text) if unquote(a) not in own]
    assert broken == {} and broken_inside == {"BENCHMARKS.md": [], "README.md": []}
    readme_links = benchmark_links(README.read_text(encoding="utf-8"))
    assert len(readme_links) >= 5  # "What you will see" links its numbers' sections


def test_the_anchor_checker_follows_githubs_rules():
    text = ("# Benchmarks\n## Quality over 5 seeds: the `cpu` defaults (`transfer-4k`) — 2026-11-26\n"
            "## 2026-11-22 13:23 · Inference latency · AMD EPYC, 2 threads\n## Issue 24's controls\n"
            "## Combined compression\n## Combined compression\n```\n# not a heading\n```\n### 效能 ± 評估\n")
    assert anchors(text) == ["benchmarks", "quality-over-5-seeds-the-cpu-defaults-transfer-4k--2026-11-26",
                             "2026-11-22-1323--inference-latency--amd-epyc-2-threads", "issue-24s-controls",
                             "combined-compression", "combined-compression-1", "效能--評估"]
    links = benchmark_links("see [a](BENCHMARKS.md#issue-24s-controls) and [b](BENCHMARKS.md#issue-24-controls)")
    assert [a in anchors(text) for a in links] == [True, False]


def test_benchmarks_open_with_what_holds_now_and_end_with_the_archive():
    from kdlab.measurement.records import ARCHIVE_HEADING

    text = BENCHMARKS.read_text(encoding="utf-8")
    h1 = re.findall(r"^# .+$", text, flags=re.M)
    assert h1 == ["# Benchmarks", "# Current sections", ARCHIVE_HEADING]
    assert re.findall(r"^## .+$", text, flags=re.M)[0] == "## What holds now"
    summary = text.split("\n# Current sections", 1)[0]
    assert summary.count("\n### ") >= 5 and all(  # every summary row links the section it copies from
        re.search(r"\]\(#", row) for row in re.findall(r"^\| (?!result|setting|start|method|---).*$", summary, re.M))
    archive = text.split(f"\n{ARCHIVE_HEADING}\n", 1)[1]
    for section in re.split(r"^## ", archive, flags=re.M)[1:]:
        assert "superseded" in section.lower(), section.splitlines()[0]


def test_new_benchmark_sections_land_before_the_archive(tmp_path):
    from kdlab.measurement.records import ARCHIVE_HEADING, append_markdown

    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n## old\n\nkept\n\n{ARCHIVE_HEADING}\n\n## older\n\nsuperseded\n")
    append_markdown(path, "new — 2026-12-06", ["- command: `x`", "", "| a |", "|---|", "| 1 |"])
    text = path.read_text()
    assert text == (f"# Benchmarks\n\n## old\n\nkept\n\n## new — 2026-12-06\n\n- command: `x`\n\n"
                    f"| a |\n|---|\n| 1 |\n"
                    f"\n{ARCHIVE_HEADING}\n\n## older\n\nsuperseded\n")
    plain = tmp_path / "plain.md"
    plain.write_text("# B\n\n## one\n\nx\n")
    append_markdown(plain, "two", ["y"])
    assert plain.read_text() == "# B\n\n## one\n\nx\n\n## two\n\ny\n"
    fresh = append_markdown(tmp_path / "sub" / "new.md", "first", ["z"])
    assert fresh.read_text().startswith("# Benchmarks\n") and fresh.read_text().endswith("## first\n\nz\n")


def requirement_problems(text: str, extras: set[str], setup_extras: set[str]) -> list[str]:
    """What is wrong with a requirements.txt whose versions must come from pyproject.toml: every requirement line is
    the project itself (``-e .[a,b]`` or ``.[a,b]``), naming only ``extras`` that pyproject.toml defines, and the
    same extras as ``bash setup.sh`` installs by default (``setup_extras``)."""
    problems, named = [], set()
    lines = [line.split(" #", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        return ["no requirement at all"]
    for line in lines:
        match = re.fullmatch(r"(?:-e\s+)?\.(?:\[([\w\s,-]*)\])?", line)
        if match is None:
            problems.append(f"{line!r} names a package or version of its own (versions live in pyproject.toml)")
            continue
        names = {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
        problems += [f"extra {e!r} is not defined in pyproject.toml" for e in sorted(names - extras)]
        named |= names
    if named != setup_extras:
        problems.append(f"extras {sorted(named)} differ from what `bash setup.sh` installs, {sorted(setup_extras)}")
    return problems


def _setup_extras() -> set[str]:
    match = re.search(r'^extras="([\w,]+)"', (ROOT / "setup.sh").read_text(encoding="utf-8"), flags=re.M)
    assert match, "setup.sh no longer sets its default extras as extras=\"…\""
    return set(match.group(1).split(","))


def test_requirements_take_their_versions_and_extras_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project["optional-dependencies"])
    assert requirement_problems(REQUIREMENTS.read_text(encoding="utf-8"), extras, _setup_extras()) == []
    assert "torch==" in REQUIREMENTS.read_text(encoding="utf-8")  # the comment on installing torch first


def test_the_requirements_checker_catches_versions_and_unknown_extras():
    extras, setup = {"lab", "run", "dev"}, {"lab", "run"}
    assert requirement_problems("# a comment\n-e .[lab,run]\n", extras, setup) == []
    assert requirement_problems(".[run, lab]  # same\n", extras, setup) == []
    assert len(requirement_problems("-e .[lab,run]\ntorch==2.13.0\n", extras, setup)) == 1
    assert requirement_problems("-e .[lab,gpu]\n", extras, setup)[0] == "extra 'gpu' is not defined in pyproject.toml"
    assert "differ from" in requirement_problems("-e .[dev]\n", extras, setup)[0]
    assert requirement_problems("# nothing\n", extras, setup) == ["no requirement at all"]


def test_pip_install_r_requirements_into_a_fresh_environment_gives_an_importable_kdlab(tmp_path):
    """A fresh venv that sees this environment's packages (a ``.pth`` listing its site-packages, since
    ``--system-site-packages`` would show the base interpreter's, not this venv's), so pip installs only kdlab:
    offline (``--no-index``), without building in isolation, in seconds. kdlab must then import from this
    repository and be recorded as installed in the new environment."""
    import site
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True,
                   timeout=60)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    ours = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]]) if Path(p).is_dir()]
    (Path(purelib) / "zz_parent_environment.pth").write_text("\n".join(ours) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_CACHE_DIR="1")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                              "--no-build-isolation", "-r", str(REQUIREMENTS)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(python), "-c", "import importlib.metadata as m, kdlab; "
                            "print(kdlab.__file__); print(m.distribution('kdlab')._path)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    module, record = check.stdout.split()
    assert Path(module).resolve() == (ROOT / "kdlab" / "__init__.py").resolve()
    assert Path(record).resolve().is_relative_to(venv.resolve()), record  # installed here, not found elsewhere


def named_sections(text: str) -> list[str]:
    """Section names quoted right after ``BENCHMARKS.md`` (``BENCHMARKS.md「Issue 24's controls」``,
    ``BENCHMARKS.md, "Combined compression"``): the way the notebooks point into it in prose."""
    return re.findall(r"BENCHMARKS\.md[ ,，(（]{0,3}[「\"“]([^」\"”\n]+)[」\"”]", text)


def _prose(path: Path) -> str:
    if path.suffix == ".ipynb":
        import json

        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
    return path.read_text(encoding="utf-8")


def test_sections_named_in_prose_are_headings_of_benchmarks():
    headings = [h.replace("`", "") for h in re.findall(r"^#{1,6} (.+)$", BENCHMARKS.read_text(encoding="utf-8"), re.M)]
    missing = {}
    for path in [README, *sorted(ROOT.glob("*.ipynb")), *sorted(ROOT.glob("advanced/*.ipynb"))]:
        for name in named_sections(_prose(path)):
            if not any(name.replace("`", "") in h for h in headings):
                missing.setdefault(path.name, []).append(name)
    assert missing == {}
    assert named_sections('see BENCHMARKS.md「Issue 24\'s controls」 and BENCHMARKS.md ("Which component")') == [
        "Issue 24's controls", "Which component"]
