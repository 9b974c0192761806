"""The registry of searches: ``raynas search METHOD``, the pipeline and :func:`raynas.api.search` look ``METHOD`` up
here.

Each :class:`SearchEntry` holds a *loader*: a plain function that imports the search's module when called and
returns its typed config class and its run function (``run(config, progress_callback=None) -> result dict``). The
imports sit inside those functions, so the import graph (and the import contracts) see every edge, while listing or
validating method names (argument parsing, ``raynas --help``) imports neither the searches nor BoTorch and torch
behind them; and since the run function is looked up on its module at each call, a test that replaces it there is
seen by the next call. An unknown name is an :class:`~raynas.errors.UnknownNameError` with the close matches.

A query search (RoBoT, LinUCB, HNAS, random, robot-reference) runs through
:func:`raynas.search.session.run_query_session`; zero-shot and TE-NAS have their own run functions. TE-NAS is
registered here too although it lives in :mod:`raynas.pruning`: it is run the same way (``raynas search tenas``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from raynas.config import from_dict
from raynas.registry import Registry

#: what a loader returns: the typed config class and the run function
Loaded = tuple[type, Callable[..., dict[str, Any]]]


@dataclass(frozen=True)
class SearchEntry:
    """One search: ``load()`` -> ``(config class, run function)``, ``doc`` a one-line description."""

    load: Callable[[], Loaded]
    doc: str

    def config_class(self) -> type:
        return self.load()[0]

    def run_function(self) -> Callable[..., dict[str, Any]]:
        return self.load()[1]

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


def _robot() -> Loaded:
    from raynas.search import runner

    return runner.RobotSearchConfig, runner.run_robot_search


def _linucb() -> Loaded:
    from raynas.search import linucb_run

    return linucb_run.LinUCBSearchConfig, linucb_run.run_linucb_search


def _hnas() -> Loaded:
    from raynas.search import hnas_run

    return hnas_run.HNASSearchConfig, hnas_run.run_hnas_search


def _random() -> Loaded:
    from raynas.search import random_baseline

    return random_baseline.RandomSearchConfig, random_baseline.run_random_search


def _robot_reference() -> Loaded:
    from raynas.search import robot_reference

    return robot_reference.RoBoTReferenceSearchConfig, robot_reference.run_robot_reference_search


def _zero_shot() -> Loaded:
    from raynas.search import zero_shot

    return zero_shot.ZeroShotConfig, zero_shot.run_zero_shot_search


def _tenas() -> Loaded:
    from raynas.pruning import run

    return run.TenasConfig, run.run_tenas_search


SEARCHES: Registry[SearchEntry] = Registry("search method")
SEARCHES.add("robot", SearchEntry(_robot, "RoBoT: BO over metric-combination weights + greedy exploitation"))
SEARCHES.add("linucb", SearchEntry(
    _linucb, "LinUCB: a linear bandit over the proxies (Bayesian linear regression, upper confidence bound)"))
SEARCHES.add("hnas", SearchEntry(_hnas, "HNAS: BO over the constants of the theory-derived objective"))
SEARCHES.add("random", SearchEntry(
    _random, "random search: T distinct archs drawn uniformly from the pool (the baseline every NAS paper reports)"))
SEARCHES.add("robot-reference", SearchEntry(
    _robot_reference, "RoBoT's Algorithm 1 on the authors' bayes_opt optimiser (the yardstick; needs "
    "bayesian-optimization)"))
SEARCHES.add("zero-shot", SearchEntry(
    _zero_shot,
    "zero-shot: the top arch of a scored pool by a rank-aggregation rule (AZ-NAS, rank sum, Revisit), no queries"))
SEARCHES.add("tenas", SearchEntry(_tenas, "TE-NAS pruning search from the supernet"))


def get_search(name: str) -> SearchEntry:
    """The entry of search ``name`` (unknown: :class:`~raynas.errors.UnknownNameError` with close matches)."""
    return SEARCHES.get(name)
