"""The package's import structure: the import-linter contracts (pyproject.toml) hold, and no import cycle.

Layers (``cli > api > pipeline > ... > errors``) say who may import whom; a cycle anywhere in ``raynas/`` at file
level, even through an import inside a function, means two modules can only be understood (and loaded) together.
grimp counts function-level imports like top-level ones, so both checks see every ``import`` statement.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # the console script's entry point, run by this interpreter (the script itself may not be on PATH)
    cmd = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
           "--no-cache"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    report = proc.stdout[proc.stdout.find("Contracts"):] + proc.stderr
    print(report)
    assert proc.returncode == 0, f"lint-imports found broken contracts:\n{report}"


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    grimp = pytest.importorskip("grimp", reason="grimp is not installed (pip install -e '.[test]')")
    return grimp.build_graph("raynas", include_external_packages=True, cache_dir=None)


def _cycles(graph) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """One shortest cycle through each module that lies on a cycle (internal modules only), deduplicated."""
    internal = {m for m in graph.modules if m == "raynas" or m.startswith("raynas.")}
    succ = {m: sorted(graph.find_modules_directly_imported_by(m) & internal) for m in sorted(internal)}
    found: dict[frozenset[str], list[str]] = {}
    for start in sorted(internal):
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:  # breadth first: the first path back to ``start`` is a shortest cycle through it
            cur = queue.popleft()
            if start in succ[cur]:
                path = [cur]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                cycle = [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, start]
                found.setdefault(frozenset(cycle), cycle)
                break
            for nxt in succ[cur]:
                if nxt not in parent and nxt != start:
                    parent[nxt] = cur
                    queue.append(nxt)
    return sorted(found.values())


def _describe(graph, cycle: list[str]) -> str:  # type: ignore[no-untyped-def]
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:]):
        where = ", ".join(f"l.{d['line_number']} {d['line_contents']!r}" for d in
                          graph.get_import_details(importer=a, imported=b))
        lines.append(f"    {a} imports {b}: {where}")
    return "\n".join(lines)


def test_no_import_cycle_in_the_package(graph) -> None:  # type: ignore[no-untyped-def]
    cycles = _cycles(graph)
    text = "\n".join(_describe(graph, c) for c in cycles)
    print(text or "no import cycle")
    assert not cycles, f"{len(cycles)} import cycle(s) in raynas:\n{text}"


def test_cycle_finder_finds_a_planted_cycle() -> None:
    grimp = pytest.importorskip("grimp")
    g = grimp.ImportGraph()
    for m in ("raynas", "raynas.a", "raynas.b", "raynas.c", "raynas.d"):
        g.add_module(m)
    g.add_import(importer="raynas.a", imported="raynas.b")
    g.add_import(importer="raynas.b", imported="raynas.c")
    g.add_import(importer="raynas.c", imported="raynas.a")
    g.add_import(importer="raynas.d", imported="raynas.a")  # on no cycle
    assert _cycles(g) == [["raynas.a", "raynas.b", "raynas.c", "raynas.a"]]


def test_only_raynas_tune_imports_ray_tune(graph) -> None:  # type: ignore[no-untyped-def]
    """Ray Tune is the ASHA backend's business; import-linter sees external packages only as ``ray``."""
    tune = re.compile(r"\bray\.tune\b|^\s*from\s+ray\s+import\s+.*\btune\b")
    users = sorted(
        f"{m} l.{d['line_number']}: {d['line_contents']}"
        for m in graph.find_modules_that_directly_import("ray")
        for d in graph.get_import_details(importer=m, imported="ray")
        if tune.search(d["line_contents"])
    )
    assert users, "no module imports ray.tune: the check below would pass vacuously"
    outside = [u for u in users if not u.startswith("raynas.tune.")]
    assert not outside, "ray.tune imported outside raynas.tune:\n" + "\n".join(outside)
