"""Random search as a query search: ``T`` distinct archs drawn uniformly from the pool, answer = best query value.

The same search as :func:`raynas.search.baselines.random_search` (which stays the one-call form), in the ask/tell
machinery of :mod:`raynas.search.base`, so it runs through the generic session: a state file, resume, queries in
flight and failed queries like the other query searches.

**The order.** Every proposal is read off one seeded order of the pool's positions, fixed at construction:

* its first ``T`` entries (``T`` = the budget capped at the pool size) are
  ``numpy.random.default_rng(seed).choice(P, size=T, replace=False)``, exactly the draw of
  :func:`~raynas.search.baselines.random_search`, so with no failed query the two query the same archs in the
  same order;
* the rest of the pool follows in an order drawn by the same generator (``rng.permutation`` of the positions left),
  used only when failed queries make the search need more than ``T`` archs (a failed query does not count towards
  the budget, and its arch is never proposed again).

Proposal ``s`` (the ``s``-th proposal, failures included) is entry ``s`` of that order. With ``q > 1`` the free slots
take the next entries of the same order, so the archs queried do not depend on ``q``, and a resumed search (whose
state holds the told rows, the failures and the in-flight proposals) continues exactly: each saved row must be the
entry of its step. The order reads nothing but the pool's size, so the state's pool check is on the arch indices.

Rows have kind ``"random"`` and empty ``weights`` (no point of a search space picked the arch).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from raynas.errors import ConfigError, SearchError
from raynas.oracles.base import Oracle
from raynas.search.base import QuerySearch
from raynas.search.pool import CandidatePool

log = logging.getLogger(__name__)


def _check_int(name: str, v: Any, lo: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")


@dataclass(frozen=True)
class RandomConfig:
    """``budget``: distinct queries (capped at the pool size). ``seed``: the draw
    (``numpy.random.default_rng(seed)``). ``q``: proposals in flight at once (1: the sequential search; the archs
    queried do not depend on it)."""

    budget: int = 20
    seed: int = 0
    q: int = 1

    def __post_init__(self) -> None:
        _check_int("budget", self.budget, 1)
        _check_int("seed", self.seed, 0)  # default_rng refuses a negative seed
        _check_int("q", self.q, 1)


@dataclass(frozen=True)
class RandomProposal:
    """What to evaluate next: the ``step``-th entry of the seeded order (``weights`` is empty)."""

    step: int
    kind: Literal["random"]
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


def draw_order(pool_size: int, budget: int, seed: int) -> np.ndarray:
    """The seeded order of pool positions (see the module docstring).

    Args:
        pool_size: ``P``, the number of archs in the pool.
        budget: ``T``, distinct queries (already capped at ``P``).
        seed: the generator's seed.
    Returns:
        int64 ``[P]``: a permutation of ``0..P-1`` whose first ``T`` entries are
        ``default_rng(seed).choice(P, size=T, replace=False)``.
    """
    rng = np.random.default_rng(seed)
    head = rng.choice(pool_size, size=budget, replace=False)
    rest = np.setdiff1d(np.arange(pool_size), head)  # sorted, so the tail is a function of the seed alone
    return np.concatenate([head, rng.permutation(rest)]).astype(np.int64)


class RandomSearch(QuerySearch[RandomProposal]):
    """Ask/tell random search over ``pool`` (see the module docstring); ``oracle`` is needed by :meth:`run`.

    Args:
        pool: the candidate pool (only its arch indices are read).
        oracle: answers the queries (:meth:`run`) and ``final`` in :meth:`result`; None for a pure ask/tell use.
        **config: the fields of :class:`RandomConfig` (``budget``, ``seed``, ``q``).
    """

    method = "random"
    config_cls = RandomConfig
    label = "random"

    def __init__(self, pool: CandidatePool, oracle: Oracle | None = None, **config: Any):
        super().__init__(pool, oracle, RandomConfig(**config))
        self.budget = min(self.config.budget, len(pool))
        if self.config.budget > len(pool):
            log.warning("budget %d exceeds the pool size %d; capped to %d", self.config.budget, len(pool),
                        self.budget)
        self._order = draw_order(len(pool), self.budget, self.config.seed)

    def _next_arch(self) -> int:
        """The arch of the next proposal: entry :attr:`next_step` of the order."""
        if self.next_step >= len(self._order):
            raise SearchError("every arch in the pool has been proposed")
        return int(self.pool.arch_index[self._order[self.next_step]])

    # ------------------------------------------------------ QuerySearch hooks
    def _exhausted(self) -> bool:
        return len(self._log) + len(self._failed_archs) >= len(self.pool)

    def _may_ask(self) -> bool:
        return self.next_step < len(self._order)

    def _propose(self) -> RandomProposal:
        arch = self._next_arch()
        return RandomProposal(self.next_step, "random", (), arch, self.is_known(arch))

    def _next_kind(self) -> str:
        return "random"

    def _weights_dim(self) -> int:
        return 0

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        return kind == "random" and self._next_arch() == arch

    def _result_extra(self) -> dict[str, Any]:
        """``seed``, the effective ``budget`` with ``budget_requested``, ``pool_size`` and ``steps``."""
        return dict(seed=self.config.seed, budget=self.budget, budget_requested=self.config.budget,
                    pool_size=len(self.pool), steps=len(self.trace))

    def fingerprint(self) -> str:
        """sha256 of the pool's arch indices: the order depends on nothing else (the scores are not read)."""
        return hashlib.sha256(np.ascontiguousarray(self.pool.arch_index, dtype="<i8").tobytes()).hexdigest()


# --- ``raynas search random``: the config and the session's spec ---------------------------------------------------

from raynas.search.session import QuerySearchConfig, SearchSpec  # noqa: E402  (the door's part, after the core)


@dataclass(frozen=True)
class RandomSearchConfig(QuerySearchConfig):
    """``raynas search random``: ``T = budget`` distinct archs of the pool drawn uniformly with ``seed``, under the
    same oracle, budget and seeds as the other searches (the baseline every NAS paper reports). It reads no proxy,
    so any pool works, even one whose scores hold none of RoBoT's metrics."""

    def __post_init__(self) -> None:
        super().__post_init__()
        RandomConfig(budget=self.budget, seed=self.seed, q=self.q)  # the search's own checks, before any work


SPEC = SearchSpec(RandomSearchConfig, RandomSearch,
                  lambda c, pool, oracle: RandomSearch(pool, oracle, budget=c.budget, seed=c.seed, q=c.q),
                  metrics=lambda c: ())


def run_random_search(cfg: RandomSearchConfig | Any, progress_callback: Any = None) -> dict[str, Any]:
    """Run (or resume) random search as configured by ``cfg`` (:func:`raynas.search.session.run_query_session`)."""
    return SPEC.run(cfg, progress_callback)
