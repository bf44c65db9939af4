"""How long ``kdlab grade`` takes per submission: a class of clean smoke submissions graded in one batch.

The four notebooks are answered (correctly, by ``tests/grading/honest_solutions.py``) and executed once on the
`smoke` profile; that submission is copied ``--students`` times and the folder graded with ``--jobs`` at a time, in
the strongest containment this machine offers. Prints and appends to BENCHMARKS.md: seconds per submission (the
batch's wall time / students), the slowest one, and the containment used.

    python benchmarks/grading.py --students 10                 # ~1 min to execute the lab, then the batch
    python benchmarks/grading.py --lab /tmp/elab --no-write    # reuse an executed lab folder
    python benchmarks/grading.py --lab /tmp/elab --hostile     # the gradebook of issue 34's hostile class
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "grader"))  # the instructor's grader, when not installed (pip install ./grader)

from kdlab.config import NOTEBOOKS  # noqa: E402
from kdlab_grader.grader import Settings, grade_all, load_rubric  # noqa: E402
from kdlab_grader.sandbox import Sandbox  # noqa: E402
from kdlab.measurement.records import append_markdown, report_header  # noqa: E402

HONEST = ROOT / "tests" / "grading" / "honest_solutions.py"


def executed_lab(folder: Path) -> Path:
    """The four notebooks answered and executed on smoke in ``folder`` (kept, so a rerun reuses them)."""
    results = folder / "runs" / "smoke" / "results.json"
    if results.is_file():
        return results
    import nbformat
    from nbclient import NotebookClient

    from kdlab.course.assignments import write_solutions

    folder.mkdir(parents=True, exist_ok=True)
    write_solutions(ROOT, folder, NOTEBOOKS, HONEST)
    os.environ.update(KDLAB_PROFILE="smoke", KDLAB_RUNS_DIR=str(folder / "runs"), HF_HUB_OFFLINE="1")
    for name in NOTEBOOKS:
        nb = nbformat.read(folder / name, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        nbformat.write(nb, folder / name)
    return results


def own_run(source: Path, target: Path, student: str) -> None:
    """``source``'s results.json as ``student``'s own run (their id and seed, one prediction of each student
    different), so the batch grades a class of distinct runs rather than one run copied (which is flagged)."""
    import json

    from kdlab.config import seed_for_student

    results = json.loads(source.read_text())
    results["config"].update(student_id=student, student_seed=seed_for_student(student))
    seed = results["config"]["student_seed"]
    for entry in results["students"].values():
        entry["seed"] = seed
        i = seed % len(entry["predictions"])  # one sentence of its own differs
        entry["predictions"] = [*entry["predictions"][:i], 1 - entry["predictions"][i], *entry["predictions"][i + 1:]]
    target.write_text(json.dumps(results))
    rerender_reports(target.parent, results)


def rerender_reports(folder: Path, results: dict) -> None:
    """The report outputs of ``folder``'s notebooks re-rendered from ``results``, as the student's own run would
    have shown them (its settings list the student's id and seed)."""
    import nbformat

    from kdlab.course.reported import TABLE_MIME
    from kdlab.report import render_markdown

    text = render_markdown(results)
    for name in NOTEBOOKS:
        nb = nbformat.read(folder / name, as_version=4)
        outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
                   if (out.get("data") or {}).get(TABLE_MIME, {}).get("recipe") == "report"]
        for out in outputs:
            out["data"].update({"text/markdown": text, "text/plain": text})
        if outputs:
            nbformat.write(nb, folder / name)


FORMULA_NAMES = ('=HYPERLINK("evil.example","open me")', "+cmd", "-2+3", "@SUM(1+1)")


def _notebook(name: str, lab: Path) -> dict:
    import json

    return json.loads((lab / name).read_text(encoding="utf-8"))


def hostile_class(lab: Path, results: Path, subs: Path) -> dict[str, str]:
    """``subs`` filled with an honest submission (``alice``: the executed lab and its run) beside a malformed one of
    every kind issue 34 names: JSON nested 200,000 deep, of the wrong shape or types, NaN/Infinity and huge numbers,
    invalid UTF-8, nbformat 3, cells without outputs or with outputs of the wrong type, names that are spreadsheet
    formulas, and names that collide exactly (``twin/`` + ``twin.zip``) or after case-folding (``Zed/`` +
    ``zed.zip``). Returns ``{folder or zip name: what it is}``."""
    import json
    import zipfile

    subs.mkdir(parents=True, exist_ok=True)
    made = {}

    def folder(name: str, what: str) -> Path:
        path = subs / name
        path.mkdir()
        made[name] = what
        return path

    alice = folder("alice", "honest: the executed lab and its own run")
    for name in NOTEBOOKS:
        shutil.copy(lab / name, alice / name)
    shutil.copy(results, alice / "results.json")
    deep = folder("deep", "results.json and a notebook nested 200,000 deep")
    (deep / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    (deep / NOTEBOOKS[0]).write_text('{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}")
    shapes = folder("shapes", "results.json a list; notebooks a string, cells of the wrong types, outputs a string")
    (shapes / "results.json").write_text("[1, 2, 3]")
    (shapes / NOTEBOOKS[0]).write_text('"a notebook"')
    (shapes / NOTEBOOKS[1]).write_text(json.dumps({"nbformat": 4, "cells": ["x", 5, None, {"cell_type": 3}]}))
    nb = _notebook(NOTEBOOKS[2], lab)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = "not a list"
    (shapes / NOTEBOOKS[2]).write_text(json.dumps(nb))
    nb = _notebook(NOTEBOOKS[3], lab)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = "7"
    (shapes / NOTEBOOKS[3]).write_text(json.dumps(nb))
    types = folder("types", "results.json with every field of the wrong type, NaN, Infinity and 1e999")
    (types / "results.json").write_text('{"config": [], "students": {"ce": 5, "hinton": {"seed": NaN, '
                                        '"predictions": "abc", "accuracy": Infinity}}, "profile": 3, '
                                        '"teacher": {"accuracy": 1e999}, "benchmark": "x", "student_id": {}}')
    huge = folder("huge", "a 5,000-digit integer in results.json; invalid UTF-8 in a notebook")
    (huge / "results.json").write_text('{"profile": ' + "9" * 5000 + "}")
    (huge / NOTEBOOKS[0]).write_bytes(b'{"cells": [], "nbformat": 4, "x": "\xff\xfe"}')
    old = folder("old", "nbformat 3 notebooks (worksheets, no cells)")
    for name in NOTEBOOKS:
        (old / name).write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}]}))
    bare = folder("bare", "the honest notebooks with every code cell's outputs removed, no results.json")
    for name in NOTEBOOKS:
        nb = _notebook(name, lab)
        for cell in nb["cells"]:
            cell.pop("outputs", None)
        (bare / name).write_text(json.dumps(nb))
    for name in FORMULA_NAMES:
        path = folder(name, "a name that is a spreadsheet formula; an error output that is one too")
        nb = _notebook(NOTEBOOKS[0], lab)
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code.setdefault("outputs", []).append({"output_type": "error", "ename": "=cmd|' /C calc'!A0",
                                               "evalue": "@x", "traceback": []})
        (path / NOTEBOOKS[0]).write_text(json.dumps(nb))
    for first, second in (("twin", "twin"), ("Zed", "zed")):
        path = folder(first, f"{first}/ beside {second}.zip: one name")
        (path / "results.json").write_text('{"profile": "smoke"}')
        with zipfile.ZipFile(subs / f"{second}.zip", "w") as archive:
            archive.writestr(NOTEBOOKS[0], (lab / NOTEBOOKS[0]).read_text(encoding="utf-8"))
        made[f"{second}.zip"] = f"{second}.zip beside {first}/: one name"
    return made


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=10)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "basic"),
                   help="auto: bwrap, else stop (--sandbox basic to time it unconfined)")
    p.add_argument("--lab", default=None, help="folder of an executed lab (made there when empty)")
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--hostile", action="store_true",
                   help="grade hostile_class() (an honest submission beside malformed ones) and print its gradebook")
    args = p.parse_args(argv)
    lab = Path(args.lab) if args.lab else Path(tempfile.mkdtemp(prefix="kdlab-lab-"))
    start = time.perf_counter()
    results = executed_lab(lab)
    setup = time.perf_counter() - start
    if args.hostile:
        with tempfile.TemporaryDirectory(prefix="kdlab-hostile-") as tmp:
            made = hostile_class(lab, results, Path(tmp) / "submissions")
            sandbox = Sandbox(args.sandbox)
            start = time.perf_counter()
            grades = grade_all(Path(tmp) / "submissions", Path(tmp) / "grades", Settings(load_rubric(), sandbox),
                               jobs=args.jobs, log=lambda m: None)
            print(f"{len(made)} submissions graded in {time.perf_counter() - start:.1f} s ({sandbox.mode}):")
            print((Path(tmp) / "grades" / "gradebook.csv").read_text(encoding="utf-8"))
        return {"students": len(grades), "mode": sandbox.mode}
    with tempfile.TemporaryDirectory(prefix="kdlab-class-") as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        for k in range(args.students):
            dest = subs / f"student{k:03d}"
            dest.mkdir(parents=True)
            for name in NOTEBOOKS:
                shutil.copy(lab / name, dest / name)
            own_run(results, dest / "results.json", dest.name)
        sandbox = Sandbox(args.sandbox)
        settings = Settings(load_rubric(), sandbox)
        start = time.perf_counter()
        grades = grade_all(subs, out, settings, jobs=args.jobs, log=lambda m: None)
        wall = time.perf_counter() - start
    scores = sorted({f"{g.total:g}/{g.max_points:g}" for g in grades})
    per = wall / args.students
    line = (f"{args.students} clean smoke submissions, --jobs {args.jobs}, containment {sandbox.mode}: {wall:.1f} s "
            f"in all, **{per:.2f} s per submission** (slowest alone: {max(g.seconds for g in grades):.1f} s; "
            f"scores {', '.join(scores)}: every exercise passed, no flag)" if all(not g.flags for g in grades) else
            f"{args.students} submissions: FLAGS {[g.flags for g in grades if g.flags][:1]}")
    print(line)
    if not args.no_write:
        command = "python benchmarks/grading.py " + " ".join(argv if argv is not None else sys.argv[1:])
        notes = [f"the executed lab: {'reused' if setup < 5 else f'made in {setup:.0f} s'} ({lab})",
                 f"containment: {sandbox.protections()}"]
        lines = report_header(command, "cpu", args.jobs, notes) + ["", line]
        title = f"Grading time per submission — {dt.date.today().isoformat()}"
        print(f"appended to {append_markdown(args.output, title, lines)}")
    return {"wall": wall, "per_submission": per, "students": args.students, "scores": scores, "mode": sandbox.mode}


if __name__ == "__main__":
    main()
