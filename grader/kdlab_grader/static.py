"""Reading an exercise cell before anything runs: copies of kdlab's implementations, and code an exercise never needs.

An exercise function computes a number from its arguments with torch, math, numpy or scipy. A cell that imports kdlab
(``from kdlab.distillation.losses import kd_loss``), reproduces kdlab's or the instructor's code, reaches for files,
processes, the network or the environment, patches a library, or forges a check output earns no points for that
exercise, and the flag says exactly what it did. Only the exercise cells are read (they are what the grader runs).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import io
import textwrap
import tokenize

# Modules an exercise may import (their submodules too).
ALLOWED_IMPORTS = {"math", "torch", "numpy", "scipy", "itertools", "functools", "collections", "typing",
                   "__future__", "statistics", "operator", "fractions", "decimal", "numbers", "dataclasses",
                   "copy", "heapq", "bisect", "random", "warnings", "einops"}
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                   "input", "getattr", "setattr", "delattr"}
FORBIDDEN_ATTRIBUTES = {"__globals__", "__builtins__", "__subclasses__", "__class__", "__bases__", "__mro__",
                        "__code__", "__dict__", "__getattribute__", "__closure__", "__func__", "__self__",
                        "__loader__", "__spec__", "__reduce__", "__reduce_ex__", "__import__", "f_globals",
                        "f_locals", "f_back", "gi_frame", "tb_frame",
                        # file and process access through the allowed libraries
                        "fromfile", "tofile", "savetxt", "loadtxt", "genfromtxt", "memmap", "from_file", "save",
                        "load", "savez", "savez_compressed", "DataSource", "system", "popen", "load_library"}
FORGED_MARKS = ("KDLAB_CHECK_RESULT", "application/vnd.kdlab")
SIMILAR = 0.9  # share of matching tokens above which a function counts as a copy
MIN_TOKENS = 30  # shorter functions are too alike when correct to call a match a copy


def problems(source: str) -> list[str]:
    """What in ``source`` an exercise cell must not do, one line each (empty when nothing)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"does not parse: {exc.msg} (line {exc.lineno})"]
    found: list[str] = []
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add((alias.asname or alias.name).split(".")[0])
                _check_module(alias.name, f"import {alias.name}", found)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(f"uses a relative import (from {'.' * node.level}{node.module or ''} import …)")
            else:
                names = ", ".join(a.name for a in node.names)
                _check_module(node.module or "", f"from {node.module} import {names}", found)
                modules.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"calls {node.func.id}() (an exercise needs no files, code strings or attribute tricks)")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            what = "interpreter internals" if node.attr.startswith(("__", "f_", "gi_", "tb_")) else "files or processes"
            found.append(f"uses .{node.attr} ({what}, which an exercise never needs)")
        elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                mark in node.value for mark in FORGED_MARKS):
            found.append("forges a check result (prints kdlab's result marker)")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                base = target
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if target is not base and isinstance(base, ast.Name) and base.id in modules:
                    found.append(f"patches {ast.unparse(target)} (changes a library for everyone)")
    return list(dict.fromkeys(found))


def _check_module(name: str, statement: str, found: list[str]) -> None:
    top = name.split(".")[0]
    if top == "kdlab":
        found.append(f"uses kdlab's implementation ({statement})")
    elif top not in ALLOWED_IMPORTS:
        found.append(f"imports {top} ({statement}), which an exercise never needs")


def _tokens(source: str) -> list[str]:
    """Code tokens without comments, docstrings and layout (names kept)."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body and isinstance(
                node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant):
            node.body = node.body[1:] or [ast.Pass()]
    code = ast.unparse(tree)
    skip = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER}
    return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skip]


def function_source(source: str, name: str) -> str | None:
    """The source of top-level function ``name`` in ``source``, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(source, node)
    return None


def _body(tokens: list[str]) -> list[str]:
    """The tokens after the signature (``def f(a, b):`` differs by design between copies and originals)."""
    return tokens[tokens.index(":") + 1:] if ":" in tokens else tokens


def copied_from(source: str, function: str, originals: dict[str, str]) -> str | None:
    """The name of the original (``{name: source}``) that the cell's ``function`` reproduces, with the similarity,
    or None. Functions under ``MIN_TOKENS`` tokens are not compared (a correct short answer looks like any other)."""
    mine = function_source(source, function)
    if mine is None:
        return None
    tokens = _body(_tokens(mine))
    if len(tokens) < MIN_TOKENS:
        return None
    best = None
    for name, original in originals.items():
        other = _body(_tokens(original))
        ratio = difflib.SequenceMatcher(None, tokens, other, autojunk=False).ratio()
        if ratio >= SIMILAR and (best is None or ratio > best[1]):
            best = (name, ratio)
    return f"reproduces {best[0]} ({best[1]:.0%} of its tokens)" if best else None


def kdlab_originals() -> dict[str, list[str]]:
    """Per exercise, the sources of kdlab's own implementations a copy would come from."""
    from kdlab.distillation import losses, self_relations
    from kdlab.exercises import deploy, stats
    from kdlab.metrics import classification
    from kdlab.models import student

    def src(obj) -> str:
        return inspect.getsource(obj)

    return {
        "softmax_temperature": [],
        "alternate_layer_map": [src(student.alternate_layer_map)],
        "kd_loss": [src(losses.kd_loss)],
        "attention_kl": [src(losses.attention_distribution_loss), src(self_relations.relation_kl)],
        "value_relation": [src(losses.value_relation_loss), src(self_relations.relation_kl)],
        "mcnemar": [src(classification.mcnemar), src(stats.reference_mcnemar)],
        "deployment": [src(deploy.reference_choice)],
    }


def originals_for(exercise: str, solutions: dict[str, str] | None = None) -> dict[str, str]:
    """``{label: source}`` of what a copy of ``exercise`` would reproduce: kdlab's implementations and, when given,
    the instructor's solution (``solutions``: exercise id → source)."""
    out = {}
    for source in kdlab_originals().get(exercise, []):
        name = source.split("def ", 1)[1].split("(", 1)[0]
        out[f"kdlab's {name}"] = source
    if solutions and exercise in solutions:
        out["the instructor's solution"] = solutions[exercise]
    return out
