"""Search spaces: the registry, ``create_space``, the built-in spaces and their benchmarks.

Registry entries are factories ``(**kwargs) -> SearchSpace``; each space module registers its own with
``SPACES.add(name, factory)`` when imported. Modules listed in ``_SPACE_MODULES`` are imported here if
their file, or their package (a directory with ``__init__.py``, e.g. ``tnb101/``), exists (so a space can be
added without touching this file's logic). A space with a tabular
benchmark registers it beside itself (:mod:`raynas.spaces.benchmarks`, e.g. ``nb201_benchmark``), and so do measured
metric costs (:mod:`raynas.spaces.costs`, e.g. ``nb201_costs``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from raynas.registry import Registry
from raynas.spaces.base import SearchSpace
from raynas.spaces.benchmarks import Benchmark, benchmark_for_space, create_benchmark, list_benchmarks

SPACES: Registry[Callable[..., SearchSpace]] = Registry("space")

_SPACE_MODULES = ("nb201", "nb201_benchmark", "nb201_costs", "darts", "nb101", "nb101_benchmark", "nbsz", "tnb101")

#: the space a run uses when none is named (configs, CLI, Python API)
DEFAULT_SPACE = "nb201"


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build registered space ``name``; unknown names raise ``UnknownNameError`` with close matches.

    ``kwargs`` go to the space's factory (for ``nb201``: macro overrides such as ``C=8, N=1``).
    """
    return SPACES.get(name)(**kwargs)


def list_spaces() -> list[str]:
    return SPACES.names()


for _name in _SPACE_MODULES:
    _here = Path(__file__).parent
    if (_here / f"{_name}.py").is_file() or (_here / _name / "__init__.py").is_file():
        importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "DEFAULT_SPACE", "SPACES", "Benchmark", "SearchSpace", "benchmark_for_space", "create_benchmark", "create_space",
    "list_benchmarks", "list_spaces",
]
