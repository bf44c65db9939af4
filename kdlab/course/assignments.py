"""The notebooks as assignments: exercise cells, the solved instructor copy, reflection answers, reported results.

One source, two versions. The committed notebooks are the student version: each exercise is a code cell that
defines one function whose body is a stub between nbgrader's markers::

    def kd_loss(student_logits, teacher_logits, T):
        \"\"\"...\"\"\"
        ### BEGIN SOLUTION
        # YOUR CODE HERE
        raise NotImplementedError()
        ### END SOLUTION

``solve_notebook`` fills each block with the body of the same-named function in the instructor's solutions
(``instructor/solutions.py`` in the repository, never in the installed package: ``load_solutions``);
``python -m kdlab solutions OUT_DIR`` writes solved copies for instructors. Reflection answers are markdown cells
carrying ``<!-- reflection:ID -->``; reported numbers are outputs carrying ``RESULT_MIME`` (``kdlab.display``).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import re
import textwrap
from pathlib import Path

from kdlab.errors import KDLabError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
REFLECTION_RE = re.compile(r"<!--\s*reflection:([\w.-]+)\s*-->")
ANSWER_PLACEHOLDER = "在這裡寫下你的回答"  # "write your answer here": an unanswered question still holds it
_DEF_RE = re.compile(r"^def (\w+)\(", re.M)
_BLOCK_RE = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$", re.M | re.S)


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def defined_function(source: str) -> str | None:
    """The name of the first top-level function a cell defines."""
    match = _DEF_RE.search(source)
    return match.group(1) if match else None


def exercise_cells(nb) -> dict[str, int]:
    """``{exercise id: cell index}`` of the exercise cells (a code cell with solution markers defining an
    exercise's function)."""
    from kdlab.exercises import EXERCISES

    by_function = {e.function: e.id for e in EXERCISES.values()}
    found = {}
    for index, cell in enumerate(nb["cells"]):
        source = cell_source(cell)
        if cell.get("cell_type") == "code" and BEGIN in source:
            name = next((n for n in _DEF_RE.findall(source) if n in by_function), None)  # helpers may come first
            if name is not None:
                found[by_function[name]] = index
    return found


def exercise_source(nb, exercise: str) -> str:
    """The code to re-check ``exercise`` on its own: its cell, preceded by the notebook's earlier exercise cells
    (an exercise may call an earlier one, e.g. ``value_relation_kl`` calling ``attention_kl``)."""
    cells = exercise_cells(nb)
    index = cells[exercise]
    earlier = sorted(i for i in cells.values() if i < index)
    return "\n\n".join(cell_source(nb["cells"][i]) for i in [*earlier, index])


SOLUTIONS = Path("instructor") / "solutions.py"  # in the repository, beside the notebooks


def solutions_path(path: str | Path | None = None) -> Path:
    """The instructor's solutions file: ``path``, else ``instructor/solutions.py`` of the repository (the current
    folder or the checkout kdlab runs from). KDLabError when there is none: the installed package has no answers."""
    candidates = [Path(path)] if path else [Path.cwd() / SOLUTIONS, Path(__file__).resolve().parents[2] / SOLUTIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise KDLabError(f"no instructor solutions at {candidates[0]}: they are not part of the installed kdlab package. "
                     "Run this from the course repository (instructor/solutions.py), or pass --solutions PATH.")


def load_solutions(path: str | Path | None = None):
    """The solutions file as a module (``solutions_path``)."""
    import importlib.util

    file = solutions_path(path)
    spec = importlib.util.spec_from_file_location("kdlab_instructor_solutions", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_sources(path: str | Path | None = None) -> dict[str, str]:
    """``{exercise id: the solution function's source}`` (for copy detection when grading)."""
    from kdlab.exercises import EXERCISES

    module = load_solutions(path)
    return {e.id: inspect.getsource(getattr(module, e.function)) for e in EXERCISES.values()
            if hasattr(module, e.function)}


def solution_body(function: str, solutions=None) -> str:
    """The body of the solutions' ``function`` without its docstring, dedented (``solutions``: a module from
    ``load_solutions``; default: the repository's)."""
    solutions = solutions or load_solutions()
    source = textwrap.dedent(inspect.getsource(getattr(solutions, function)))
    node = ast.parse(source).body[0]
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(
        getattr(node.body[0], "value", None), ast.Constant) else node.body
    lines = source.splitlines()
    start = body[0].lineno - 1
    return textwrap.dedent("\n".join(lines[start:node.end_lineno]))


def solve_source(source: str, solutions=None) -> str:
    """An exercise cell's source with its solution block filled from the solutions (``load_solutions``)."""
    name = defined_function(source)
    if name is None:
        raise ValueError("an exercise cell must define a function")
    body = solution_body(name, solutions)

    def fill(match):
        indent = match.group(1)
        return f"{indent}{BEGIN}\n{textwrap.indent(body, indent)}\n{indent}{END}"

    solved, count = _BLOCK_RE.subn(fill, source)
    if count != 1:
        raise ValueError(f"the cell defining {name} must hold one {BEGIN} ... {END} block, found {count}")
    return solved


def stub_source(source: str) -> str:
    """An exercise cell's source with its solution block replaced by the student stub."""
    def fill(match):
        indent = match.group(1)
        return f"{indent}{BEGIN}\n{textwrap.indent(STUB, indent)}\n{indent}{END}"

    return _BLOCK_RE.sub(fill, source)


def solve_notebook(nb, solutions=None):
    """A solved copy of a student notebook (nbformat dict); ``solutions``: a module (``load_solutions``)."""
    solutions = solutions or load_solutions()
    nb = copy.deepcopy(nb)
    for index in exercise_cells(nb).values():
        cell = nb["cells"][index]
        cell["source"] = solve_source(cell_source(cell), solutions)
    return nb


def write_solutions(root: str | Path, out_dir: str | Path, notebooks,
                    solutions: str | Path | None = None) -> list[Path]:
    """Solved copies of ``notebooks`` (names under ``root``) in ``out_dir``, filled from the solutions file
    ``solutions`` (default: the repository's, ``solutions_path``); returns the paths written."""
    import nbformat

    module = load_solutions(solutions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in notebooks:
        nb = nbformat.read(Path(root) / name, as_version=4)
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)  # advanced/ notebooks keep their folder
        nbformat.write(nbformat.from_dict(solve_notebook(nb, module)), path)
        written.append(path)
    return written


def function_source_sha(cell_text: str, function: str) -> str:
    """sha256 of a function's definition as ``inspect.getsource`` returns it from a notebook cell (what a check
    output records): the ``def`` line and the indented block after it, trailing indented comments included."""
    lines = cell_text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # the kernel stores a cell's last line with its newline
    tree = ast.parse(cell_text)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            return hashlib.sha256("".join(inspect.getblock(lines[start:])).encode()).hexdigest()
    return ""


def reflections(nb) -> dict[str, str]:
    """``{question id: answer text}`` from the answer cells (placeholder and marker removed; '' if unanswered)."""
    answers = {}
    for cell in nb["cells"]:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell_source(cell)
        match = REFLECTION_RE.search(source)
        if match:
            text = REFLECTION_RE.sub("", source)
            text = "\n".join(line for line in text.splitlines() if ANSWER_PLACEHOLDER not in line).strip()
            answers[match.group(1)] = text
    return answers
