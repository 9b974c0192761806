"""Import structure of the store and the parallel package (issue 15): the store sits at the bottom, and neither
package has an import cycle between its modules (lazy imports inside functions count)."""

from __future__ import annotations

import grimp
import pytest

STORE_MAY_IMPORT = ("raynas.store", "raynas.errors", "raynas.config", "raynas.registry")


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    return grimp.build_graph("raynas")


def test_the_store_imports_only_the_bottom_layer(graph):  # type: ignore[no-untyped-def]
    bad = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if not i.startswith(STORE_MAY_IMPORT))
           for m in graph.find_descendants("raynas.store") | {"raynas.store"}}
    assert not {m: v for m, v in bad.items() if v}


@pytest.mark.parametrize("package", ["raynas.store", "raynas.parallel"])
def test_no_cycles_between_modules(graph, package):  # type: ignore[no-untyped-def]
    mods = sorted(graph.find_descendants(package) | {package})
    cycles = [(a, b) for i, a in enumerate(mods) for b in mods[i + 1:]
              if graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert not cycles


def test_scoring_is_pure(graph):  # type: ignore[no-untyped-def]
    """``scoring`` scores ids into tables; the run loop (``local``, ``run``) sits above it, never below."""
    assert not graph.chain_exists("raynas.parallel.scoring", "raynas.parallel.run")
    assert not graph.chain_exists("raynas.parallel.scoring", "raynas.parallel.local")
