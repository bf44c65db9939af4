"""Running untrusted student code in a child process, contained as well as the machine allows.

Every mode (``basic``, ``bwrap``, ``docker``) gives the child:

- a throw-away working folder, which is also its ``HOME`` and ``TMPDIR``, removed afterwards;
- an environment built from an allowlist (``ENVIRONMENT``): none of the instructor's variables (tokens, keys) reach
  it, nor the process that starts it;
- limits on address space (memory), CPU time, file size and processes (``Limits``); a wall-clock timeout that kills
  the whole process group; stdout and stderr kept only up to ``Limits.output_bytes``.

``bwrap`` (Linux, the Debian package ``bubblewrap``) adds: new network, PID, IPC and UTS namespaces (no network,
not even loopback; the grader's processes and their command lines are invisible), no capabilities, and a
filesystem view that holds only ``/usr``, Python and its packages (read-only, kdlab itself masked) and the
throw-away folder — not the submissions, the gradebook or the instructor's files. ``docker`` runs the child in a
container of an image the instructor names, with ``--network none`` and the same limits. ``basic`` gives only the
limits: the child then runs as the grader's user, can read and write what that user can, and reach the network.

``auto`` (the default) is confined or nothing: bubblewrap where it works, else Docker when an image is named; where
neither is available it stops with ``Unconfined`` (a ``KDLabError``) before any student code runs, saying what
``basic`` would expose and how to fix it or accept it (``--sandbox basic``).

``Sandbox.protections()`` lists what the chosen mode gives, for the gradebook; nothing is claimed that did not apply.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kdlab.errors import KDLabError

MODES = ("auto", "bwrap", "docker", "basic")
INSIDE = "/sandbox"  # the throw-away folder as the child sees it (bwrap, docker)
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")  # cgroup v1 pids controller: a process limit that binds root too


@dataclass(frozen=True)
class Limits:
    """What one child may use. ``processes`` counts threads too (torch starts a few)."""

    memory_bytes: int = 4 << 30
    cpu_seconds: int = 300
    file_bytes: int = 64 << 20
    processes: int = 64
    output_bytes: int = 64 << 10

    def describe(self) -> str:
        return (f"{self.memory_bytes / 2**30:g} GiB address space, {self.cpu_seconds} s CPU, "
                f"{self.file_bytes / 2**20:g} MiB per file, {self.processes} processes/threads")


def environment(folder: str) -> dict[str, str]:
    """The child's whole environment (an allowlist: nothing is inherited)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
            "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


@dataclass
class Completed:
    """What came back from one child: its exit status, whether the timeout killed it, the start of its stdout and
    stderr, and the bytes of the output files asked for (each at most ``Limits.file_bytes``)."""

    returncode: int | None
    timed_out: bool
    seconds: float
    stdout: str = ""
    stderr: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def _python_roots() -> list[Path]:
    """Folders the child's Python needs: its installation, the virtual environment, the package folders."""
    roots = {Path(p).resolve() for p in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix)}
    for p in [*site.getsitepackages(), site.getusersitepackages()]:
        if Path(p).is_dir():
            roots.add(Path(p).resolve())
    roots = sorted(roots, key=lambda p: len(p.parts))
    kept = []
    for root in roots:  # a folder inside another bound one needs no bind of its own
        if not any(root == k or k in root.parents for k in kept):
            kept.append(root)
    return kept


def _kdlab_inside(roots: list[Path]) -> list[Path]:
    """kdlab's and the grader's own folders where they lie inside what the child sees (installed, not editable)."""
    import kdlab

    import kdlab_grader

    folders = [Path(m.__file__).resolve().parent for m in (kdlab, kdlab_grader)]
    return [f for f in folders if any(r in f.parents for r in roots)]


def bwrap_command(folder: Path, argv: list[str], env: dict[str, str]) -> list[str]:
    """The bubblewrap command line that runs ``argv`` with ``folder`` mounted at ``/sandbox``."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", "--ro-bind", "/usr", "/usr"]
    # /tmp is an empty tmpfs first, so a Python or venv that lives under /tmp is bound back on top of it (read-only)
    for top in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    roots = _python_roots()
    for root in roots:
        if not str(root).startswith("/usr/"):
            cmd += ["--ro-bind", str(root), str(root)]
    for masked in _kdlab_inside(roots):
        cmd += ["--tmpfs", str(masked)]
    cmd += ["--bind", str(folder), INSIDE, "--chdir", INSIDE, "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + argv


def docker_command(image: str, folder: Path, argv: list[str], env: dict[str, str], limits: Limits) -> list[str]:
    """``docker run`` of ``argv`` in ``image``: no network, read-only root, the folder at ``/sandbox``."""
    cmd = ["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
           "--memory", str(limits.memory_bytes), "--pids-limit", str(limits.processes), "--cpus", "1",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-v", f"{folder}:{INSIDE}", "-w", INSIDE]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    return cmd + [image, *argv]


def _own_threads() -> int:
    """Threads of every process of this user now (RLIMIT_NPROC counts them all)."""
    uid, total = os.getuid(), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    total += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                continue
    return total


def _pids_cgroup(limit: int) -> Path | None:
    """A fresh pids cgroup (v1) capped at ``limit`` processes, where this user may make one (root); else None."""
    if not (PIDS_CGROUP / "cgroup.procs").is_file() or not os.access(PIDS_CGROUP, os.W_OK):
        return None
    group = PIDS_CGROUP / f"kdlab-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(limit))
        return group
    except OSError:
        shutil.rmtree(group, ignore_errors=True)
        return None


@lru_cache(maxsize=None)
def bwrap_works() -> str | None:
    """None when bubblewrap can run Python here; otherwise why not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(INSIDE)
        try:
            proc = subprocess.run(bwrap_command(Path(tmp), [sys.executable, "-I", "-c", "print('ok')"], env),
                                  capture_output=True, text=True, timeout=60, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap failed to start: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        return f"bubblewrap cannot run Python here: {proc.stderr.strip()[-200:]}"
    return None


def unconfined_message(problem: str) -> str:
    """Why ``--sandbox auto`` stops, what ``basic`` would expose, and the three ways on."""
    return (f"--sandbox auto found no containment: {problem}; and no Docker image was named. Graded in --sandbox "
            "basic, the students' code would run as your user: it could read and write your files (your keys, "
            "other students' submissions, the gradebook) and reach the network. Nothing was run. Fix it: install "
            "bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap), or use Docker (--sandbox docker "
            "--docker-image IMAGE, an image with Python, torch, numpy, safetensors). Or accept it for a class you "
            "trust: --sandbox basic.")


class Unconfined(KDLabError):
    """``--sandbox auto`` where neither bubblewrap nor Docker can contain the child."""


class Sandbox:
    """One containment mode with its limits; ``run`` starts a child in it."""

    def __init__(self, mode: str = "auto", limits: Limits | None = None, docker_image: str | None = None):
        if mode not in MODES:
            raise KDLabError(f"sandbox mode {mode!r}: use one of {', '.join(MODES)}.")
        self.limits = limits or Limits()
        self.docker_image = docker_image
        self.note = ""
        if mode == "auto":
            problem = bwrap_works()
            if problem is None:
                mode = "bwrap"
            elif docker_image and shutil.which("docker") is not None:
                mode, self.note = "docker", f"bwrap unavailable: {problem}"
            else:
                raise Unconfined(unconfined_message(problem))
        elif mode == "bwrap" and (problem := bwrap_works()) is not None:
            raise KDLabError(f"--sandbox bwrap: {problem}. Use --sandbox basic to grade without it (weaker: the "
                             "student code can then read what your user can, and use the network).")
        elif mode == "docker":
            if not docker_image:
                raise KDLabError("--sandbox docker needs --docker-image IMAGE: an image with Python, torch and "
                                 "numpy (the versions the students used).")
            if shutil.which("docker") is None:
                raise KDLabError("--sandbox docker: the docker command is not installed.")
        self.mode = mode
        self._root = os.geteuid() == 0

    def protections(self) -> str:
        """What this mode gives the grader, in one line for the gradebook."""
        common = f"throw-away folder and HOME, allowlisted environment, limits: {self.limits.describe()}"
        if self.mode == "bwrap":
            extra = "no network, own PID/IPC/UTS namespaces, no capabilities, filesystem view: Python + packages " \
                    "(read-only, kdlab and its grader masked) + the throw-away folder"
        elif self.mode == "docker":
            extra = f"container {self.docker_image}: no network, read-only root filesystem, no capabilities"
        else:
            extra = "NO network or filesystem isolation (the child runs as your user)"
        if self.mode != "docker" and self._root and _pids_cgroup_possible() is False:
            common = common.replace(f", {self.limits.processes} processes/threads", ", processes: not limited "
                                    "(root without a writable pids cgroup)")
        note = f"; {self.note}" if self.note else ""
        return f"{self.mode}: {extra}; {common}{note}"

    def run(self, script: str, files: dict[str, bytes], outputs: tuple[str, ...], timeout: float) -> Completed:
        """Run ``python script`` in a fresh folder holding ``files``; return what it printed and the ``outputs``
        files it wrote. The child never sees the grader's environment, and is killed with its whole process group
        after ``timeout`` seconds."""
        folder = Path(tempfile.mkdtemp(prefix="kdlab-child-"))
        group = None
        try:
            for name, data in files.items():
                (folder / name).write_bytes(data)
            (folder / "main.py").write_text(script, encoding="utf-8")
            folder.chmod(0o777)  # a docker or bwrap child of another uid writes its outputs here
            inside = INSIDE if self.mode in ("bwrap", "docker") else str(folder)
            env = environment(inside)
            argv = [sys.executable if self.mode != "docker" else "python", "-I", f"{inside}/main.py"]
            if self.mode == "bwrap":
                argv = bwrap_command(folder, argv, env)
            elif self.mode == "docker":
                argv = docker_command(self.docker_image, folder, argv, env, self.limits)
            if self.mode != "docker" and self._root:
                group = _pids_cgroup(self.limits.processes)
            nproc = None if self._root else _own_threads() + self.limits.processes
            limits = self.limits

            def contain():  # in the child, between fork and exec
                if group is not None:
                    (group / "cgroup.procs").write_text(str(os.getpid()))
                if self.mode != "docker":
                    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
                    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
                    if nproc is not None:
                        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
                resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

            start = time.perf_counter()
            with open(folder / ".stdout", "wb") as out, open(folder / ".stderr", "wb") as err:
                proc = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        preexec_fn=contain, start_new_session=True, close_fds=True)
                timed_out = False
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(proc)
            seconds = time.perf_counter() - start
            _kill_group(proc)  # anything it left running
            return Completed(proc.returncode, timed_out, seconds, _head(folder / ".stdout", limits.output_bytes),
                             _head(folder / ".stderr", limits.output_bytes),
                             {name: _read_capped(folder / name, limits.file_bytes) for name in outputs
                              if (folder / name).is_file() and not (folder / name).is_symlink()})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if group is not None:
                _remove_cgroup(group)


def _pids_cgroup_possible() -> bool:
    return (PIDS_CGROUP / "cgroup.procs").is_file() and os.access(PIDS_CGROUP, os.W_OK)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _remove_cgroup(group: Path) -> None:
    for _ in range(50):  # the killed processes leave the group within moments
        try:
            procs = (group / "cgroup.procs").read_text().split()
            for pid in procs:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def _head(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _read_capped(path: Path, limit: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(limit)
