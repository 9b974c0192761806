"""LinUCB: a linear bandit over the pool's proxies (issue 33), in the ask/tell machinery of :mod:`raynas.search.base`.

RoBoT searches weights ``w`` of a linear combination and then queries ``argmax x.w``, so each query informs ``w``
only through which arch won. LinUCB regresses the observed query values directly on each arch's proxy vector
and queries the arch with the best upper confidence bound:

* **features** ``x`` ``[K + 1]``: the pool's per-proxy min-max normalisation of the raw scores, the one RoBoT uses
  (:attr:`CandidatePool.normalized`: a failed score -> 0, a constant column -> 0), plus a constant 1;
* **start**: for each proxy in the pool's metric order, the not-yet-queried arch with that proxy's largest
  normalised value (ties: the smallest arch index; an arch in flight or whose query failed is not taken);
* **then**, until ``budget`` distinct queries: the observed values are standardised (mean 0; std 1 when fewer than
  2 values or all equal); Bayesian linear regression with prior precision ``ridge`` (lambda) on every weight and
  noise variance ``noise`` (sigma^2) gives the posterior ``Sigma = (lambda I + X^T X / sigma^2)^-1`` and
  ``mu = Sigma X^T y / sigma^2``; the unqueried arch maximising ``x.mu + beta sqrt(x^T Sigma x)`` is queried
  (ties: the smallest arch index);
* **answer**: the queried arch with the best value, as the other searches.

Defaults fixed before any testing (issue 33): ``ridge = 10``, ``noise = 1``, ``beta = 1``.

**Queries in flight (q > 1).** A proposal in flight is conditioned on as an observation at its predicted mean
(the posterior of the told values): the mean is unchanged by such a fantasy (``(A + x x^T) mu = b + x x^T mu``),
its covariance shrinks, so the next proposals spread out instead of piling onto the same bound. Every proposal is
a pure function of the told values, the pending archs and the pool, so a resumed search replays exactly.

A row's ``weights`` is the posterior mean ``mu`` (``K + 1``: the proxies then the intercept) the proposal used;
a start row carries the one-hot of its proxy (intercept 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from raynas.errors import ConfigError, SearchError
from raynas.oracles.base import Oracle
from raynas.search.base import QuerySearch
from raynas.search.pool import CandidatePool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinUCBConfig:
    """``budget``: distinct queries (capped at the pool size). ``ridge``: prior precision lambda of every weight;
    ``noise``: noise variance sigma^2 of the standardised values; ``beta``: the weight of the bound's width.
    ``q``: proposals in flight at once (1: the sequential search). ``seed`` is kept for the searches' common
    calling convention: LinUCB is deterministic (a miss is a miss on every seed)."""

    budget: int = 20
    ridge: float = 10.0
    noise: float = 1.0
    beta: float = 1.0
    q: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.budget, int) or isinstance(self.budget, bool) or self.budget < 1:
            raise ConfigError(f"budget must be an integer >= 1, got {self.budget!r}")
        if not isinstance(self.q, int) or isinstance(self.q, bool) or self.q < 1:
            raise ConfigError(f"q must be an integer >= 1, got {self.q!r}")
        for name in ("ridge", "noise"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not np.isfinite(self.beta) \
                or self.beta < 0:
            raise ConfigError(f"beta must be a finite number >= 0, got {self.beta!r}")


@dataclass(frozen=True)
class LinUCBProposal:
    """What to evaluate next: ``kind`` ``"start"`` (a proxy's top arch) or ``"ucb"``; ``weights`` see the module."""

    step: int
    kind: Literal["start", "ucb"]
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


def features(pool: CandidatePool) -> np.ndarray:
    """``[P, K + 1]``: the pool's normalised proxies and a constant 1 (the intercept)."""
    return np.hstack([pool.normalized.astype(np.float64), np.ones((len(pool), 1))])


def standardise(y: np.ndarray) -> np.ndarray:
    """``(y - mean) / std``; std 1 when fewer than 2 values or all equal (then only the mean is removed)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return y
    std = float(y.std()) if len(y) >= 2 else 0.0
    return (y - y.mean()) / (std if std > 0 else 1.0)


def posterior(X: np.ndarray, y: np.ndarray, ridge: float, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Bayesian linear regression ``y = X w + e``, ``w ~ N(0, I / ridge)``, ``e ~ N(0, noise)``.

    Args:
        X: ``[n, d]`` features of the observations; y: ``[n]`` their (standardised) values.
    Returns:
        ``(mu [d], Sigma [d, d])``: the posterior mean and covariance of ``w``.
    """
    d = X.shape[1]
    precision = ridge * np.eye(d) + X.T @ X / noise
    sigma = np.linalg.inv(precision)
    sigma = (sigma + sigma.T) / 2  # symmetric to the last bit, so x^T Sigma x >= 0 holds numerically
    return sigma @ (X.T @ y) / noise, sigma


def ucb_scores(F: np.ndarray, mu: np.ndarray, sigma: np.ndarray, beta: float) -> np.ndarray:
    """``x.mu + beta sqrt(x^T Sigma x)`` for every row ``x`` of ``F`` ``[P, d]``; returns ``[P]``."""
    width = np.einsum("pi,ij,pj->p", F, sigma, F)
    return F @ mu + beta * np.sqrt(np.maximum(width, 0.0))


class LinUCB(QuerySearch[LinUCBProposal]):
    """Ask/tell LinUCB over ``pool`` (see the module docstring); ``oracle`` is needed by :meth:`run`."""

    method = "linucb"
    config_cls = LinUCBConfig
    label = "LinUCB"

    def __init__(self, pool: CandidatePool, oracle: Oracle | None = None, **config: Any):
        super().__init__(pool, oracle, LinUCBConfig(**config))
        self.budget = min(self.config.budget, len(pool))
        if self.config.budget > len(pool):
            log.warning("budget %d exceeds the pool size %d; capped to %d", self.config.budget, len(pool),
                        self.budget)
        self._F = features(pool)

    # ------------------------------------------------------------- the rule
    def _start_count(self) -> int:
        """Start proposals made so far (told, failed or in flight)."""
        return (sum(r["kind"] == "start" for r in self.trace) + sum(f["kind"] == "start" for f in self.failed)
                + sum(p.kind == "start" for p in self.pending))

    def _available(self) -> np.ndarray:
        """``[P]`` bool: archs neither queried, in flight nor failed."""
        taken = self.unavailable()
        return np.array([int(a) not in taken for a in self.pool.arch_index], dtype=bool)

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """The posterior of the told values, conditioned on the in-flight archs at their predicted means."""
        X = self._F[[self.pool.position(a) for a in self._log.arch]]
        y = standardise(np.asarray(self._log.values, dtype=np.float64))
        mu, sigma = posterior(X, y, self.config.ridge, self.config.noise)
        flying = [self.pool.position(p.arch_index) for p in self.pending]
        if flying:
            Xp = self._F[flying]
            mu, sigma = posterior(np.vstack([X, Xp]), np.concatenate([y, Xp @ mu]), self.config.ridge,
                                  self.config.noise)
        return mu, sigma

    def _next(self) -> tuple[str, np.ndarray, int]:
        """``(kind, weights, arch)`` of the next proposal (a pure function of the state)."""
        free = self._available()
        if not free.any():
            raise SearchError("every arch in the pool has been queried")
        k = self._start_count()
        if k < len(self.pool.metrics):
            col = np.where(free, self.pool.normalized[:, k], -np.inf)
            w = np.zeros(self._F.shape[1])
            w[k] = 1.0
            return "start", w, int(self.pool.arch_index[int(np.argmax(col))])  # argmax: first, smallest index
        mu, sigma = self._posterior()
        score = np.where(free, ucb_scores(self._F, mu, sigma, self.config.beta), -np.inf)
        return "ucb", mu, int(self.pool.arch_index[int(np.argmax(score))])

    # ------------------------------------------------------ QuerySearch hooks
    def _exhausted(self) -> bool:
        return len(self._log) + len(self._failed_archs) >= len(self.pool)

    def _may_ask(self) -> bool:
        return bool(self._available().any())

    def _propose(self) -> LinUCBProposal:
        kind, w, arch = self._next()
        return LinUCBProposal(self.next_step, kind, tuple(float(v) for v in w), arch,  # type: ignore[arg-type]
                              self.is_known(arch))

    def _next_kind(self) -> str:
        return "start" if self._start_count() < len(self.pool.metrics) else "ucb"

    def _weights_dim(self) -> int:
        return self._F.shape[1]

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        k, w, a = self._next()
        return (k, a) == (kind, arch) and np.allclose(w, weights, rtol=1e-9, atol=1e-12)

    def _observe(self, kind: str, weights: np.ndarray, value: float, new: bool) -> None:
        """Nothing to keep: the posterior is recomputed from the query log (distinct archs and their values)."""

    def weight_names(self) -> tuple[str, ...]:
        """A row's ``weights``: the posterior mean the query was chosen with, per proxy, then the intercept."""
        return (*self.pool.metrics, "intercept")

    def _result_extra(self) -> dict[str, Any]:
        """``budget`` (effective), ``budget_requested``, ``pool_size``, ``metrics`` (the features' order) and
        ``weights``: the posterior mean of the told values (``K + 1``, intercept last; standardised scale)."""
        rows = [self.pool.position(a) for a in self._log.arch]
        mu, _ = posterior(self._F[rows], standardise(np.asarray(self._log.values, dtype=np.float64)),
                          self.config.ridge, self.config.noise)
        return dict(budget=self.budget, budget_requested=self.config.budget, pool_size=len(self.pool),
                    metrics=list(self.pool.metrics), weights=[float(v) for v in mu], steps=len(self.trace))

    def _pool_state(self) -> dict[str, Any]:
        return {"metrics": list(self.pool.metrics), "size": len(self.pool), "transform": self.pool.transform,
                "fingerprint": self.fingerprint()}
