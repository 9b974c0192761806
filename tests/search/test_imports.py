"""Import structure of the search side (issue #15): no file-level import cycle through raynas.search,
raynas.pruning, raynas.tune or raynas.oracles, and none of them imports a layer above it
(``search > pruning > tune > parallel > oracles > metrics | training > spaces | data > store > tasks > config``: the
search registry lists TE-NAS, whose core is the pruning package).
Imports inside functions count. Needs grimp (a development tool, not a test dependency)."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")

PACKAGES = ("raynas.search", "raynas.pruning", "raynas.tune", "raynas.oracles")
_BELOW_ORACLES = {"raynas.metrics", "raynas.training", "raynas.spaces", "raynas.data", "raynas.store",
                  "raynas.tasks", "raynas.config", "raynas.registry", "raynas.errors"}  # tasks: below store
#: what each package may import besides itself
ALLOWED = {
    "raynas.oracles": _BELOW_ORACLES,
    "raynas.tune": _BELOW_ORACLES | {"raynas.oracles", "raynas.parallel"},  # ASHA attaches through the Ray session
    "raynas.search": _BELOW_ORACLES | {"raynas.oracles", "raynas.tune", "raynas.parallel", "raynas.pruning"},
    "raynas.pruning": _BELOW_ORACLES | {"raynas.oracles", "raynas.tune", "raynas.parallel"},
}


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    return grimp.build_graph("raynas")


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _in_scope(module: str) -> bool:
    return _package(module) in PACKAGES


@pytest.mark.parametrize("package", PACKAGES)
def test_no_upward_imports(graph, package):  # type: ignore[no-untyped-def]
    bad = sorted((m, i) for m in graph.modules if _package(m) == package
                 for i in graph.find_modules_directly_imported_by(m)
                 if _package(i) != package and _package(i) not in ALLOWED[package])
    assert bad == []


def test_no_import_cycles(graph):  # type: ignore[no-untyped-def]
    """Strongly connected components (Tarjan) of the module graph that hold a module of these packages."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(root: str) -> None:  # iterative Tarjan: the graph is deep enough to hit the recursion limit
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 and any(_in_scope(m) for m in comp):
                    cycles.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    assert cycles == []
