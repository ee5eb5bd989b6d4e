"""No module of any package imports itself back, directly or through others.

Every ``*.py`` under ``packages/*/src`` is parsed with ``ast`` (nothing is imported) and
every ``import`` counts: at module level, inside functions, and under ``TYPE_CHECKING`` —
a cycle hidden in a function is still a knot in the design. ``from a import b`` points at
the module ``a.b`` when there is one, else at ``a``; relative imports are resolved; a
package's ``__init__`` is not counted as imported by its submodules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of every package under packages/*/src."""
    found: dict[str, Path] = {}
    for src in sorted(REPO.glob("packages/*/src")):
        for path in sorted(src.rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: Iterable[str]) -> set[str]:
    """The workspace modules that module ``name`` (at ``path``) imports anywhere."""
    known = set(modules)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    edges = set()
    for target in targets:
        while target and target not in known:  # a name inside a module → the module
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, files) for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other (Tarjan), each with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def a_cycle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete import loop through ``group``: start → ... → start (shortest, by BFS)."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {group}")  # cannot happen for a strong component


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every group of mutually importing modules, as one readable loop each."""
    return [" → ".join(a_cycle(graph, group)) for group in strongly_connected(graph)]


def test_the_walk_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "b.py"
    module.write_text(
        "from . import c, helper\n"
        "from .d import thing\n"
        "def f():\n"
        "    import pkg.e\n"
        "    from pkg.f import g\n"
    )
    known = ["pkg", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.f"]
    assert imports_of("pkg.b", module, known) == {"pkg", "pkg.c", "pkg.d", "pkg.e", "pkg.f"}
    init = tmp_path / "__init__.py"  # in a package's __init__, "." is the package itself
    init.write_text("from .c import thing\nfrom .. import other\n")
    assert imports_of("pkg.sub", init, ["pkg.sub.c", "pkg.other"]) == {"pkg.sub.c", "pkg.other"}


def test_a_cycle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "p.x": {"p.y"}, "p.y": {"p.x"}}
    assert cycles(graph) == ["a → b → c → a", "p.x → p.y → p.x"]


def test_the_graph_covers_every_package() -> None:
    graph = import_graph()
    tops = {name.partition(".")[0] for name in graph}
    assert {"ct_io", "ct_taxonomy", "ct_crop", "ct_splits", "ct_infer", "ct_train"} <= tops
    assert "ct_io.hookspecs" in graph["ct_io.plugins"]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(found)
