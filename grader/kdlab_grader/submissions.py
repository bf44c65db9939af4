"""Submissions as hostile files: one folder or .zip per student, opened with limits.

A .zip is read member by member with limits on its own size, the number of members, the bytes it unpacks to and
the compression ratio (a zip bomb stops at the limit, never fills the disk); a member whose path leaves the
submission (an absolute path, a ``..`` component, a drive) or that is a symlink is refused. A folder holding a
symlink is refused too (it could point at another student's work or the instructor's files). A notebook or
results.json over its size limit is refused before it is parsed. Every refusal is a ``SubmissionRefused`` whose
message becomes the student's gradebook row; the batch goes on.
"""

from __future__ import annotations

import json
import re
import stat
import zipfile
from itertools import accumulate
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from kdlab.errors import KDLabError


class SubmissionRefused(KDLabError):
    """A submission (or one of its files) that is not graded, and why."""


class NotJSON(SubmissionRefused):
    """A file that is not UTF-8 JSON at all (as opposed to one over a limit)."""


@dataclass(frozen=True)
class FileLimits:
    zip_bytes: int = 200 << 20  # the .zip itself
    members: int = 2000
    unpacked_bytes: int = 500 << 20  # everything it unpacks to
    ratio: float = 200.0  # unpacked / compressed, per member and overall (text compresses ~5-10x)
    notebook_bytes: int = 50 << 20
    results_bytes: int = 20 << 20
    json_depth: int = 64  # nesting of a notebook or results.json (a real notebook nests ~8 levels, results.json ~6)


def find_submissions(root: str | Path) -> list[tuple[str, Path]]:
    """``(student, path)`` for each sub-folder or .zip of ``root``, sorted by name (symlinks included, to be
    refused by ``open_submission`` with a row of their own)."""
    root = Path(root)
    if not root.is_dir():
        raise KDLabError(f"{root} is not a folder of submissions (one folder or .zip per student).")
    found = [(p.stem if p.suffix == ".zip" else p.name, p) for p in sorted(root.iterdir())
             if ((p.is_dir() or p.is_symlink()) and not p.name.startswith(".")) or p.suffix == ".zip"]
    if not found:
        raise KDLabError(f"{root} holds no submissions: put one folder or .zip per student there.")
    return found


def _safe_member(name: str) -> PurePosixPath:
    """The member's path inside the submission, compared by components; SubmissionRefused if it leaves it."""
    windows = PureWindowsPath(name)
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts or not posix.parts:
        raise SubmissionRefused(f"member {name!r} would be written outside the submission folder")
    if len(posix.parts) > 32 or any(len(part.encode("utf-8", "surrogateescape")) > 200 for part in posix.parts):
        raise SubmissionRefused(f"member {name[:60]!r}… has a name too long or too deep for a submission (at most 32 "
                                "folders, 200 bytes each)")
    return posix


def unpack_zip(path: Path, into: Path, limits: FileLimits) -> Path:
    """Extract ``path`` under ``into/<stem>`` within ``limits``; SubmissionRefused naming the first limit broken."""
    size = path.stat().st_size
    if size > limits.zip_bytes:
        raise SubmissionRefused(f"{path.name} is {size / 2**20:.0f} MiB, over the {limits.zip_bytes / 2**20:.0f} MiB "
                                "limit for a submission")
    target = into / path.stem
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SubmissionRefused(f"{path.name} is not a readable zip file ({exc})") from exc
    try:
        _unpack(archive, path, target, limits, size)
    except OSError as exc:  # a name this filesystem cannot hold, a member that is a file and a folder, ...
        raise SubmissionRefused(f"{path.name} cannot be unpacked here ({type(exc).__name__}: {exc.strerror or exc})") \
            from exc
    return target


def _unpack(archive: zipfile.ZipFile, path: Path, target: Path, limits: FileLimits, size: int) -> None:
    with archive:
        members = archive.infolist()
        if len(members) > limits.members:
            raise SubmissionRefused(f"{path.name} holds {len(members)} files, over the limit of {limits.members}")
        total = 0
        for info in members:
            relative = _safe_member(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SubmissionRefused(f"member {info.filename!r} is a symbolic link; links are not accepted")
            if info.is_dir():
                (target / relative).mkdir(parents=True, exist_ok=True)
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with archive.open(info) as src, open(destination, "wb") as dst:
                while chunk := src.read(1 << 20):  # count what really comes out, not what the header claims
                    written += len(chunk)
                    total += len(chunk)
                    if total > limits.unpacked_bytes:
                        raise SubmissionRefused(f"{path.name} unpacks to more than "
                                                f"{limits.unpacked_bytes / 2**20:.0f} MiB (a zip bomb?)")
                    if written > 1 << 20 and written > limits.ratio * max(1, info.compress_size):
                        raise SubmissionRefused(f"member {info.filename!r} expands more than {limits.ratio:g}× "
                                                "(a zip bomb?)")
                    dst.write(chunk)
        if total > 1 << 20 and total > limits.ratio * max(1, size):
            raise SubmissionRefused(f"{path.name} expands more than {limits.ratio:g}× (a zip bomb?)")


def refuse_links(folder: Path) -> None:
    """SubmissionRefused when ``folder`` is or holds a symbolic link."""
    if folder.is_symlink():
        raise SubmissionRefused(f"{folder.name} is a symbolic link; submit the folder itself")
    for path in folder.rglob("*"):
        if path.is_symlink():
            raise SubmissionRefused(f"{path.relative_to(folder)} is a symbolic link; links are not accepted (it "
                                    "could point at files outside the submission)")


def open_submission(path: Path, into: Path, limits: FileLimits) -> Path:
    """The submission's folder: ``path`` itself (checked for links) or its zip unpacked under ``into``."""
    if path.is_symlink() or path.is_dir():
        refuse_links(path)
        return path
    return unpack_zip(path, into, limits)


def find_file(folder: Path, name: str) -> Path | None:
    """The shallowest file called ``name`` under ``folder`` (Colab downloads nest folders)."""
    matches = sorted(folder.rglob(name), key=lambda p: (len(p.parts), str(p)))
    matches = [m for m in matches if "__MACOSX" not in m.parts and ".ipynb_checkpoints" not in m.parts
               and m.is_file() and not m.is_symlink()]
    return matches[0] if matches else None


def read_limited(path: Path, limit: int, what: str) -> str:
    """The text of ``path``; SubmissionRefused when it is over ``limit`` bytes."""
    size = path.stat().st_size
    if size > limit:
        raise SubmissionRefused(f"{what} is {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit")
    return path.read_text(encoding="utf-8")


_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest (brackets inside strings left out), at C speed: a 200,000-deep
    list is measured in milliseconds, never parsed."""
    steps = [1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text))]
    return max(accumulate(steps), default=0)


def read_json(path: Path, limit: int, what: str, max_depth: int = 64):
    """``path`` parsed as JSON within bounds: at most ``limit`` bytes, UTF-8, at most ``max_depth`` levels of
    nesting; SubmissionRefused saying which bound was broken or why it is not JSON (never a RecursionError)."""
    try:
        text = read_limited(path, limit, what)
    except UnicodeDecodeError as exc:
        raise NotJSON(f"{what} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    depth = json_depth(text)
    if depth > max_depth:
        raise SubmissionRefused(f"{what} nests {depth} levels deep, over the limit of {max_depth} (not a file "
                                "kdlab writes)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, and integers over 4,300 digits
        raise NotJSON(f"{what} is not valid JSON ({type(exc).__name__}: {str(exc)[:160]})") from exc
