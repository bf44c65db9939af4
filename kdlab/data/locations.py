"""Settings that take "a Hub id or a local folder" (teacher, student, data, runs), decided once, here, before any
Hub lookup.

``locate(value, setting)`` says which one ``value`` is: a built-in name the caller lists (``minilm-l6``, ``hub``,
``synthetic``…), an existing path, a path that can only be local (``/…``, ``./…``, ``../…``, ``~…``, two or more
``/``, a backslash, a trailing ``/``), or else a Hub id (``name`` or ``owner/name``). A local value is checked at
once, each problem with its own message: the folder does not exist; a file stands where a folder belongs; the
folder lacks what the setting needs (``config.json`` for a model, ``train.tsv`` + ``dev.tsv`` or a ``save_to_disk``
folder for data). A ``runs`` folder is always local and is created when missing. Only a value that passes as a Hub
id ever reaches the Hub or its cache (whose id validation would otherwise answer a mistyped path with
``HFValidationError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kdlab.errors import KDLabError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
# what a local folder for each setting must hold (any one group), and the variable or field that sets it
NEEDS = {"teacher": ([("config.json",)], "KDLAB_TEACHER"), "student": ([("config.json",)], "the config's `student`"),
         "data": ([("train.tsv", "dev.tsv"), ("dataset_dict.json",)], "KDLAB_DATA_DIR"),
         "runs": ([], "KDLAB_RUNS_DIR")}


@dataclass(frozen=True)
class Location:
    """Where a setting's value points: ``kind`` is ``"builtin"``, ``"local"`` (``path`` set) or ``"hub"``."""

    setting: str
    value: str
    kind: str
    path: Path | None = None

    @property
    def source(self) -> str:
        """What a loader is given: the folder's path, or the Hub id / built-in name as written."""
        return str(self.path) if self.path is not None else self.value


def looks_like_path(value: str) -> bool:
    """A value that can only be a local path (a Hub id is ``name`` or ``owner/name``)."""
    return (value.startswith(("/", "./", "../", "~", ".\\")) or value.count("/") >= 2 or "\\" in value
            or value.endswith("/") or value in (".", ".."))


def locate(value, setting: str, builtin: tuple[str, ...] = ()) -> Location:
    """``value`` of ``setting`` (``teacher``, ``student``, ``data`` or ``runs``) as a built-in name, a checked local
    folder or a Hub id; KDLabError naming the problem and the fix otherwise."""
    needs, where = NEEDS[setting]
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise KDLabError(f"{setting} ({where}) is {value!r}: give a local folder or a Hub id such as 'owner/name'.")
    value = str(value)
    if value in builtin:
        return Location(setting, value, "builtin")
    path = Path(value).expanduser()
    if setting == "runs" or path.exists() or looks_like_path(value):
        if not path.exists():
            if setting == "runs":
                return Location(setting, value, "local", path)
            other = ("is neither 'hub', 'synthetic' nor an existing folder" if setting == "data" else
                     "is not a Hub id either (a Hub id is 'name' or 'owner/name')")
            raise KDLabError(f"{setting} folder {value} does not exist (resolved to {path.absolute()}), and {where} "
                             f"{other}. Check the path (relative paths start from {Path.cwd()}).")
        if not path.is_dir():
            raise KDLabError(f"{setting} {value} is a file, not a folder ({where}): give the folder that holds it "
                             f"({path.parent}), not the file itself.")
        if needs and not any(all((path / name).is_file() for name in group) for group in needs):
            wanted = " or ".join(" + ".join(group) for group in needs)
            hint = ("it must be a save_pretrained folder (model.save_pretrained(folder); "
                    "tokenizer.save_pretrained(folder))" if setting in ("teacher", "student") else
                    "GLUE-style TSVs with a header 'sentence<TAB>label', or a datasets.save_to_disk folder")
            raise KDLabError(f"{setting} folder {value} has no {wanted} ({where}): {hint}.")
        return Location(setting, value, "local", path)
    if not HUB_ID.match(value):
        raise KDLabError(f"{setting} {value!r} is neither an existing folder nor a Hub id ('name' or 'owner/name' of "
                         f"letters, digits, '-', '_', '.'); {where}: check its spelling.")
    return Location(setting, value, "hub")
