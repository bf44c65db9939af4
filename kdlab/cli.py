"""The command line, ``python -m kdlab run | report | clean | solutions | grade | pool | colab-links`` (the top layer:
it may import anything in kdlab, nothing imports it).

- ``run [--profile P] [--estimate-only]``: execute the four notebooks in order with papermill, each in a fresh kernel, streaming
  their output (training progress as a few lines per run); save the executed copies under
  ``runs/<profile>/executed/``, stop at the first failing cell (notebook, cell and the whole error named), print
  the results.
- ``report RUN_DIR``: print the summary of a finished run and mark targets met or missed.
- ``clean [--check] [NOTEBOOK ...]``: strip outputs from notebooks (``--check``: only report, exit 1 if any).
- ``solutions OUT_DIR``: write solved copies of the notebooks (exercises filled from ``kdlab.course.solutions``).
- ``grade SUBMISSIONS_DIR [--rubric R] [--out DIR]``: gradebook CSVs, feedback per student, reflections.
- ``pool SUBMISSIONS_DIR [--out FILE]``: the class's runs (a seed per student) as one multi-seed study.
- ``colab-links [--repo OWNER/NAME] [--ref TAG] [--check]``: point every "Open in Colab" badge and Colab install
  line at the repository (default: ``kdlab.course.colab.REPO``); ``--check`` only reports, exit 1 if any differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from kdlab.config import NOTEBOOKS


def lab_root() -> Path:
    """The folder holding the notebooks: the current folder if it has them, else the repository of this package."""
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (folder / NOTEBOOKS[0]).is_file():
            return folder
    raise SystemExit(f"cannot find {NOTEBOOKS[0]}: run this from the kdlab repository root.")


def run_notebooks(profile: str | None, notebooks: list[str], timeout: int) -> int:
    """Execute ``notebooks`` in order with papermill (a fresh kernel each, the profile injected into each
    notebook's ``parameters`` cell), streaming their output; stop at the first failing cell."""
    import logging

    import papermill as pm

    from kdlab.config import load_config
    from kdlab.distillation.progress import PROGRESS_ENV

    root = lab_root()
    os.chdir(root)
    cfg = load_config(profile)  # validates the profile and environment before anything runs
    os.environ["KDLAB_PROFILE"] = cfg.profile
    os.environ[PROGRESS_ENV] = "text"  # the kernels print training progress as a few plain lines
    out_dir = cfg.run_dir() / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    papermill_log = logging.getLogger("papermill")
    papermill_log.handlers, papermill_log.propagate = [handler], False
    papermill_log.setLevel(logging.INFO)  # cell output, streamed as it arrives
    print(f"kdlab run: profile {cfg.profile}, artifacts in {cfg.run_dir()}", flush=True)
    estimate = _estimate(cfg, notebooks)
    if estimate:
        print(f"kdlab run: {estimate}", flush=True)
    total = time.perf_counter()
    timings = {}
    for number, name in enumerate(notebooks, start=1):
        path = Path(name) if Path(name).is_absolute() else root / name
        if not path.is_file():
            print(f"error: notebook {path} not found", file=sys.stderr)
            return 2
        start = time.perf_counter()
        print(f"\n=== {path.name} ({number}/{len(notebooks)}) · {_clock(start - total)} since the start", flush=True)
        try:
            pm.execute_notebook(str(path), str(out_dir / path.name), parameters={"PROFILE": cfg.profile},
                                kernel_name="python3", language="python", log_output=True, progress_bar=False,
                                execution_timeout=timeout, cwd=str(path.parent))
        except pm.PapermillExecutionError as exc:
            cell, first_line = _source_cell(out_dir / path.name, exc.cell_index)
            print(f"\nFAILED in {path.name}, cell {cell} ({first_line!r}): {exc.ename}: {exc.evalue}",
                  file=sys.stderr)
            print(f"The executed notebook up to the failure is in {out_dir / path.name}.", file=sys.stderr)
            return 1
        except Exception as exc:  # the kernel died (out of memory, killed), a timeout...
            print(f"\nFAILED in {path.name}: {type(exc).__name__}: {exc}. The executed notebook up to the failure "
                  f"is in {out_dir / path.name}.", file=sys.stderr)
            return 1
        timings[path.name] = time.perf_counter() - start
        print(f"=== {path.name} done in {_clock(timings[path.name])}", flush=True)
    from kdlab.distillation.runs import record

    record(cfg, wall_seconds={**timings, "total": time.perf_counter() - total})
    print(f"\nAll notebooks ran in {_clock(time.perf_counter() - total)}; executed copies in {out_dir}\n")
    return print_report(cfg.run_dir())


def print_estimate(profile: str | None) -> int:
    """``run --estimate-only``: the time estimate alone (nothing trained, nothing written); 1 when there is none."""
    from kdlab.config import load_config

    estimate = _estimate(load_config(profile), list(NOTEBOOKS), record=False)
    print(f"kdlab run: {estimate or 'no timed reference run for this profile: no estimate'}")
    return 0 if estimate and not estimate.startswith("no time estimate") else 1


def _estimate(cfg, notebooks: list[str], record: bool = True) -> str | None:
    """How long the run will take here (``kdlab.lab.time_estimate``), from a few timed training steps; None when the
    profile has no timed reference, a notebook outside the lab is asked for, or the calibration fails."""
    from kdlab.config import NOTEBOOKS

    if list(notebooks) != list(NOTEBOOKS):
        return None
    try:
        from kdlab import lab
        from kdlab.distillation.runs import saved_teacher_matches

        found = lab.time_estimate(cfg, teacher_saved=saved_teacher_matches(cfg))
    except Exception as exc:  # noqa: BLE001 - an estimate must never stop the run
        return f"no time estimate ({type(exc).__name__}: {exc})"
    if found is None:
        return None
    if record:
        lab.record(cfg, time_estimate={"step_seconds": found["step_seconds"], "ratio": found["ratio"],
                                       "minutes": list(found["total"])})
    return lab.describe_estimate(found)


def _source_cell(executed: Path, index: int) -> tuple[int, str]:
    """The failing cell's index in the notebook as written (papermill's copy has an injected-parameters cell and
    error-notice cells more) and its first line."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # the copy could not be read: report papermill's index
        return index, ""
    cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    source = cells[index].source.strip().splitlines() if index < len(cells) else []
    return index - sum(1 for i in injected if i < index), (source[0][:80] if source else "")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def print_report(run_dir: str | Path) -> int:
    from kdlab.course.targets import targets
    from kdlab.errors import KDLabError
    from kdlab.report import load_results, render_markdown

    try:
        results = load_results(run_dir)
    except KDLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(results))
    wall = results.get("wall_seconds")
    wall = wall.get("total") if isinstance(wall, dict) else None
    if isinstance(wall, (int, float)):
        print(f"Wall time of the whole run: {wall / 60:.1f} min")
    checks = targets(results)
    missed = [c for c in checks if not c["met"]]
    print(f"Targets: {len(checks) - len(missed)} met, {len(missed)} missed.")
    return 0


def clean_notebooks(paths: list[str], check: bool) -> int:
    import nbformat

    dirty = []
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        changed = False
        for cell in nb.cells:
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                changed = True
                cell.outputs, cell.execution_count = [], None
        if changed:
            dirty.append(p)
            if not check:
                nbformat.write(nb, p)
    if check and dirty:
        print("notebooks committed with outputs (run `python -m kdlab clean`):", *dirty, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{'checked' if check else 'cleaned'} {len(paths)} notebook(s); {len(dirty)} had outputs")
    return 0


GRADER_INSTALL = "pip install ./grader (from a clone of the kdlab repository; bash setup.sh --dev does it)"


def require_grader() -> None:
    """Make the instructor's grader (``kdlab_grader``, not part of the student package) importable: installed, or
    the ``grader/`` folder of the repository this kdlab comes from; else KDLabError saying how to install it."""
    import importlib.util

    from kdlab.errors import KDLabError

    if importlib.util.find_spec("kdlab_grader") is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "grader"
    if (folder / "kdlab_grader" / "__init__.py").is_file():
        sys.path.insert(0, str(folder))
        return
    raise KDLabError(f"the grader is not installed (students' kdlab does not carry it): {GRADER_INSTALL}.")


def grading_settings(args):
    """The grader's settings from ``kdlab grade``'s options (sandbox, limits, rubric, solutions if found)."""
    from kdlab.course.assignments import solution_sources
    from kdlab.errors import KDLabError

    require_grader()
    from kdlab_grader.grader import Settings, load_rubric
    from kdlab_grader.sandbox import Limits, Sandbox

    if args.timeout <= 0 or args.jobs < 1 or args.memory_gb <= 0:
        raise KDLabError("--timeout and --memory-gb must be > 0 and --jobs at least 1.")
    limits = Limits(memory_bytes=int(args.memory_gb * 2**30), cpu_seconds=int(30 + 8 * args.timeout))
    sandbox = Sandbox(args.sandbox, limits, args.docker_image)
    try:
        solutions = solution_sources(args.solutions)
    except KDLabError:
        if args.solutions:
            raise
        solutions = {}  # no repository here: copies of kdlab's own code are still detected
    return Settings(load_rubric(args.rubric), sandbox, args.timeout, solutions=solutions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the four notebooks in order and print the results")
    from kdlab.config import PROFILES

    run.add_argument("--profile", choices=sorted(PROFILES),
                     help=f"one of {', '.join(PROFILES)} (default: $KDLAB_PROFILE, else full on CUDA, cpu otherwise)")
    run.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), help="run only these, in this order")
    run.add_argument("--timeout", type=int, default=7200, help="seconds allowed per cell")
    run.add_argument("--student-id", help="the student's id: their students train with a seed of their own "
                     "(sets KDLAB_STUDENT_ID)")
    run.add_argument("--estimate-only", action="store_true",
                     help="print how long the run would take on this machine (a few timed training steps) and stop")
    rep = sub.add_parser("report", help="print the summary of a finished run")
    rep.add_argument("run_dir", help="e.g. runs/cpu")
    cl = sub.add_parser("clean", help="strip outputs from notebooks")
    cl.add_argument("--check", action="store_true", help="only check; exit 1 if any notebook has outputs")
    cl.add_argument("paths", nargs="*", help="notebooks (default: the four lab notebooks)")
    sol = sub.add_parser("solutions", help="write solved copies of the notebooks (instructors)")
    sol.add_argument("out_dir", help="folder for the solved notebooks")
    sol.add_argument("--solutions", help="the solutions file (default: instructor/solutions.py of the repository)")
    gr = sub.add_parser("grade", help="grade a folder of submissions (one folder or .zip per student); needs the "
                        f"instructor's grader: {GRADER_INSTALL}")
    gr.add_argument("submissions", help="folder holding one folder or .zip per student")
    gr.add_argument("--rubric", help="rubric TOML (default: grader/kdlab_grader/rubric.toml)")
    gr.add_argument("--out", default="grades", help="output folder (default: ./grades)")
    gr.add_argument("--timeout", type=float, default=60.0, help="seconds per exercise re-check (default 60)")
    gr.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="submissions graded at once (default: the cores, here %(default)s)")
    gr.add_argument("--sandbox", choices=("auto", "bwrap", "docker", "basic"), default="auto",
                    help="how the students' code is contained. auto (default): bubblewrap where it works, else "
                    "Docker when --docker-image is given, else STOP before running any student code (basic would "
                    "run it as your user, with your files and the network). Fix: apt-get install bubblewrap, or "
                    "--sandbox docker --docker-image IMAGE; accept the risk: --sandbox basic")
    gr.add_argument("--docker-image", help="with --sandbox docker: an image with Python, torch, numpy, safetensors")
    gr.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit of the child (default 4)")
    gr.add_argument("--solutions", help="the instructor's solutions, for copy detection (default: "
                    "instructor/solutions.py of the repository, when present)")
    po = sub.add_parser("pool", help="a class's runs as one multi-seed study (mean ± sd, paired comparisons)")
    po.add_argument("submissions", help="folder holding one folder or .zip per student")
    po.add_argument("--out", default="class-seeds.md", help="Markdown file to write (default: ./class-seeds.md)")
    links = sub.add_parser("colab-links", help="point the Open-in-Colab badges and install lines at a repository")
    links.add_argument("--repo", help="GitHub OWNER/NAME (default: kdlab.course.colab.REPO)")
    links.add_argument("--ref", "--branch", dest="branch",
                       help="the release tag or commit students install and open (default: kdlab.course.colab.BRANCH); "
                            "pin a tag or commit, not a moving branch")
    links.add_argument("--check", action="store_true", help="only check; exit 1 if any link differs")
    args = parser.parse_args(argv)
    if args.command == "solutions":
        from kdlab.course.assignments import write_solutions

        from kdlab.errors import KDLabError

        try:
            written = write_solutions(lab_root(), args.out_dir, NOTEBOOKS, args.solutions)
        except KDLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("solved copies written:", *written, sep="\n  ")
        return 0
    if args.command == "grade":
        from kdlab.errors import KDLabError

        try:
            settings = grading_settings(args)
            print(f"kdlab grade: exercises run in {settings.sandbox.protections()}", flush=True)
            from kdlab_grader.grader import grade_all

            grades = grade_all(args.submissions, args.out, settings, jobs=args.jobs)
        except KDLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{len(grades)} submission(s) graded: {Path(args.out) / 'gradebook.csv'}, feedback/, reflections.md")
        return 0
    if args.command == "pool":
        from kdlab.errors import KDLabError

        try:
            require_grader()
            from kdlab_grader.pooling import pool

            pooled = pool(args.submissions, args.out)
        except KDLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(pooled["markdown"])
        print(f"written: {args.out}")
        return 0
    if args.command == "colab-links":
        from kdlab.course import colab

        changed = colab.sync_links(lab_root(), args.repo or colab.REPO, args.branch or colab.BRANCH, args.check)
        verb = "differ" if args.check else "updated"
        print(f"{len(changed)} file(s) {verb}" + "".join(f"\n  {c}" for c in changed))
        return 1 if args.check and changed else 0
    if args.command == "run":
        from kdlab.errors import KDLabError

        if args.student_id:
            os.environ["KDLAB_STUDENT_ID"] = args.student_id
        try:
            if args.estimate_only:
                return print_estimate(args.profile)
            return run_notebooks(args.profile, args.notebooks, args.timeout)
        except KDLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "report":
        return print_report(args.run_dir)
    return clean_notebooks(args.paths or [str(lab_root() / n) for n in NOTEBOOKS], args.check)

