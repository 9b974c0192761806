"""RoBoT as its authors run it: the paper's Algorithm 1 on the authors' optimiser, ``bayes_opt`` (the yardstick).

:class:`raynas.search.robot.RoBoT` is raynas's RoBoT (BoTorch, Sobol start, patience, ...). This module is the
reference loop the robustness benchmark measures it against (``scripts/bench_search_robustness.py``), as the
paper's Algorithm 1 and the authors' benchmark script run it, in the ask/tell machinery of :mod:`raynas.search.base`:

* **features**: per metric ``(x - min) / (max - min)`` over the finite raw scores of the pool (the pool's
  transform is not applied: the authors min-max the raw scores), a non-finite score NaN (it adds 0 to a weighted
  sum), a constant column kept as is (:func:`authors_normalize`);
* **BO phase**: ``BayesianOptimization`` over ``w in [-1, 1]^K`` with UCB (``kappa``, 2.576) and bayes_opt's
  GP (Matern-5/2, alpha 1e-6, normalize_y), seeded by ``seed``, run as ``maximize(init_points, n_iter)`` with
  ``n_iter = bo_iters - max(init_points, 1)`` (the authors: ``init_points = 0``, so one random point, then
  ``n_iter = T - 1`` suggestions). Evaluating ``w`` queries the arch :func:`authors_top` picks (the last of an
  ascending argsort of the weighted sum); an arch queried before is answered from the cache (a step of the trace,
  no query) and is still an observation. A suggestion equal to a point already observed is what
  ``maximize`` answers from bayes_opt's own cache without calling the objective: it uses up a BO iteration and
  is no step (:attr:`RoBoTReference.skipped` counts them). The distinct archs of this phase are the paper's T0;
* **exploitation**: ``w*`` = the latest of the BO points with the best value (the script's ``>=``); the next
  archs by the weighted sum under ``w*`` (``flip(argsort)`` order, :func:`authors_exploit`) not yet queried,
  until ``T = budget`` distinct archs (capped at the pool size);
* **answer**: the queried arch with the best query value (the first of equal ones), as the other searches.

A row's ``weights`` is the BO point ``w`` of a ``"bo"`` row and ``w*`` of a ``"greedy"`` row, as RoBoT's.

**Sequential only.** ``maximize`` asks one point at a time and bayes_opt has no pending points to condition on,
so ``q > 1`` is a :class:`~raynas.errors.ConfigError`.

**Resume.** The optimiser's state (its GP, its random generator) is not saved: every proposal is a pure function
of the seed and the values told so far, so :meth:`RoBoTReference.from_state` builds a fresh optimiser and replays
the saved rows through it: each step re-runs the seeded suggestion, checks that it is the saved row (kind, arch,
``w``), and registers the saved value, which leaves the optimiser exactly where the uninterrupted search was
(so a resume costs one BO step per saved BO row).

**Failed queries** (which the authors' loop never sees): the arch is excluded from :func:`authors_top` from then
on and the BO point gets no observation (its iteration is used up); if every BO query failed there is no ``w*``
and the search stops with ``stop = "no_bo_value"``.

``bayes_opt`` (``bayesian-optimization>=3.4``) is an optional dependency: without it constructing the search
raises :class:`ReferenceUnavailableError`.

**Row order of the pool.** The pool sorts its archs by ``arch_index``; positions (and so the argsort's order among
exactly equal weighted sums) follow that order.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from raynas.errors import ConfigError, SearchError
from raynas.oracles.base import Oracle
from raynas.search.base import QuerySearch
from raynas.search.pool import CandidatePool

log = logging.getLogger(__name__)

#: how to get the optional optimiser
INSTALL_HINT = "pip install 'raynas[bench]'"


class ReferenceUnavailableError(ConfigError):
    """The reference RoBoT loop needs the optional package ``bayes_opt`` (``bayesian-optimization>=3.4``)."""


def _check_int(name: str, v: Any, lo: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")


@dataclass(frozen=True)
class RoBoTReferenceConfig:
    """The settings of the authors' loop. ``budget``: T distinct queries (capped at the pool size). ``seed``:
    bayes_opt's ``random_state``. ``kappa``: UCB's exploration weight (bayes_opt's default, 2.576).
    ``init_points``: random points before the GP (the authors: 0, so bayes_opt draws one). ``bo_iters``: BO
    evaluations in all, random points included (None: the capped budget, the authors' ``n_iter = T - 1`` after
    one random point). ``q``: must be 1 (the loop is sequential)."""

    budget: int = 20
    seed: int = 0
    kappa: float = 2.576
    init_points: int = 0
    bo_iters: int | None = None
    q: int = 1

    def __post_init__(self) -> None:
        _check_int("budget", self.budget, 1)
        _check_int("seed", self.seed, 0)  # bayes_opt seeds numpy's RandomState, which refuses a negative seed
        _check_int("init_points", self.init_points, 0)
        if self.bo_iters is not None:
            _check_int("bo_iters", self.bo_iters, 1)
        if isinstance(self.kappa, bool) or not isinstance(self.kappa, (int, float)) or not np.isfinite(self.kappa) \
                or self.kappa < 0:
            raise ConfigError(f"kappa must be a finite number >= 0, got {self.kappa!r}")
        _check_int("q", self.q, 1)
        if self.q != 1:
            raise ConfigError(f"q must be 1 for the reference RoBoT loop, got {self.q}: the authors' bayes_opt loop "
                              "is sequential (maximize asks one point at a time and has no pending points to "
                              "condition on)")


@dataclass(frozen=True)
class ReferenceProposal:
    """What to evaluate next: ``kind`` ``"bo"`` (``weights`` = the BO point) or ``"greedy"`` (``weights`` = w*)."""

    step: int
    kind: Literal["bo", "greedy"]
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


# ----------------------------------------------------------------------------- the authors' pure steps
def authors_normalize(raw: np.ndarray) -> np.ndarray:
    """Per column ``(x - min) / (max - min)`` over the finite entries, non-finite -> NaN (adds 0 to a weighted
    sum); a constant column is kept as is.

    Args:
        raw: ``[P, K]`` raw scores.
    Returns:
        float64 ``[P, K]``.
    """
    x = np.where(np.isfinite(raw), raw, np.nan).astype(np.float64)
    out = x.copy()
    for k in range(x.shape[1]):
        if np.isnan(x[:, k]).all():
            continue  # nothing to scale (nanmin would warn): the column adds 0 everywhere
        lo, hi = np.nanmin(x[:, k]), np.nanmax(x[:, k])
        if hi > lo:
            out[:, k] = (x[:, k] - lo) / (hi - lo)
    return out


def authors_scores(normalized: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``[P]``: the weighted sum of the normalised scores ``[P, K]`` under ``w`` ``[K]`` (NaN adds nothing)."""
    return np.where(np.isnan(normalized), 0.0, normalized) @ np.asarray(w, dtype=np.float64)


def authors_top(normalized: np.ndarray, w: np.ndarray) -> int:
    """Position of the arch the authors' script takes for weights ``w``: the first of ``flip(argsort(score))``,
    i.e. the last of an ascending argsort of :func:`authors_scores`."""
    return int(np.flip(np.argsort(authors_scores(normalized, w)))[0])


def authors_exploit(normalized: np.ndarray, w_star: np.ndarray, queried: list[int], budget: int) -> list[int]:
    """The exploitation phase: after the BO's distinct positions ``queried`` (in order), the next archs by the
    score under ``w_star`` (``flip(argsort)`` order) not yet queried, until ``budget`` positions."""
    out = list(queried)
    seen = set(out)
    for p in np.flip(np.argsort(authors_scores(normalized, w_star))):
        if len(out) >= budget:
            break
        if int(p) not in seen:
            out.append(int(p))
            seen.add(int(p))
    return out


def _optimizer(metrics: tuple[str, ...], seed: int, kappa: float) -> Any:
    """A fresh ``BayesianOptimization`` as the authors' script builds it (no objective: ask/tell)."""
    try:
        from bayes_opt import BayesianOptimization
        from bayes_opt.acquisition import UpperConfidenceBound
    except ImportError as e:
        raise ReferenceUnavailableError(
            f"the reference RoBoT loop needs the optional package bayes_opt (bayesian-optimization>=3.4): "
            f"{INSTALL_HINT} ({e})") from None
    return BayesianOptimization(f=None, pbounds={m: (-1.0, 1.0) for m in metrics}, random_state=seed, verbose=0,
                                acquisition_function=UpperConfidenceBound(kappa=float(kappa)))


class RoBoTReference(QuerySearch[ReferenceProposal]):
    """Ask/tell reference RoBoT (the authors' loop, see the module docstring) over ``pool``.

    Args:
        pool: the candidate pool (its raw scores are read; its transform is not applied).
        oracle: answers the queries (:meth:`run`) and ``final`` in :meth:`result`; None for a pure ask/tell use.
        **config: the fields of :class:`RoBoTReferenceConfig`.

    Raises:
        ReferenceUnavailableError: ``bayes_opt`` cannot be imported.
        ConfigError: a bad setting (``q > 1`` among them).
    """

    method = "robot-reference"
    config_cls = RoBoTReferenceConfig
    label = "robot-reference"

    def __init__(self, pool: CandidatePool, oracle: Oracle | None = None, **config: Any):
        super().__init__(pool, oracle, RoBoTReferenceConfig(**config))
        self._opt = _optimizer(tuple(pool.metrics), self.config.seed, self.config.kappa)
        self.budget = min(self.config.budget, len(pool))
        if self.config.budget > len(pool):
            log.warning("budget %d exceeds the pool size %d; capped to %d", self.config.budget, len(pool),
                        self.budget)
        #: BO evaluations in all, as ``maximize(init_points, n_iter)`` runs them (its queue holds at least one point)
        self.bo_iters = max(self.config.bo_iters if self.config.bo_iters is not None else self.budget,
                            max(self.config.init_points, 1))
        self._norm = authors_normalize(pool.raw)
        self._draws = 0  # BO iterations used (proposed or skipped as an already-observed point)
        #: suggestions equal to an observed point: maximize answers them from its cache, the objective never runs
        self.skipped = 0
        self._next_cache: tuple[str, np.ndarray, int] | None = None  # the next proposal, until it is told
        self._best: tuple[float, np.ndarray] | None = None  # (value, w): the latest of the best BO observations
        self._bo_queries = 0  # distinct archs queried in the BO phase (the paper's T0)
        self._greedy_order: np.ndarray | None = None  # positions under w*, flip(argsort) order

    # ------------------------------------------------------------- the loop
    def _draw(self) -> np.ndarray:
        """The optimiser's next point (what ``maximize`` would probe next), ``[K]`` in the pool's metric order."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's GP convergence warnings, silenced as the authors' run is
            if self._draws < self.config.init_points:
                params = self._opt.random_sample(1)[0]  # maximize's queue of init_points random points
            else:
                params = self._opt.suggest()  # a random point while nothing is observed (maximize's primed queue)
        self._draws += 1
        return np.array([params[m] for m in self.pool.metrics], dtype=np.float64)

    def _top(self, w: np.ndarray) -> int:
        """The arch :func:`authors_top` takes for ``w`` among those whose query did not fail."""
        if not self._failed_archs:
            return int(self.pool.arch_index[authors_top(self._norm, w)])
        s = authors_scores(self._norm, w)
        s[[self.pool.position(a) for a in self._failed_archs]] = -np.inf
        return int(self.pool.arch_index[int(np.flip(np.argsort(s))[0])])

    def _next(self) -> tuple[str, np.ndarray, int]:
        """``(kind, weights, arch)`` of the next proposal, computed once and kept until it is told (a BO draw
        advances the optimiser's random state, so it must not be repeated)."""
        if self._next_cache is not None:
            return self._next_cache
        while self._draws < self.bo_iters:
            w = self._draw()
            if self._opt.space.params_to_array(dict(zip(self.pool.metrics, w))) in self._opt.space:
                # maximize probes it from bayes_opt's cache: no objective call, no observation, no step
                self.skipped += 1
                continue
            self._next_cache = ("bo", w, self._top(w))
            return self._next_cache
        if self._best is None:
            raise SearchError("no BO point has a value (every BO query failed): the reference loop has no w*")
        w_star = self._best[1]
        if self._greedy_order is None:
            self._greedy_order = np.flip(np.argsort(authors_scores(self._norm, w_star)))
        taken = self.unavailable()
        for p in self._greedy_order:
            a = int(self.pool.arch_index[p])
            if a not in taken:
                self._next_cache = ("greedy", w_star, a)
                return self._next_cache
        raise SearchError("every arch in the pool has been queried")

    @property
    def in_bo_phase(self) -> bool:
        """Whether BO iterations are left (or the pending proposal is a BO point)."""
        if self._next_cache is not None:
            return self._next_cache[0] == "bo"
        return self._draws < self.bo_iters

    def best_weights(self) -> np.ndarray:
        """``w*``: the latest BO point with the best observed value (``[K]``)."""
        if self._best is None:
            raise SearchError("no BO observation yet")
        return self._best[1]

    # ------------------------------------------------------ QuerySearch hooks
    def _exhausted(self) -> bool:
        return len(self._log) + len(self._failed_archs) >= len(self.pool)

    def _method_stop(self) -> str | None:
        # the BO draws are over and none got a value: there is no w* to exploit (only with failed queries; a
        # draw is never skipped before a point is observed, so _draws counts every BO proposal here)
        if self._best is None and self._next_cache is None and self._draws >= self.bo_iters:
            return "no_bo_value"
        return None

    def _propose(self) -> ReferenceProposal:
        kind, w, arch = self._next()
        return ReferenceProposal(self.next_step, kind, tuple(float(v) for v in w), arch,  # type: ignore[arg-type]
                                 self.is_known(arch))

    def _next_kind(self) -> str:
        return self._next()[0]

    def _weights_dim(self) -> int:
        return len(self.pool.metrics)

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        k, w, a = self._next()
        # the same BO step on another machine may differ in the last bits (L-BFGS-B, BLAS): the arch must match
        return (k, a) == (kind, arch) and np.allclose(w, weights, rtol=1e-9, atol=1e-12)

    def _observe(self, kind: str, weights: np.ndarray, value: float, new: bool) -> None:
        if kind == "bo":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._opt.register(dict(zip(self.pool.metrics, (float(v) for v in weights))), float(value))
            if self._best is None or value >= self._best[0]:  # the script's `>=`: the latest of equal values
                self._best = (float(value), np.asarray(weights, dtype=np.float64).copy())
            self._bo_queries += int(new)
        self._next_cache = None

    def _fail(self, entry: dict[str, Any]) -> None:
        super()._fail(entry)
        self._next_cache = None  # a failed BO point is no observation; its iteration stays used

    def weight_names(self) -> tuple[str, ...]:
        """A row's ``weights``: the combination's weight of each proxy (the BO point; w* in the greedy phase)."""
        return tuple(self.pool.metrics)

    def _result_extra(self) -> dict[str, Any]:
        """``weights`` (w*; None without a BO value), ``steps``, ``t0`` (distinct archs of the BO phase), the
        effective ``budget`` / ``bo_iters`` with ``budget_requested`` and ``pool_size``, ``skipped`` (BO
        suggestions of an already-observed point) and ``seed``."""
        return dict(weights=None if self._best is None else [float(v) for v in self._best[1]], steps=len(self.trace),
                    t0=self._bo_queries, budget=self.budget, budget_requested=self.config.budget,
                    bo_iters=self.bo_iters, pool_size=len(self.pool), skipped=self.skipped, seed=self.config.seed)

    def fingerprint(self) -> str:
        """sha256 of the pool's fingerprint and the reference features (the raw scores' min-max, NaN kept),
        which the pool's own normalisation does not determine (a constant column, a missing score)."""
        h = hashlib.sha256(self.pool.fingerprint().encode())
        h.update(np.ascontiguousarray(np.where(np.isnan(self._norm), np.nan, self._norm), dtype="<f8").tobytes())
        return h.hexdigest()

    def _pool_state(self) -> dict[str, Any]:
        return {"metrics": list(self.pool.metrics), "size": len(self.pool), "fingerprint": self.fingerprint()}


# --- ``raynas search robot-reference``: the config and the session's spec -----------------------------------------

from dataclasses import field  # noqa: E402

from raynas.search.session import (  # noqa: E402
    DEFAULT_SEARCH_METRICS, QuerySearchConfig, SearchSpec, normalise_metrics,
)


@dataclass(frozen=True)
class RoBoTReferenceSearchConfig(QuerySearchConfig):
    """``raynas search robot-reference``: RoBoT's Algorithm 1 on the authors' ``bayes_opt`` (the module docstring),
    over the proxies ``metrics`` (default RoBoT's six), with the authors' settings. Sequential: ``q`` must be 1.
    Needs the optional package ``bayesian-optimization`` (``pip install 'raynas[bench]'``)."""

    metrics: tuple[str, ...] | str = field(default=DEFAULT_SEARCH_METRICS, metadata={
        "help": "the proxies whose combination is searched, comma-separated"})
    kappa: float = field(default=RoBoTReferenceConfig.kappa, metadata={
        "help": "UCB's exploration weight (bayes_opt's default)"})
    init_points: int = field(default=RoBoTReferenceConfig.init_points, metadata={
        "help": "random points before the GP (the authors: 0, so bayes_opt draws one)", "min": 0})
    bo_iters: int | None = field(default=None, metadata={
        "help": "BO evaluations in all, random points included (none: the budget, the authors' n_iter = T - 1 "
                "after one random point)", "min": 1})

    def __post_init__(self) -> None:
        super().__post_init__()
        normalise_metrics(self, "robot-reference")
        self.search_config()  # the search's own checks (q = 1), before any score is read

    def search_config(self) -> RoBoTReferenceConfig:
        return RoBoTReferenceConfig(budget=self.budget, seed=self.seed, kappa=self.kappa,
                                    init_points=self.init_points, bo_iters=self.bo_iters, q=self.q)


def _build(c: RoBoTReferenceSearchConfig, pool: CandidatePool, oracle: Oracle) -> RoBoTReference:
    s = c.search_config()
    return RoBoTReference(pool, oracle, budget=s.budget, seed=s.seed, kappa=s.kappa, init_points=s.init_points,
                          bo_iters=s.bo_iters, q=s.q)


SPEC = SearchSpec(RoBoTReferenceSearchConfig, RoBoTReference, _build)


def run_robot_reference_search(cfg: RoBoTReferenceSearchConfig | Any, progress_callback: Any = None
                               ) -> dict[str, Any]:
    """Run (or resume) the reference RoBoT loop as configured by ``cfg``
    (:func:`raynas.search.session.run_query_session`)."""
    return SPEC.run(cfg, progress_callback)
