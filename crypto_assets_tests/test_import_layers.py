"""The modules of crypto_assets import each other without a cycle.

A cycle makes the result depend on which module is imported first (a name is missing from a
half-initialized module) and is what a late import inside a function usually hides. The graph is
read from the source (ast), not from a running interpreter, so every import counts:

- top-level imports and late ones (inside functions and methods) alike; imports under
  `if TYPE_CHECKING:` never run and do not count; `importlib.import_module` of a computed name
  is not seen;
- `from P import name` is an edge to the submodule P.name when there is one, else to P itself
  (its `__init__.py`, where the name is defined or re-exported);
- importing a module also runs the `__init__.py` of each package above it, so that is an edge
  too, except for the packages that hold the importer: their `__init__` has already started when
  the importer runs, and Python does not run it again. So a submodule importing a sibling is no
  cycle through the package's `__init__`, while `from crypto_assets.x import name` inside x (when
  x's `__init__` imports that submodule) is: the name may not exist yet.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto_assets_tests.paths import REPO

PACKAGE = "crypto_assets"


@dataclass(frozen=True)
class Edge:
    target: str
    where: str  # "path:line" of the import statement


def module_files(root: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} of every module of `package` (a package is its `__init__.py`)."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom that can run, at any depth (functions included)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path, package: str) -> dict[str, list[Edge]]:
    """{module: the package's modules it imports}, by the rules of the module docstring."""
    files = module_files(root, package)
    graph: dict[str, list[Edge]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        holders = {*_ancestors(module), module}  # packages whose __init__ runs before this module
        edges = graph.setdefault(module, [])
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importer's package upwards
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            where = f"{path.relative_to(root)}:{node.lineno}"
            for target in targets:
                while target and target not in files:  # `import a.b.attr`-style names: the module part
                    target = target.rpartition(".")[0]
                if not target:
                    continue  # not a module of the package
                implied = [p for p in _ancestors(target) if p not in holders]
                for name in [*implied, target]:
                    if name != module:
                        edges.append(Edge(name, where))
    return graph


def cycles(graph: dict[str, list[Edge]]) -> list[tuple[set[str], list[tuple[str, Edge]]]]:
    """Each group of modules that import each other (a strongly connected component, Tarjan), with
    one cycle through it as (module, edge) steps."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # iterative: the graph is deeper than a comfortable recursion
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            edge = next(edges, None)
            if edge is not None:
                if edge.target not in index:
                    index[edge.target] = low[edge.target] = len(index)
                    stack.append(edge.target)
                    on_stack.add(edge.target)
                    work.append((edge.target, iter(graph.get(edge.target, ()))))
                elif edge.target in on_stack:
                    low[node] = min(low[node], index[edge.target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [(group, _cycle_in(graph, group)) for group in groups]


def _cycle_in(graph: dict[str, list[Edge]], group: set[str]) -> list[tuple[str, Edge]]:
    """A shortest cycle through the group's first module (breadth-first within the group)."""
    start = min(group)
    came_from: dict[str, tuple[str, Edge]] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in graph[node]:
                if edge.target not in group or edge.target in came_from:
                    continue
                came_from[edge.target] = (node, edge)
                if edge.target == start:
                    steps, at = [], start
                    while True:
                        step = came_from[at]
                        steps.append(step)
                        at = step[0]
                        if at == start:
                            return steps[::-1]
                following.append(edge.target)
        frontier = following
    raise AssertionError(f"no cycle found in the group {sorted(group)}")


def describe(group: set[str], cycle: list[tuple[str, Edge]]) -> str:
    steps = "\n".join(f"  {module} -> {edge.target}  ({edge.where})" for module, edge in cycle)
    return f"{len(group)} modules import each other: {', '.join(sorted(group))}\ne.g.\n{steps}"


def test_crypto_assets_has_no_import_cycle():
    found = cycles(import_graph(REPO, PACKAGE))
    assert not found, "import cycles among the modules of crypto_assets (break each one: move the shared code " \
                      "down a layer, or let the caller pass what the lower module needs):\n" + \
                      "\n\n".join(describe(*c) for c in found)


def test_late_imports_and_package_inits_are_in_the_graph():
    """The graph sees what the cycle test relies on: imports inside functions (cli.py imports
    everything late) and the package `__init__` an import runs."""
    graph = import_graph(REPO, PACKAGE)
    cli = {e.target for e in graph["crypto_assets.cli"]}
    assert "crypto_assets.warehouse.factory" in cli
    assert "crypto_assets.warehouse" in cli  # the __init__ of the package above it
    definitions = {e.target for e in graph["crypto_assets.definitions"]}
    assert "crypto_assets.health" in definitions


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, list[Edge]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(tmp_path, "pkg")


@pytest.mark.parametrize("files, cycle", [
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n",
                  "pkg/b.py": "def f():\n    from pkg.a import x\n"},
                 ["pkg.a", "pkg.b"], id="late import closes a cycle"),
    pytest.param({"pkg/__init__.py": "", "pkg/sub/__init__.py": "from pkg.sub.a import A\n",
                  "pkg/sub/a.py": "from pkg.sub.b import B\n", "pkg/sub/b.py": "B = 1\n"},
                 None, id="a submodule importing its sibling is no cycle through __init__"),
    pytest.param({"pkg/__init__.py": "", "pkg/sub/__init__.py": "from pkg.sub.a import A\nB = 1\n",
                  "pkg/sub/a.py": "from pkg.sub import B\n"},
                 ["pkg.sub", "pkg.sub.a"], id="a name from the __init__ that imports the submodule"),
    pytest.param({"pkg/__init__.py": "", "pkg/x/__init__.py": "from pkg.x.a import A\n",
                  "pkg/x/a.py": "from pkg.y.b import B\n", "pkg/y/__init__.py": "",
                  "pkg/y/b.py": "from pkg.x import A\n"},
                 ["pkg.x", "pkg.x.a", "pkg.y.b"], id="through another package's __init__"),
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "from typing import TYPE_CHECKING\n"
                  "if TYPE_CHECKING:\n    from pkg.b import B\n", "pkg/b.py": "from pkg.a import A\n"},
                 None, id="TYPE_CHECKING imports never run"),
    pytest.param({"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/sub/a.py": "from . import b\n",
                  "pkg/sub/b.py": "from .a import A\n"},
                 ["pkg.sub.a", "pkg.sub.b"], id="relative imports"),
])
def test_cycle_rules(tmp_path, files, cycle):
    found = cycles(_package(tmp_path, files))
    assert [sorted(group) for group, _ in found] == ([cycle] if cycle else [])
    for group, steps in found:  # the example cycle is closed and stays in the group
        assert [edge.target for _, edge in steps] == [module for module, _ in steps[1:]] + [steps[0][0]]
        assert {module for module, _ in steps} <= group
