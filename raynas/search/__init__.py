"""Query-based search over a scored candidate pool: RoBoT, HNAS, baselines, the registry of searches.

The names below are imported on first use (PEP 562), not with the package: :mod:`raynas.search.registry`
is read by argument parsing and ``raynas --help``, and must not pull in torch and BoTorch (:mod:`.bo`).
``from raynas.search import RoBoT`` works as before.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module defining it
_EXPORTS = {
    "ORACLES": "raynas.oracles.base",
    "CallableOracle": "raynas.oracles.base",
    "BenchmarkTableOracle": "raynas.oracles.base",
    "Oracle": "raynas.oracles.base",
    "QueryLog": "raynas.search.queries",
    "QueryResult": "raynas.oracles.base",
    "create_oracle": "raynas.oracles.base",
    "CandidatePool": "raynas.search.pool",
    "QuerySearch": "raynas.search.base",
    "save_search_state": "raynas.search.base",
    "Proposal": "raynas.search.robot",
    "RoBoT": "raynas.search.robot",
    "RoBoTConfig": "raynas.search.robot",
    "HNAS": "raynas.search.hnas",
    "SEARCHES": "raynas.search.registry",
    "SearchEntry": "raynas.search.registry",
    "metric_order": "raynas.search.baselines",
    "random_search": "raynas.search.baselines",
    "sample_pick_best": "raynas.search.baselines",
    "single_metric_greedy": "raynas.search.baselines",
    "propose": "raynas.search.bo",
    "load_state": "raynas.store.search_state",
    "save_state": "raynas.store.search_state",
}

_SUBMODULES = ("base", "baselines", "bo", "hnas", "hnas_run", "pool", "registry", "robot", "runner", "summary")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in _SUBMODULES:  # ``raynas.search.bo`` without importing it first, as when __init__ imported it
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
