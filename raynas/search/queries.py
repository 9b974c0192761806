"""What one query search asked its oracle: :class:`QueryLog` keeps the distinct queries of one search (a repeated
architecture is answered from the cache at no cost) and builds the result dict every search method returns;
:func:`drive` is the ask / query / tell loop of an ask/tell search, with up to ``q`` queries in flight on a
:class:`QueryExecutor` (this process by default; Ray tasks with :class:`raynas.parallel.queries.RayQueryExecutor`).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Union

import numpy as np

from raynas.errors import OracleError, SearchError
from raynas.oracles.base import Oracle, QueryFailure, QueryResult, query_label


class QueryLog:
    """Distinct queries of one search, in order. A repeated architecture is answered from the cache at no cost."""

    def __init__(self) -> None:
        self.arch: list[int] = []
        self.values: list[float] = []
        self.costs: list[float] = []
        self._pos: dict[int, int] = {}

    def __contains__(self, arch_index: object) -> bool:
        return arch_index in self._pos

    def __len__(self) -> int:
        return len(self.arch)

    def value_of(self, arch_index: int) -> float:
        return self.values[self._pos[int(arch_index)]]

    def record(self, arch_index: int, value: float, cost: float) -> None:
        a = int(arch_index)
        if a in self._pos:
            raise OracleError(f"architecture {a} recorded twice")
        self._pos[a] = len(self.arch)
        self.arch.append(a)
        self.values.append(float(value))
        self.costs.append(float(cost))

    def query(self, oracle: Oracle, arch_index: int) -> tuple[float, float, bool]:
        """``(value, cost, new_query)``: asks ``oracle`` only for architectures not seen yet."""
        a = int(arch_index)
        if a in self._pos:
            return self.value_of(a), 0.0, False
        res = oracle.query(a)
        self.record(a, res.value, res.cost_seconds)
        return res.value, res.cost_seconds, True

    def best(self) -> int:
        """Position of the best value (ties: the earliest query)."""
        if not self.arch:
            raise OracleError("no architecture has been queried")
        return int(np.argmax(np.asarray(self.values)))

    def result(self, method: str, oracle: Oracle | None = None, **extra: Any) -> dict[str, Any]:
        """The common result dict: best ``arch_index``, its query ``value`` and ``final``, ``queries`` (distinct),
        total ``cost``, the query history (``queried``, ``values``, ``costs``) and ``query_label`` (what the values
        measure, :func:`query_label`; None when unknown)."""
        b = self.best()
        arch = self.arch[b]
        out: dict[str, Any] = {
            "method": method,
            "arch_index": arch,
            "value": self.values[b],
            "final": oracle.final(arch) if oracle is not None else None,
            "queries": len(self.arch),
            "cost": float(sum(self.costs)),
            "queried": list(self.arch),
            "values": list(self.values),
            "costs": list(self.costs),
            "query_label": query_label(oracle),
        }
        out.update(extra)
        return out


#: what an executor hands back for one query
Outcome = Union[QueryResult, QueryFailure]


class QueryExecutor(Protocol):
    """Runs queries somewhere (this process, Ray workers): ``submit(key, arch_index)`` starts one, ``wait()``
    blocks until at least one has finished and returns ``[(key, outcome)]`` for every finished one, in completion
    order; ``close()`` abandons what still runs."""

    def submit(self, key: int, arch_index: int) -> None: ...

    def wait(self) -> list[tuple[int, Outcome]]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs each query in this process when it is waited for, in submission order (the sequential search).
    An :class:`OracleError` propagates, as from ``oracle.query``: the search stops and a resume continues it."""

    def __init__(self, oracle: Oracle):
        self.oracle = oracle
        self._queue: list[tuple[int, int]] = []

    def submit(self, key: int, arch_index: int) -> None:
        self._queue.append((int(key), int(arch_index)))

    def wait(self) -> list[tuple[int, Outcome]]:
        if not self._queue:
            raise OracleError("no query is running")
        key, arch = self._queue.pop(0)
        return [(key, self.oracle.query(arch))]

    def close(self) -> None:
        self._queue.clear()


def drive(search: Any, oracle: Oracle, on_step: Callable[[dict[str, Any]], None] | None = None, *,
          executor: QueryExecutor | None = None, on_change: Callable[[], None] | None = None) -> None:
    """Ask/query/tell ``search`` until it is done, with up to ``search.q`` queries in flight.

    Each round asks every proposal the free slots take (:meth:`~raynas.search.base.QuerySearch.ask_batch`) and
    submits those that need a query to ``executor`` (default :class:`InlineExecutor` of ``oracle``: one at a
    time, in this process); cached proposals (queried or in flight already) are never submitted. Outcomes are
    collected in completion order and kept in the search (``record_result``) at once; the earliest pending
    proposal is told as soon as its outcome is there (a failure with ``tell_failed``), then the round repeats.
    ``on_change()`` after new proposals or a completed query (the caller saves the state), ``on_step(row)``
    after every tell. A new value is also handed to ``oracle.remember(arch, result)`` when the oracle has it
    (a training oracle whose queries ran elsewhere then answers ``final`` without training again).
    """
    ex: QueryExecutor = executor if executor is not None else InlineExecutor(oracle)
    remember = getattr(oracle, "remember", None)
    submitted: set[int] = set()
    failures: dict[int, QueryFailure] = {}
    try:
        while not search.done:
            changed = bool(search.ask_batch())
            for p in search.pending:  # new ones, and in-flight ones of a resumed search
                if not p.cached and p.step not in submitted and search.result_of(p.step) is None:
                    ex.submit(p.step, p.arch_index)
                    submitted.add(p.step)
            if changed and on_change is not None:
                on_change()
            if not search.pending:  # a search rule that neither ends nor lets it ask: never loop on it
                raise SearchError(f"{type(search).__name__} is not done but makes no proposal")
            head = search.pending[0]
            if head.cached:  # the query it repeats came earlier, so it has been told (or has failed) by now
                if search.has_value(head.arch_index):
                    row = search.tell(head)
                else:
                    row = None
                    search.tell_failed(head, f"repeats arch {head.arch_index}, whose query failed")
            else:
                while search.result_of(head.step) is None and head.step not in failures:
                    _collect(search, ex, failures, remember, on_change)
                if head.step in failures:
                    f = failures.pop(head.step)
                    row = None
                    search.tell_failed(head, f.reason, f.status)
                else:
                    value, cost = search.result_of(head.step)
                    row = search.tell(head, value, cost)
            if row is not None and on_step is not None:
                on_step(row)
            elif row is None and on_change is not None:
                on_change()
    finally:
        ex.close()


def _collect(search: Any, ex: QueryExecutor, failures: dict[int, QueryFailure], remember: Any,
             on_change: Callable[[], None] | None) -> None:
    """Wait for finished queries and keep their outcomes (values in the search, failures in ``failures``)."""
    arch_of = {p.step: p.arch_index for p in search.pending}
    for key, out in ex.wait():
        if isinstance(out, QueryFailure):
            failures[key] = out
            continue
        search.record_result(key, out.value, out.cost_seconds)
        if remember is not None and key in arch_of:
            remember(arch_of[key], out)
    if on_change is not None:
        on_change()
