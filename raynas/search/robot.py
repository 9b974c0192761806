"""RoBoT: Bayesian optimisation of a weighted metric ensemble, then greedy exploitation (He et al., ICLR 2024).

The search optimises ``w in [-1, 1]^K``. Evaluating ``w`` means querying the oracle for the architecture that
``M(.; w) = normalized @ w`` ranks first; an architecture queried before is answered from the cache (no new
query, no cost) but is still a BO observation, as in the paper's code. Phases (``T = budget`` distinct queries):

1. **BO** for ``bo_iters`` iterations, or until ``bo_budget`` distinct archs were queried, or until
   ``bo_patience`` iterations in a row proposed archs already queried. The number of distinct archs this phase
   queried is the paper's ``T0``.
2. **Greedy exploitation**: with ``w*`` = the BO point with the best observed value (several share it as a rule:
   ``tie_break`` picks the latest or the earliest of them), query the next-best not-yet-queried archs under
   ``M(.; w*)`` until ``T`` distinct archs are queried.

Caps (the result reports the effective values): ``budget`` is at most the pool size (the search cannot query
more distinct archs than the pool holds) and so is ``bo_iters``: its default is the capped budget, never the
requested one. ``bo_patience`` bounds the GP fits a new query can wait for: a BO over weights that only reaches a
few archs (one metric reaches two) keeps re-proposing them, and without the bound every such iteration refits
the GP on one more point, so each new query costs more than the last. ``bo_patience=None`` keeps the paper's
rule (only ``bo_iters`` and ``bo_budget`` end the BO phase). Each GP step is fitted on at most ``gp_max_points``
observations (:func:`raynas.search.bo.gp_window`), so a long BO phase does not make every step slower than the
last. The search ends when ``T`` distinct archs are queried, or when every arch of the pool is queried or failed;
the result's ``stop`` says which (``budget`` / ``pool_exhausted``).

The answer is the queried arch with the best query value. :class:`RoBoT` is an ask/tell object (a driver such as
Ray Tune owns the queries; the shared machinery is :class:`raynas.search.base.QuerySearch`) with a
:meth:`RoBoT.run` loop for plain oracles. ``run(state_path=...)`` saves the trace atomically after every tell, and
:meth:`RoBoT.from_state` resumes to exactly the next proposal of the uninterrupted search (the BO step is a pure
function of the observations and the seed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from raynas.errors import ConfigError, SearchError
from raynas.oracles.base import Oracle
from raynas.search.base import QuerySearch
from raynas.search.bo import GP_MAX_POINTS, propose
from raynas.search.pool import CandidatePool

log = logging.getLogger(__name__)

#: the rules for choosing w* among the BO observations that share the best value
TIE_BREAKS = ("earliest", "latest")


@dataclass(frozen=True)
class RoBoTConfig:
    """``budget``: T distinct queries in total (capped at the pool size). ``bo_iters``: max BO iterations
    (default T, as in the reference code; capped at the pool size). ``bo_budget``: max distinct queries of the BO
    phase (default T). ``bo_patience``: the BO phase also ends after this many BO iterations in a row proposed an
    already-queried arch (None: never). ``n_init``: Sobol points before the GP. ``acquisition``: ``"ucb"`` or
    ``"logei"``; ``kernel``: ``"rbf_ard"`` or ``"matern_iso"`` (see :mod:`raynas.search.bo`). The requested values
    are kept here (resume); :class:`RoBoT` holds the effective ones. ``gp_max_points``: the most BO observations
    one GP step is fitted on (:func:`raynas.search.bo.gp_window`; None: all of them), so a step's cost has a
    ceiling whatever the budget."""

    budget: int = 20
    bo_iters: int | None = None
    bo_budget: int | None = None
    n_init: int = 3
    seed: int = 0
    acquisition: Literal["ucb", "logei"] = "ucb"
    num_restarts: int = 4
    raw_samples: int = 128
    kernel: Literal["rbf_ard", "matern_iso"] = "rbf_ard"
    bo_patience: int | None = 10
    #: proposals in flight at once (q-batch BO, :mod:`raynas.search.base`); 1 is the sequential search
    q: int = 1
    gp_max_points: int | None = GP_MAX_POINTS
    #: which of the BO observations sharing the best value is ``w*`` (see :meth:`RoBoT.best_weights`)
    tie_break: Literal["earliest", "latest"] = "earliest"

    def __post_init__(self) -> None:
        if self.tie_break not in TIE_BREAKS:
            raise ConfigError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}")
        if not isinstance(self.q, int) or isinstance(self.q, bool) or self.q < 1:
            raise ConfigError(f"q must be an integer >= 1, got {self.q!r}")
        if self.gp_max_points is not None and (not isinstance(self.gp_max_points, int)
                                               or isinstance(self.gp_max_points, bool) or self.gp_max_points < 2):
            raise ConfigError(f"gp_max_points must be None or an integer >= 2, got {self.gp_max_points!r}")
        if self.kernel not in ("rbf_ard", "matern_iso"):
            raise ConfigError(f"kernel must be 'rbf_ard' or 'matern_iso', got {self.kernel!r}")
        if self.acquisition not in ("ucb", "logei"):
            raise ConfigError(f"acquisition must be 'ucb' or 'logei', got {self.acquisition!r}")
        if self.budget < 1:
            raise ConfigError(f"budget must be >= 1, got {self.budget}")
        for name in ("bo_iters", "bo_budget", "bo_patience"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")
        if self.n_init < 1 or self.num_restarts < 1 or self.raw_samples < 1:
            raise ConfigError("n_init, num_restarts and raw_samples must be >= 1")


def effective_limits(config: RoBoTConfig, pool_size: int) -> tuple[int, int, int]:
    """``(budget, bo_iters, bo_budget)`` actually used on a pool of ``pool_size`` archs.

    A budget beyond the pool is capped (a search cannot query more distinct archs than there are), and the
    default ``bo_iters`` follows the *capped* budget: following the requested one let ``--budget 1000`` on a
    40-arch pool run 1000 GP fits. An explicit ``bo_iters`` is capped at the pool size too.
    """
    budget = min(config.budget, pool_size)
    if config.budget > pool_size:
        log.warning("budget %d exceeds the pool size %d; capped to %d (the search stops after querying every arch)",
                    config.budget, pool_size, budget)
    if config.bo_iters is None:
        bo_iters = budget
    else:
        bo_iters = min(config.bo_iters, pool_size)
        if config.bo_iters > pool_size:
            log.warning("bo_iters %d exceeds the pool size %d; capped to %d", config.bo_iters, pool_size, bo_iters)
    bo_budget = min(config.bo_budget if config.bo_budget is not None else budget, budget)
    return budget, bo_iters, bo_budget


@dataclass(frozen=True)
class Proposal:
    """What to evaluate next. ``cached``: the arch was queried before; ``tell`` needs no value for it."""

    step: int
    kind: Literal["bo", "greedy"]
    weights: tuple[float, ...]
    arch_index: int
    cached: bool


class RoBoT(QuerySearch[Proposal]):
    """Ask/tell RoBoT search over ``pool`` (see module docstring). ``oracle`` is needed by :meth:`run` and to
    report ``final`` in :meth:`result`."""

    method = "robot"
    config_cls = RoBoTConfig
    label = "RoBoT"
    # states written before bo_patience / gp_max_points existed ran without them: continuing them needs the same rules
    # (w* was always the earliest of the best: tie_break came later)
    legacy_defaults = {"bo_patience": None, "gp_max_points": None, "tie_break": "earliest"}

    def __init__(self, pool: CandidatePool, oracle: Oracle | None = None, *, budget: int = 20,
                 bo_iters: int | None = None, bo_budget: int | None = None, n_init: int = 3, seed: int = 0,
                 acquisition: Literal["ucb", "logei"] = "ucb", num_restarts: int = 4, raw_samples: int = 128,
                 kernel: Literal["rbf_ard", "matern_iso"] = "rbf_ard", bo_patience: int | None = 10, q: int = 1,
                 gp_max_points: int | None = GP_MAX_POINTS, tie_break: Literal["earliest", "latest"] = "earliest"):
        config = RoBoTConfig(budget, bo_iters, bo_budget, n_init, seed, acquisition, num_restarts, raw_samples,
                             kernel, bo_patience, q, gp_max_points, tie_break)
        super().__init__(pool, oracle, config)
        self.budget, self.bo_iters, self.bo_budget = effective_limits(self.config, len(pool))
        self._stale = 0  # BO iterations in a row whose proposal was an already-queried arch
        self._bo_end: str | None = None  # why the BO phase ended (see bo_stop)
        self.bounds = np.stack([-np.ones(len(pool.metrics)), np.ones(len(pool.metrics))])
        self._X: list[np.ndarray] = []  # BO observations (weights), repeats of an arch included
        self._y: list[float] = []
        self._bo_queries = 0  # distinct archs queried in the BO phase (the paper's T0)
        self._greedy: tuple[np.ndarray, int] | None = None  # (rank order under w*, next position to look at)

    # ----------------------------------------------------------------- phases
    @property
    def in_bo_phase(self) -> bool:
        return self._bo_end is None

    def bo_stop(self) -> str | None:
        """Why the BO phase ended (``"bo_iters"``, ``"bo_budget"``, ``"patience"``), None while it runs."""
        return self._bo_end

    def _bo_stop_reason(self) -> str | None:
        if len(self._X) >= self.bo_iters:
            return "bo_iters"
        if len(self._log) >= self.bo_budget:
            return "bo_budget"
        patience = self.config.bo_patience
        if patience is not None and self._stale >= patience:
            return "patience"
        return None

    def best_weights(self) -> np.ndarray:
        """``w*``: the BO observation with the best value. Several usually share it (every ``w`` of the plateau
        that ranks the same arch first); ``tie_break="earliest"`` (the default) takes the first of them,
        ``"latest"`` the most recent, as the reference code does. The choice decides single runs, not the
        hit rate: over seeds 0-19 on the robustness benchmark's 16 pools both rules hold 298 of 320 runs
        (docs/benchmarks.md, "Search robustness")."""
        if not self._y:
            raise SearchError("no BO observation yet")
        y = np.asarray(self._y, dtype=np.float64)
        best = np.flatnonzero(y == y.max())
        return self._X[int(best[-1] if self.config.tie_break == "latest" else best[0])]

    def _next_greedy(self) -> tuple[np.ndarray, int]:
        if self._greedy is None:
            self._greedy = (self.pool.rank(self.best_weights()), 0)
        order, i = self._greedy
        taken = self.unavailable()  # queried, in flight or failed
        while i < len(order) and int(self.pool.arch_index[order[i]]) in taken:
            i += 1
        self._greedy = (order, i)
        if i >= len(order):
            raise SearchError("every arch in the pool has been queried")
        return self.best_weights(), int(self.pool.arch_index[order[i]])

    def _top(self, w: np.ndarray) -> int:
        """The arch ``M(.; w)`` ranks first among those whose query did not fail."""
        if not self._failed_archs:
            return int(self.pool.arch_index[self.pool.top(w)])
        s = self.pool.scores(w).astype(np.float64).copy()
        s[[self.pool.position(a) for a in self._failed_archs]] = -np.inf
        return int(self.pool.arch_index[int(np.argmax(s))])

    def _pending_bo(self) -> list[Any]:
        return [p for p in self.pending if p.kind == "bo"]

    # ------------------------------------------------------ QuerySearch hooks
    def _exhausted(self) -> bool:
        """Every arch of the pool was queried or its query failed (the greedy phase reaches all of them)."""
        return len(self._log) + len(self._failed_archs) >= len(self.pool)

    def _may_ask(self) -> bool:
        """In the BO phase, another BO point only while the proposals in flight cannot end it: BO iterations
        and distinct BO queries told plus in flight below their limits, and the patience counter they would
        leave (known: whether each is a new query is decided when it is asked) below ``bo_patience``. In the
        greedy phase, while an arch is left that is neither queried, failed nor in flight."""
        if not self.in_bo_phase:
            return len(self._log) + len(self._failed_archs) + len(self.in_flight_archs()) < len(self.pool)
        pending = self._pending_bo()
        if len(self._X) + len(pending) >= self.bo_iters:
            return False
        if len(self._log) + len(self.in_flight_archs()) >= self.bo_budget:
            return False
        stale = self._stale
        for p in pending:
            stale = stale + 1 if p.cached else 0
        return self.config.bo_patience is None or stale < self.config.bo_patience

    def _propose(self) -> Proposal:
        if self.in_bo_phase:
            X = np.asarray(self._X, dtype=np.float64).reshape(-1, len(self.pool.metrics))
            pending = [p.weights for p in self._pending_bo()]
            w = propose(X, np.asarray(self._y, dtype=np.float64), self.bounds, self.config.seed,
                        n_init=self.config.n_init, acquisition=self.config.acquisition,
                        num_restarts=self.config.num_restarts, raw_samples=self.config.raw_samples,
                        kernel=self.config.kernel, pending=np.asarray(pending) if pending else None,
                        max_points=self.config.gp_max_points)
            arch, kind = self._top(w), "bo"
        else:
            w, arch = self._next_greedy()
            kind = "greedy"
        return Proposal(self.next_step, kind, tuple(float(v) for v in w), arch, self.is_known(arch))

    def _next_kind(self) -> str:
        return "bo" if self.in_bo_phase else "greedy"

    def _weights_dim(self) -> int:
        return len(self.pool.metrics)

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        if kind == "bo":
            return self._top(weights) == arch
        gw, garch = self._next_greedy()
        return garch == arch and np.array_equal(gw, weights)

    def _observe(self, kind: str, weights: np.ndarray, value: float, new: bool) -> None:
        if kind == "bo":
            self._X.append(weights.astype(np.float64))
            self._y.append(value)
            self._bo_queries += int(new)
            self._stale = 0 if new else self._stale + 1
            if self._bo_end is None:  # fixed once reached: no later row reopens the BO phase
                self._bo_end = self._bo_stop_reason()

    def weight_names(self) -> tuple[str, ...]:
        """A row's ``weights``: the combination's weight of each proxy (the BO point; w* in the greedy phase)."""
        return tuple(self.pool.metrics)

    def _result_extra(self) -> dict[str, Any]:
        """``weights`` (w*), ``steps``, ``t0``, the effective ``budget`` / ``bo_iters`` with ``budget_requested``
        and ``pool_size``, and ``bo_stop`` (why the BO phase ended, None if the budget ran out during it); the
        base adds ``stop`` (why the search ended: ``budget`` or ``pool_exhausted``)."""
        return dict(weights=[float(v) for v in self.best_weights()], steps=len(self.trace), t0=self._bo_queries,
                    budget=self.budget, budget_requested=self.config.budget, bo_iters=self.bo_iters,
                    pool_size=len(self.pool), bo_stop=self.bo_stop())

    def _pool_state(self) -> dict[str, Any]:
        return {"metrics": list(self.pool.metrics), "size": len(self.pool), "transform": self.pool.transform,
                "fingerprint": self.fingerprint()}
