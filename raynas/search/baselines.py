"""Baseline searches with the same oracle interface and result dict as RoBoT.

* :func:`random_search`: ``T`` distinct random archs of the pool; answer = best query value.
* :func:`single_metric_greedy`: rank the pool by one metric in its registered direction and query the top ``T``
  (the "best single training-free metric" baseline when run for every metric).
* :func:`sample_pick_best`: NASWOT-style: sample ``N`` unqueried archs, query the one the metric likes best;
  repeat until ``T`` queries.

Every function returns :meth:`QueryLog.result` (``arch_index``, ``value``, ``final``, ``queries``, ``cost`` and
the query history).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raynas.errors import SearchError
from raynas.oracles.base import Oracle
from raynas.search.queries import QueryLog
from raynas.search.pool import CandidatePool


def _budget(pool: CandidatePool, budget: int) -> int:
    if budget < 1:
        raise SearchError(f"budget must be >= 1, got {budget}")
    if len(pool) == 0:
        raise SearchError("the candidate pool is empty")
    return min(int(budget), len(pool))


def metric_order(pool: CandidatePool, metric: str, higher_is_better: bool | None = None) -> np.ndarray:
    """Pool positions best-first by the raw scores of ``metric``; NaN last; ties by ``arch_index``.

    ``higher_is_better`` defaults to the metric's registered direction (:func:`raynas.metrics.get_metric`).
    """
    if metric not in pool.metrics:
        raise SearchError(f"metric {metric!r} is not in the pool (metrics: {', '.join(pool.metrics)})")
    if higher_is_better is None:
        from raynas.metrics import get_metric

        higher_is_better = get_metric(metric).higher_is_better
    x = pool.raw[:, pool.metrics.index(metric)]
    key = np.where(np.isfinite(x), -x if higher_is_better else x, np.inf)
    return np.argsort(key, kind="stable")


def random_search(pool: CandidatePool, oracle: Oracle, budget: int, seed: int = 0) -> dict[str, Any]:
    """Query ``budget`` distinct archs drawn uniformly from the pool (``numpy.random.default_rng(seed)``)."""
    t = _budget(pool, budget)
    picks = np.random.default_rng(seed).choice(len(pool), size=t, replace=False)
    qlog = QueryLog()
    for pos in picks:
        qlog.query(oracle, int(pool.arch_index[pos]))
    return qlog.result("random", oracle, seed=seed)


def single_metric_greedy(pool: CandidatePool, oracle: Oracle, budget: int, metric: str,
                         higher_is_better: bool | None = None) -> dict[str, Any]:
    """Query the top ``budget`` archs by ``metric`` (see :func:`metric_order`)."""
    t = _budget(pool, budget)
    qlog = QueryLog()
    for pos in metric_order(pool, metric, higher_is_better)[:t]:
        qlog.query(oracle, int(pool.arch_index[pos]))
    return qlog.result(f"greedy:{metric}", oracle, metric=metric)


def sample_pick_best(pool: CandidatePool, oracle: Oracle, budget: int, metric: str, sample_size: int = 100,
                     seed: int = 0, higher_is_better: bool | None = None) -> dict[str, Any]:
    """NASWOT-style: ``budget`` rounds of "sample ``sample_size`` unqueried archs, query the metric's favourite"."""
    t = _budget(pool, budget)
    if sample_size < 1:
        raise SearchError(f"sample_size must be >= 1, got {sample_size}")
    rank = np.empty(len(pool), dtype=np.int64)  # rank[pos] = position of pos in the metric's best-first order
    rank[metric_order(pool, metric, higher_is_better)] = np.arange(len(pool))
    rng = np.random.default_rng(seed)
    free = np.ones(len(pool), dtype=bool)
    qlog = QueryLog()
    for _ in range(t):
        cand = np.flatnonzero(free)
        sample = rng.choice(cand, size=min(sample_size, len(cand)), replace=False)
        pos = int(sample[np.argmin(rank[sample])])
        free[pos] = False
        qlog.query(oracle, int(pool.arch_index[pos]))
    return qlog.result(f"sample{sample_size}:{metric}", oracle, metric=metric, seed=seed)
