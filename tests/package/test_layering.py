"""The package's layering (README, "Architecture"): each group of modules imports only the groups its row of
``ALLOWED`` names, and no module imports itself in a circle.

``ALLOWED`` is the real import graph, written down: an import it does not list fails the test even when it would
point "down" in a drawing (exercises importing lm), and a listed edge no module uses fails too, so the table (and
the README's drawing of it) never claims more than the code does. Every ``import`` and ``from … import`` of a
kdlab module is counted, those inside functions too (a lazy import is still a dependency). The checker is a plain
function of a folder, so the tests below also show it failing on a copy of the package with an import added.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kdlab"

# Which modules form each group: a module belongs to the first group that names it or a package above it.
GROUPS = {
    "package root": ("kdlab",),  # the version, KDLabError, and `from kdlab import Lab` (loaded when asked for)
    "foundation": ("kdlab.errors", "kdlab.artifacts", "kdlab.validation", "kdlab.environment",
                   "kdlab.config", "kdlab.profiles"),
    "data": ("kdlab.data",),
    "models": ("kdlab.models",),
    "metrics": ("kdlab.metrics",),
    "distillation": ("kdlab.distillation",),
    "measurement": ("kdlab.measurement",),
    "language models": ("kdlab.lm",),
    "compression": ("kdlab.compression",),
    "exercises": ("kdlab.exercises",),
    "course": ("kdlab.course",),
    "notebooks": ("kdlab.notebook", "kdlab.lab", "kdlab.lm_lab", "kdlab.lm_tables", "kdlab.tables", "kdlab.plots", "kdlab.lm_plots",
                  "kdlab.display", "kdlab.report"),
    "command line": ("kdlab.cli", "kdlab.__main__"),
}
# group -> the other groups its modules may import (within a group any import is allowed, circles are not).
ALLOWED = {
    "package root": {"foundation", "notebooks"},
    "foundation": set(),
    "data": {"foundation"},
    "models": {"foundation", "data"},
    "metrics": set(),
    "distillation": {"foundation", "data", "models", "metrics"},
    "measurement": {"foundation", "models", "distillation"},
    "language models": {"foundation", "data", "distillation", "measurement"},
    "compression": {"foundation", "models", "metrics", "distillation", "measurement"},
    "exercises": {"distillation"},
    "course": {"foundation", "data", "models", "metrics", "measurement", "exercises"},
    "notebooks": {"foundation", "data", "models", "metrics", "distillation", "measurement", "language models",
                  "exercises", "course"},
    "command line": {"foundation", "distillation", "course", "notebooks"},
}


def module_names(root: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under ``root`` (a package folder named like the package)."""
    out = {}
    for path in root.rglob("*.py"):
        if "evaluate_metrics" in path.parts:  # evaluate's metric scripts, loaded by path, not imported
            continue
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(root: Path) -> dict[str, set[str]]:
    """``{module: the kdlab modules it imports}`` (``from pkg import name`` counts ``pkg.name`` when that is a
    module, else ``pkg``)."""
    modules = module_names(root)
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import kdlab.models.bilstm`: the module itself
                    target = target.rpartition(".")[0]
                if target and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def group_of(module: str) -> str:
    for name, members in GROUPS.items():
        for member in members:
            if module == member or (member != "kdlab" and module.startswith(member + ".")):
                return name
    raise AssertionError(f"{module} belongs to no group: add it to GROUPS (and to the README's architecture)")


def group_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``{group: the other groups its modules import}`` (the package root, version and error type only, aside)."""
    out: dict[str, set[str]] = {name: set() for name in GROUPS}
    for module, deps in graph.items():
        for dep in deps:
            if dep != "kdlab" and group_of(dep) != group_of(module):
                out[group_of(module)].add(group_of(dep))
    return out


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of another group that ``ALLOWED`` does not list for the importing module's group."""
    out = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if dep != "kdlab" and group_of(dep) != group_of(module) and group_of(dep) not in ALLOWED[group_of(module)]:
                out.append(f"{module} ({group_of(module)}) imports {dep} ({group_of(dep)})")
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted. A package's ``__init__`` is
    not counted as importing its own submodules' circle (``kdlab.exercises`` → ``kdlab.exercises.core``)."""
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_group():
    for module in module_names(PACKAGE):
        group_of(module)
    assert set(ALLOWED) == set(GROUPS)


def test_imports_follow_the_table():
    assert forbidden_imports(imports(PACKAGE)) == []


def test_the_table_is_the_real_graph():
    """No allowed edge goes unused: the table (and the README's drawing) shows the dependencies as they are."""
    assert group_edges(imports(PACKAGE)) == ALLOWED


def test_no_import_circles():
    assert circles(imports(PACKAGE)) == []


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "kdlab"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_check_fails_on_an_upward_import(tmp_path):
    copy = _copy(tmp_path)
    losses = copy / "distillation" / "losses.py"
    losses.write_text(losses.read_text() + "\n\ndef _upward():\n    from kdlab import lab  # noqa\n")
    assert forbidden_imports(imports(copy)) == [
        "kdlab.distillation.losses (distillation) imports kdlab.lab (notebooks)"]


def test_the_check_fails_on_an_import_the_table_does_not_list_even_downward(tmp_path):
    """exercises -> lm sat "below" exercises in the old 12-level chain and passed; the table refuses it."""
    copy = _copy(tmp_path)
    attention = copy / "exercises" / "attention.py"
    attention.write_text(attention.read_text() + "\nfrom kdlab.lm import losses as _lm_losses  # noqa\n")
    assert forbidden_imports(imports(copy)) == [
        "kdlab.exercises.attention (exercises) imports kdlab.lm.losses (language models)"]


def test_the_check_fails_on_a_circle(tmp_path):
    copy = _copy(tmp_path)
    sources = copy / "data" / "sources.py"
    sources.write_text(sources.read_text() + "\nfrom kdlab.data.transfer import labelled_only  # noqa\n")
    assert ["kdlab.data.sources", "kdlab.data.transfer"] in circles(imports(copy))


def test_modules_stay_small():
    """One job per module: none grows past ~400 lines (README, "Architecture")."""
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}


def test_readme_architecture_matches_the_folders():
    """Every subpackage and top-level module is in the README's architecture table, and nothing else is."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            for item in line.split("|")[1].replace("`", "").split(","):
                listed.add(item.strip())
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert listed == packages | modules
    for name in GROUPS:  # the drawing names every group
        assert name in section
