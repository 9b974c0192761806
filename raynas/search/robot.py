"""RoBoT: Bayesian optimisation of a weighted metric ensemble, then greedy exploitation (He et al., ICLR 2024).

The search optimises ``w in [-1, 1]^K``. Evaluating ``w`` means querying the oracle for the architecture that
``M(.; w) = normalized @ w`` ranks first; an architecture queried before is answered from the cache (no new
query, no cost) but is still a BO observation, as in the paper's code. Phases (``T = budget`` distinct queries):

1. **BO** for ``bo_iters`` iterations, or until ``bo_budget`` distinct archs were queried, or until
   ``bo_patience`` iterations in a row proposed archs already queried. The number of distinct archs this phase
   queried is the paper's ``T0``.
2. **Greedy exploitation**: with ``w*`` = the BO point with the best observed value (ties: earliest), query the
   next-best not-yet-queried archs under ``M(.; w*)`` until ``T`` distinct archs are queried.

Caps (the result reports the effective values): ``budget`` is at most the pool size (the search cannot query
more distinct archs than the pool holds) and so is ``bo_iters``: its default is the capped budget, never the
requested one. ``bo_patience`` bounds the GP fits a new query can wait for: a BO over weights that only reaches a
few archs (one metric reaches two) keeps re-proposing them, and without the bound every such iteration refits
the GP on one more point, so each new query costs more than the last. ``bo_patience=None`` keeps the paper's
rule (only ``bo_iters`` and ``bo_budget`` end the BO phase).

The answer is the queried arch with the best query value. :class:`RoBoT` is an ask/tell object (a driver such as
Ray Tune owns the queries) with a :meth:`RoBoT.run` loop for plain oracles. With ``state_path`` the trace is saved
atomically after every tell, and :meth:`RoBoT.from_state` resumes to exactly the next proposal of the
uninterrupted search (the BO step is a pure function of the observations and the seed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.search.bo import propose
from raynas.oracles.base import Oracle, QueryLog, drive
from raynas.search.pool import CandidatePool
from raynas.store.search_state import load_state, save_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoBoTConfig:
    """``budget``: T distinct queries in total (capped at the pool size). ``bo_iters``: max BO iterations
    (default T, as in the reference code; capped at the pool size). ``bo_budget``: max distinct queries of the BO
    phase (default T). ``bo_patience``: the BO phase also ends after this many BO iterations in a row proposed an
    already-queried arch (None: never). ``n_init``: Sobol points before the GP. ``acquisition``: ``"ucb"`` or
    ``"logei"``; ``kernel``: ``"rbf_ard"`` or ``"matern_iso"`` (see :mod:`raynas.search.bo`). The requested values
    are kept here (resume); :class:`RoBoT` holds the effective ones."""

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

    def __post_init__(self) -> None:
        if self.kernel not in ("rbf_ard", "matern_iso"):
            raise ConfigError(f"kernel must be 'rbf_ard' or 'matern_iso', got {self.kernel!r}")
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


class RoBoT:
    """Ask/tell RoBoT search over ``pool`` (see module docstring). ``oracle`` is needed by :meth:`run` and to
    report ``final`` in :meth:`result`."""

    def __init__(self, pool: CandidatePool, oracle: Oracle | None = None, *, budget: int = 20,
                 bo_iters: int | None = None, bo_budget: int | None = None, n_init: int = 3, seed: int = 0,
                 acquisition: Literal["ucb", "logei"] = "ucb", num_restarts: int = 4, raw_samples: int = 128,
                 kernel: Literal["rbf_ard", "matern_iso"] = "rbf_ard", state_path: str | Path | None = None,
                 bo_patience: int | None = 10):
        self.config = RoBoTConfig(budget, bo_iters, bo_budget, n_init, seed, acquisition, num_restarts, raw_samples,
                                  kernel, bo_patience)
        if len(pool) == 0:
            raise SearchError("the candidate pool is empty")
        self.pool = pool
        self.oracle = oracle
        self.state_path = Path(state_path) if state_path is not None else None
        self.budget, self.bo_iters, self.bo_budget = effective_limits(self.config, len(pool))
        self._stale = 0  # BO iterations in a row whose proposal was an already-queried arch
        self._bo_end: str | None = None  # why the BO phase ended (see bo_stop)
        self.bounds = np.stack([-np.ones(len(pool.metrics)), np.ones(len(pool.metrics))])
        self.trace: list[dict[str, Any]] = []
        self._log = QueryLog()
        self._X: list[np.ndarray] = []  # BO observations (weights), repeats of an arch included
        self._y: list[float] = []
        self._bo_queries = 0  # distinct archs queried in the BO phase (the paper's T0)
        self._pending: Proposal | None = None
        self._greedy: tuple[np.ndarray, int] | None = None  # (rank order under w*, next position to look at)

    # ----------------------------------------------------------------- phases
    @property
    def done(self) -> bool:
        return len(self._log) >= self.budget

    @property
    def queries(self) -> int:
        """Distinct archs queried so far."""
        return len(self._log)

    @property
    def in_bo_phase(self) -> bool:
        return self._bo_end is None

    def bo_stop(self) -> str | None:
        """Why the BO phase ended (``"bo_iters"``, ``"bo_budget"``, ``"patience"``), None while it runs."""
        return self._bo_end

    def _stop_reason(self) -> str | None:
        if len(self._X) >= self.bo_iters:
            return "bo_iters"
        if len(self._log) >= self.bo_budget:
            return "bo_budget"
        patience = self.config.bo_patience
        if patience is not None and self._stale >= patience:
            return "patience"
        return None

    def best_weights(self) -> np.ndarray:
        """``w*``: the BO observation with the best value (ties: earliest)."""
        if not self._y:
            raise SearchError("no BO observation yet")
        return self._X[int(np.argmax(self._y))]

    def _next_greedy(self) -> tuple[np.ndarray, int]:
        if self._greedy is None:
            self._greedy = (self.pool.rank(self.best_weights()), 0)
        order, i = self._greedy
        while i < len(order) and int(self.pool.arch_index[order[i]]) in self._log:
            i += 1
        self._greedy = (order, i)
        if i >= len(order):
            raise SearchError("every arch in the pool has been queried")
        return self.best_weights(), int(self.pool.arch_index[order[i]])

    # ---------------------------------------------------------------- ask/tell
    def ask(self) -> Proposal:
        """The next proposal (asking again before :meth:`tell` returns the same one)."""
        if self.done:
            raise SearchError("the search is done; call result()")
        if self._pending is not None:
            return self._pending
        if self.in_bo_phase:
            X = np.asarray(self._X, dtype=np.float64).reshape(-1, len(self.pool.metrics))
            w = propose(X, np.asarray(self._y, dtype=np.float64), self.bounds, self.config.seed,
                        n_init=self.config.n_init, acquisition=self.config.acquisition,
                        num_restarts=self.config.num_restarts, raw_samples=self.config.raw_samples,
                        kernel=self.config.kernel)
            arch, kind = int(self.pool.arch_index[self.pool.top(w)]), "bo"
        else:
            w, arch = self._next_greedy()
            kind = "greedy"
        self._pending = Proposal(len(self.trace), kind, tuple(float(v) for v in w), arch, arch in self._log)
        return self._pending

    def tell(self, proposal: Proposal, value: float | None = None, cost: float = 0.0) -> dict[str, Any]:
        """Record the answer to ``proposal``; returns the new trace row. For a cached proposal ``value`` may be
        omitted (the cached value is used and the cost is 0)."""
        if self._pending is None or proposal != self._pending:
            raise SearchError(f"tell() got a proposal that is not the pending one: {proposal}")
        if proposal.cached:
            cached = self._log.value_of(proposal.arch_index)
            if value is not None and float(value) != cached:
                log.warning("arch %d was already queried (value %.6g); ignoring the new value %.6g",
                            proposal.arch_index, cached, value)
            value, cost = cached, 0.0
        elif value is None or not math.isfinite(float(value)):
            raise SearchError(f"arch {proposal.arch_index}: the oracle value must be a finite number, got {value!r}; "
                              "map failed trainings to a finite value in the oracle")
        elif not (math.isfinite(float(cost)) and float(cost) >= 0):
            raise SearchError(f"arch {proposal.arch_index}: cost must be finite and >= 0, got {cost!r}")
        row = self._apply(proposal.kind, np.asarray(proposal.weights), proposal.arch_index, float(value),
                          float(cost), not proposal.cached)
        self._pending = None
        if self.state_path is not None:
            save_state(self.state_path, self.trace, self.state_config())
        return row

    def _apply(self, kind: str, w: np.ndarray, arch: int, value: float, cost: float, new: bool) -> dict[str, Any]:
        if new:
            self._log.record(arch, value, cost)
        if kind == "bo":
            self._X.append(w.astype(np.float64))
            self._y.append(value)
            self._bo_queries += int(new)
            self._stale = 0 if new else self._stale + 1
            self._bo_end = self._stop_reason()  # fixed once reached: greedy rows never reopen the BO phase
        prev = self.trace[-1]["cumulative_cost"] if self.trace else 0.0
        row = {"step": len(self.trace), "kind": kind, "weights": [float(v) for v in w], "arch_index": int(arch),
               "value": value, "cost": cost if new else 0.0, "cumulative_cost": prev + (cost if new else 0.0),
               "new_query": new}
        self.trace.append(row)
        return row

    # ----------------------------------------------------------------- driving
    def run(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Ask/query/tell until done with ``self.oracle``; ``on_step(row)`` after every tell."""
        if self.oracle is None:
            raise SearchError("RoBoT.run needs an oracle")
        drive(self, self.oracle, on_step)
        return self.result()

    def result(self) -> dict[str, Any]:
        """Common result dict (see :meth:`QueryLog.result`) plus ``weights`` (w*), ``steps``, ``t0``, the effective
        ``budget`` / ``bo_iters`` with ``budget_requested`` and ``pool_size``, and ``bo_stop`` (why the BO phase
        ended, None if the budget ran out during it)."""
        return self._log.result("robot", self.oracle, weights=[float(v) for v in self.best_weights()],
                                steps=len(self.trace), t0=self._bo_queries, budget=self.budget,
                                budget_requested=self.config.budget, bo_iters=self.bo_iters,
                                pool_size=len(self.pool), bo_stop=self.bo_stop())

    # ------------------------------------------------------------------ state
    def state_config(self) -> dict[str, Any]:
        pool = {"metrics": list(self.pool.metrics), "size": len(self.pool), "transform": self.pool.transform,
                "fingerprint": self.pool.fingerprint()}
        return {"method": "robot", "robot": to_dict(self.config), "pool": pool}

    @classmethod
    def from_state(cls, path: str | Path, pool: CandidatePool, oracle: Oracle | None = None, *,
                   keep_saving: bool = True) -> "RoBoT":
        """Resume from a state file written with ``state_path``. The pool must be the one the state was saved
        for (same metrics, archs and normalised scores), else :class:`StoreError`."""
        rows, cfg = load_state(path)
        if cfg.get("method") != "robot" or not isinstance(cfg.get("robot"), dict):
            raise StoreError(f"{path} is not a RoBoT state")
        saved = cfg.get("pool", {})
        if saved.get("metrics") != list(pool.metrics) or saved.get("fingerprint") != pool.fingerprint():
            raise StoreError(f"{path} was saved for a different candidate pool "
                             f"(metrics {saved.get('metrics')}, {saved.get('size')} archs)")
        # states written before bo_patience existed ran without it: replaying them needs the same rule
        saved_cfg = {"bo_patience": None, **cfg["robot"]}
        try:
            rc = from_dict(RoBoTConfig, saved_cfg)
        except ConfigError as e:
            raise StoreError(f"{path}: bad RoBoT config: {e}") from None
        self = cls(pool, oracle, state_path=path if keep_saving else None, **to_dict(rc))
        self._replay(rows, path)
        return self

    def _replay(self, rows: list[dict[str, Any]], path: str | Path) -> None:
        """Re-apply saved rows without re-running BO, checking each row is what this search would have done."""
        for i, r in enumerate(rows):
            if self.done:
                raise StoreError(f"{path}: row {i} comes after the search was already done")
            kind, arch, w = r["kind"], int(r["arch_index"]), np.asarray(r["weights"], dtype=np.float64)
            bad = (r["step"] != i or kind != ("bo" if self.in_bo_phase else "greedy")
                   or w.shape != (len(self.pool.metrics),) or arch not in self.pool
                   or bool(r["new_query"]) == (arch in self._log))
            if not bad and kind == "bo":
                bad = int(self.pool.arch_index[self.pool.top(w)]) != arch
            if not bad and kind == "greedy":
                gw, garch = self._next_greedy()
                bad = garch != arch or not np.array_equal(gw, w)
            if bad:
                raise StoreError(f"{path}: row {i} ({kind}, arch {arch}) is inconsistent with the pool and config")
            self._apply(kind, w, arch, float(r["value"]), float(r["cost"]), bool(r["new_query"]))
