"""``QuerySearch``: the ask/tell machinery shared by the query-based searches (RoBoT, HNAS).

A query search proposes one architecture of a :class:`~raynas.search.pool.CandidatePool` at a time, an oracle
answers it (a query value and a cost), and the answer is told back. This module owns what every such search
does the same way, so the subclasses only say how they propose:

* the budget in distinct queries and the :class:`~raynas.search.queries.QueryLog` that counts them: an arch
  proposed again is answered from the log (no query, no cost) but is still a step of the trace;
* :meth:`QuerySearch.tell` validation (only the pending proposal, finite values and costs);
* the trace rows (:data:`raynas.store.search_state.TRACE_SCHEMA`'s columns), :meth:`~QuerySearch.result`,
  the state config saved with them, and resume (:meth:`~QuerySearch.from_state` replays the saved rows,
  checking that each is what this search would have done, without re-running the BO).

The object is a pure state machine in the style of Ray Tune's ``Searcher``: ``ask``/``tell`` never touch a
file. Persisting is the driver's job: :meth:`QuerySearch.run` with ``state_path`` (or any driver calling
:func:`save_search_state` after each tell) writes the state through :mod:`raynas.store.search_state`, and
since every proposal is a pure function of the told rows and the seed, a search resumed from that file asks
exactly what the uninterrupted one would have asked next.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Protocol, Sequence, TypeVar

import numpy as np

from raynas.config import from_dict, to_dict
from raynas.errors import ConfigError, SearchError, StoreError
from raynas.oracles.base import Oracle
from raynas.search.queries import QueryLog, drive
from raynas.search.pool import CandidatePool
from raynas.store.search_state import load_state, save_state

log = logging.getLogger(__name__)


class QueryProposal(Protocol):
    """What :meth:`QuerySearch.ask` returns: the step, the proposal kind, the point of the search space that
    picked the arch (``weights``), the arch, and whether it was queried before (``cached``)."""

    @property
    def step(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def weights(self) -> tuple[float, ...]: ...
    @property
    def arch_index(self) -> int: ...
    @property
    def cached(self) -> bool: ...


P = TypeVar("P", bound=QueryProposal)
S = TypeVar("S", bound="QuerySearch[Any]")


class QuerySearch(Generic[P]):
    """Ask/tell search over ``pool`` answered by ``oracle`` (needed by :meth:`run` and for ``final`` in
    :meth:`result`). Subclasses set ``budget`` (distinct queries, after capping) in ``__init__`` and define
    :meth:`_propose`, :meth:`_next_kind`, :meth:`_replays`, :meth:`_weights_dim` and :meth:`_result_extra`;
    :meth:`_observe` sees every told row (their BO observations), :meth:`fingerprint` / :meth:`_pool_state`
    say what resume checks."""

    #: ``method`` of the result and of the saved state (its config is saved under this key too)
    method: ClassVar[str]
    #: the search's own config dataclass (the constructor takes its fields as keyword arguments)
    config_cls: ClassVar[type]
    #: the name in messages ("RoBoT", "HNAS") and its article ("a", "an")
    label: ClassVar[str]
    article: ClassVar[str] = "a"
    #: values for config keys that states saved before the key existed ran with (resume must replay the same)
    legacy_defaults: ClassVar[dict[str, Any]] = {}

    budget: int

    def __init__(self, pool: CandidatePool, oracle: Oracle | None, config: Any):
        if len(pool) == 0:
            raise SearchError("the candidate pool is empty")
        self.pool = pool
        self.oracle = oracle
        self.config = config
        self.trace: list[dict[str, Any]] = []
        self._log = QueryLog()
        self._pending: P | None = None

    # ------------------------------------------------------------ to define
    def _propose(self) -> P:
        """The next proposal (called once per step, by :meth:`ask`)."""
        raise NotImplementedError

    def _next_kind(self) -> str:
        """The kind of the next proposal (checked against saved rows on resume)."""
        raise NotImplementedError

    def _replays(self, kind: str, weights: np.ndarray, arch: int) -> bool:
        """Whether a saved row ``(kind, weights, arch)`` is what this search would propose next."""
        raise NotImplementedError

    def _weights_dim(self) -> int:
        """Length of a row's ``weights`` (the point the search optimises over; checked on resume)."""
        raise NotImplementedError

    def _observe(self, kind: str, weights: np.ndarray, value: float, new: bool) -> None:
        """Bookkeeping of a told row beyond the query log and the trace (after the log has recorded it)."""

    def _result_extra(self) -> dict[str, Any]:
        """The method's own keys of :meth:`result`."""
        return {}

    def fingerprint(self) -> str:
        """A digest of what the search reads from the pool (resume refuses other scores)."""
        return self.pool.fingerprint()

    def _pool_state(self) -> dict[str, Any]:
        """The ``pool`` entry of the state config (its ``fingerprint`` is compared on resume)."""
        return {"size": len(self.pool), "fingerprint": self.fingerprint()}

    # ---------------------------------------------------------------- budget
    @property
    def done(self) -> bool:
        return len(self._log) >= self.budget

    @property
    def queries(self) -> int:
        """Distinct archs queried so far."""
        return len(self._log)

    # -------------------------------------------------------------- ask/tell
    def ask(self) -> P:
        """The next proposal (asking again before :meth:`tell` returns the same one)."""
        if self.done:
            raise SearchError("the search is done; call result()")
        if self._pending is None:
            self._pending = self._propose()
        return self._pending

    def tell(self, proposal: P, value: float | None = None, cost: float = 0.0) -> dict[str, Any]:
        """Record the answer to ``proposal``; returns the new trace row. For a cached proposal ``value`` may be
        omitted (the cached value is used and the cost is 0). Writes nothing (see :func:`save_search_state`)."""
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
        row = self._apply(proposal.kind, np.asarray(proposal.weights, dtype=np.float64), proposal.arch_index,
                          float(value), float(cost), not proposal.cached)
        self._pending = None
        return row

    def _apply(self, kind: str, w: np.ndarray, arch: int, value: float, cost: float, new: bool) -> dict[str, Any]:
        if new:
            self._log.record(arch, value, cost)
        self._observe(kind, w, value, new)
        prev = self.trace[-1]["cumulative_cost"] if self.trace else 0.0
        row = {"step": len(self.trace), "kind": kind, "weights": [float(v) for v in w], "arch_index": int(arch),
               "value": value, "cost": cost if new else 0.0, "cumulative_cost": prev + (cost if new else 0.0),
               "new_query": new}
        self.trace.append(row)
        return row

    # --------------------------------------------------------------- driving
    def run(self, on_step: Callable[[dict[str, Any]], None] | None = None, *,
            state_path: str | Path | None = None) -> dict[str, Any]:
        """Ask/query/tell until done with ``self.oracle``. After every tell the state is saved to
        ``state_path`` (if given, see :func:`save_search_state`), then ``on_step(row)`` is called."""
        if self.oracle is None:
            raise SearchError(f"{type(self).__name__}.run needs an oracle")
        path = Path(state_path) if state_path is not None else None

        def step(row: dict[str, Any]) -> None:
            if path is not None:
                save_search_state(self, path)
            if on_step is not None:
                on_step(row)

        drive(self, self.oracle, step)
        return self.result()

    def result(self) -> dict[str, Any]:
        """:meth:`QueryLog.result` (best queried arch, its value and ``final``, queries, cost, history) plus the
        method's own keys."""
        return self._log.result(self.method, self.oracle, **self._result_extra())

    # ----------------------------------------------------------------- state
    def state_rows(self) -> list[dict[str, Any]]:
        """The trace rows to save (:data:`raynas.store.search_state.TRACE_SCHEMA`), copies."""
        return [dict(r) for r in self.trace]

    def state_config(self) -> dict[str, Any]:
        """What is saved with the rows: the method, its requested config, and the pool it searched."""
        return {"method": self.method, self.method: to_dict(self.config), "pool": self._pool_state()}

    @classmethod
    def from_config(cls: type[S], pool: CandidatePool, oracle: Oracle | None, config: Any) -> S:
        """A fresh search configured by an instance of :attr:`config_cls`."""
        return cls(pool, oracle, **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

    @classmethod
    def from_state(cls: type[S], path: str | Path, pool: CandidatePool, oracle: Oracle | None = None) -> S:
        """Resume from a state file (:func:`save_search_state`). The pool must be the one the state was saved
        for (same fingerprint), and every row must replay, else :class:`StoreError`."""
        rows, cfg = load_state(path)
        return cls.restore(rows, cfg, pool, oracle, where=str(path))

    @classmethod
    def restore(cls: type[S], rows: Sequence[dict[str, Any]], cfg: dict[str, Any], pool: CandidatePool,
                oracle: Oracle | None = None, *, where: str = "the search state") -> S:
        """The search after the saved ``rows`` (with the state config ``cfg``), checked as :meth:`from_state`."""
        if cfg.get("method") != cls.method or not isinstance(cfg.get(cls.method), dict):
            raise StoreError(f"{where} is not {cls.article} {cls.label} state")
        try:
            config = from_dict(cls.config_cls, {**cls.legacy_defaults, **cfg[cls.method]})
        except ConfigError as e:
            raise StoreError(f"{where}: bad {cls.label} config: {e}") from None
        self = cls.from_config(pool, oracle, config)
        saved = cfg.get("pool") if isinstance(cfg.get("pool"), dict) else {}
        if saved.get("fingerprint") != self.fingerprint():
            what = ([f"metrics {saved.get('metrics')}"] if "metrics" in saved else []) + [f"{saved.get('size')} archs"]
            raise StoreError(f"{where} was saved for a different candidate pool ({', '.join(what)})")
        self._replay(rows, where)
        return self

    def _replay(self, rows: Sequence[dict[str, Any]], where: str) -> None:
        """Re-apply saved rows without re-running the BO, checking each is what this search would have done."""
        dim = self._weights_dim()
        for i, r in enumerate(rows):
            if self.done:
                raise StoreError(f"{where}: row {i} comes after the search was already done")
            kind, arch, w = r["kind"], int(r["arch_index"]), np.asarray(r["weights"], dtype=np.float64)
            bad = (r["step"] != i or kind != self._next_kind() or w.shape != (dim,) or arch not in self.pool
                   or bool(r["new_query"]) == (arch in self._log))
            if bad or not self._replays(kind, w, arch):
                raise StoreError(f"{where}: row {i} ({kind}, arch {arch}) is inconsistent with the pool and config")
            self._apply(kind, w, arch, float(r["value"]), float(r["cost"]), bool(r["new_query"]))


def save_search_state(search: QuerySearch[Any], path: str | Path) -> None:
    """Atomically save ``search``'s trace and state config to ``path``
    (:func:`raynas.store.search_state.save_state`): what a driver calls after each tell."""
    save_state(path, search.state_rows(), search.state_config())
