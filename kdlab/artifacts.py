"""Writing run artifacts so that an interruption never leaves a half-written file where a good one was.

Files are written to a temporary sibling and moved into place with ``os.replace`` (atomic on POSIX);
folders are written next to the target and swapped in, the old one removed only after the new one is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kdlab.errors import KDLabError


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``path`` whole, on error it is discarded.

    >>> with atomic_dir("runs/cpu/students/minilm") as tmp:
    ...     model.save_pretrained(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Delete what an interrupted ``atomic_dir``/``atomic_write_text`` left beside ``path`` (``.name.*.tmp``
    folders or files, ``.name.old``); the target itself is untouched. Returns what was removed."""
    path = Path(path)
    removed = []
    for orphan in [*path.parent.glob(f".{path.name}.*.tmp"), path.with_name(f".{path.name}.old")]:
        if orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)
            removed.append(orphan)
        elif orphan.exists():
            orphan.unlink(missing_ok=True)
            removed.append(orphan)
    return removed


def read_json(path: str | os.PathLike, default=None):
    """Read JSON from ``path``; ``default`` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def update_json(path: str | os.PathLike, updates: dict) -> dict:
    """Merge ``updates`` into the JSON object at ``path`` (created if missing) and write it back atomically."""
    data = read_json(path, default={}) or {}
    data.update(updates)
    atomic_write_json(path, data)
    return data


def require(path: str | os.PathLike, made_by: str) -> Path:
    """Return ``path`` if it exists, else stop with a message naming the notebook or step that makes it."""
    path = Path(path)
    if not path.exists():
        raise KDLabError(f"{path} is missing: run {made_by} first (with the same KDLAB_PROFILE).")
    return path
