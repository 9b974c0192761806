"""Search spaces: the registry, ``create_space``, the built-in spaces and their benchmarks.

Registry entries are factories ``(**kwargs) -> SearchSpace``. **One package per space**
(``raynas/spaces/<space>/``: ``nb201``, ``nb101``, ``darts``, ``tnb101``): every subpackage of this folder is
imported here, discovered, not listed, and its ``__init__`` imports the modules that register its space(s)
(``SPACES.add(name, factory)``), its benchmark tables (:mod:`raynas.spaces.benchmarks`, e.g.
``nb201/benchmark.py``) and its stacked form (:mod:`raynas.spaces.stacking`). Its measured metric costs ship as
``<package>/metric_costs.json`` (:mod:`raynas.spaces.costs`, written by ``scripts/measure_metric_costs.py``) and
are read here. A new space is one new package (and its tests). The modules beside the packages are shared by the
spaces (the base class and its capabilities, ops, specs, supernet parts, benchmarks, costs, stacking) or, like
``nbsz``, register NAS-Bench-Suite-Zero's published tables of several spaces once those are imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable

from raynas.registry import Registry
from raynas.spaces.base import SearchSpace
from raynas.spaces.benchmarks import Benchmark, benchmark_for_space, create_benchmark, list_benchmarks
from raynas.spaces.costs import COSTS_FILE, load_metric_costs_file

SPACES: Registry[Callable[..., SearchSpace]] = Registry("space")

#: modules (not spaces) imported after the space packages: they register tables of several spaces
_AFTER_SPACES = ("nbsz",)

#: the space a run uses when none is named (configs, CLI, Python API)
DEFAULT_SPACE = "nb201"


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build registered space ``name``; unknown names raise ``UnknownNameError`` with close matches.

    ``kwargs`` go to the space's factory (for ``nb201``: macro overrides such as ``C=8, N=1``).
    """
    return SPACES.get(name)(**kwargs)


def list_spaces() -> list[str]:
    return SPACES.names()


def _space_packages() -> list[str]:
    """The space packages of this folder (subfolders with an ``__init__.py``), in name order."""
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.ispkg)


for _name in _space_packages():
    importlib.import_module(f"{__name__}.{_name}")
    # the package's measured metric costs, if it ships them (raynas.spaces.costs)
    load_metric_costs_file(Path(__file__).parent / _name / COSTS_FILE)
for _name in _AFTER_SPACES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "DEFAULT_SPACE", "SPACES", "Benchmark", "SearchSpace", "benchmark_for_space", "create_benchmark", "create_space",
    "list_benchmarks", "list_spaces",
]
