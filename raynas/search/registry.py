"""The registry of searches: ``raynas search METHOD`` and :func:`raynas.api.search` look ``METHOD`` up here.

Each :class:`SearchEntry` names the search's typed config class and its run function
(``run(config, progress_callback=None) -> result dict``) by import path, resolved on use: listing or
validating method names (argument parsing, ``raynas --help``) imports neither the searches nor BoTorch and
torch behind them, and a test that replaces a run function on its module is seen by the next call. An
unknown name is an :class:`~raynas.errors.UnknownNameError` with the close matches.

TE-NAS is registered here too although it lives in :mod:`raynas.pruning`: it is run the same way
(``raynas search tenas``), and naming its module by path keeps the two packages free of imports of each other.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from raynas.config import from_dict
from raynas.registry import Registry


def _resolve(path: str) -> Any:
    """The object named ``"package.module:attribute"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class SearchEntry:
    """One search: ``config`` and ``run`` are ``"module:attribute"`` paths, ``doc`` a one-line description."""

    config: str
    run: str
    doc: str

    def config_class(self) -> type:
        return _resolve(self.config)

    def run_function(self) -> Callable[..., dict[str, Any]]:
        return _resolve(self.run)

    def make_config(self, cfg: Any) -> Any:
        """``cfg`` as the entry's typed config: an instance is kept, a mapping converted strictly
        (:func:`raynas.config.from_dict`: unknown keys and wrong types are :class:`~raynas.errors.ConfigError`)."""
        cls = self.config_class()
        return cfg if isinstance(cfg, cls) else from_dict(cls, cfg)

    def __call__(self, cfg: Any, progress_callback: Callable[..., None] | None = None) -> dict[str, Any]:
        """Run the search configured by ``cfg`` (typed, or a mapping converted by :meth:`make_config`)."""
        config = self.make_config(cfg)
        run = self.run_function()
        return run(config) if progress_callback is None else run(config, progress_callback=progress_callback)


SEARCHES: Registry[SearchEntry] = Registry("search method")
SEARCHES.add("robot", SearchEntry(
    "raynas.search.runner:RobotSearchConfig", "raynas.search.runner:run_robot_search",
    "RoBoT: BO over metric-combination weights + greedy exploitation"))
SEARCHES.add("hnas", SearchEntry(
    "raynas.search.hnas_run:HNASSearchConfig", "raynas.search.hnas_run:run_hnas_search",
    "HNAS: BO over the constants of the theory-derived objective"))
SEARCHES.add("linucb", SearchEntry(
    "raynas.search.linucb_run:LinUCBSearchConfig", "raynas.search.linucb_run:run_linucb_search",
    "LinUCB: a linear bandit over the proxies (Bayesian linear regression, upper confidence bound)"))
SEARCHES.add("zero-shot", SearchEntry(
    "raynas.search.zero_shot:ZeroShotConfig", "raynas.search.zero_shot:run_zero_shot_search",
    "zero-shot: the top arch of a scored pool by a rank-aggregation rule (AZ-NAS, rank sum, Revisit), no queries"))
SEARCHES.add("tenas", SearchEntry(
    "raynas.pruning.run:TenasConfig", "raynas.pruning.run:run_tenas_search",
    "TE-NAS pruning search from the supernet"))


def get_search(name: str) -> SearchEntry:
    """The entry of search ``name`` (unknown: :class:`~raynas.errors.UnknownNameError` with close matches)."""
    return SEARCHES.get(name)
